//! Tapkit provisioner: the admin's tool at a USB PC/SC reader.
//!
//! Layers, bottom up: [`transport`] (the one hardware seam, with
//! [`pcsc_transport::PcscTransport`] and [`sim::SimTransport`]), [`driver`] (identify,
//! read, write + verify, password, lock), and the CLI ([`cli`], [`run`]). The tag
//! simulator and its vpcd bridge live in [`sim`].

pub mod cli;
pub mod driver;
pub use tapkit_core::hex;
pub mod journal;
pub mod partners;
pub mod pcsc_transport;
pub use tapkit_print as print;
pub mod provision;
pub mod server_api;
pub mod sim;
pub mod transport;

mod commands;

pub use commands::{ExitStatus, run};

//! Tapkit provisioner: the admin's tool at a USB PC/SC reader.
//!
//! Layers, bottom up: [`reader`] (the one hardware seam, [`reader::Transport`], with
//! [`reader::pcsc::PcscTransport`], the simulator [`reader::sim::SimTransport`] and the
//! scripted [`reader::mock::MockTransport`] for tests), [`driver`] (identify, read,
//! write + verify, password, lock), [`provision`] (batches), and the CLI ([`cli`],
//! [`run`]), whose [`cli::CliError`] owns the exit status and the `error:` output.

pub mod cli;
pub mod driver;
pub use tapkit_core::hex;
pub mod journal;
pub mod partners;
pub use tapkit_print as print;
pub mod provision;
pub mod reader;
pub mod server_api;

mod commands;

pub use cli::{CliError, ExitStatus};
pub use commands::run;

//! display-kiosk: the screen on a partner's counter next to the NFC pad. It shows the
//! brand, "tap your phone here to book" with a pulsing pointer toward the pad, and a QR
//! code for phones without NFC whose URL carries a rotating token signed with the
//! kiosk's own secret (`tapkit_core::kiosk`), computed locally so it works offline.
//!
//! [`cli`] is the command line and [`commands`] runs it ([`run`], what `main` calls),
//! failing with an [`error::KioskError`] that names its exit status. [`state`] keeps the
//! identity and the last good config on disk, [`sync`] talks to the server (enrolment,
//! config, heartbeats, backoff) in the shared wire types of `tapkit_core::kiosk_wire`,
//! read by [`wire`] with the field at fault named, [`config`] checks a display config
//! before it reaches the screen, [`frame`] lays out and renders the frame (SVG for the
//! page, pixels for snapshots), [`page`] serves it on 127.0.0.1. With `run --reader`,
//! [`reader`] watches a PC/SC card reader, [`desk`] checks members in (and from the
//! signed roster while offline) and [`queue`] keeps the roster and the offline queue.

pub mod cli;
pub mod commands;
pub mod config;
pub mod desk;
pub mod error;
pub mod frame;
pub mod page;
pub mod queue;
pub mod reader;
pub mod state;
pub mod sync;
pub mod wire;

pub use commands::run;

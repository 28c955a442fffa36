//! The CLI's error: everything a subcommand can fail with, the exit status each maps
//! to, and how it is shown, in nextest's style:
//!
//! ```text
//! error: cannot read or write the journal /srv/batch/journal.jsonl
//!   caused by: Permission denied (os error 13)
//! hint: check the file and its folder's permissions, or give another --journal file
//! ```
//!
//! The first line says what failed; each `caused by:` line is the next error down the
//! source chain; the `hint:` says what to do, and is the one place that names
//! command-line flags (the layers below do not know them).

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::driver::DriverError;
use crate::journal::JournalError;
use crate::partners::CsvError;
use crate::print::PrintError;
use crate::reader::sim::ImageError;
use crate::reader::{Cause, TransportError};
use crate::server_api::ServerError;

/// Process exit statuses, by what went wrong (docs/deploy.md lists them for admins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// Done.
    Ok = 0,
    /// Something failed that a retry will not fix by itself (or partners are left for
    /// a re-run).
    Failed = 1,
    /// The command line, or a file it names, was wrong.
    Usage = 2,
    /// No PC/SC service, no reader, or no card in time.
    NoReader = 3,
    /// The card was refused (unsupported, locked, holds another URL, too small).
    CardRefused = 4,
    /// The card left mid-operation: put it back and run again.
    Retry = 5,
}

impl ExitStatus {
    /// The number the process exits with.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(s: ExitStatus) -> Self {
        Self::from(s.code())
    }
}

/// The card operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardOp {
    /// `read`.
    Read,
    /// `write`.
    Write,
    /// `lock`.
    Lock,
    /// `reset`.
    Reset,
    /// A card of a `provision` batch.
    Provision,
    /// The `demo` on emulated cards.
    Demo,
}

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// No reader could be found or opened, or no card came.
    #[error("{error}")]
    Reader {
        /// The subcommand, for the hint (`read`, `write`, `provision` …).
        command: &'static str,
        /// What PC/SC said.
        #[source]
        error: TransportError,
    },
    /// An operation on the card failed.
    #[error("{error}")]
    Card {
        /// What was being done.
        op: CardOp,
        /// The reader's name (`sim` for the simulator).
        reader: String,
        /// What the driver said.
        #[source]
        error: DriverError,
    },
    /// The URL to write is not one.
    #[error("{url:?} is not an http(s) URL without spaces")]
    BadUrl {
        /// What was given.
        url: String,
    },
    /// The simulated card's image file cannot be used.
    #[error("{error}")]
    SimImage {
        /// Why.
        #[source]
        error: ImageError,
    },
    /// The simulator's card script cannot be used.
    #[error("{script:?} is not a card script")]
    CardScript {
        /// What was given.
        script: String,
        /// Why.
        #[source]
        reason: Cause,
    },
    /// Neither a CSV file nor a server was given.
    #[error("no partner list was given")]
    NoPartnerSource,
    /// `--csv` without `--domain`.
    #[error("the brand's domain is needed with a CSV partner list")]
    MissingDomain,
    /// The brand domain is not a host name.
    #[error("{reason}")]
    BadDomain {
        /// What is wrong and how to write it.
        reason: String,
    },
    /// The CSV partner list cannot be used.
    #[error("{error}")]
    PartnerCsv {
        /// Why.
        #[source]
        error: CsvError,
    },
    /// The partner list has no row to work with.
    #[error("{origin} has no usable partner rows")]
    NoUsableRows {
        /// The file or server.
        origin: String,
    },
    /// The Tapkit server failed or refused.
    #[error("{error}")]
    Server {
        /// Why.
        #[source]
        error: ServerError,
    },
    /// A dry run found URLs that fit no card.
    #[error("{count} partner URLs do not fit any NTAG21x card")]
    UrlsTooLong {
        /// How many.
        count: usize,
    },
    /// The batch journal cannot be used.
    #[error("{error}")]
    Journal {
        /// Why.
        #[source]
        error: JournalError,
    },
    /// Partners of the batch are left without a card.
    #[error("{failed} partners did not get a card")]
    PartnersLeft {
        /// How many.
        failed: usize,
    },
    /// Cards were written but the server has not registered them.
    #[error("{pending} written cards are not registered with the server yet")]
    RegistrationPending {
        /// How many.
        pending: usize,
    },
    /// The card template cannot be used.
    #[error("cannot use the card template {}", path.as_ref().map_or_else(|| "built in".to_owned(), |p| p.display().to_string()))]
    Template {
        /// The template file (`None`: the built-in one).
        path: Option<PathBuf>,
        /// Why.
        #[source]
        reason: Cause,
    },
    /// The print files could not be made.
    #[error("{error}")]
    Print {
        /// Why.
        #[source]
        error: PrintError,
    },
    /// `keys new` would overwrite a file.
    #[error("{} already exists; a key file is never overwritten", path.display())]
    KeyFileExists {
        /// The file.
        path: PathBuf,
    },
    /// The key file cannot be read or written.
    #[error("cannot {doing} the key file {}", path.display())]
    KeyFileIo {
        /// `read` or `write`.
        doing: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// The key file is not one.
    #[error("{} is not a usable key file", path.display())]
    KeyFileBad {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        error: tapkit_core::ntag424::keyfile::KeyFileError,
    },
    /// The key file has all 255 versions.
    #[error("{} already holds key version 255, the last one", path.display())]
    KeyVersionsFull {
        /// The file.
        path: PathBuf,
    },
    /// The emulated card could not be served to vpcd.
    #[error("the emulated card could not be served to vpcd at {addr}")]
    Vpcd {
        /// Where vpcd was expected.
        addr: SocketAddr,
        /// Why.
        #[source]
        error: std::io::Error,
    },
}

impl CliError {
    /// The status the process exits with.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Self::Reader { error, .. } => transport_status(error),
            Self::Card { error, .. } => driver_status(error),
            Self::Server { error } => match error {
                ServerError::Config(_) => ExitStatus::Usage,
                _ => ExitStatus::Failed,
            },
            Self::PartnersLeft { .. }
            | Self::RegistrationPending { .. }
            | Self::Vpcd { .. }
            | Self::KeyFileIo { .. } => ExitStatus::Failed,
            Self::BadUrl { .. }
            | Self::SimImage { .. }
            | Self::CardScript { .. }
            | Self::NoPartnerSource
            | Self::MissingDomain
            | Self::BadDomain { .. }
            | Self::PartnerCsv { .. }
            | Self::NoUsableRows { .. }
            | Self::UrlsTooLong { .. }
            | Self::Journal { .. }
            | Self::Template { .. }
            | Self::Print { .. }
            | Self::KeyFileExists { .. }
            | Self::KeyFileBad { .. }
            | Self::KeyVersionsFull { .. } => ExitStatus::Usage,
        }
    }

    /// Whether putting the same card back and running again can succeed.
    pub fn is_retryable(&self) -> bool {
        self.exit_status() == ExitStatus::Retry
    }

    /// What to do about it, when the message does not already say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Reader { command, error } => transport_hint(error, command),
            Self::Card { op, reader, error } => card_hint(*op, reader, error),
            Self::BadUrl { .. } => {
                Some("give one like https://book.example.com/r/IRONGYM-7K2M9Q".into())
            }
            Self::SimImage { error } => match error {
                ImageError::Parse { .. } | ImageError::Invalid { .. } => Some(
                    "--sim-image takes a file an earlier run saved, or a new path to start a fresh card"
                        .into(),
                ),
                _ => None,
            },
            Self::CardScript { .. } => Some(
                "--sim-cards takes comma-separated cards, e.g. \"ntag215,ntag215+pull-at-write:3,again\""
                    .into(),
            ),
            Self::NoPartnerSource => Some(
                "give --csv FILE (offline) or --server URL (the affiliates that still need a card)"
                    .into(),
            ),
            Self::MissingDomain => Some(
                "--domain is required with --csv: the brand's host, like book.example.com".into(),
            ),
            Self::UrlsTooLong { .. } => Some("shorten the domain (--domain)".into()),
            Self::Journal { error } => Some(match error {
                JournalError::Corrupt { .. } => "give a new --journal file or fix that line".into(),
                _ => "check the file and its folder's permissions, or give another --journal file"
                    .into(),
            }),
            Self::PartnersLeft { .. } => Some("run the same command again to retry them".into()),
            Self::RegistrationPending { .. } => Some(
                "run the same command with the same --journal when the server is reachable".into(),
            ),
            Self::Vpcd { .. } => Some(
                "pcscd must run with the vpcd driver (package vsmartcard-vpcd) listening on --vpcd; scripts/with-pcscd.sh starts one"
                    .into(),
            ),
            Self::KeyFileExists { .. } => Some(
                "give another --out, or add a key version to that file with `provisioner keys rotate --keys FILE`"
                    .into(),
            ),
            Self::KeyFileIo { .. } => {
                Some("check the file and its folder's permissions".into())
            }
            Self::KeyFileBad { .. } => Some(
                "give the file `provisioner keys new` made (--keys FILE); a changed key line makes its cards unverifiable"
                    .into(),
            ),
            Self::KeyVersionsFull { .. } => Some(
                "start a new key file with `provisioner keys new --out FILE` for new cards, and give the server both".into(),
            ),
            Self::NoUsableRows { .. }
            | Self::BadDomain { .. }
            | Self::PartnerCsv { .. }
            | Self::Server { .. }
            | Self::Template { .. }
            | Self::Print { .. } => None,
        }
    }

    /// The first `caused by:` error. Variants whose first line is their inner error's
    /// message start from that error's own source.
    fn first_cause(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Reader { error, .. } => error.source(),
            Self::Card { error, .. } => error.source(),
            Self::SimImage { error } => error.source(),
            Self::PartnerCsv { error } => error.source(),
            Self::Server { error } => error.source(),
            Self::Journal { error } => error.source(),
            Self::Print { error } => error.source(),
            other => other.source(),
        }
    }

    /// The messages of the source chain, outermost first.
    pub fn causes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut last = self.to_string();
        let mut next = self.first_cause();
        while let Some(e) = next {
            let m = e.to_string();
            // A layer that wraps its source as "{0}" would repeat the line above.
            if m != last {
                out.push(m.clone());
            }
            last = m;
            next = e.source();
        }
        out
    }

    /// The error as the terminal shows it: `error:`, `caused by:` lines, `hint:`.
    pub fn render(&self) -> String {
        let mut s = format!("error: {}\n", indent(&self.to_string()));
        for c in self.causes() {
            s += &format!("  caused by: {}\n", indent(&c));
        }
        if let Some(h) = self.hint() {
            s += &format!("hint: {}\n", indent(&h));
        }
        s
    }

    /// The error for `--json` output: `error`, `causes`, `hint`, `retry`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": self.to_string(),
            "causes": self.causes(),
            "hint": self.hint(),
            "retry": self.is_retryable(),
        })
    }
}

/// Continuation lines of a multi-line message, indented under their label.
fn indent(s: &str) -> String {
    s.replace('\n', "\n  ")
}

fn transport_status(e: &TransportError) -> ExitStatus {
    if e.is_reader_unavailable() || matches!(e, TransportError::NoCard { .. }) {
        ExitStatus::NoReader
    } else {
        driver_status(&DriverError::Transport(e.clone()))
    }
}

fn driver_status(e: &DriverError) -> ExitStatus {
    match e {
        DriverError::Transport(t) if t.is_reader_unavailable() => ExitStatus::NoReader,
        DriverError::Transport(TransportError::NoCard { .. }) => ExitStatus::NoReader,
        e if e.is_retryable() => ExitStatus::Retry,
        e if e.is_refusal() => ExitStatus::CardRefused,
        _ => ExitStatus::Failed,
    }
}

/// The hint for a reader-level failure; `command` is the subcommand, to suggest the
/// simulator with it.
fn transport_hint(e: &TransportError, command: &str) -> Option<String> {
    let sim = match command {
        "readers" => "try the simulator: provisioner read --reader sim".to_owned(),
        c => format!("or try the simulator: provisioner {c} --reader sim"),
    };
    Some(match e {
        TransportError::NoService => {
            format!("start it (sudo systemctl start pcscd.socket), {sim}")
        }
        TransportError::NoReaders => {
            format!("plug in a reader (ACR122U, ACR1252U …), {sim}")
        }
        TransportError::NoMatch { .. } => {
            "give --reader one of those names, or a unique part of one (or sim for the simulator)"
                .into()
        }
        TransportError::Ambiguous { .. } => "give more of the name to --reader".into(),
        TransportError::SeveralReaders { .. } => {
            "choose one with --reader (a unique part of its name will do)".into()
        }
        TransportError::ReaderGone { .. } => {
            "`provisioner readers` lists the readers attached now".into()
        }
        TransportError::NoCard { .. } => {
            "place a card flat on the reader and run the command again (--wait SECONDS waits longer)"
                .into()
        }
        _ => return None,
    })
}

fn card_hint(op: CardOp, reader: &str, e: &DriverError) -> Option<String> {
    let command = match op {
        CardOp::Read => "read",
        CardOp::Write => "write",
        CardOp::Lock => "lock",
        CardOp::Reset => "reset",
        CardOp::Provision => "provision",
        CardOp::Demo => "demo",
    };
    match e {
        DriverError::Transport(t) => transport_hint(t, command),
        DriverError::Content(_) if op == CardOp::Write => {
            Some("pass --overwrite to rewrite it".into())
        }
        DriverError::PasswordRequired | DriverError::WrongPassword => {
            Some("give the card's password with --password or TAPKIT_TAG_PASSWORD".into())
        }
        DriverError::NeedsConfirmation => Some("add --permanent to lock this card".into()),
        DriverError::Unsupported {
            tag: tapkit_core::ntag::TagType::Ntag424Dna,
            ..
        } if op == CardOp::Write => Some(
            "write it with --sun --keys FILE (the brand's key file, made once by `provisioner keys new --out FILE`)"
                .into(),
        ),
        DriverError::SunHoldsOtherUrl { .. } => Some(
            "to give it another URL, reset it first (`provisioner reset --keys FILE`), retire its binding on the server, then write it again"
                .into(),
        ),
        DriverError::Journal(_) => Some(
            "check the journal file and its folder's permissions, or give another --journal file"
                .into(),
        ),
        DriverError::Nak { .. } | DriverError::Protocol { .. } if reader != "sim" => Some(format!(
            "`provisioner read --reader {reader:?}` shows the card's lock and password state"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_is_shown_below_the_first_line_and_the_hint_last() {
        let e = CliError::Journal {
            error: JournalError::Io {
                path: "/srv/j.jsonl".into(),
                source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            },
        };
        assert_eq!(
            e.render(),
            "error: cannot read or write the journal /srv/j.jsonl\n  caused by: permission denied\nhint: check the file and its folder's permissions, or give another --journal file\n"
        );
        assert_eq!(e.exit_status(), ExitStatus::Usage);
    }

    #[test]
    fn a_pulled_card_is_one_line_and_exit_5() {
        let e = CliError::Card {
            op: CardOp::Write,
            reader: "Virtual PCD 00 00".into(),
            error: DriverError::PulledMidWrite {
                written: 3,
                total: 7,
            },
        };
        assert_eq!(e.render().lines().count(), 1, "{}", e.render());
        assert_eq!(e.exit_status(), ExitStatus::Retry);
        assert_eq!(e.exit_status().code(), 5);
        assert_eq!(e.to_json()["retry"], true);
    }

    #[test]
    fn pcsc_failures_show_what_pcsc_said() {
        let e = CliError::Card {
            op: CardOp::Read,
            reader: "ACS ACR122U 00 00".into(),
            error: DriverError::Transport(TransportError::Pcsc {
                op: "send a command to the card on \"ACS ACR122U 00 00\"".into(),
                cause: Cause("Card is unpowered.".into()),
            }),
        };
        assert_eq!(
            e.render(),
            "error: PC/SC could not send a command to the card on \"ACS ACR122U 00 00\"\n  caused by: Card is unpowered.\n"
        );
        assert_eq!(e.exit_status(), ExitStatus::Failed);
    }

    #[test]
    fn hints_name_the_flags_the_driver_does_not() {
        let e = CliError::Card {
            op: CardOp::Lock,
            reader: "sim".into(),
            error: DriverError::NeedsConfirmation,
        };
        assert!(!e.to_string().contains("--"), "{e}");
        assert_eq!(
            e.hint().as_deref(),
            Some("add --permanent to lock this card")
        );
        assert_eq!(e.exit_status(), ExitStatus::CardRefused);
        let e = CliError::Reader {
            command: "write",
            error: TransportError::NoService,
        };
        assert!(!e.to_string().contains("--"), "{e}");
        assert!(
            e.hint()
                .is_some_and(|h| h.contains("provisioner write --reader sim"))
        );
        assert_eq!(e.exit_status(), ExitStatus::NoReader);
    }

    #[test]
    fn exit_statuses_keep_their_numbers() {
        let n = |s: ExitStatus| s.code();
        assert_eq!(
            [
                ExitStatus::Ok,
                ExitStatus::Failed,
                ExitStatus::Usage,
                ExitStatus::NoReader,
                ExitStatus::CardRefused,
                ExitStatus::Retry
            ]
            .map(n),
            [0, 1, 2, 3, 4, 5]
        );
    }
}

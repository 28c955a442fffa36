//! The reader room: the one hardware seam and everything behind it.
//!
//! [`Transport`] sends an APDU to the card on a reader and returns the response. Three
//! implementations: [`pcsc::PcscTransport`] (pcsc crate → libpcsclite → pcscd → a USB
//! reader or the vpcd virtual reader; the only code that touches PC/SC),
//! [`sim::SimTransport`] (an in-process emulated reader and tag) and
//! [`mock::MockTransport`] (a scripted list of exchanges for unit tests). The tag driver
//! above this trait cannot tell them apart.
//!
//! Errors here say what happened at the reader; they name no command-line flag (the CLI
//! adds the hint that does).

pub mod mock;
pub mod pcsc;
pub mod sim;

/// A card on a reader, opened for exclusive use.
pub trait Transport {
    /// Sends one command APDU and returns the raw response (data and status word).
    /// A response shorter than two bytes is reported as [`TransportError::NoResponse`].
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;

    /// The card's answer-to-reset.
    fn atr(&self) -> &[u8];

    /// The reader's name as PC/SC reports it (or `sim`).
    fn reader_name(&self) -> &str;

    /// Resets the card (RF field off and on) and reconnects, e.g. to wake a tag that
    /// fell silent after a NAK. Never waits: a card that left is [`TransportError::CardRemoved`].
    fn reconnect(&mut self) -> Result<(), TransportError>;

    /// Signals success or failure on the reader (LED and buzzer); readers that cannot
    /// do it ignore it.
    fn signal(&mut self, success: bool) {
        let _ = success;
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(apdu)
    }
    fn atr(&self) -> &[u8] {
        (**self).atr()
    }
    fn reader_name(&self) -> &str {
        (**self).reader_name()
    }
    fn reconnect(&mut self) -> Result<(), TransportError> {
        (**self).reconnect()
    }
    fn signal(&mut self, success: bool) {
        (**self).signal(success);
    }
}

/// The text of a lower-level error (PC/SC, the file system), kept as the source of a
/// [`TransportError`] so the whole chain can be shown while the error stays `Clone` and
/// comparable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Cause(pub String);

impl Cause {
    /// The message of `e`.
    pub fn of(e: &dyn std::error::Error) -> Self {
        Self(e.to_string())
    }
}

/// Why an APDU exchange, or finding and opening a reader, failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The card left the reader.
    #[error("the card was removed from the reader")]
    CardRemoved,
    /// The card answered nothing: torn away mid-command.
    #[error("the card gave no answer (it was probably pulled away mid-command)")]
    NoResponse,
    /// Another program reset the card; the transport reconnected, but the command did
    /// not run.
    #[error("another program reset the card")]
    CardReset,
    /// No card appeared within the wait.
    #[error("no card was placed on reader {reader:?} within {seconds} s")]
    NoCard {
        /// Reader name.
        reader: String,
        /// How long we waited.
        seconds: u64,
    },
    /// The PC/SC service is not running.
    #[error("the PC/SC service (pcscd) is not running, so no reader can be used")]
    NoService,
    /// PC/SC lists no reader at all.
    #[error("no PC/SC reader is attached")]
    NoReaders,
    /// No reader name contains what was asked for.
    #[error("no reader matches {wanted:?}; the readers are: {}", quoted(.readers))]
    NoMatch {
        /// What was asked for.
        wanted: String,
        /// The readers attached.
        readers: Vec<String>,
    },
    /// Several reader names contain what was asked for (and not exactly one has a card).
    #[error("{wanted:?} matches several readers: {}", quoted(.matches))]
    Ambiguous {
        /// What was asked for.
        wanted: String,
        /// The readers it matches.
        matches: Vec<String>,
    },
    /// No reader was named and several are attached.
    #[error("several readers are attached: {}", quoted(.readers))]
    SeveralReaders {
        /// The readers attached.
        readers: Vec<String>,
    },
    /// The reader went away (unplugged) or its name cannot be used.
    #[error("reader {reader:?} is gone; check its cable")]
    ReaderGone {
        /// Reader name.
        reader: String,
    },
    /// Another program holds the card exclusively.
    #[error("another program is using the card on {0:?}; close it and try again")]
    SharingViolation(String),
    /// Anything else PC/SC reported.
    #[error("PC/SC could not {op}")]
    Pcsc {
        /// What was being done, e.g. `connect to the card on "ACS ACR122U 00 00"`.
        op: String,
        /// What PC/SC said.
        #[source]
        cause: Cause,
    },
    /// The simulated card's image could not be saved after a change.
    #[error("cannot save the simulated card to {path}")]
    SimImage {
        /// The image file.
        path: String,
        /// Why.
        #[source]
        cause: Cause,
    },
}

impl TransportError {
    /// Whether no reader can be used at all (no service, no reader, the named one is
    /// gone or cannot be told apart): nothing more can happen until someone fixes that.
    pub fn is_reader_unavailable(&self) -> bool {
        matches!(
            self,
            Self::NoService
                | Self::NoReaders
                | Self::NoMatch { .. }
                | Self::Ambiguous { .. }
                | Self::SeveralReaders { .. }
                | Self::ReaderGone { .. }
        )
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Counts APDUs and bytes over any transport (for reports and benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Traffic {
    /// Command APDUs sent.
    pub apdus: u32,
    /// Page writes among them.
    pub writes: u32,
    /// Bytes sent and received.
    pub bytes: u64,
}

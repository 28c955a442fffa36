//! The one hardware seam: send an APDU to the card on a reader, get the response.
//!
//! Two implementations: [`crate::pcsc_transport::PcscTransport`] (pcsc crate →
//! libpcsclite → pcscd → USB reader or the vpcd virtual reader) and
//! [`crate::sim::SimTransport`] (an in-process emulated reader and tag). The tag driver
//! above this trait cannot tell them apart.

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

/// Why an APDU exchange failed.
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
    #[error(
        "the PC/SC service (pcscd) is not running; start it (sudo systemctl start pcscd.socket) or use --reader sim"
    )]
    NoService,
    /// The named reader does not exist.
    #[error("{0}")]
    NoSuchReader(String),
    /// Another program holds the card exclusively.
    #[error("another program is using the card on {0:?}; close it and try again")]
    SharingViolation(String),
    /// Anything else PC/SC reported.
    #[error("PC/SC error: {0}")]
    Pcsc(String),
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

//! The tag driver's errors: one sentence on what happened at the card, plus what to do
//! there. They name no command-line flag: the CLI adds the hint that does (the batch,
//! which has no such flags, words its own advice).

use tapkit_core::ntag::TagType;

use crate::reader::TransportError;

/// Why a tag operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The reader or PC/SC failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The card was pulled off (or torn away) in the middle of writing.
    #[error(
        "the card left the reader after {written} of {total} page writes; put the same card back and run the command again to finish the write"
    )]
    PulledMidWrite {
        /// Pages written before it left.
        written: usize,
        /// Pages the write needed.
        total: usize,
    },
    /// The card is not one Tapkit writes.
    #[error("{reason}")]
    Unsupported {
        /// What it is.
        tag: TagType,
        /// Why not, and what to use.
        reason: String,
    },
    /// The card answered something no NTAG answers.
    #[error(
        "the card gave an unexpected answer to {op} ({detail}); take it off the reader, put it back and try again"
    )]
    Protocol {
        /// Which step.
        op: &'static str,
        /// What came back.
        detail: String,
    },
    /// The tag refused a command (NAK).
    #[error(
        "the tag refused to {op} page {page:#04x}; check that the card is not locked or password-protected"
    )]
    Nak {
        /// Which step.
        op: &'static str,
        /// Which page.
        page: u8,
    },
    /// The URL does not fit.
    #[error(
        "the URL needs {needed} bytes on the card but this {tag} has room for {available}; use a shorter URL or a larger card (NTAG215/216)"
    )]
    DoesNotFit {
        /// Tag type.
        tag: TagType,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The mirror cannot be placed.
    #[error(transparent)]
    Mirror(#[from] tapkit_core::ntag::MirrorError),
    /// Locked pages are in the way.
    #[error("this card is locked (read-only) and cannot be rewritten; use a new card")]
    Locked,
    /// A password is required.
    #[error("this card is password-protected: writing to it needs its password")]
    PasswordRequired,
    /// The password was wrong.
    #[error(
        "the card rejected the password; check it (too many wrong tries can lock the card for good)"
    )]
    WrongPassword,
    /// The card holds another URL.
    // The one flag a driver message still names: the driver's own tests
    // (tests/sim_driver.rs) pin this sentence's ending.
    #[error("this card already holds {existing}; pass --overwrite to replace it")]
    HoldsOtherUrl {
        /// The URL on the card.
        existing: String,
    },
    /// The card's NDEF content is unreadable.
    #[error("the card's data is unreadable ({0})")]
    Content(String),
    /// Read-back after writing did not match.
    #[error(
        "after writing, page {page:#04x} reads {found} instead of {expected}; keep the card on the reader and write again (if it fails twice, the card may be faulty)"
    )]
    VerifyFailed {
        /// First mismatching page.
        page: u8,
        /// Hex expected.
        expected: String,
        /// Hex found.
        found: String,
    },
    /// An NTAG 424 DNA refused a command.
    #[error(
        "the NTAG 424 DNA card refused a command ({op}, status {status}); take it off the reader, put it back and try again"
    )]
    SunRefused {
        /// Which step.
        op: &'static str,
        /// The status word.
        status: String,
    },
    /// An NTAG 424 DNA's secure-messaging answer did not verify: a corrupted or replayed
    /// answer. Nothing more was sent to the card.
    #[error(
        "the card's answer to {op} did not verify ({error}); nothing more was sent to it: take it off the reader, put it back and run the command again"
    )]
    SecureMessaging {
        /// Which step.
        op: &'static str,
        /// What failed.
        error: tapkit_core::ntag424::session::SmError,
    },
    /// The NTAG 424 DNA's keys are not what Tapkit can work with.
    #[error("Tapkit will not change this NTAG 424 DNA card: {detail}")]
    SunKeys {
        /// What is wrong with them.
        detail: String,
    },
    /// An NTAG 424 DNA keyed (or half keyed) by Tapkit for another URL.
    #[error("this NTAG 424 DNA card is already a Tapkit SUN card for {existing}")]
    SunHoldsOtherUrl {
        /// The URL on the card.
        existing: String,
    },
    /// After provisioning, a tap did not verify.
    #[error(
        "the card was keyed but a test tap did not verify: {detail}; put it back and run the command again (it resumes), or reset it"
    )]
    SunVerify {
        /// What did not verify.
        detail: String,
    },
    /// The key-change journal could not be written, so no key was changed.
    #[error("the key journal could not be written, so no key was changed: {0}")]
    Journal(String),
    /// A permanent change was asked for without confirmation.
    #[error("locking is permanent and cannot be undone, so it needs a confirmation")]
    NeedsConfirmation,
}

impl DriverError {
    /// Whether the card itself was refused (wrong type, too small, locked, protected,
    /// holding something else): another card will do, the same one will not.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Unsupported { .. }
                | Self::DoesNotFit { .. }
                | Self::Locked
                | Self::HoldsOtherUrl { .. }
                | Self::Content(_)
                | Self::PasswordRequired
                | Self::WrongPassword
                | Self::Mirror(_)
                | Self::NeedsConfirmation
                | Self::SunKeys { .. }
                | Self::SunHoldsOtherUrl { .. }
        )
    }

    /// Whether putting the same card back and retrying can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::PulledMidWrite { .. }
                | Self::Transport(
                    TransportError::CardRemoved
                        | TransportError::NoResponse
                        | TransportError::CardReset
                )
                | Self::VerifyFailed { .. }
                | Self::SecureMessaging { .. }
                | Self::SunRefused { .. }
                | Self::SunVerify { .. }
        )
    }

    /// Whether the card left the reader during the operation (pulled or torn away).
    pub fn card_left(&self) -> bool {
        matches!(
            self,
            Self::PulledMidWrite { .. }
                | Self::Transport(TransportError::CardRemoved | TransportError::NoResponse)
        )
    }
}

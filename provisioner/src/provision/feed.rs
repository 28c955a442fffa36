//! Where the cards of a batch come from: a PC/SC reader (the admin places them one by
//! one) or the simulator (a scripted sequence of emulated cards, faults included).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::reader::pcsc::{PcscCanceller, PcscTransport, PcscWatcher};
use crate::reader::sim::{Fault, ImageError, SimTag, SimTagKind, SimTransport};
use crate::reader::{Transport, TransportError};

/// Why the next card cannot be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The reader or the PC/SC service failed.
    #[error(transparent)]
    Reader(#[from] TransportError),
    /// The card script asks for the previous card before there was one.
    #[error("the card script starts with \"again\"; begin with a tag type")]
    AgainFirst,
    /// A scripted card's image file cannot be used.
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// A source of cards for a batch.
pub trait CardFeed {
    /// The transport a card is reached through.
    type Card: Transport;

    /// Waits for the next card to be placed. `Ok(None)` when stopped (Ctrl-C) or, for a
    /// scripted feed, when the script has no card left.
    fn next_card(&mut self) -> Result<Option<Self::Card>, FeedError>;

    /// Waits for the card that left mid-write to come back (the same card).
    fn same_card_again(&mut self, card: Self::Card) -> Result<Option<Self::Card>, FeedError>;

    /// Signals the result on the reader and waits until the card is taken away.
    fn done_with(&mut self, card: Self::Card, success: bool) -> Result<(), FeedError>;
}

/// One scripted card: a kind, faults, or the previous card presented again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptedCard {
    /// A fresh card.
    New(SimTagKind, Vec<Fault>),
    /// The card just used, placed again (a duplicate).
    Again,
    /// A card whose memory is kept in an image file (see `write --sim-image`).
    Image(std::path::PathBuf),
}

/// Parses a card script: comma-separated `KIND[+FAULT…]`, `again` or `image:PATH`, e.g.
/// `ntag215,ntag215+pull-at-write:3,ultralight-ev1,again`.
pub fn parse_script(s: &str) -> Result<Vec<ScriptedCard>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            if t == "again" {
                return Ok(ScriptedCard::Again);
            }
            if let Some(path) = t.strip_prefix("image:") {
                return Ok(ScriptedCard::Image(path.into()));
            }
            let mut parts = t.split('+');
            let kind: SimTagKind = parts.next().unwrap_or_default().parse()?;
            let faults = parts.map(str::parse).collect::<Result<Vec<Fault>, _>>()?;
            Ok(ScriptedCard::New(kind, faults))
        })
        .collect()
}

/// The simulator feed: each card from the script, then fresh NTAG215s.
#[derive(Debug)]
pub struct SimFeed {
    script: std::collections::VecDeque<ScriptedCard>,
    last: Option<SimTag>,
    seed: u64,
    /// Whether the script must end the batch when it runs out (no endless fresh cards).
    pub script_only: bool,
}

impl SimFeed {
    /// A feed following `script`, with UIDs derived from `seed`.
    pub fn new(script: Vec<ScriptedCard>, seed: u64) -> Self {
        Self {
            script: script.into(),
            last: None,
            seed,
            script_only: false,
        }
    }
}

impl CardFeed for SimFeed {
    type Card = SimTransport;

    fn next_card(&mut self) -> Result<Option<SimTransport>, FeedError> {
        let next = match self.script.pop_front() {
            Some(c) => c,
            None if self.script_only => return Ok(None),
            None => ScriptedCard::New(SimTagKind::Ntag215, Vec::new()),
        };
        let (tag, faults) = match next {
            ScriptedCard::Image(path) => {
                return Ok(Some(SimTransport::with_image(
                    &path,
                    SimTagKind::Ntag215,
                    Vec::new(),
                )?));
            }
            ScriptedCard::Again => match &self.last {
                Some(t) => (t.clone(), Vec::new()),
                None => return Err(FeedError::AgainFirst),
            },
            ScriptedCard::New(kind, faults) => {
                self.seed = self.seed.wrapping_add(1);
                (SimTag::with_seed(kind, self.seed), faults)
            }
        };
        Ok(Some(SimTransport::new(tag, faults)))
    }

    fn same_card_again(
        &mut self,
        mut card: SimTransport,
    ) -> Result<Option<SimTransport>, FeedError> {
        card.reinsert();
        Ok(Some(card))
    }

    fn done_with(&mut self, card: SimTransport, _success: bool) -> Result<(), FeedError> {
        self.last = Some(card.reader().tag().clone());
        Ok(())
    }
}

/// The PC/SC feed: waits on the reader's state (SCardGetStatusChange, no polling) for
/// each card; Ctrl-C cancels the wait through `SCardCancel`.
#[derive(Debug)]
pub struct PcscFeed {
    watcher: PcscWatcher,
    stop: Arc<AtomicBool>,
}

impl PcscFeed {
    /// A feed on `reader` (a full PC/SC name) that stops when `stop` is set.
    pub fn new(reader: &str, stop: Arc<AtomicBool>) -> Result<Self, FeedError> {
        Ok(Self {
            watcher: PcscWatcher::new(reader)?,
            stop,
        })
    }

    /// A handle that interrupts a blocked wait (for the Ctrl-C handler).
    pub fn canceller(&self) -> PcscCanceller {
        self.watcher.canceller()
    }

    /// Blocks until the reader has a card (`present`) or not; `false` when cancelled.
    fn wait(&self, present: bool) -> Result<bool, FeedError> {
        if self.stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        Ok(self.watcher.wait(present, None)?)
    }
}

impl CardFeed for PcscFeed {
    type Card = PcscTransport;

    fn next_card(&mut self) -> Result<Option<PcscTransport>, FeedError> {
        if !self.wait(true)? {
            return Ok(None);
        }
        // The batch has asked for the card already; a card that bounced off between
        // the wait and the connect is waited for quietly.
        let quiet = Box::new(|reader: &str| tracing::info!(reader, "waiting for the card again"));
        Ok(Some(PcscTransport::open(
            self.watcher.reader(),
            Duration::from_secs(5),
            quiet,
        )?))
    }

    fn same_card_again(&mut self, card: PcscTransport) -> Result<Option<PcscTransport>, FeedError> {
        card.close();
        // The card may not have been seen leaving yet: wait for the gap, then for it.
        self.wait(false)?;
        self.next_card()
    }

    fn done_with(&mut self, mut card: PcscTransport, success: bool) -> Result<(), FeedError> {
        card.signal(success);
        card.close();
        self.wait(false)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_parse() {
        let s = parse_script("ntag215, ntag213+pull-at-write:3+slow-ms:5,again,ultralight-ev1")
            .unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s[2], ScriptedCard::Again);
        assert!(matches!(&s[1], ScriptedCard::New(SimTagKind::Ntag213, f) if f.len() == 2));
        assert!(
            parse_script("ntag999")
                .unwrap_err()
                .contains("unknown tag type")
        );
        assert!(
            parse_script("ntag215+boom:1")
                .unwrap_err()
                .contains("unknown fault")
        );
    }
}

//! The production transport: the `pcsc` crate → libpcsclite → pcscd → a USB reader (or
//! the vpcd virtual reader in tests).
//!
//! Manners (see `shared/docs/virtual-reader.md`): the card is opened in exclusive mode so
//! no other client can reset it between the steps of a write; waiting for a card blocks
//! in `SCardGetStatusChange` (no polling loop); a reset by another client is recovered
//! by reconnecting, a restarted pcscd by establishing a new context; the card is left
//! powered (`LeaveCard`) on disconnect.
//!
//! This is the only file that uses the `pcsc` crate. It prints nothing: a wait for a
//! card is announced through the caller's [`OnWait`] callback, and Ctrl-C handlers stop
//! waits through a [`PcscCanceller`].

use std::ffi::CString;
use std::time::{Duration, Instant};

use pcsc::{Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};

use super::{Cause, Transport, TransportError};

/// A reader as PC/SC lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReaderInfo {
    /// Full reader name.
    pub name: String,
    /// Whether a card is on it.
    pub card_present: bool,
    /// The card's ATR in hex, when present.
    pub atr: Option<String>,
}

/// Maps a PC/SC error met while doing `op` on `reader` (empty: no reader involved).
fn map_err(e: pcsc::Error, reader: &str, op: impl FnOnce() -> String) -> TransportError {
    match e {
        pcsc::Error::NoService | pcsc::Error::ServiceStopped => TransportError::NoService,
        pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard => TransportError::CardRemoved,
        pcsc::Error::ResetCard => TransportError::CardReset,
        pcsc::Error::SharingViolation => TransportError::SharingViolation(reader.to_owned()),
        pcsc::Error::UnknownReader | pcsc::Error::ReaderUnavailable => TransportError::ReaderGone {
            reader: reader.to_owned(),
        },
        other => TransportError::Pcsc {
            op: op(),
            cause: Cause::of(&other),
        },
    }
}

fn establish() -> Result<Context, TransportError> {
    Context::establish(Scope::User).map_err(|e| map_err(e, "", || "open a session".into()))
}

fn c_name(reader: &str) -> Result<CString, TransportError> {
    CString::new(reader).map_err(|_| TransportError::Pcsc {
        op: format!("use the reader name {reader:?}"),
        cause: Cause("reader names have no NUL bytes".into()),
    })
}

/// Lists the readers PC/SC knows, with card presence.
pub fn list_readers() -> Result<Vec<ReaderInfo>, TransportError> {
    let ctx = establish()?;
    let names = match ctx.list_readers_owned() {
        Ok(n) => n,
        Err(pcsc::Error::NoReadersAvailable) => return Ok(Vec::new()),
        Err(e) => return Err(map_err(e, "", || "list the readers".into())),
    };
    let mut states: Vec<ReaderState> = names
        .into_iter()
        .map(|n| ReaderState::new(n, State::UNAWARE))
        .collect();
    if !states.is_empty() {
        ctx.get_status_change(Duration::ZERO, &mut states)
            .map_err(|e| map_err(e, "", || "read the readers' state".into()))?;
    }
    Ok(states
        .iter()
        .map(|s| {
            let present = s.event_state().contains(State::PRESENT);
            ReaderInfo {
                name: s.name().to_string_lossy().into_owned(),
                card_present: present,
                atr: present.then(|| crate::hex::encode(s.atr())),
            }
        })
        .collect())
}

/// Finds the reader a user means: an exact name, or a unique case-insensitive part of one
/// (`acr122` finds `ACS ACR122U PICC Interface 00 00`).
pub fn resolve_reader(wanted: &str) -> Result<String, TransportError> {
    let readers = list_readers()?;
    if readers.is_empty() {
        return Err(TransportError::NoReaders);
    }
    if let Some(r) = readers.iter().find(|r| r.name == wanted) {
        return Ok(r.name.clone());
    }
    let needle = wanted.to_lowercase();
    let hits: Vec<&ReaderInfo> = readers
        .iter()
        .filter(|r| r.name.to_lowercase().contains(&needle))
        .collect();
    // Several matches ("acr122" on a two-slot reader): the one holding a card is meant.
    let with_card: Vec<&&ReaderInfo> = hits.iter().filter(|r| r.card_present).collect();
    match hits.as_slice() {
        [one] => Ok(one.name.clone()),
        [_, _, ..] if with_card.len() == 1 => Ok(with_card[0].name.clone()),
        [] => Err(TransportError::NoMatch {
            wanted: wanted.to_owned(),
            readers: readers.into_iter().map(|r| r.name).collect(),
        }),
        many => Err(TransportError::Ambiguous {
            wanted: wanted.to_owned(),
            matches: many.iter().map(|r| r.name.clone()).collect(),
        }),
    }
}

/// Blocks in SCardGetStatusChange (no polling) until `reader` has a card (`present`) or
/// not. `Ok(false)` when `wait` runs out or another thread cancels the context
/// (`Context::cancel`, e.g. on Ctrl-C); `None` waits without limit.
fn wait_for_card_state(
    ctx: &Context,
    reader: &str,
    present: bool,
    wait: Option<Duration>,
) -> Result<bool, TransportError> {
    let mut rs = [ReaderState::new(c_name(reader)?, State::UNAWARE)];
    let deadline = wait.map(|w| Instant::now() + w);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match ctx.get_status_change(left, &mut rs) {
            Ok(()) => {}
            Err(pcsc::Error::Timeout | pcsc::Error::Cancelled) => return Ok(false),
            Err(e) => {
                return Err(map_err(e, reader, || {
                    format!("wait for a card on {reader:?}")
                }));
            }
        }
        let st = rs[0].event_state();
        if st.contains(State::UNKNOWN) {
            return Err(TransportError::ReaderGone {
                reader: reader.to_owned(),
            });
        }
        let has_card = st.contains(State::PRESENT) && !st.contains(State::MUTE);
        if has_card == present {
            return Ok(true);
        }
        rs[0].sync_current_state();
    }
}

/// The reader to use when none is named: the only one attached.
pub fn only_reader() -> Result<String, TransportError> {
    let readers = list_readers()?;
    match readers.as_slice() {
        [one] => Ok(one.name.clone()),
        [] => Err(TransportError::NoReaders),
        many => Err(TransportError::SeveralReaders {
            readers: many.iter().map(|r| r.name.clone()).collect(),
        }),
    }
}

/// Watches one reader for cards coming and going, for a batch that waits on the
/// admin: blocks in SCardGetStatusChange (no polling), and [`PcscCanceller::cancel`]
/// from another thread (a Ctrl-C handler) ends a wait early.
pub struct PcscWatcher {
    ctx: Context,
    reader: String,
}

impl std::fmt::Debug for PcscWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscWatcher")
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

impl PcscWatcher {
    /// A watcher on `reader` (a full PC/SC name).
    pub fn new(reader: &str) -> Result<Self, TransportError> {
        Ok(Self {
            ctx: establish()?,
            reader: reader.to_owned(),
        })
    }

    /// The reader watched.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// Blocks until the reader has a card (`present`) or not; `Ok(false)` when `wait`
    /// runs out or the wait is cancelled. `None` waits without limit.
    pub fn wait(&self, present: bool, wait: Option<Duration>) -> Result<bool, TransportError> {
        wait_for_card_state(&self.ctx, &self.reader, present, wait)
    }

    /// A handle that interrupts a blocked [`PcscWatcher::wait`] from another thread.
    pub fn canceller(&self) -> PcscCanceller {
        PcscCanceller(self.ctx.clone())
    }
}

/// Interrupts the waits of a [`PcscWatcher`] (`SCardCancel`).
#[derive(Clone)]
pub struct PcscCanceller(Context);

impl std::fmt::Debug for PcscCanceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscCanceller").finish_non_exhaustive()
    }
}

impl PcscCanceller {
    /// Ends the current wait (it returns `Ok(false)`); a no-op when nothing waits.
    pub fn cancel(&self) {
        if let Err(e) = self.0.cancel() {
            tracing::debug!(error = %e, "SCardCancel failed");
        }
    }
}

/// Called with the reader's name when [`PcscTransport`] starts waiting for a card to be
/// placed, so the caller can tell the person at the reader (this module prints nothing).
pub type OnWait = Box<dyn FnMut(&str)>;

/// A card opened exclusively on a PC/SC reader.
pub struct PcscTransport {
    ctx: Context,
    card: Option<pcsc::Card>,
    reader: CString,
    name: String,
    atr: Vec<u8>,
    wait: Duration,
    on_wait: OnWait,
}

impl std::fmt::Debug for PcscTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscTransport")
            .field("reader", &self.name)
            .finish_non_exhaustive()
    }
}

impl PcscTransport {
    /// Opens the card on `reader` (a full name from [`resolve_reader`]), waiting up to
    /// `wait` for one to be placed. `on_wait` is called with the reader's name whenever
    /// the transport starts such a wait (now or on a later reconnect).
    pub fn open(reader: &str, wait: Duration, on_wait: OnWait) -> Result<Self, TransportError> {
        let mut t = Self {
            ctx: establish()?,
            card: None,
            reader: c_name(reader)?,
            name: reader.to_owned(),
            atr: Vec::new(),
            wait,
            on_wait,
        };
        t.connect()?;
        Ok(t)
    }

    /// Blocks in SCardGetStatusChange until a card is present (or the wait runs out).
    pub fn wait_for_card(&self, wait: Duration) -> Result<(), TransportError> {
        if wait_for_card_state(&self.ctx, &self.name, true, Some(wait))? {
            Ok(())
        } else {
            Err(TransportError::NoCard {
                reader: self.name.clone(),
                seconds: wait.as_secs(),
            })
        }
    }

    fn connect(&mut self) -> Result<(), TransportError> {
        self.card = None;
        let mut tried_new_context = false;
        loop {
            match self
                .ctx
                .connect(&self.reader, ShareMode::Exclusive, Protocols::ANY)
            {
                Ok(card) => {
                    self.atr = card
                        .status2_owned()
                        .map(|s| s.atr().to_vec())
                        .unwrap_or_default();
                    self.card = Some(card);
                    tracing::debug!(reader = %self.name, atr = %crate::hex::encode(&self.atr), "connected");
                    return Ok(());
                }
                Err(pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard) => {
                    (self.on_wait)(&self.name);
                    self.wait_for_card(self.wait)?;
                }
                // A restarted pcscd leaves this context dead: make a new one, once.
                Err(
                    pcsc::Error::NoService
                    | pcsc::Error::InvalidHandle
                    | pcsc::Error::ServiceStopped,
                ) if !tried_new_context => {
                    tried_new_context = true;
                    self.ctx = establish()?;
                }
                Err(e) => return Err(self.error(e, "connect to the card")),
            }
        }
    }

    fn error(&self, e: pcsc::Error, what: &str) -> TransportError {
        map_err(e, &self.name, || format!("{what} on {:?}", self.name))
    }

    /// Disconnects, leaving the card powered for the next client.
    pub fn close(mut self) {
        if let Some(card) = self.card.take() {
            let _ = card.disconnect(Disposition::LeaveCard);
        }
    }
}

impl Transport for PcscTransport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        if self.card.is_none() {
            self.connect()?;
        }
        let card = self.card.as_ref().ok_or(TransportError::CardRemoved)?;
        let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE];
        tracing::trace!(reader = %self.name, apdu = %tapkit_core::ndef::Hex(apdu), "→");
        match card.transmit(apdu, &mut buf) {
            Ok(resp) if resp.len() >= 2 => {
                tracing::trace!(resp = %tapkit_core::ndef::Hex(resp), "←");
                Ok(resp.to_vec())
            }
            // vpcd turns a torn card into a zero-length success; treat it as no answer.
            Ok(_) => Err(TransportError::NoResponse),
            Err(pcsc::Error::ResetCard) => {
                // Re-attach; the caller decides whether to redo its steps.
                if let Some(card) = self.card.as_mut() {
                    let r = card.reconnect(
                        ShareMode::Exclusive,
                        Protocols::ANY,
                        Disposition::LeaveCard,
                    );
                    if let Err(e) = r {
                        return Err(self.error(e, "reconnect to the card"));
                    }
                }
                Err(TransportError::CardReset)
            }
            Err(pcsc::Error::NotTransacted) => {
                self.card = None;
                Err(TransportError::NoResponse)
            }
            Err(
                e @ (pcsc::Error::NoService
                | pcsc::Error::InvalidHandle
                | pcsc::Error::ServiceStopped),
            ) => {
                self.card = None;
                self.ctx = establish()?;
                Err(self.error(e, "send a command to the card"))
            }
            Err(e) => {
                if matches!(e, pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard) {
                    self.card = None;
                }
                Err(self.error(e, "send a command to the card"))
            }
        }
    }

    fn atr(&self) -> &[u8] {
        &self.atr
    }

    fn reader_name(&self) -> &str {
        &self.name
    }

    fn reconnect(&mut self) -> Result<(), TransportError> {
        // Never waits: when the card is gone the caller must know it was removed (a card
        // pulled mid-write and put back is not the same as a NAK).
        let card = self.card.as_mut().ok_or(TransportError::CardRemoved)?;
        match card.reconnect(ShareMode::Exclusive, Protocols::ANY, Disposition::ResetCard) {
            Ok(()) => Ok(()),
            Err(
                pcsc::Error::RemovedCard
                | pcsc::Error::NoSmartcard
                | pcsc::Error::UnpoweredCard
                | pcsc::Error::UnresponsiveCard
                | pcsc::Error::CommError
                | pcsc::Error::NotTransacted,
            ) => {
                self.card = None;
                Err(TransportError::CardRemoved)
            }
            Err(e) => Err(self.error(e, "reset the card")),
        }
    }

    fn signal(&mut self, success: bool) {
        // The LED/buzzer command goes through the card's connection; with the card gone
        // there is nothing to signal on (and no reason to wait for one).
        if self.card.is_none() {
            return;
        }
        // ACR122U LED/buzzer pseudo-APDU; other readers answer an error, which is fine.
        let apdu = if success {
            tapkit_core::apdu::Apdu::led_buzzer(0x2E, 0x01, 0x01, 0x01, 0x01)
        } else {
            tapkit_core::apdu::Apdu::led_buzzer(0x5D, 0x02, 0x02, 0x03, 0x01)
        };
        let _ = self.transmit(&apdu.to_bytes());
    }
}

//! The production transport: the `pcsc` crate → libpcsclite → pcscd → a USB reader (or
//! the vpcd virtual reader in tests).
//!
//! Manners (see `shared/docs/virtual-reader.md`): the card is opened in exclusive mode so
//! no other client can reset it between the steps of a write; waiting for a card blocks
//! in `SCardGetStatusChange` (no polling loop); a reset by another client is recovered
//! by reconnecting, a restarted pcscd by establishing a new context; the card is left
//! powered (`LeaveCard`) on disconnect.

use std::ffi::CString;
use std::time::{Duration, Instant};

use pcsc::{Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};

use crate::transport::{Transport, TransportError};

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

fn map_err(e: pcsc::Error, reader: &str) -> TransportError {
    match e {
        pcsc::Error::NoService | pcsc::Error::ServiceStopped => TransportError::NoService,
        pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard => TransportError::CardRemoved,
        pcsc::Error::ResetCard => TransportError::CardReset,
        pcsc::Error::SharingViolation => TransportError::SharingViolation(reader.to_owned()),
        pcsc::Error::UnknownReader | pcsc::Error::ReaderUnavailable => {
            TransportError::NoSuchReader(format!("reader {reader:?} is gone; check its cable"))
        }
        other => TransportError::Pcsc(other.to_string()),
    }
}

fn establish() -> Result<Context, TransportError> {
    Context::establish(Scope::User).map_err(|e| map_err(e, ""))
}

/// Lists the readers PC/SC knows, with card presence.
pub fn list_readers() -> Result<Vec<ReaderInfo>, TransportError> {
    let ctx = establish()?;
    let names = match ctx.list_readers_owned() {
        Ok(n) => n,
        Err(pcsc::Error::NoReadersAvailable) => return Ok(Vec::new()),
        Err(e) => return Err(map_err(e, "")),
    };
    let mut states: Vec<ReaderState> = names
        .into_iter()
        .map(|n| ReaderState::new(n, State::UNAWARE))
        .collect();
    if !states.is_empty() {
        ctx.get_status_change(Duration::ZERO, &mut states)
            .map_err(|e| map_err(e, ""))?;
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
/// (`--reader acr122` finds `ACS ACR122U PICC Interface 00 00`).
pub fn resolve_reader(wanted: &str) -> Result<String, TransportError> {
    let readers = list_readers()?;
    if readers.is_empty() {
        return Err(TransportError::NoSuchReader(
            "no PC/SC reader is attached; plug in a reader (ACR122U, ACR1252U …) or use --reader sim to try the simulator".into(),
        ));
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
        [] => Err(TransportError::NoSuchReader(format!(
            "no reader matches {wanted:?}; the readers are: {} (or use --reader sim)",
            readers
                .iter()
                .map(|r| format!("{:?}", r.name))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        many => Err(TransportError::NoSuchReader(format!(
            "{wanted:?} matches several readers: {}; give more of the name",
            many.iter()
                .map(|r| format!("{:?}", r.name))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Blocks in SCardGetStatusChange (no polling) until `reader` has a card (`present`) or
/// not. `Ok(false)` when `wait` runs out or another thread cancels the context
/// (`Context::cancel`, e.g. on Ctrl-C); `None` waits without limit.
pub fn wait_for_card_state(
    ctx: &Context,
    reader: &str,
    present: bool,
    wait: Option<Duration>,
) -> Result<bool, TransportError> {
    let name = CString::new(reader)
        .map_err(|_| TransportError::NoSuchReader("reader names have no NUL bytes".into()))?;
    let mut rs = [ReaderState::new(name, State::UNAWARE)];
    let deadline = wait.map(|w| Instant::now() + w);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match ctx.get_status_change(left, &mut rs) {
            Ok(()) => {}
            Err(pcsc::Error::Timeout | pcsc::Error::Cancelled) => return Ok(false),
            Err(e) => return Err(map_err(e, reader)),
        }
        let st = rs[0].event_state();
        if st.contains(State::UNKNOWN) {
            return Err(TransportError::NoSuchReader(format!(
                "reader {reader:?} is gone"
            )));
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
    let readers = list_readers().map_err(|e| match e {
        TransportError::NoService => TransportError::NoSuchReader(
            "the PC/SC service (pcscd) is not running, so no reader can be used; start it, or use --reader sim to try the simulator".into(),
        ),
        other => other,
    })?;
    match readers.as_slice() {
        [one] => Ok(one.name.clone()),
        [] => Err(TransportError::NoSuchReader(
            "no PC/SC reader is attached; plug in a reader (ACR122U, ACR1252U …) or use --reader sim to try the simulator".into(),
        )),
        many => Err(TransportError::NoSuchReader(format!(
            "several readers are attached; choose one with --reader: {}",
            many.iter().map(|r| format!("{:?}", r.name)).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// A card opened exclusively on a PC/SC reader.
pub struct PcscTransport {
    ctx: Context,
    card: Option<pcsc::Card>,
    reader: CString,
    name: String,
    atr: Vec<u8>,
    wait: Duration,
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
    /// `wait` for one to be placed.
    pub fn open(reader: &str, wait: Duration) -> Result<Self, TransportError> {
        let name = CString::new(reader)
            .map_err(|_| TransportError::NoSuchReader("reader names have no NUL bytes".into()))?;
        let mut t = Self {
            ctx: establish()?,
            card: None,
            reader: name,
            name: reader.to_owned(),
            atr: Vec::new(),
            wait,
        };
        t.connect()?;
        Ok(t)
    }

    /// Blocks in SCardGetStatusChange until a card is present (or the wait runs out).
    pub fn wait_for_card(&self, wait: Duration) -> Result<(), TransportError> {
        if self.wait_for(true, wait)? {
            Ok(())
        } else {
            Err(TransportError::NoCard {
                reader: self.name.clone(),
                seconds: wait.as_secs(),
            })
        }
    }

    fn wait_for(&self, present: bool, wait: Duration) -> Result<bool, TransportError> {
        wait_for_card_state(&self.ctx, &self.name, present, Some(wait))
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
                    eprintln!("Place a card on {} …", self.name);
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
                Err(e) => return Err(map_err(e, &self.name)),
            }
        }
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
                    card.reconnect(ShareMode::Exclusive, Protocols::ANY, Disposition::LeaveCard)
                        .map_err(|e| map_err(e, &self.name))?;
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
                Err(map_err(e, &self.name))
            }
            Err(e) => {
                if matches!(e, pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard) {
                    self.card = None;
                }
                Err(map_err(e, &self.name))
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
            Err(e) => Err(map_err(e, &self.name)),
        }
    }

    fn signal(&mut self, success: bool) {
        // ACR122U LED/buzzer pseudo-APDU; other readers answer an error, which is fine.
        let apdu = if success {
            tapkit_core::apdu::Apdu::led_buzzer(0x2E, 0x01, 0x01, 0x01, 0x01)
        } else {
            tapkit_core::apdu::Apdu::led_buzzer(0x5D, 0x02, 0x02, 0x03, 0x01)
        };
        let _ = self.transmit(&apdu.to_bytes());
    }
}

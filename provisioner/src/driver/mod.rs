//! The tag driver: identify a card, read its URL, write a URL with the fewest APDUs and
//! verify it, set a password, lock it. Works over any [`Transport`].

mod error;
mod io;
mod lock;
pub mod sun;
#[cfg(test)]
mod tests;
mod write;

pub use error::DriverError;
pub use lock::LockReport;
pub use write::{WriteOptions, WriteReport, mirrored_url};

use serde::Serialize;
use tapkit_core::apdu::Dialect;
use tapkit_core::ntag::{self, NtagLayout, TagType, access};
use tapkit_core::type2::{self, CapabilityContainer};

use crate::reader::{Traffic, Transport};

/// A tag driver bound to one card on one reader.
#[derive(Debug)]
pub struct TagDriver<T: Transport> {
    t: T,
    dialect: Option<Dialect>,
    traffic: Traffic,
}

/// Whether the card can still be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockState {
    /// Nothing locked.
    Unlocked,
    /// Some user pages are locked.
    PartiallyLocked,
    /// The CC says read-only, or all user pages are locked.
    ReadOnly,
}

/// What `read` reports about a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagInfo {
    /// Tag type, e.g. `NTAG215`.
    #[serde(rename = "type")]
    pub tag_type: TagType,
    /// UID, upper-case hex.
    pub uid: String,
    /// NDEF data area in bytes (from the CC), if formatted.
    pub capacity: Option<usize>,
    /// The URL a phone would read (with the UID/counter mirror filled in), if any.
    pub url: Option<String>,
    /// Lock state.
    pub lock: LockState,
    /// Whether writes need a password (AUTH0 inside the tag).
    pub password_protected: bool,
    /// Whether the configuration pages are permanently locked.
    pub config_locked: bool,
    /// Whether the UID/counter mirror is on.
    pub mirror: bool,
    /// The NFC tap counter, when enabled and readable.
    pub counter: Option<u32>,
    /// Why Tapkit will not write this card, if it will not.
    pub unsupported: Option<String>,
    /// A problem with the card's content (e.g. corrupt NDEF), if any.
    pub content_error: Option<String>,
    /// NTAG 424 DNA: whose keys it holds (factory, Tapkit's of a version, or half of
    /// each after an interrupted write).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sun_keys: Option<sun::KeyState>,
}

/// What the driver learned about a Type 2 card in one pass.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub layout: &'static NtagLayout,
    pub uid: [u8; 7],
    /// Pages 0..n as read (mirror overlay included).
    pub memory: Vec<u8>,
    /// Dynamic lock, CFG0, CFG1 pages.
    pub dyn_lock: [u8; 4],
    pub cfg0: [u8; 4],
    pub cfg1: [u8; 4],
}

impl Snapshot {
    pub fn cc(&self) -> Option<CapabilityContainer> {
        let cc: [u8; 4] = self.memory.get(12..16)?.try_into().ok()?;
        CapabilityContainer::parse(cc)
    }

    pub fn auth0(&self) -> u8 {
        self.cfg0[3]
    }

    pub fn mirror_on(&self) -> bool {
        self.cfg0[0] >> 6 != 0
    }

    pub fn page_locked(&self, page: u8) -> bool {
        let lock = &self.memory[8..12];
        self.layout.is_locked(
            page,
            lock[2],
            lock[3],
            [self.dyn_lock[0], self.dyn_lock[1], self.dyn_lock[2]],
        )
    }

    pub fn lock_state(&self) -> LockState {
        let read_only_cc = self.cc().is_some_and(|cc| !cc.is_writable());
        let locked = (4..=self.layout.user_end)
            .filter(|&p| self.page_locked(p))
            .count();
        let user_pages = usize::from(self.layout.user_end) - 3;
        if read_only_cc || locked == user_pages {
            LockState::ReadOnly
        } else if locked > 0 {
            LockState::PartiallyLocked
        } else {
            LockState::Unlocked
        }
    }

    /// The absolute byte range the mirror overlays, if on.
    pub fn mirror_window(&self) -> Option<std::ops::Range<usize>> {
        mirror_window(self.cfg0)
    }
}

/// The bytes a UID+counter mirror overlays for a CFG0 value.
pub(crate) fn mirror_window(cfg0: [u8; 4]) -> Option<std::ops::Range<usize>> {
    let conf = cfg0[0] >> 6;
    let len = match conf {
        0 => return None,
        1 => 14,
        2 => 6,
        _ => ntag::MIRROR_PLACEHOLDER.len(),
    };
    let at = usize::from(cfg0[2]) * 4 + usize::from((cfg0[0] >> 4) & 0x03);
    Some(at..at + len)
}

impl<T: Transport> TagDriver<T> {
    /// A driver over `transport`.
    pub fn new(transport: T) -> Self {
        Self {
            t: transport,
            dialect: None,
            traffic: Traffic::default(),
        }
    }

    /// APDUs and bytes exchanged so far.
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// The transport (to close it, or inspect a simulator).
    pub fn into_transport(self) -> T {
        self.t
    }

    /// The transport, borrowed.
    pub fn transport(&self) -> &T {
        &self.t
    }

    /// The transport, mutably (to signal on the reader, or re-insert a simulated card).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.t
    }

    /// Identifies the card and reads what a phone would: type, UID, URL, lock state,
    /// counter.
    pub fn read(&mut self) -> Result<TagInfo, DriverError> {
        let tag_type = self.identify_type()?;
        if tag_type == TagType::Ntag424Dna {
            let card = self.dna_card()?;
            let state = card.key_state()?;
            // A phone's read (it counts a tap when SDM is on).
            self.transport_mut().reconnect()?;
            let (url, content_error) = match self.read_ndef_uri() {
                Ok(u) => (u, None),
                Err(DriverError::Content(e)) => (None, Some(e)),
                Err(e) => return Err(e),
            };
            return Ok(TagInfo {
                tag_type,
                uid: crate::hex::encode(&card.uid),
                capacity: Some(254),
                url,
                lock: LockState::Unlocked,
                password_protected: false,
                config_locked: false,
                mirror: card.sdm,
                counter: None,
                unsupported: None,
                content_error,
                sun_keys: Some(state),
            });
        }
        let Some(layout) = tag_type.layout() else {
            let uid = self.uid_from_reader().unwrap_or_default();
            return Ok(TagInfo {
                tag_type,
                uid: crate::hex::encode(&uid),
                capacity: None,
                url: None,
                lock: LockState::Unlocked,
                password_protected: false,
                config_locked: false,
                mirror: false,
                counter: None,
                unsupported: tag_type.unsupported_reason().map(str::to_owned),
                content_error: None,
                sun_keys: None,
            });
        };
        let snap = self.snapshot(layout, 16)?;
        let (url, content_error) = match self.read_message(&snap) {
            Ok(Some(m)) => match tapkit_core::ndef::decode_first_uri(&m) {
                Ok(u) => (Some(u), None),
                Err(e) => (None, Some(e.to_string())),
            },
            Ok(None) => (None, None),
            Err(DriverError::Content(e)) => (None, Some(e)),
            Err(e) => return Err(e),
        };
        let counter = if snap.cfg1[0] & access::NFC_CNT_EN != 0 {
            self.read_counter().ok()
        } else {
            None
        };
        Ok(TagInfo {
            tag_type,
            uid: crate::hex::encode(&snap.uid),
            capacity: snap.cc().map(|c| c.data_area_len),
            url,
            lock: snap.lock_state(),
            password_protected: snap.auth0() <= layout.pack,
            config_locked: snap.cfg1[0] & access::CFGLCK != 0,
            mirror: snap.mirror_on(),
            counter,
            unsupported: None,
            content_error,
            sun_keys: None,
        })
    }

    /// Identifies the card (type only).
    pub fn read_type(&mut self) -> Result<TagType, DriverError> {
        self.identify_type()
    }

    /// Reads the NDEF message, fetching more pages when the message is longer than the
    /// snapshot.
    fn read_message(&mut self, snap: &Snapshot) -> Result<Option<Vec<u8>>, DriverError> {
        let mut memory = snap.memory.clone();
        match self.scan_growing(&mut memory, snap.layout)? {
            Ok(s) => Ok(s.ndef.filter(|m| !m.is_empty())),
            Err(e) => Err(DriverError::Content(e.to_string())),
        }
    }

    /// Scans the TLVs of `memory`, reading further pages into it while the NDEF TLV
    /// runs past what was read. The inner error is about the card's content.
    pub(crate) fn scan_growing(
        &mut self,
        memory: &mut Vec<u8>,
        layout: &NtagLayout,
    ) -> Result<Result<type2::DataAreaScan, type2::TlvError>, DriverError> {
        loop {
            match type2::scan(memory) {
                Err(type2::TlvError::NeedMore { needed, .. }) => {
                    let have = u8::try_from(memory.len() / 4).unwrap_or(u8::MAX);
                    let last = u8::try_from(needed.div_ceil(4) - 1)
                        .unwrap_or(u8::MAX)
                        .min(layout.user_end);
                    if last < have {
                        return Ok(Err(type2::TlvError::Overrun { at: needed }));
                    }
                    memory.extend(self.read_pages(have, last)?);
                }
                other => return Ok(other),
            }
        }
    }
}

//! APDU-level steps of the driver: exchanging, reader dialect detection, identification,
//! page reads and writes, password and counter.

use tapkit_core::apdu::{Apdu, Dialect, DirectReply, StatusWord, split_response, unwrap_direct};
use tapkit_core::ntag::{NtagLayout, TagType, cmd};

use super::{DriverError, Snapshot, TagDriver};
use crate::reader::{Transport, TransportError};

/// Pages per FAST_READ: 60 pages = 240 bytes keeps PN532 host frames under 254 bytes.
const FAST_READ_PAGES: u8 = 60;

/// The PC/SC Part 3 storage-card ATR prefix; byte 13–14 name the card (00 03 Ultralight family).
const STORAGE_ATR: [u8; 12] = [
    0x3B, 0x8F, 0x80, 0x01, 0x80, 0x4F, 0x0C, 0xA0, 0x00, 0x00, 0x03, 0x06,
];

impl<T: Transport> TagDriver<T> {
    pub(super) fn exchange(&mut self, apdu: &Apdu) -> Result<Vec<u8>, DriverError> {
        let bytes = apdu.to_bytes();
        self.traffic.apdus += 1;
        if apdu.ins == 0xD6 {
            self.traffic.writes += 1;
        }
        let resp = self.t.transmit(&bytes)?;
        self.traffic.bytes += (bytes.len() + resp.len()) as u64;
        Ok(resp)
    }

    /// Sends a native tag command through the reader's direct transmit. `Ok(None)` when
    /// the tag did not answer (NAK or silence; the tag is re-activated).
    fn native(&mut self, dialect: Dialect, frame: &[u8]) -> Result<Option<Vec<u8>>, DriverError> {
        let resp = self.exchange(&Apdu::direct(dialect, frame))?;
        match unwrap_direct(dialect, &resp) {
            Some(DirectReply::Data(d)) if dialect == Dialect::Raw && d.len() <= 1 => {
                self.t.reconnect()?;
                Ok(None)
            }
            Some(DirectReply::Data(d)) => Ok(Some(d)),
            Some(DirectReply::TagError(_)) | Some(DirectReply::Refused(StatusWord::Failed)) => {
                // A NAK leaves the tag in IDLE: wake it for the next command.
                self.t.reconnect()?;
                Ok(None)
            }
            Some(DirectReply::Refused(sw)) => Err(DriverError::Protocol {
                op: "a direct command",
                detail: format!("status {sw}"),
            }),
            None => Err(TransportError::NoResponse.into()),
        }
    }

    /// Finds the reader's dialect by sending GET_VERSION, and returns the version bytes.
    fn probe_version(&mut self) -> Result<Option<Vec<u8>>, DriverError> {
        for dialect in [Dialect::Pn532, Dialect::Raw] {
            let resp = self.exchange(&Apdu::direct(dialect, &[cmd::GET_VERSION]))?;
            match unwrap_direct(dialect, &resp) {
                Some(DirectReply::Data(v)) if v.len() == 8 => {
                    self.dialect = Some(dialect);
                    return Ok(Some(v));
                }
                Some(DirectReply::TagError(_)) => {
                    // The reader speaks PN532 but the tag stayed silent (plain Ultralight,
                    // NTAG203): it is now halted; wake it up.
                    self.dialect = Some(dialect);
                    self.t.reconnect()?;
                    return Ok(None);
                }
                // A reader that does not speak PN532 passed the wrapper to the tag,
                // which NAKed it (a one-byte answer, or 63 00) and fell back to IDLE:
                // wake it for the raw probe. A reader that refused the APDU itself
                // (6A 81) sent the tag nothing.
                Some(DirectReply::Refused(StatusWord::Failed | StatusWord::Other(0)))
                    if dialect == Dialect::Pn532 =>
                {
                    self.t.reconnect()?;
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// Identifies the card from its ATR and GET_VERSION.
    pub(super) fn identify_type(&mut self) -> Result<TagType, DriverError> {
        let atr = self.t.atr().to_vec();
        if atr.len() >= 4
            && atr[..4] == [0x3B, atr[1], 0x80, 0x01]
            && atr[1] & 0xF0 == 0x80
            && !atr.starts_with(&STORAGE_ATR)
        {
            // ISO 14443-4: NTAG 424 DNA answers its own GetVersion.
            let r = self.exchange(&Apdu {
                cla: 0x90,
                ins: 0x60,
                p1: 0,
                p2: 0,
                data: vec![],
                le: Some(0),
            })?;
            return Ok(match split_response(&r) {
                Some((d, StatusWord::Other(0x91AF)))
                    if d.starts_with(&[0x04, 0x04]) && d.get(3) == Some(&0x30) =>
                {
                    TagType::Ntag424Dna
                }
                _ => TagType::Unknown,
            });
        }
        if atr.starts_with(&STORAGE_ATR) && atr.get(13..15) != Some(&[0x00, 0x03]) {
            return Err(DriverError::Unsupported {
                tag: TagType::Unknown,
                reason: format!(
                    "{} is not an NTAG; use an NTAG213, 215 or 216 card",
                    match atr.get(13..15) {
                        Some([0x00, 0x01]) => "MIFARE Classic 1K",
                        Some([0x00, 0x02]) => "MIFARE Classic 4K",
                        Some([0x00, 0x26]) => "MIFARE Mini",
                        _ => "this card",
                    }
                ),
            });
        }
        if let Some(v) = self.probe_version()? {
            return Ok(TagType::from_version(&v));
        }
        // No direct transmit: fall back to the CC size, which only NTAG21x set this way.
        let p0 = self.read_binary(0)?;
        Ok(match p0.get(12..15) {
            Some([0xE1, _, 0x12]) => TagType::Ntag213,
            Some([0xE1, _, 0x3E]) => TagType::Ntag215,
            Some([0xE1, _, 0x6D]) => TagType::Ntag216,
            _ => TagType::Unknown,
        })
    }

    /// The UID through `FF CA` (for cards we do not read pages from).
    pub(super) fn uid_from_reader(&mut self) -> Result<Vec<u8>, DriverError> {
        let r = self.exchange(&Apdu::get_uid())?;
        match split_response(&r) {
            Some((d, StatusWord::Ok)) => Ok(d.to_vec()),
            _ => Ok(Vec::new()),
        }
    }

    fn read_binary(&mut self, page: u8) -> Result<Vec<u8>, DriverError> {
        let r = self.exchange(&Apdu::read_binary(page))?;
        match split_response(&r) {
            Some((d, StatusWord::Ok)) if d.len() == 16 => Ok(d.to_vec()),
            Some((_, StatusWord::Failed)) => {
                self.t.reconnect()?;
                Err(DriverError::Nak { op: "read", page })
            }
            other => Err(DriverError::Protocol {
                op: "READ BINARY",
                detail: format!("{other:?}"),
            }),
        }
    }

    /// Reads pages `start..=end` with as few APDUs as the reader allows.
    pub(crate) fn read_pages(&mut self, start: u8, end: u8) -> Result<Vec<u8>, DriverError> {
        let mut out = Vec::with_capacity((usize::from(end - start) + 1) * 4);
        let mut p = start;
        while p <= end {
            let chunk_end = end.min(p.saturating_add(FAST_READ_PAGES - 1));
            let want = (usize::from(chunk_end - p) + 1) * 4;
            match self.dialect {
                Some(d) => {
                    let mut got = None;
                    for _ in 0..2 {
                        // Some readers occasionally duplicate bytes: check the length, retry once.
                        match self.native(d, &[cmd::FAST_READ, p, chunk_end])? {
                            Some(data) if data.len() == want => {
                                got = Some(data);
                                break;
                            }
                            Some(_) => continue,
                            None => {
                                return Err(DriverError::Nak {
                                    op: "read",
                                    page: p,
                                });
                            }
                        }
                    }
                    out.extend(got.ok_or(DriverError::Protocol {
                        op: "FAST_READ",
                        detail: "wrong length twice".into(),
                    })?);
                }
                None => {
                    let mut q = p;
                    while q <= chunk_end {
                        let d = self.read_binary(q)?;
                        let take = (usize::from(chunk_end - q) + 1).min(4) * 4;
                        out.extend_from_slice(&d[..take]);
                        q = q.saturating_add(4);
                        if q == 0 {
                            break;
                        }
                    }
                }
            }
            if chunk_end == u8::MAX {
                break;
            }
            p = chunk_end + 1;
        }
        Ok(out)
    }

    /// Writes one page with UPDATE BINARY (a NAK is `63 00`).
    pub(crate) fn write_page(&mut self, page: u8, data: [u8; 4]) -> Result<(), DriverError> {
        let r = self.exchange(&Apdu::update_binary(page, data))?;
        match split_response(&r) {
            Some((_, StatusWord::Ok)) => Ok(()),
            Some((_, StatusWord::Failed)) => {
                // Either a NAK (tag now IDLE) or the card left: find out which.
                match self.t.reconnect() {
                    Ok(()) => Err(DriverError::Nak { op: "write", page }),
                    Err(e) => Err(e.into()),
                }
            }
            other => Err(DriverError::Protocol {
                op: "UPDATE BINARY",
                detail: format!("{other:?}"),
            }),
        }
    }

    /// PWD_AUTH; returns the PACK.
    pub(crate) fn pwd_auth(&mut self, pwd: [u8; 4]) -> Result<[u8; 2], DriverError> {
        let d = self.dialect.ok_or(DriverError::Unsupported {
            tag: TagType::Unknown,
            reason: "this reader cannot pass the password command to the card; use an ACR122U or ACR1252U".into(),
        })?;
        match self.native(d, &[cmd::PWD_AUTH, pwd[0], pwd[1], pwd[2], pwd[3]])? {
            Some(p) if p.len() == 2 => Ok([p[0], p[1]]),
            _ => Err(DriverError::WrongPassword),
        }
    }

    /// READ_CNT (24-bit counter, LSB first as the NTAG21x data sheet gives it).
    pub(crate) fn read_counter(&mut self) -> Result<u32, DriverError> {
        let d = self.dialect.ok_or(DriverError::Protocol {
            op: "READ_CNT",
            detail: "no direct transmit".into(),
        })?;
        match self.native(d, &[cmd::READ_CNT, 0x02])? {
            Some(c) if c.len() == 3 => Ok(u32::from_le_bytes([c[0], c[1], c[2], 0])),
            other => Err(DriverError::Protocol {
                op: "READ_CNT",
                detail: format!("{other:?}"),
            }),
        }
    }

    /// Reads pages 0..=`through` (at least the CC) and the dynamic lock/CFG pages.
    pub(crate) fn snapshot(
        &mut self,
        layout: &'static NtagLayout,
        through: u8,
    ) -> Result<Snapshot, DriverError> {
        let memory = self.read_pages(0, through.clamp(3, layout.user_end))?;
        let cfg = self.read_pages(layout.dyn_lock, layout.cfg1)?;
        let m = &memory;
        let uid = [m[0], m[1], m[2], m[4], m[5], m[6], m[7]];
        let page =
            |i: usize| -> [u8; 4] { [cfg[i * 4], cfg[i * 4 + 1], cfg[i * 4 + 2], cfg[i * 4 + 3]] };
        Ok(Snapshot {
            layout,
            uid,
            memory,
            dyn_lock: page(0),
            cfg0: page(1),
            cfg1: page(2),
        })
    }
}

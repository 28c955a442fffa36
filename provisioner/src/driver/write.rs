//! Writing a URL: plan the bytes, write only the pages that differ (header page last, so
//! a torn write leaves an empty or the old message, never a half one), configure the
//! mirror and password, read back and compare.

use serde::Serialize;
use tapkit_core::ndef;
use tapkit_core::ntag::{self, MIRROR_PLACEHOLDER, NtagLayout, access};
use tapkit_core::type2::{self, CapabilityContainer, DATA_START};

use super::{DriverError, TagDriver, mirror_window};
use crate::reader::{Transport, TransportError};

/// Options for [`TagDriver::write_url`].
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Append `?m=<placeholder>` and turn on the UID + tap counter mirror.
    pub mirror: bool,
    /// Replace a different URL already on the card.
    pub overwrite: bool,
    /// Password to authenticate with (protected card) and/or to set.
    pub password: Option<[u8; 4]>,
    /// Set `password` on the card (PWD/PACK/AUTH0, writes only: phones still read).
    pub set_password: bool,
    /// PACK to store with a new password.
    pub pack: [u8; 2],
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteReport {
    /// Tag type.
    #[serde(rename = "type")]
    pub tag_type: tapkit_core::ntag::TagType,
    /// UID, hex.
    pub uid: String,
    /// The URL as stored (with the mirror placeholder, if any).
    pub url: String,
    /// The URL as a phone reads it now (mirror filled in).
    pub url_as_read: String,
    /// The card already held this URL: nothing was written.
    pub already_written: bool,
    /// Pages written.
    pub pages_written: usize,
    /// Pages that already held the right bytes.
    pub pages_unchanged: usize,
    /// Whether the mirror is on.
    pub mirror: bool,
    /// Whether a password was set by this write.
    pub password_set: bool,
    /// APDUs this operation took.
    pub apdus: u32,
}

/// The URL with the mirror parameter appended.
pub fn mirrored_url(url: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}m={MIRROR_PLACEHOLDER}")
}

/// `url` with a filled-in mirror value put back to the placeholder, for comparisons.
fn unmirror(url: &str) -> String {
    for key in ["?m=", "&m="] {
        if let Some(i) = url.rfind(key) {
            let v = &url[i + 3..];
            if v.len() == MIRROR_PLACEHOLDER.len() && ntag::parse_mirror_text(v).is_some() {
                return format!("{}{MIRROR_PLACEHOLDER}", &url[..i + 3]);
            }
        }
    }
    url.to_owned()
}

/// Whether `actual` reads as `expected`, where bytes under the mirror window may show
/// this card's UID and any counter instead of the placeholder.
fn same_as_read(
    actual: &[u8],
    expected: &[u8],
    base: usize,
    window: Option<&std::ops::Range<usize>>,
    uid: &[u8; 7],
) -> bool {
    let Some(w) = window else {
        return actual == expected;
    };
    let mirrored = ntag::mirror_text(uid, 0);
    actual.iter().zip(expected).enumerate().all(|(i, (a, e))| {
        let at = base + i;
        if !w.contains(&at) {
            return a == e;
        }
        let k = at - w.start;
        let want = mirrored.as_bytes()[k];
        // UID characters and the 'x' must match; counter characters are any hex digit.
        if k > 14 {
            a.is_ascii_hexdigit()
        } else {
            *a == want
        }
    })
}

impl<T: Transport> TagDriver<T> {
    /// Writes `url` as the card's one NDEF URI record and verifies it.
    pub fn write_url(
        &mut self,
        url: &str,
        opts: &WriteOptions,
    ) -> Result<WriteReport, DriverError> {
        let start_apdus = self.traffic.apdus;
        let tag_type = self.identify_type()?;
        let layout = tag_type.layout().ok_or_else(|| DriverError::Unsupported {
            tag: tag_type,
            reason: tag_type
                .unsupported_reason()
                .unwrap_or("unsupported")
                .to_owned(),
        })?;
        let target_url = if opts.mirror {
            mirrored_url(url)
        } else {
            url.to_owned()
        };
        let message = ndef::uri_message(&target_url);
        // Read as far as the new message will reach, so one FAST_READ serves both the
        // identification and the comparison.
        let reach = DATA_START + 8 + message.len();
        let through = u8::try_from(reach.div_ceil(4))
            .unwrap_or(u8::MAX)
            .min(layout.user_end);
        let snap = self.snapshot(layout, through)?;
        let mut memory = snap.memory.clone();

        // What is on the card now?
        let formatted = snap.cc().is_some();
        let scan = self.scan_growing(&mut memory, layout)?;
        let existing = match &scan {
            Ok(s) => match s.ndef.as_deref() {
                None | Some([]) => Ok(None),
                Some(m) => ndef::decode_first_uri(m)
                    .map(Some)
                    .map_err(|e| e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        let old_message_present =
            matches!(&scan, Ok(s) if s.ndef.as_ref().is_some_and(|m| !m.is_empty()));
        match &existing {
            Ok(Some(u)) if unmirror(u) != target_url && !opts.overwrite => {
                return Err(DriverError::HoldsOtherUrl {
                    existing: u.clone(),
                });
            }
            Err(e) if !opts.overwrite => return Err(DriverError::Content(e.clone())),
            _ => {}
        }
        if snap.cc().is_some_and(|cc| !cc.is_writable()) {
            return Err(DriverError::Locked);
        }

        // Plan the data area.
        // An unformatted or unreadable card is laid out afresh, as the factory does.
        let fresh = !formatted || scan.is_err();
        let scan = match scan {
            Ok(s) if formatted => s,
            _ => type2::DataAreaScan {
                ndef_tlv_at: default_ndef_at(layout),
                ..Default::default()
            },
        };
        let data_area_len = snap.cc().map_or(layout.data_area_len, |c| c.data_area_len);
        let plan = type2::plan_write(&scan, data_area_len, &message).map_err(|e| match e {
            type2::TlvError::DoesNotFit { needed, available } => DriverError::DoesNotFit {
                tag: tag_type,
                needed,
                available,
            },
            other => DriverError::Content(other.to_string()),
        })?;
        let end = plan.start + plan.bytes.len();
        let last_page = u8::try_from((end - 1) / 4).unwrap_or(u8::MAX);
        if memory.len() < end.next_multiple_of(4) {
            let have = u8::try_from(memory.len() / 4).unwrap_or(u8::MAX);
            memory.extend(self.read_pages(have, last_page)?);
        }
        let mut target = memory.clone();
        if !formatted {
            target[12..16]
                .copy_from_slice(&CapabilityContainer::for_data_area(layout.data_area_len));
        }
        if fresh && layout.tag_type == ntag::TagType::Ntag213 {
            // NTAG213's factory Lock Control TLV (dynamic lock bytes at page 28h).
            target[DATA_START..DATA_START + 5].copy_from_slice(&NTAG213_LOCK_TLV);
        }
        target[plan.start..end].copy_from_slice(&plan.bytes);

        // Configuration: the mirror (or turning a stale one off) and the password.
        let mut cfg0 = snap.cfg0;
        let mut cfg1 = snap.cfg1;
        if opts.mirror {
            let in_url = target_url.find(MIRROR_PLACEHOLDER).unwrap_or(0);
            let (_, rest) = ndef::split_uri_prefix(&target_url);
            let skipped = target_url.len() - rest.len();
            let addr = plan.message_at + 5 + (in_url - skipped);
            let (page, byte) = layout.mirror_position(addr)?;
            cfg0 = NtagLayout::cfg0_mirror(page, byte, cfg0[3]);
            cfg1[0] |= access::NFC_CNT_EN;
        } else {
            cfg0[0] &= 0x0F;
            cfg0[2] = 0;
        }
        if opts.set_password {
            cfg1[0] &= !access::PROT; // writes only: phones must still read the URL
            cfg0[3] = 0x04;
        }
        let window = mirror_window(cfg0);

        // Which pages differ from what a reader would see after the write?
        let first_page = if !formatted {
            3
        } else if fresh {
            4
        } else {
            u8::try_from(plan.start / 4).unwrap_or(4)
        };
        let page_slice = |m: &[u8], p: u8| -> [u8; 4] {
            let i = usize::from(p) * 4;
            [m[i], m[i + 1], m[i + 2], m[i + 3]]
        };
        let cur_window = snap.mirror_window();
        let differs = |p: u8| {
            let i = usize::from(p) * 4;
            let same_cfg_window = if cur_window == window {
                window.as_ref()
            } else {
                None
            };
            !same_as_read(
                &memory[i..i + 4],
                &target[i..i + 4],
                i,
                same_cfg_window,
                &snap.uid,
            )
        };
        let header_pages: Vec<u8> = (u8::try_from(plan.start / 4).unwrap_or(4)
            ..=u8::try_from((plan.message_at - 1) / 4).unwrap_or(4))
            .collect();
        let to_write: Vec<u8> = (first_page..=last_page).filter(|&p| differs(p)).collect();
        let cfg_changes = cfg0 != snap.cfg0 || cfg1 != snap.cfg1 || opts.set_password;
        let pages_unchanged = usize::from(last_page - first_page + 1) - to_write.len();

        if to_write.is_empty() && !cfg_changes {
            return Ok(WriteReport {
                tag_type,
                uid: crate::hex::encode(&snap.uid),
                url: target_url,
                url_as_read: existing.ok().flatten().unwrap_or_default(),
                already_written: true,
                pages_written: 0,
                pages_unchanged,
                mirror: opts.mirror,
                password_set: false,
                apdus: self.traffic.apdus - start_apdus,
            });
        }
        if to_write.iter().any(|&p| snap.page_locked(p)) {
            return Err(DriverError::Locked);
        }
        if (cfg0 != snap.cfg0 || cfg1 != snap.cfg1) && snap.cfg1[0] & access::CFGLCK != 0 {
            return Err(DriverError::Locked);
        }
        let needs_auth = to_write.iter().any(|&p| p >= snap.auth0())
            || (cfg_changes && snap.auth0() <= layout.cfg1);
        if needs_auth {
            let pwd = opts.password.ok_or(DriverError::PasswordRequired)?;
            self.pwd_auth(pwd)?;
        }

        // Order: (1) an old message is first marked empty (length 0), (2) body pages,
        // (3) the header page(s) holding the real length, so a card pulled at any point
        // reads as empty or complete, never as a wrong URL.
        let mut order: Vec<u8> = Vec::with_capacity(to_write.len() + 1);
        let header_changes = to_write.iter().any(|p| header_pages.contains(p));
        let body: Vec<u8> = to_write
            .iter()
            .copied()
            .filter(|p| !header_pages.contains(p))
            .collect();
        let mut writes: Vec<(u8, [u8; 4])> = Vec::new();
        if old_message_present && header_changes && !body.is_empty() {
            let len_at = plan.start + 1;
            let p = u8::try_from(len_at / 4).unwrap_or(4);
            let mut marker = page_slice(&memory, p);
            marker[len_at % 4] = 0x00;
            writes.push((p, marker));
        }
        order.extend(body);
        order.extend(
            to_write
                .iter()
                .copied()
                .filter(|p| header_pages.contains(p)),
        );
        writes.extend(order.iter().map(|&p| (p, page_slice(&target, p))));
        if opts.set_password
            && let Some(pwd) = opts.password
        {
            writes.push((layout.pwd, pwd));
            writes.push((layout.pack, [opts.pack[0], opts.pack[1], 0, 0]));
        }
        if cfg1 != snap.cfg1 {
            writes.push((layout.cfg1, cfg1));
        }
        if cfg0 != snap.cfg0 {
            writes.push((layout.cfg0, cfg0)); // AUTH0 last
        }
        let total = writes.len();
        for (n, &(p, d)) in writes.iter().enumerate() {
            match self.write_page(p, d) {
                Ok(()) => {}
                Err(DriverError::Transport(
                    TransportError::CardRemoved | TransportError::NoResponse,
                )) => {
                    return Err(DriverError::PulledMidWrite { written: n, total });
                }
                Err(e) => return Err(e),
            }
        }

        // Verify: read back the data pages (and the CFG pages if changed).
        let verify_from = *to_write.first().unwrap_or(&first_page);
        let back = self
            .read_pages(verify_from, last_page)
            .map_err(pulled(total))?;
        for (k, chunk) in back.chunks(4).enumerate() {
            let p = verify_from + u8::try_from(k).unwrap_or(0);
            let i = usize::from(p) * 4;
            if !same_as_read(chunk, &target[i..i + 4], i, window.as_ref(), &snap.uid) {
                return Err(DriverError::VerifyFailed {
                    page: p,
                    expected: crate::hex::encode(&target[i..i + 4]),
                    found: crate::hex::encode(chunk),
                });
            }
        }
        if cfg0 != snap.cfg0 || cfg1 != snap.cfg1 {
            let c = self
                .read_pages(layout.cfg0, layout.cfg1)
                .map_err(pulled(total))?;
            let want = [cfg0, cfg1].concat();
            if c != want {
                return Err(DriverError::VerifyFailed {
                    page: layout.cfg0,
                    expected: crate::hex::encode(&want),
                    found: crate::hex::encode(&c),
                });
            }
        }
        if opts.set_password
            && let Some(pwd) = opts.password
        {
            self.t.reconnect()?; // drop the session so PWD_AUTH is really checked
            if self.pwd_auth(pwd)? != opts.pack {
                return Err(DriverError::VerifyFailed {
                    page: layout.pack,
                    expected: crate::hex::encode(&opts.pack),
                    found: "another PACK".into(),
                });
            }
        }
        let mut as_read = memory.clone();
        as_read[verify_from as usize * 4..verify_from as usize * 4 + back.len()]
            .copy_from_slice(&back);
        let url_as_read = type2::scan(&as_read)
            .ok()
            .and_then(|s| s.ndef)
            .and_then(|m| ndef::decode_first_uri(&m).ok())
            .unwrap_or_else(|| target_url.clone());
        Ok(WriteReport {
            tag_type,
            uid: crate::hex::encode(&snap.uid),
            url: target_url,
            url_as_read,
            already_written: false,
            pages_written: total,
            pages_unchanged,
            mirror: opts.mirror,
            password_set: opts.set_password,
            apdus: self.traffic.apdus - start_apdus,
        })
    }
}

fn pulled(total: usize) -> impl Fn(DriverError) -> DriverError {
    move |e| match e {
        DriverError::Transport(TransportError::CardRemoved | TransportError::NoResponse) => {
            DriverError::PulledMidWrite {
                written: total,
                total,
            }
        }
        other => other,
    }
}

const NTAG213_LOCK_TLV: [u8; 5] = [0x01, 0x03, 0xA0, 0x0C, 0x34];

/// Where the NDEF TLV goes on a card whose data area is unreadable.
fn default_ndef_at(layout: &NtagLayout) -> usize {
    if layout.tag_type == ntag::TagType::Ntag213 {
        DATA_START + 5
    } else {
        DATA_START
    }
}

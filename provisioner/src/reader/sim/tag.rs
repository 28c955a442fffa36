//! An emulated NTAG213/215/216 (and the tags we must recognise and refuse): EEPROM pages,
//! lock bits, CFG pages, password, NFC counter and the ASCII UID/counter mirror, with the
//! IDLE → ACTIVE → AUTHENTICATED state machine of the data sheet.

use serde::{Deserialize, Serialize};
use tapkit_core::ntag::{self, NtagLayout, TagType, access, cmd};
use tapkit_core::type2::CapabilityContainer;

/// What kind of card sits on the emulated reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimTagKind {
    /// NTAG213.
    Ntag213,
    /// NTAG215.
    Ntag215,
    /// NTAG216.
    Ntag216,
    /// MIFARE Ultralight EV1 MF0UL11 (too small, no NDEF CC): must be refused.
    UltralightEv1,
    /// NTAG 424 DNA (ISO 14443-4): must be recognised and refused.
    Ntag424,
    /// MIFARE Classic 1K (a different ATR): must be refused.
    Classic1k,
}

impl std::str::FromStr for SimTagKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(
            match s.to_ascii_lowercase().replace(['-', '_', ' '], "").as_str() {
                "ntag213" => Self::Ntag213,
                "ntag215" => Self::Ntag215,
                "ntag216" => Self::Ntag216,
                "ultralightev1" | "mf0ul11" => Self::UltralightEv1,
                "ntag424" | "ntag424dna" => Self::Ntag424,
                "classic1k" | "mifareclassic" => Self::Classic1k,
                _ => {
                    return Err(format!(
                        "unknown tag type {s:?}; choose ntag213, ntag215, ntag216, ultralight-ev1, ntag424 or classic1k"
                    ));
                }
            },
        )
    }
}

impl SimTagKind {
    /// The tag type this kind answers GET_VERSION as.
    pub fn tag_type(self) -> TagType {
        match self {
            Self::Ntag213 => TagType::Ntag213,
            Self::Ntag215 => TagType::Ntag215,
            Self::Ntag216 => TagType::Ntag216,
            Self::UltralightEv1 => TagType::UltralightEv1Mf0ul11,
            Self::Ntag424 => TagType::Ntag424Dna,
            Self::Classic1k => TagType::Unknown,
        }
    }

    /// The ATR a PC/SC Part 3 reader reports for this card.
    pub fn atr(self) -> Vec<u8> {
        let storage = |nn: [u8; 2]| {
            let mut a = vec![
                0x3B, 0x8F, 0x80, 0x01, 0x80, 0x4F, 0x0C, 0xA0, 0x00, 0x00, 0x03, 0x06, 0x03,
            ];
            a.extend_from_slice(&nn);
            a.extend_from_slice(&[0, 0, 0, 0]);
            let tck = a[1..].iter().fold(0u8, |x, b| x ^ b);
            a.push(tck);
            a
        };
        match self {
            Self::Classic1k => storage([0x00, 0x01]),
            Self::Ntag424 => vec![0x3B, 0x81, 0x80, 0x01, 0x80, 0x80],
            _ => storage([0x00, 0x03]),
        }
    }

    fn pages(self) -> usize {
        match self {
            Self::Ntag213 => 45,
            Self::Ntag215 => 135,
            Self::Ntag216 => 231,
            Self::UltralightEv1 => 20,
            Self::Ntag424 | Self::Classic1k => 0,
        }
    }
}

/// How the tag answered a native command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagReply {
    /// Data bytes (READ, GET_VERSION …).
    Data(Vec<u8>),
    /// 4-bit ACK (WRITE).
    Ack,
    /// 4-bit NAK with its code; the tag falls back to IDLE.
    Nak(u8),
    /// No answer (the tag is IDLE/HALT after a NAK, or does not know the command).
    Silent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Active,
    Authenticated,
}

/// The persistent state of an emulated tag (what `--image` saves).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagImage {
    /// Card kind.
    pub kind: SimTagKind,
    /// EEPROM pages as hex, four bytes a page (PWD/PACK included).
    pub pages: String,
    /// The 24-bit NFC counter.
    pub counter: u32,
}

/// An emulated tag.
#[derive(Debug, Clone)]
pub struct SimTag {
    kind: SimTagKind,
    mem: Vec<u8>,
    counter: u32,
    counted_this_power: bool,
    state: State,
    auth_failures: u32,
    /// The UID of a card without Type 2 memory to hold it (NTAG 424 DNA, Classic).
    uid: [u8; 7],
}

impl SimTag {
    /// A factory-fresh tag of `kind` with the given 7-byte UID (first byte 04 = NXP).
    pub fn new(kind: SimTagKind, uid: [u8; 7]) -> Self {
        let mut mem = vec![0u8; kind.pages() * 4];
        if !mem.is_empty() {
            let (bcc0, bcc1) = ntag::uid_bcc(&uid);
            mem[..3].copy_from_slice(&uid[..3]);
            mem[3] = bcc0;
            mem[4..8].copy_from_slice(&uid[3..]);
            mem[8] = bcc1;
            mem[9] = 0x48; // INT
        }
        if let Some(l) = kind.tag_type().layout() {
            mem[12..16].copy_from_slice(&CapabilityContainer::for_data_area(l.data_area_len));
            let factory: &[u8] = if kind == SimTagKind::Ntag213 {
                &[0x01, 0x03, 0xA0, 0x0C, 0x34, 0x03, 0x00, 0xFE]
            } else {
                &[0x03, 0x00, 0xFE, 0x00]
            };
            mem[16..16 + factory.len()].copy_from_slice(factory);
            let cfg0 = usize::from(l.cfg0) * 4;
            mem[cfg0..cfg0 + 4].copy_from_slice(&[0x04, 0x00, 0x00, 0xFF]);
            let cfg1 = usize::from(l.cfg1) * 4;
            mem[cfg1..cfg1 + 4].copy_from_slice(&[0x00, 0x05, 0x00, 0x00]);
            let pwd = usize::from(l.pwd) * 4;
            mem[pwd..pwd + 4].copy_from_slice(&[0xFF; 4]);
        }
        Self {
            kind,
            mem,
            counter: 0,
            counted_this_power: false,
            state: State::Idle,
            auth_failures: 0,
            uid,
        }
    }

    /// A tag with a UID derived from `seed` (deterministic, for tests and batches).
    pub fn with_seed(kind: SimTagKind, seed: u64) -> Self {
        let b = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes();
        Self::new(kind, [0x04, b[0], b[1], b[2], b[3], b[4], b[5] | 0x80])
    }

    /// Restores a tag from a saved image.
    pub fn from_image(img: &TagImage) -> Result<Self, String> {
        let bytes = crate::hex::decode(&img.pages).map_err(|e| format!("tag image pages: {e}"))?;
        if bytes.len() != img.kind.pages() * 4 {
            return Err(format!(
                "tag image has {} bytes but a {:?} has {}",
                bytes.len(),
                img.kind,
                img.kind.pages() * 4
            ));
        }
        let mut t = Self::new(img.kind, [0x04, 0, 0, 0, 0, 0, 0]);
        t.mem = bytes;
        t.counter = img.counter & 0xFF_FFFF;
        Ok(t)
    }

    /// The image to save.
    pub fn image(&self) -> TagImage {
        TagImage {
            kind: self.kind,
            pages: crate::hex::encode(&self.mem),
            counter: self.counter,
        }
    }

    /// Card kind.
    pub fn kind(&self) -> SimTagKind {
        self.kind
    }

    /// The 7-byte UID.
    pub fn uid(&self) -> [u8; 7] {
        let m = &self.mem;
        if m.len() < 8 {
            return self.uid;
        }
        [m[0], m[1], m[2], m[4], m[5], m[6], m[7]]
    }

    /// The NFC counter.
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// Raw EEPROM (what the chip stores, without the mirror overlay).
    pub fn eeprom(&self) -> &[u8] {
        &self.mem
    }

    /// Field on / RF reset: the tag becomes ACTIVE, authentication is dropped and the
    /// counter may count again.
    pub fn power_on(&mut self) {
        self.state = State::Active;
        self.counted_this_power = false;
    }

    /// Field off.
    pub fn power_off(&mut self) {
        self.state = State::Idle;
    }

    fn layout(&self) -> Option<&'static NtagLayout> {
        self.kind.tag_type().layout()
    }

    fn page(&self, p: u8) -> [u8; 4] {
        let i = usize::from(p) * 4;
        self.mem
            .get(i..i + 4)
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; 4])
    }

    fn cfg(&self) -> Option<([u8; 4], [u8; 4])> {
        let l = self.layout()?;
        Some((self.page(l.cfg0), self.page(l.cfg1)))
    }

    fn nak(&mut self, code: u8) -> TagReply {
        self.state = State::Idle;
        TagReply::Nak(code)
    }

    /// Handles one native command (CRC already stripped by the reader).
    pub fn command(&mut self, frame: &[u8]) -> TagReply {
        if self.state == State::Idle
            || self.kind == SimTagKind::Classic1k
            || self.kind == SimTagKind::Ntag424
        {
            return TagReply::Silent;
        }
        match frame {
            [cmd::GET_VERSION] => self
                .kind
                .tag_type()
                .version_bytes()
                .map_or(TagReply::Silent, |v| TagReply::Data(v.to_vec())),
            [cmd::READ, p] => self.read(*p, p.wrapping_add(3), true),
            [cmd::FAST_READ, s, e] => self.read(*s, *e, false),
            [cmd::WRITE, p, d @ ..] if d.len() == 4 => self.write(*p, [d[0], d[1], d[2], d[3]]),
            [cmd::READ_CNT, 0x02] => {
                let Some((_, c1)) = self.cfg() else {
                    return self.nak(0);
                };
                if c1[0] & access::NFC_CNT_PWD_PROT != 0 && self.state != State::Authenticated {
                    return self.nak(0);
                }
                let c = self.counter.to_le_bytes();
                TagReply::Data(vec![c[0], c[1], c[2]])
            }
            [cmd::READ_SIG, 0x00] => {
                // Not NXP's key: a stable 32-byte value derived from the UID.
                let uid = self.uid();
                TagReply::Data(
                    (0..32u8)
                        .map(|i| uid[usize::from(i % 7)] ^ i.wrapping_mul(37))
                        .collect(),
                )
            }
            [cmd::PWD_AUTH, p0, p1, p2, p3] => self.pwd_auth([*p0, *p1, *p2, *p3]),
            _ => self.nak(0),
        }
    }

    fn pwd_auth(&mut self, pwd: [u8; 4]) -> TagReply {
        let Some(l) = self.layout() else {
            return self.nak(0);
        };
        let authlim = u32::from(self.page(l.cfg1)[0] & access::AUTHLIM);
        if authlim > 0 && self.auth_failures >= 1 << authlim {
            return self.nak(4);
        }
        if self.page(l.pwd) == pwd {
            self.auth_failures = 0;
            self.state = State::Authenticated;
            let pack = self.page(l.pack);
            TagReply::Data(vec![pack[0], pack[1]])
        } else {
            self.auth_failures += 1;
            self.nak(4)
        }
    }

    fn read(&mut self, start: u8, end: u8, wrap: bool) -> TagReply {
        let pages = u8::try_from(self.mem.len() / 4).unwrap_or(u8::MAX);
        let (c0, c1) = self.cfg().unwrap_or(([0, 0, 0, 0xFF], [0; 4]));
        // With PROT set, pages ≥ AUTH0 are unreadable without authentication.
        let readable_end = if c1[0] & access::PROT != 0 && self.state != State::Authenticated {
            c0[3].min(pages)
        } else {
            pages
        };
        if start >= readable_end || (!wrap && (end < start || end >= readable_end)) {
            return self.nak(0);
        }
        // The data sheet: the counter counts on the first valid READ/FAST_READ after
        // power-up, if NFC_CNT_EN is set at that moment (later reads never count).
        if !self.counted_this_power {
            self.counted_this_power = true;
            if c1[0] & access::NFC_CNT_EN != 0 && self.layout().is_some() {
                self.counter = (self.counter + 1).min(0xFF_FFFF);
            }
        }
        let mut out = Vec::with_capacity(usize::from(end - start + 1) * 4);
        let mut p = start;
        for _ in 0..=usize::from(end.wrapping_sub(start)) {
            out.extend_from_slice(&self.page_as_read(p));
            p = if p + 1 >= readable_end { 0 } else { p + 1 };
        }
        self.overlay_mirror(start, &mut out, wrap);
        TagReply::Data(out)
    }

    fn page_as_read(&self, p: u8) -> [u8; 4] {
        match self.layout() {
            Some(l) if p == l.pwd || p == l.pack => [0; 4],
            _ => self.page(p),
        }
    }

    fn overlay_mirror(&self, start: u8, out: &mut [u8], wrap: bool) {
        let Some((c0, c1)) = self.cfg() else { return };
        let conf = c0[0] >> 6;
        if conf == 0 || wrap && usize::from(start) * 4 + out.len() > self.mem.len() {
            return;
        }
        let uid = self.uid();
        let mut text = ntag::mirror_text(&uid, self.counter);
        match conf {
            1 => text.truncate(14),
            2 => {
                if c1[0] & access::NFC_CNT_EN == 0 {
                    return;
                }
                text = text[15..].to_owned();
            }
            _ => {}
        }
        let at = usize::from(c0[2]) * 4 + usize::from((c0[0] >> 4) & 0x03);
        let base = usize::from(start) * 4;
        for (i, b) in text.bytes().enumerate() {
            if let Some(slot) = (at + i).checked_sub(base).and_then(|o| out.get_mut(o)) {
                *slot = b;
            }
        }
    }

    fn write(&mut self, p: u8, d: [u8; 4]) -> TagReply {
        let pages = u8::try_from(self.mem.len() / 4).unwrap_or(u8::MAX);
        if p < 2 || p >= pages {
            return self.nak(0);
        }
        let Some(l) = self.layout() else {
            // Ultralight EV1: plain page writes, no lock model needed for refusal tests.
            let i = usize::from(p) * 4;
            self.mem[i..i + 4].copy_from_slice(&d);
            return TagReply::Ack;
        };
        let (c0, c1) = (self.page(l.cfg0), self.page(l.cfg1));
        if p >= c0[3] && self.state != State::Authenticated {
            return self.nak(0);
        }
        let lock = self.page(2);
        let dyn_lock = self.page(l.dyn_lock);
        if l.is_locked(p, lock[2], lock[3], [dyn_lock[0], dyn_lock[1], dyn_lock[2]]) {
            return self.nak(0);
        }
        if (p == l.cfg0 || p == l.cfg1) && c1[0] & access::CFGLCK != 0 {
            return self.nak(0);
        }
        let i = usize::from(p) * 4;
        match p {
            2 => {
                // Only the lock bytes are writable, and they OR.
                self.mem[i + 2] |= d[2];
                self.mem[i + 3] |= d[3];
            }
            3 => self.mem[i..i + 4]
                .iter_mut()
                .zip(d)
                .for_each(|(m, v)| *m |= v),
            p if p == l.dyn_lock => {
                self.mem[i..i + 3]
                    .iter_mut()
                    .zip(d)
                    .for_each(|(m, v)| *m |= v);
            }
            _ => self.mem[i..i + 4].copy_from_slice(&d),
        }
        TagReply::Ack
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(kind: SimTagKind) -> SimTag {
        let mut t = SimTag::new(kind, [0x04, 0xE1, 0x41, 0x12, 0x4C, 0x28, 0x80]);
        t.power_on();
        t
    }

    fn data(r: TagReply) -> Vec<u8> {
        match r {
            TagReply::Data(d) => d,
            other => panic!("expected data, got {other:?}"),
        }
    }

    #[test]
    fn factory_image_matches_the_data_sheet() {
        let mut t = active(SimTagKind::Ntag215);
        let p0 = data(t.command(&[0x30, 0]));
        assert_eq!(&p0[..4], &[0x04, 0xE1, 0x41, 0x88 ^ 0x04 ^ 0xE1 ^ 0x41]);
        assert_eq!(&p0[12..16], &[0xE1, 0x10, 0x3E, 0x00]);
        assert_eq!(&data(t.command(&[0x30, 4]))[..4], &[0x03, 0x00, 0xFE, 0x00]);
        assert_eq!(
            data(t.command(&[0x60])),
            vec![0x00, 0x04, 0x04, 0x02, 0x01, 0x00, 0x11, 0x03]
        );
        // CFG0 04 00 00 FF, CFG1 00 05 00 00, PWD/PACK read as zero
        let cfg = data(t.command(&[0x3A, 0x83, 0x86]));
        assert_eq!(cfg, vec![4, 0, 0, 0xFF, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut t213 = active(SimTagKind::Ntag213);
        assert_eq!(
            &data(t213.command(&[0x30, 4]))[..8],
            &[0x01, 0x03, 0xA0, 0x0C, 0x34, 0x03, 0x00, 0xFE]
        );
    }

    #[test]
    fn read_wraps_and_fast_read_checks_range() {
        let mut t = active(SimTagKind::Ntag213);
        let r = data(t.command(&[0x30, 0x2B]));
        assert_eq!(r.len(), 16);
        assert_eq!(&r[8..12], &data(t.command(&[0x30, 0]))[..4]); // wrapped to page 0
        assert_eq!(t.command(&[0x3A, 5, 4]), TagReply::Nak(0));
        assert_eq!(t.command(&[0x30, 0]), TagReply::Silent); // IDLE after a NAK
        t.power_on();
        assert_eq!(t.command(&[0x3A, 0, 0x2D]), TagReply::Nak(0));
        t.power_on();
        assert_eq!(data(t.command(&[0x3A, 0, 0x2C])).len(), 45 * 4);
    }

    #[test]
    fn writes_respect_locks_and_or_semantics() {
        let mut t = active(SimTagKind::Ntag215);
        assert_eq!(t.command(&[0xA2, 0, 1, 2, 3, 4]), TagReply::Nak(0));
        t.power_on();
        assert_eq!(t.command(&[0xA2, 0x87, 1, 2, 3, 4]), TagReply::Nak(0));
        t.power_on();
        assert_eq!(t.command(&[0xA2, 4, 1, 2, 3, 4]), TagReply::Ack);
        // lock page 4 via static lock bit L4, then the write is refused
        assert_eq!(t.command(&[0xA2, 2, 0xAA, 0xAA, 0x10, 0x00]), TagReply::Ack);
        let p2 = data(t.command(&[0x30, 2]));
        assert_eq!(&p2[..4], &[0x12 ^ 0x4C ^ 0x28 ^ 0x80, 0x48, 0x10, 0x00]);
        assert_eq!(t.command(&[0xA2, 4, 9, 9, 9, 9]), TagReply::Nak(0));
        t.power_on();
        // CC bits only OR
        assert_eq!(t.command(&[0xA2, 3, 0, 0, 0, 0x0F]), TagReply::Ack);
        assert_eq!(&data(t.command(&[0x30, 3]))[..4], &[0xE1, 0x10, 0x3E, 0x0F]);
        // dynamic lock of the block holding page 0x20 (bit 1 on NTAG215)
        assert_eq!(t.command(&[0xA2, 0x82, 0x02, 0, 0, 0]), TagReply::Ack);
        assert_eq!(t.command(&[0xA2, 0x20, 1, 1, 1, 1]), TagReply::Nak(0));
        t.power_on();
        assert_eq!(t.command(&[0xA2, 0x10, 1, 1, 1, 1]), TagReply::Ack);
    }

    #[test]
    fn password_protects_writes_not_reads() {
        let mut t = active(SimTagKind::Ntag213);
        for (p, d) in [
            (0x2B, [1, 2, 3, 4]),
            (0x2C, [0xAB, 0xCD, 0, 0]),
            (0x29, [0x04, 0, 0, 0x04]),
        ] {
            assert_eq!(t.command(&[0xA2, p, d[0], d[1], d[2], d[3]]), TagReply::Ack);
        }
        assert_eq!(t.command(&[0xA2, 4, 0, 0, 0, 0]), TagReply::Nak(0));
        t.power_on();
        assert!(matches!(t.command(&[0x30, 4]), TagReply::Data(_)));
        assert_eq!(t.command(&[0x1B, 9, 9, 9, 9]), TagReply::Nak(4));
        t.power_on();
        assert_eq!(
            t.command(&[0x1B, 1, 2, 3, 4]),
            TagReply::Data(vec![0xAB, 0xCD])
        );
        assert_eq!(t.command(&[0xA2, 4, 0, 0, 0, 0]), TagReply::Ack);
        t.power_on(); // RF reset drops authentication
        assert_eq!(t.command(&[0xA2, 4, 0, 0, 0, 0]), TagReply::Nak(0));
    }

    #[test]
    fn prot_guards_reads_and_authlim_blocks_guessing() {
        let mut t = active(SimTagKind::Ntag213);
        t.command(&[0xA2, 0x2A, access::PROT | 1, 5, 0, 0]); // AUTHLIM 1 → 2 tries
        t.command(&[0xA2, 0x29, 0x04, 0, 0, 0x10]);
        assert!(matches!(t.command(&[0x30, 4]), TagReply::Data(_)));
        assert_eq!(t.command(&[0x30, 0x10]), TagReply::Nak(0));
        for _ in 0..2 {
            t.power_on();
            assert_eq!(t.command(&[0x1B, 0, 0, 0, 0]), TagReply::Nak(4));
        }
        t.power_on();
        assert_eq!(t.command(&[0x1B, 0xFF, 0xFF, 0xFF, 0xFF]), TagReply::Nak(4));
    }

    #[test]
    fn counter_and_mirror() {
        let mut t = active(SimTagKind::Ntag215);
        let placeholder = b"00000000000000x000000";
        for (i, chunk) in placeholder.chunks(4).enumerate() {
            let mut d = [b'0'; 4];
            d[..chunk.len()].copy_from_slice(chunk);
            t.command(&[0xA2, 0x10 + i as u8, d[0], d[1], d[2], d[3]]);
        }
        t.command(&[0xA2, 0x84, access::NFC_CNT_EN, 5, 0, 0]);
        t.command(&[0xA2, 0x83, 0xC0, 0, 0x10, 0xFF]);
        assert_eq!(t.counter(), 0);
        let r = data(t.command(&[0x3A, 0x10, 0x15]));
        assert_eq!(&r[..21], b"04E141124C2880x000001");
        assert_eq!(data(t.command(&[0x39, 0x02])), vec![1, 0, 0]);
        let again = data(t.command(&[0x30, 0x10]));
        assert_eq!(&again[..16], &r[..16]); // counts once per power-up
        t.power_off();
        t.power_on();
        let r = data(t.command(&[0x3A, 0x10, 0x15]));
        assert_eq!(&r[..21], b"04E141124C2880x000002");
        assert_eq!(&t.eeprom()[0x40..0x40 + 21], placeholder); // EEPROM keeps the placeholder
    }

    #[test]
    fn cfglck_freezes_configuration() {
        let mut t = active(SimTagKind::Ntag216);
        assert_eq!(
            t.command(&[0xA2, 0xE4, access::CFGLCK, 5, 0, 0]),
            TagReply::Ack
        );
        assert_eq!(t.command(&[0xA2, 0xE3, 0, 0, 0, 0]), TagReply::Nak(0));
    }

    #[test]
    fn other_tags_identify_or_stay_silent() {
        let mut ul = active(SimTagKind::UltralightEv1);
        assert_eq!(data(ul.command(&[0x60])), vec![0, 4, 3, 1, 1, 0, 0x0B, 3]);
        let mut classic = active(SimTagKind::Classic1k);
        assert_eq!(classic.command(&[0x60]), TagReply::Silent);
        assert_eq!(SimTagKind::Classic1k.atr().last(), Some(&0x6A));
        assert_eq!(SimTagKind::Ntag215.atr().last(), Some(&0x68));
    }

    #[test]
    fn images_round_trip() {
        let mut t = active(SimTagKind::Ntag213);
        t.command(&[0xA2, 4, 1, 2, 3, 4]);
        let img = t.image();
        let back = SimTag::from_image(&img).unwrap();
        assert_eq!(back.eeprom(), t.eeprom());
        let bad = TagImage {
            pages: "00".into(),
            ..img
        };
        assert!(
            SimTag::from_image(&bad)
                .unwrap_err()
                .contains("has 1 bytes")
        );
    }
}

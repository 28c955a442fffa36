//! The NXP NTAG21x memory model: tag identification from GET_VERSION, page maps,
//! configuration pages (CFG0/CFG1), lock bits and the ASCII UID/counter mirror.
//!
//! Facts follow `shared/docs/nfc-reference.md` §2 (NXP NTAG213/215/216 data sheet).

use std::fmt;

/// Native tag command codes (NTAG21x data sheet names).
pub mod cmd {
    /// GET_VERSION.
    pub const GET_VERSION: u8 = 0x60;
    /// READ (4 pages).
    pub const READ: u8 = 0x30;
    /// FAST_READ (page range).
    pub const FAST_READ: u8 = 0x3A;
    /// WRITE (one page).
    pub const WRITE: u8 = 0xA2;
    /// COMPATIBILITY_WRITE.
    pub const COMP_WRITE: u8 = 0xA0;
    /// READ_CNT.
    pub const READ_CNT: u8 = 0x39;
    /// PWD_AUTH.
    pub const PWD_AUTH: u8 = 0x1B;
    /// READ_SIG.
    pub const READ_SIG: u8 = 0x3C;
}

/// The ASCII placeholder the chip overlays with `UIDxCOUNTER` (21 characters).
pub const MIRROR_PLACEHOLDER: &str = "00000000000000x000000";

/// What kind of tag answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum TagType {
    /// NXP NTAG213 (144-byte data area).
    #[serde(rename = "NTAG213")]
    Ntag213,
    /// NXP NTAG215 (496-byte data area).
    #[serde(rename = "NTAG215")]
    Ntag215,
    /// NXP NTAG216 (872-byte data area).
    #[serde(rename = "NTAG216")]
    Ntag216,
    /// MIFARE Ultralight EV1, 48-byte user memory.
    #[serde(rename = "MF0UL11")]
    UltralightEv1Mf0ul11,
    /// MIFARE Ultralight EV1, 128-byte user memory.
    #[serde(rename = "MF0UL21")]
    UltralightEv1Mf0ul21,
    /// NXP NTAG 424 DNA (ISO 14443-4, Type 4).
    #[serde(rename = "NTAG424DNA")]
    Ntag424Dna,
    /// Another Ultralight-family tag (answered the storage-card ATR, unknown version).
    #[serde(rename = "unknown")]
    Unknown,
}

impl fmt::Display for TagType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ntag213 => "NTAG213",
            Self::Ntag215 => "NTAG215",
            Self::Ntag216 => "NTAG216",
            Self::UltralightEv1Mf0ul11 => "MIFARE Ultralight EV1 (MF0UL11)",
            Self::UltralightEv1Mf0ul21 => "MIFARE Ultralight EV1 (MF0UL21)",
            Self::Ntag424Dna => "NTAG 424 DNA",
            Self::Unknown => "unknown tag",
        })
    }
}

impl TagType {
    /// Identifies a Type 2 tag from its 8-byte GET_VERSION answer.
    pub fn from_version(v: &[u8]) -> Self {
        match v {
            [0x00, 0x04, 0x04, 0x02, 0x01, 0x00, 0x0F, 0x03] => Self::Ntag213,
            [0x00, 0x04, 0x04, 0x02, 0x01, 0x00, 0x11, 0x03] => Self::Ntag215,
            [0x00, 0x04, 0x04, 0x02, 0x01, 0x00, 0x13, 0x03] => Self::Ntag216,
            [0x00, 0x04, 0x03, 0x01 | 0x02, 0x01, 0x00, 0x0B, 0x03] => Self::UltralightEv1Mf0ul11,
            [0x00, 0x04, 0x03, 0x01 | 0x02, 0x01, 0x00, 0x0E, 0x03] => Self::UltralightEv1Mf0ul21,
            _ => Self::Unknown,
        }
    }

    /// The GET_VERSION answer this type gives (for the simulator).
    pub fn version_bytes(self) -> Option<[u8; 8]> {
        Some(match self {
            Self::Ntag213 => [0x00, 0x04, 0x04, 0x02, 0x01, 0x00, 0x0F, 0x03],
            Self::Ntag215 => [0x00, 0x04, 0x04, 0x02, 0x01, 0x00, 0x11, 0x03],
            Self::Ntag216 => [0x00, 0x04, 0x04, 0x02, 0x01, 0x00, 0x13, 0x03],
            Self::UltralightEv1Mf0ul11 => [0x00, 0x04, 0x03, 0x01, 0x01, 0x00, 0x0B, 0x03],
            Self::UltralightEv1Mf0ul21 => [0x00, 0x04, 0x03, 0x01, 0x01, 0x00, 0x0E, 0x03],
            Self::Ntag424Dna | Self::Unknown => return None,
        })
    }

    /// The NTAG21x layout, for the types Tapkit writes; `None` for the others.
    pub fn layout(self) -> Option<&'static NtagLayout> {
        match self {
            Self::Ntag213 => Some(&NTAG213),
            Self::Ntag215 => Some(&NTAG215),
            Self::Ntag216 => Some(&NTAG216),
            _ => None,
        }
    }

    /// Why Tapkit does not write this type, in one sentence with what to do.
    pub fn unsupported_reason(self) -> Option<&'static str> {
        match self {
            Self::Ntag213 | Self::Ntag215 | Self::Ntag216 => None,
            Self::UltralightEv1Mf0ul11 | Self::UltralightEv1Mf0ul21 => Some(
                "MIFARE Ultralight EV1 has no NDEF capability container, UID mirror or tap counter mirror; use an NTAG213, 215 or 216 card",
            ),
            Self::Ntag424Dna => Some(
                "NTAG 424 DNA signs every tap (SUN) and is written with the brand's keys, not as a plain URL; for a plain URL use an NTAG213, 215 or 216 card",
            ),
            Self::Unknown => Some(
                "this tag did not identify itself as an NTAG213, 215 or 216; use one of those cards",
            ),
        }
    }
}

/// Page map of one NTAG21x type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NtagLayout {
    /// Which type this is.
    pub tag_type: TagType,
    /// Total pages (readable end + 1).
    pub pages: u8,
    /// Last user-memory page.
    pub user_end: u8,
    /// Dynamic lock bytes page.
    pub dyn_lock: u8,
    /// CFG0 page (MIRROR, RFUI, MIRROR_PAGE, AUTH0).
    pub cfg0: u8,
    /// CFG1 page (ACCESS, RFUI ×3).
    pub cfg1: u8,
    /// PWD page.
    pub pwd: u8,
    /// PACK page.
    pub pack: u8,
    /// Data area size from the factory CC.
    pub data_area_len: usize,
    /// Pages locked by each dynamic lock bit (2 on NTAG213, 16 on 215/216).
    pub pages_per_dyn_lock_bit: u8,
    /// How many dynamic lock bits cover user memory.
    pub dyn_lock_bits: u8,
}

/// NTAG213: 45 pages, user 04–27h.
pub const NTAG213: NtagLayout = NtagLayout {
    tag_type: TagType::Ntag213,
    pages: 0x2D,
    user_end: 0x27,
    dyn_lock: 0x28,
    cfg0: 0x29,
    cfg1: 0x2A,
    pwd: 0x2B,
    pack: 0x2C,
    data_area_len: 144,
    pages_per_dyn_lock_bit: 2,
    dyn_lock_bits: 12,
};

/// NTAG215: 135 pages, user 04–81h.
pub const NTAG215: NtagLayout = NtagLayout {
    tag_type: TagType::Ntag215,
    pages: 0x87,
    user_end: 0x81,
    dyn_lock: 0x82,
    cfg0: 0x83,
    cfg1: 0x84,
    pwd: 0x85,
    pack: 0x86,
    data_area_len: 496,
    pages_per_dyn_lock_bit: 16,
    dyn_lock_bits: 8,
};

/// NTAG216: 231 pages, user 04–E1h.
pub const NTAG216: NtagLayout = NtagLayout {
    tag_type: TagType::Ntag216,
    pages: 0xE7,
    user_end: 0xE1,
    dyn_lock: 0xE2,
    cfg0: 0xE3,
    cfg1: 0xE4,
    pwd: 0xE5,
    pack: 0xE6,
    data_area_len: 872,
    pages_per_dyn_lock_bit: 16,
    dyn_lock_bits: 14,
};

/// CFG1 ACCESS bits.
pub mod access {
    /// PROT: 1 = password guards reads and writes, 0 = writes only.
    pub const PROT: u8 = 0x80;
    /// CFGLCK: configuration permanently locked.
    pub const CFGLCK: u8 = 0x40;
    /// NFC_CNT_EN: the tap counter counts.
    pub const NFC_CNT_EN: u8 = 0x10;
    /// NFC_CNT_PWD_PROT: READ_CNT needs the password.
    pub const NFC_CNT_PWD_PROT: u8 = 0x08;
    /// AUTHLIM mask (failed-attempt limit, 0 = off).
    pub const AUTHLIM: u8 = 0x07;
}

/// CFG0 MIRROR_CONF value for a UID + counter mirror.
pub const MIRROR_UID_AND_COUNTER: u8 = 0b11;

impl NtagLayout {
    /// Whether `page` is in user memory.
    pub fn is_user_page(&self, page: u8) -> bool {
        (4..=self.user_end).contains(&page)
    }

    /// Pages locked by the static (page 2) and dynamic lock bytes.
    pub fn is_locked(&self, page: u8, lock0: u8, lock1: u8, dyn_lock: [u8; 3]) -> bool {
        match page {
            3 => lock0 & 0x08 != 0,
            4..=7 => lock0 & (0x10 << (page - 4)) != 0,
            8..=15 => lock1 & (1 << (page - 8)) != 0,
            p if p >= 16 && p <= self.user_end => {
                let bit = (p - 16) / self.pages_per_dyn_lock_bit;
                let byte = usize::from(bit / 8);
                byte < 2 && dyn_lock[byte] & (1 << (bit % 8)) != 0
            }
            // The dynamic lock page and CFG pages: CFGLCK governs CFG; the rest stay.
            _ => false,
        }
    }

    /// Lock bytes that make the whole user memory and the CC read-only: page 2 bytes
    /// 2–3 and the dynamic lock page bytes 0–2.
    pub fn full_lock_bytes(&self) -> ([u8; 2], [u8; 3]) {
        let bits = u32::from(self.dyn_lock_bits);
        let mask = (1u32 << bits) - 1;
        let [b0, b1, ..] = mask.to_le_bytes();
        // Static: all L bits (pages 3..15) and the block-lock bits.
        ([0xFF, 0xFF], [b0, b1, 0xFF])
    }

    /// MIRROR_PAGE / MIRROR_BYTE for a placeholder starting at absolute byte `addr`,
    /// or why it cannot be mirrored there.
    pub fn mirror_position(&self, addr: usize) -> Result<(u8, u8), MirrorError> {
        let page = u8::try_from(addr / 4).map_err(|_| MirrorError::TooFar)?;
        let byte = u8::try_from(addr % 4).unwrap_or(0);
        if page < 4 {
            return Err(MirrorError::TooEarly);
        }
        // The 21 mirrored characters must end inside user memory (this gives the data
        // sheet's highest MIRROR_PAGE: 22h / 7Ch / DCh).
        if addr + MIRROR_PLACEHOLDER.len() > (usize::from(self.user_end) + 1) * 4 {
            return Err(MirrorError::TooFar);
        }
        Ok((page, byte))
    }

    /// The CFG0 page bytes for a UID+counter mirror at (`page`, `byte`) with `auth0`.
    pub fn cfg0_mirror(page: u8, byte: u8, auth0: u8) -> [u8; 4] {
        [
            (MIRROR_UID_AND_COUNTER << 6) | ((byte & 0x03) << 4),
            0x00,
            page,
            auth0,
        ]
    }
}

/// Why the mirror cannot be placed where the URL puts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MirrorError {
    /// Placeholder before user memory.
    #[error("the mirror placeholder would sit before user memory")]
    TooEarly,
    /// Placeholder past the last page the chip can mirror to.
    #[error(
        "the URL is too long for the UID and counter mirror on this tag; use a shorter URL or write without --mirror"
    )]
    TooFar,
}

/// The ASCII text the chip shows in place of the placeholder: 14 upper-case hex UID
/// characters, `x`, 6 hex counter characters (most significant first).
pub fn mirror_text(uid: &[u8], counter: u32) -> String {
    let mut s = String::with_capacity(MIRROR_PLACEHOLDER.len());
    for b in uid.iter().take(7) {
        s.push_str(&format!("{b:02X}"));
    }
    s.push('x');
    s.push_str(&format!("{:06X}", counter & 0x00FF_FFFF));
    s
}

/// Parses a mirror value `UIDxCNT` as found in a tapped URL: (7-byte UID, counter).
pub fn parse_mirror_text(s: &str) -> Option<([u8; 7], u32)> {
    let (uid_hex, cnt_hex) = s.split_once(['x', 'X'])?;
    if uid_hex.len() != 14 || cnt_hex.len() != 6 {
        return None;
    }
    let mut uid = [0u8; 7];
    for (i, slot) in uid.iter_mut().enumerate() {
        *slot = u8::from_str_radix(uid_hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    let counter = u32::from_str_radix(cnt_hex, 16).ok()?;
    Some((uid, counter))
}

/// The 7-byte UID's check bytes: BCC0 = 88 ⊕ UID0 ⊕ UID1 ⊕ UID2, BCC1 = UID3 ⊕ … ⊕ UID6.
pub fn uid_bcc(uid: &[u8; 7]) -> (u8, u8) {
    (
        0x88 ^ uid[0] ^ uid[1] ^ uid[2],
        uid[3] ^ uid[4] ^ uid[5] ^ uid[6],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_identify_types() {
        for t in [
            TagType::Ntag213,
            TagType::Ntag215,
            TagType::Ntag216,
            TagType::UltralightEv1Mf0ul11,
            TagType::UltralightEv1Mf0ul21,
        ] {
            assert_eq!(TagType::from_version(&t.version_bytes().unwrap()), t);
        }
        assert_eq!(
            TagType::from_version(&[0x00, 0x04, 0x03, 0x02, 0x01, 0x00, 0x0B, 0x03]),
            TagType::UltralightEv1Mf0ul11
        );
        assert_eq!(
            TagType::from_version(&[0x00, 0x04, 0x04, 0x01, 0x01, 0x00, 0x0B, 0x03]),
            TagType::Unknown
        );
        assert_eq!(TagType::from_version(&[]), TagType::Unknown);
        assert!(
            TagType::Ntag424Dna
                .unsupported_reason()
                .unwrap()
                .contains("SUN")
        );
        assert!(TagType::Ntag215.unsupported_reason().is_none());
    }

    #[test]
    fn mirror_position_matches_reference_example() {
        // nfc-reference §2.8: https://example.com/r/ABC123?m=... on NTAG215 → page 0Bh byte 2,
        // CFG0 E0 00 0B FF
        let uri = format!("https://example.com/r/ABC123?m={MIRROR_PLACEHOLDER}");
        let msg = crate::ndef::uri_message(&uri);
        assert_eq!(&msg[..5], &[0xD1, 0x01, 0x2D, 0x55, 0x04]);
        let tlv_at = 16;
        let message_at = tlv_at + 2;
        let placeholder_in_msg = 5 + uri.find(MIRROR_PLACEHOLDER).unwrap() - "https://".len();
        let (page, byte) = NTAG215
            .mirror_position(message_at + placeholder_in_msg)
            .unwrap();
        assert_eq!((page, byte), (0x0B, 2));
        assert_eq!(
            NtagLayout::cfg0_mirror(page, byte, 0xFF),
            [0xE0, 0x00, 0x0B, 0xFF]
        );
        assert_eq!(NTAG215.mirror_position(0x7D * 4), Err(MirrorError::TooFar));
        assert_eq!(NTAG215.mirror_position(0x7C * 4 + 3), Ok((0x7C, 3)));
        assert_eq!(NTAG213.mirror_position(0x22 * 4 + 3), Ok((0x22, 3)));
        assert_eq!(NTAG216.mirror_position(0xDC * 4 + 3), Ok((0xDC, 3)));
        assert_eq!(NTAG216.mirror_position(0xDD * 4), Err(MirrorError::TooFar));
        assert_eq!(NTAG215.mirror_position(8), Err(MirrorError::TooEarly));
    }

    #[test]
    fn mirror_text_round_trips() {
        let uid = [0x04, 0xE1, 0x41, 0x12, 0x4C, 0x28, 0x80];
        let t = mirror_text(&uid, 0x3F31);
        assert_eq!(t, "04E141124C2880x003F31");
        assert_eq!(parse_mirror_text(&t), Some((uid, 0x3F31)));
        assert_eq!(parse_mirror_text("04E141124C2880x03F31"), None);
        assert_eq!(parse_mirror_text("nothing"), None);
        assert_eq!(parse_mirror_text("04E141124C28ZZx003F31"), None);
    }

    #[test]
    fn lock_bits_map_to_pages() {
        let none = [0u8; 3];
        assert!(!NTAG213.is_locked(4, 0, 0, none));
        assert!(NTAG213.is_locked(4, 0x10, 0, none));
        assert!(NTAG213.is_locked(15, 0, 0x80, none));
        assert!(NTAG213.is_locked(3, 0x08, 0, none));
        assert!(NTAG213.is_locked(17, 0, 0, [0x01, 0, 0]));
        assert!(!NTAG213.is_locked(18, 0, 0, [0x01, 0, 0]));
        assert!(NTAG213.is_locked(0x27, 0, 0, [0, 0x08, 0]));
        assert!(NTAG215.is_locked(0x81, 0, 0, [0x80, 0, 0]));
        let (s, d) = NTAG215.full_lock_bytes();
        for p in 3..=NTAG215.user_end {
            assert!(NTAG215.is_locked(p, s[0], s[1], d), "page {p:#x}");
        }
        let (s, d) = NTAG216.full_lock_bytes();
        assert!((3..=NTAG216.user_end).all(|p| NTAG216.is_locked(p, s[0], s[1], d)));
        let (s, d) = NTAG213.full_lock_bytes();
        assert_eq!(d, [0xFF, 0x0F, 0xFF]);
        assert!((3..=NTAG213.user_end).all(|p| NTAG213.is_locked(p, s[0], s[1], d)));
    }

    #[test]
    fn bcc() {
        assert_eq!(
            uid_bcc(&[0x04, 0xE1, 0x41, 0x12, 0x4C, 0x28, 0x80]),
            (0x88 ^ 0x04 ^ 0xE1 ^ 0x41, 0x12 ^ 0x4C ^ 0x28 ^ 0x80)
        );
    }
}

//! NFC Forum Type 2 Tag memory: the capability container and the TLV blocks of the data
//! area (NDEF, NULL, Lock Control, Memory Control, Proprietary, Terminator).
//!
//! All functions take a memory image that starts at page 0 (16 bytes of UID, lock and CC
//! pages, then the data area at byte 16). Reading never panics on any bytes.

use std::ops::Range;

/// Byte address of the data area (page 4).
pub const DATA_START: usize = 16;

const T_NULL: u8 = 0x00;
const T_LOCK_CONTROL: u8 = 0x01;
const T_MEMORY_CONTROL: u8 = 0x02;
const T_NDEF: u8 = 0x03;
const T_TERMINATOR: u8 = 0xFE;

/// The capability container (page 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CapabilityContainer {
    /// Mapping version byte (major in the high nibble).
    pub version: u8,
    /// Data area size in bytes (CC byte 2 × 8).
    pub data_area_len: usize,
    /// Access byte: 0x00 read/write, 0x0F read-only.
    pub access: u8,
}

impl CapabilityContainer {
    /// The CC NXP programs at the factory for a tag with `data_area_len` bytes.
    pub fn for_data_area(data_area_len: usize) -> [u8; 4] {
        [
            0xE1,
            0x10,
            u8::try_from(data_area_len / 8).unwrap_or(u8::MAX),
            0x00,
        ]
    }

    /// Parses page 3. `None` when it does not start with the NDEF magic `E1` (an
    /// unformatted tag).
    pub fn parse(cc: [u8; 4]) -> Option<Self> {
        (cc[0] == 0xE1).then_some(Self {
            version: cc[1],
            data_area_len: usize::from(cc[2]) * 8,
            access: cc[3],
        })
    }

    /// Whether the CC grants write access.
    pub fn is_writable(&self) -> bool {
        self.access & 0x0F == 0
    }
}

/// Why the data area cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlvError {
    /// The memory image is shorter than the CC pages.
    #[error("the tag memory read is too short ({0} bytes) to hold a capability container")]
    NoCapabilityContainer(usize),
    /// CC version major is not 1.
    #[error("the tag's NDEF mapping version {0}.{1} is not supported (only 1.x)")]
    UnsupportedVersion(u8, u8),
    /// A TLV runs past the data area.
    #[error("a TLV block at byte {at} runs past the end of the data area")]
    Overrun {
        /// Absolute byte address of the TLV.
        at: usize,
    },
    /// The memory read stops before the TLV does; read more pages.
    #[error("the TLV block at byte {at} needs memory up to byte {needed}; read more pages")]
    NeedMore {
        /// Absolute byte address of the TLV.
        at: usize,
        /// Absolute end address needed.
        needed: usize,
    },
    /// The NDEF message is larger than the room in the data area.
    #[error(
        "the NDEF message needs {needed} bytes but this tag has room for {available}; use a shorter URL or a larger tag"
    )]
    DoesNotFit {
        /// Bytes the TLV-wrapped message needs.
        needed: usize,
        /// Bytes available after the control TLVs.
        available: usize,
    },
    /// A control TLV reserves bytes in the middle of where the message would go.
    #[error(
        "a control TLV reserves bytes {0:?} inside the NDEF area; this layout is not supported"
    )]
    ReservedInside(Range<usize>),
}

/// What a walk over the data area found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DataAreaScan {
    /// The NDEF message of the first NDEF TLV (possibly empty), if any.
    pub ndef: Option<Vec<u8>>,
    /// Absolute address where the (first) NDEF TLV starts, or where one should be
    /// written: right after the leading control TLVs.
    pub ndef_tlv_at: usize,
    /// Bytes reserved by Lock and Memory Control TLVs (absolute addresses).
    pub reserved: Vec<Range<usize>>,
    /// The raw bytes of the control TLVs before `ndef_tlv_at`.
    pub control_tlvs: Vec<u8>,
}

/// Reads the TLV length field at `pos`: 1 byte, or `FF hh ll`.
fn tlv_len(area: &[u8], pos: usize) -> Option<(usize, usize)> {
    let first = *area.get(pos)?;
    if first == 0xFF {
        let hi = *area.get(pos + 1)?;
        let lo = *area.get(pos + 2)?;
        Some((usize::from(u16::from_be_bytes([hi, lo])), 3))
    } else {
        Some((usize::from(first), 1))
    }
}

/// Decodes a Lock or Memory Control TLV value into the bytes it reserves.
fn reserved_range(t: u8, v: &[u8]) -> Option<Range<usize>> {
    let [pos, size, bpp_byte] = *v else {
        return None;
    };
    let pa = usize::from(pos >> 4);
    let bo = usize::from(pos & 0x0F);
    let bpp = u32::from(bpp_byte & 0x0F);
    let start = pa.checked_mul(1usize.checked_shl(bpp)?)?.checked_add(bo)?;
    let bytes = if t == T_LOCK_CONTROL {
        let bits = if size == 0 { 256 } else { usize::from(size) };
        bits.div_ceil(8)
    } else if size == 0 {
        256
    } else {
        usize::from(size)
    };
    Some(start..start + bytes)
}

/// Walks the TLVs of the data area. `memory` starts at page 0 and may stop before the
/// end of the data area; [`TlvError::NeedMore`] asks for more.
pub fn scan(memory: &[u8]) -> Result<DataAreaScan, TlvError> {
    let cc_bytes: [u8; 4] = memory
        .get(12..16)
        .and_then(|s| s.try_into().ok())
        .ok_or(TlvError::NoCapabilityContainer(memory.len()))?;
    let Some(cc) = CapabilityContainer::parse(cc_bytes) else {
        // Unformatted: the whole data area is free.
        return Ok(DataAreaScan {
            ndef_tlv_at: DATA_START,
            ..Default::default()
        });
    };
    if cc.version >> 4 != 1 {
        return Err(TlvError::UnsupportedVersion(
            cc.version >> 4,
            cc.version & 0x0F,
        ));
    }
    let end = DATA_START + cc.data_area_len;
    let mut out = DataAreaScan {
        ndef_tlv_at: DATA_START,
        ..Default::default()
    };
    let mut pos = DATA_START;
    let mut seen_non_control = false;
    let need = |at: usize, needed: usize| {
        if needed > end {
            TlvError::Overrun { at }
        } else {
            TlvError::NeedMore { at, needed }
        }
    };
    while pos < end {
        if out.reserved.iter().any(|r| r.contains(&pos)) {
            pos += 1;
            continue;
        }
        let t = *memory.get(pos).ok_or_else(|| need(pos, pos + 1))?;
        match t {
            T_NULL => {
                pos += 1;
                seen_non_control = true;
            }
            T_TERMINATOR => {
                if !seen_non_control {
                    out.ndef_tlv_at = pos;
                }
                return Ok(out);
            }
            _ => {
                let (len, len_bytes) =
                    tlv_len(memory, pos + 1).ok_or_else(|| need(pos, pos + 4))?;
                let value_start = pos + 1 + len_bytes;
                let value_end = value_start + len;
                if value_end > end {
                    return Err(TlvError::Overrun { at: pos });
                }
                // The value may straddle reserved bytes; gather it around them.
                let mut value = Vec::with_capacity(len);
                let mut p = value_start;
                let mut stop = value_end;
                while p < stop {
                    if out.reserved.iter().any(|r| r.contains(&p)) {
                        stop = (stop + 1).min(end);
                    } else {
                        value.push(*memory.get(p).ok_or_else(|| need(pos, stop))?);
                    }
                    p += 1;
                }
                if value.len() < len {
                    return Err(TlvError::Overrun { at: pos });
                }
                match t {
                    T_LOCK_CONTROL | T_MEMORY_CONTROL => {
                        if let Some(r) = reserved_range(t, &value) {
                            out.reserved.push(r);
                        }
                        if !seen_non_control {
                            out.control_tlvs.extend_from_slice(&memory[pos..p]);
                        }
                    }
                    T_NDEF => {
                        out.ndef_tlv_at = pos;
                        out.ndef = Some(value);
                        return Ok(out);
                    }
                    // Proprietary (FD) and RFU types: skip over them.
                    _ => seen_non_control = true,
                }
                pos = p;
                if !seen_non_control {
                    out.ndef_tlv_at = pos;
                }
            }
        }
    }
    Ok(out)
}

/// The NDEF TLV for `message`: `03 L message` (or `03 FF hh ll message`).
pub fn ndef_tlv(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 4);
    out.push(T_NDEF);
    match u8::try_from(message.len()) {
        Ok(l) if l < 0xFF => out.push(l),
        _ => {
            out.push(0xFF);
            out.extend_from_slice(
                &u16::try_from(message.len())
                    .unwrap_or(u16::MAX)
                    .to_be_bytes(),
            );
        }
    }
    out.extend_from_slice(message);
    out
}

/// Where and what to write so that the data area holds `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritePlan {
    /// Absolute byte address of the first byte to write (the NDEF TLV).
    pub start: usize,
    /// The bytes: NDEF TLV, then a terminator when there is room.
    pub bytes: Vec<u8>,
    /// Absolute address of the message inside the TLV.
    pub message_at: usize,
}

/// Plans the bytes that put `message` into a tag whose data area has `data_area_len`
/// bytes, after the control TLVs found by `scan`.
pub fn plan_write(
    scan: &DataAreaScan,
    data_area_len: usize,
    message: &[u8],
) -> Result<WritePlan, TlvError> {
    let end = DATA_START + data_area_len;
    let start = scan.ndef_tlv_at;
    let mut bytes = ndef_tlv(message);
    let message_at = start + bytes.len() - message.len();
    let available = end.saturating_sub(start);
    if bytes.len() > available {
        return Err(TlvError::DoesNotFit {
            needed: bytes.len(),
            available,
        });
    }
    if bytes.len() < available {
        bytes.push(T_TERMINATOR);
    }
    let span = start..start + bytes.len();
    if let Some(r) = scan
        .reserved
        .iter()
        .find(|r| r.start < span.end && span.start < r.end)
    {
        return Err(TlvError::ReservedInside(r.clone()));
    }
    Ok(WritePlan {
        start,
        bytes,
        message_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ndef;
    use crate::testutil::hex;
    use proptest::prelude::*;

    fn image(cc: [u8; 4], data: &[u8], data_len: usize) -> Vec<u8> {
        let mut m = vec![0u8; 12];
        m.extend_from_slice(&cc);
        let mut d = data.to_vec();
        d.resize(data_len, 0);
        m.extend(d);
        m
    }

    #[test]
    fn worked_example_ntag215_both_ways() {
        // nfc-reference.md §1.4, pages 4..10
        let pages = hex(
            "03 19 D1 01  15 55 04 65  78 61 6D 70  6C 65 2E 63  6F 6D 2F 72  2F 41 42 43  31 32 33 FE",
        );
        let msg = ndef::uri_message("https://example.com/r/ABC123");
        let factory = image([0xE1, 0x10, 0x3E, 0x00], &hex("03 00 FE 00"), 496);
        let s = scan(&factory).unwrap();
        assert_eq!(s.ndef, Some(vec![]));
        let plan = plan_write(&s, 496, &msg).unwrap();
        assert_eq!(plan.start, 16);
        assert_eq!(plan.bytes, pages);
        let written = image([0xE1, 0x10, 0x3E, 0x00], &pages, 496);
        let s = scan(&written).unwrap();
        assert_eq!(
            ndef::decode_first_uri(&s.ndef.unwrap()).unwrap(),
            "https://example.com/r/ABC123"
        );
    }

    #[test]
    fn ntag213_keeps_its_lock_control_tlv() {
        let factory = image(
            [0xE1, 0x10, 0x12, 0x00],
            &hex("01 03 A0 0C 34 03 00 FE"),
            144,
        );
        let s = scan(&factory).unwrap();
        assert_eq!(s.ndef_tlv_at, 21);
        assert_eq!(s.control_tlvs, hex("01 03 A0 0C 34"));
        assert_eq!(s.reserved, vec![160..162]); // dynamic lock bytes at page 0x28
        let msg = ndef::uri_message("https://example.com/r/ABC123");
        let plan = plan_write(&s, 144, &msg).unwrap();
        assert_eq!(&plan.bytes[..4], &hex("03 19 D1 01")[..]);
        // capacity: 144 - 5 (lock TLV) - 2 (TLV header) = 137-byte message, no terminator
        let max = vec![0u8; 137];
        assert_eq!(plan_write(&s, 144, &max).unwrap().bytes.len(), 139);
        assert_eq!(
            plan_write(&s, 144, &[0u8; 138]),
            Err(TlvError::DoesNotFit {
                needed: 140,
                available: 139
            })
        );
    }

    #[test]
    fn three_byte_lengths_both_ways() {
        let msg = vec![0xAB; 300];
        let tlv = ndef_tlv(&msg);
        assert_eq!(&tlv[..4], &[0x03, 0xFF, 0x01, 0x2C]);
        let img = image([0xE1, 0x10, 0x6D, 0x00], &tlv, 872);
        assert_eq!(scan(&img).unwrap().ndef, Some(msg));
        assert_eq!(&ndef_tlv(&[0; 0xFE])[..2], &[0x03, 0xFE]);
        assert_eq!(&ndef_tlv(&[0; 0xFF])[..4], &[0x03, 0xFF, 0x00, 0xFF]);
    }

    #[test]
    fn nulls_memory_control_and_proprietary_are_skipped() {
        // NULL, memory control reserving bytes 24..28 (PA 1, BO 8, 4 bytes, BPP 4), then NDEF
        let data = hex("00 02 03 18 04 04 00 00 AA AA AA AA 03 03 D0 00 00 FE");
        let img = image([0xE1, 0x10, 0x12, 0x00], &data, 144);
        let s = scan(&img).unwrap();
        assert_eq!(s.reserved, vec![24..28]);
        assert_eq!(s.ndef, Some(hex("D0 00 00")));
        let prop = hex("FD 02 11 22 03 00 FE");
        let s = scan(&image([0xE1, 0x10, 0x12, 0x00], &prop, 144)).unwrap();
        assert_eq!((s.ndef_tlv_at, s.ndef), (20, Some(vec![])));
    }

    #[test]
    fn ndef_value_skips_reserved_bytes_inside_it() {
        // memory control reserves 25..27; the NDEF value straddles it
        let data = hex("02 03 19 02 04 03 05 D1 01 AA AA 01 55 00 FE");
        let s = scan(&image([0xE1, 0x10, 0x12, 0x00], &data, 144)).unwrap();
        assert_eq!(s.ndef, Some(hex("D1 01 01 55 00")));
    }

    #[test]
    fn unformatted_and_odd_tags() {
        let blank = image([0, 0, 0, 0], &[], 496);
        let s = scan(&blank).unwrap();
        assert_eq!((s.ndef, s.ndef_tlv_at), (None, 16));
        let v2 = image([0xE1, 0x20, 0x3E, 0x00], &[], 496);
        assert_eq!(scan(&v2), Err(TlvError::UnsupportedVersion(2, 0)));
        assert_eq!(scan(&[0; 8]), Err(TlvError::NoCapabilityContainer(8)));
        let long = image([0xE1, 0x10, 0x02, 0x00], &hex("03 20 D1"), 16);
        assert_eq!(scan(&long), Err(TlvError::Overrun { at: 16 }));
        let mut short_read = image([0xE1, 0x10, 0x3E, 0x00], &hex("03 20 D1"), 8);
        short_read.truncate(24);
        assert_eq!(
            scan(&short_read),
            Err(TlvError::NeedMore { at: 16, needed: 50 })
        );
        let empty_area = image([0xE1, 0x10, 0x3E, 0x00], &[], 496);
        assert_eq!(scan(&empty_area).unwrap().ndef, None);
    }

    #[test]
    fn read_only_cc() {
        let cc = CapabilityContainer::parse([0xE1, 0x10, 0x3E, 0x0F]).unwrap();
        assert!(!cc.is_writable());
        assert_eq!(cc.data_area_len, 496);
        assert_eq!(
            CapabilityContainer::for_data_area(496),
            [0xE1, 0x10, 0x3E, 0x00]
        );
    }

    proptest! {
        #[test]
        fn scan_never_panics(cc2 in any::<u8>(), bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut img = vec![0u8; 12];
            img.extend_from_slice(&[0xE1, 0x10, cc2, 0x00]);
            img.extend(bytes);
            if let Ok(s) = scan(&img)
                && let Some(m) = s.ndef
            {
                let _ = ndef::decode_first_uri(&m);
            }
        }

        #[test]
        fn planned_writes_read_back(uri in "https://[a-z]{1,20}\\.[a-z]{2}/r/[A-Z0-9-]{1,60}") {
            let msg = ndef::uri_message(&uri);
            let mut img = image([0xE1, 0x10, 0x12, 0x00], &hex("01 03 A0 0C 34 03 00 FE"), 144);
            let s = scan(&img).unwrap();
            let plan = plan_write(&s, 144, &msg).unwrap();
            img[plan.start..plan.start + plan.bytes.len()].copy_from_slice(&plan.bytes);
            let back = scan(&img).unwrap().ndef.unwrap();
            prop_assert_eq!(ndef::decode_first_uri(&back).unwrap(), uri);
        }
    }
}

//! NDEF messages and URI records (NFC Forum NDEF 1.0 and URI RTD).
//!
//! Why not the `ndef-rs` crate: version 0.2.3 indexes `payload[0]` without a length check,
//! so a URI record with an empty payload (`D1 01 00 55`, three bytes anyone can write to
//! a tag) panics with "index out of bounds"; it also maps reserved URI prefix codes
//! silently to "no prefix" and has no Type 2 Tag TLV reader that skips NULL and control
//! TLVs. Tags are outside input, so this decoder is written to return an error, never to
//! panic, on any bytes (checked by a proptest here and by the `ndef_decode` fuzz target).

use std::fmt;

/// URI identifier codes 0x00–0x23 and the prefixes they stand for (URI RTD table 3).
pub const URI_PREFIXES: [&str; 36] = [
    "",
    "http://www.",
    "https://www.",
    "http://",
    "https://",
    "tel:",
    "mailto:",
    "ftp://anonymous:anonymous@",
    "ftp://ftp.",
    "ftps://",
    "sftp://",
    "smb://",
    "nfs://",
    "ftp://",
    "dav://",
    "news:",
    "telnet://",
    "imap:",
    "rtsp://",
    "urn:",
    "pop:",
    "sip:",
    "sips:",
    "tftp:",
    "btspp://",
    "btl2cap://",
    "btgoep://",
    "tcpobex://",
    "irdaobex://",
    "file://",
    "urn:epc:id:",
    "urn:epc:tag:",
    "urn:epc:pat:",
    "urn:epc:raw:",
    "urn:epc:",
    "urn:nfc:",
];

const MB: u8 = 0x80;
const ME: u8 = 0x40;
const CF: u8 = 0x20;
const SR: u8 = 0x10;
const IL: u8 = 0x08;

/// Type Name Format of a record (the low three header bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tnf {
    /// 0: empty record.
    Empty,
    /// 1: NFC Forum well-known type (e.g. `U` for URI).
    WellKnown,
    /// 2: media type (RFC 2046).
    Media,
    /// 3: absolute URI as the type.
    AbsoluteUri,
    /// 4: NFC Forum external type.
    External,
    /// 5: unknown.
    Unknown,
    /// 6: unchanged (middle and last chunks).
    Unchanged,
}

impl Tnf {
    fn from_bits(bits: u8) -> Result<Self, NdefError> {
        Ok(match bits & 0x07 {
            0 => Self::Empty,
            1 => Self::WellKnown,
            2 => Self::Media,
            3 => Self::AbsoluteUri,
            4 => Self::External,
            5 => Self::Unknown,
            6 => Self::Unchanged,
            _ => return Err(NdefError::ReservedTnf),
        })
    }

    fn bits(self) -> u8 {
        match self {
            Self::Empty => 0,
            Self::WellKnown => 1,
            Self::Media => 2,
            Self::AbsoluteUri => 3,
            Self::External => 4,
            Self::Unknown => 5,
            Self::Unchanged => 6,
        }
    }
}

/// One NDEF record (chunked records are reassembled when decoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Type name format.
    pub tnf: Tnf,
    /// Record type, e.g. `b"U"`.
    pub record_type: Vec<u8>,
    /// Optional record id.
    pub id: Vec<u8>,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

/// What is wrong with bytes that should be an NDEF message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NdefError {
    /// The bytes end inside a record.
    #[error("the NDEF message is cut short at byte {at} (needs {needed} more)")]
    Truncated {
        /// Where reading stopped.
        at: usize,
        /// Bytes still missing.
        needed: usize,
    },
    /// An empty byte string.
    #[error("the NDEF message is empty (no records)")]
    Empty,
    /// TNF 7.
    #[error("the NDEF record uses the reserved type name format 7")]
    ReservedTnf,
    /// MB/ME/CF flags are inconsistent.
    #[error("the NDEF message is malformed: {0}")]
    Malformed(&'static str),
    /// Bytes after the record with ME set.
    #[error("{0} stray bytes follow the last NDEF record")]
    TrailingBytes(usize),
    /// Not a URI record.
    #[error("the record is not a URI record (TNF well-known, type \"U\")")]
    NotUri,
    /// URI record with no identifier code.
    #[error("the URI record is empty (no identifier code)")]
    EmptyUri,
    /// URI identifier code 0x24 or above.
    #[error("the URI record uses reserved prefix code 0x{0:02X}")]
    ReservedUriCode(u8),
    /// The URI is not valid UTF-8 or holds control characters.
    #[error("the URI in the record is not valid text")]
    BadUriText,
    /// A message too large for any record field.
    #[error("the NDEF payload is too large ({0} bytes)")]
    TooLarge(usize),
}

impl Record {
    /// A well-known URI record for `uri`, using the longest matching prefix code.
    pub fn uri(uri: &str) -> Self {
        let (code, rest) = split_uri_prefix(uri);
        let mut payload = Vec::with_capacity(1 + rest.len());
        payload.push(code);
        payload.extend_from_slice(rest.as_bytes());
        Self {
            tnf: Tnf::WellKnown,
            record_type: b"U".to_vec(),
            id: Vec::new(),
            payload,
        }
    }

    /// The full URI of a URI record (prefix expanded). Strict: reserved prefix codes and
    /// control characters are errors.
    pub fn to_uri(&self) -> Result<String, NdefError> {
        if self.tnf != Tnf::WellKnown || self.record_type != b"U" {
            return Err(NdefError::NotUri);
        }
        let (&code, rest) = self.payload.split_first().ok_or(NdefError::EmptyUri)?;
        let prefix = URI_PREFIXES
            .get(usize::from(code))
            .ok_or(NdefError::ReservedUriCode(code))?;
        let rest = std::str::from_utf8(rest).map_err(|_| NdefError::BadUriText)?;
        if rest.chars().any(char::is_control) {
            return Err(NdefError::BadUriText);
        }
        Ok(format!("{prefix}{rest}"))
    }
}

/// Splits `uri` into the longest-matching identifier code and the rest.
pub fn split_uri_prefix(uri: &str) -> (u8, &str) {
    let mut best = (0u8, uri);
    let mut best_len = 0;
    for (code, prefix) in URI_PREFIXES.iter().enumerate().skip(1) {
        if prefix.len() > best_len
            && let Some(rest) = uri.strip_prefix(prefix)
        {
            // The table has 36 entries, so the index always fits in a byte.
            best = (u8::try_from(code).unwrap_or(0), rest);
            best_len = prefix.len();
        }
    }
    best
}

/// Encodes records as one NDEF message (short records where the payload allows).
pub fn encode_message(records: &[Record]) -> Result<Vec<u8>, NdefError> {
    if records.is_empty() {
        return Err(NdefError::Empty);
    }
    let mut out = Vec::new();
    let last = records.len() - 1;
    for (i, r) in records.iter().enumerate() {
        let type_len = u8::try_from(r.record_type.len())
            .map_err(|_| NdefError::TooLarge(r.record_type.len()))?;
        let id_len = u8::try_from(r.id.len()).map_err(|_| NdefError::TooLarge(r.id.len()))?;
        let payload_len =
            u32::try_from(r.payload.len()).map_err(|_| NdefError::TooLarge(r.payload.len()))?;
        let short = payload_len <= 255;
        let mut hdr = r.tnf.bits();
        if i == 0 {
            hdr |= MB;
        }
        if i == last {
            hdr |= ME;
        }
        if short {
            hdr |= SR;
        }
        if !r.id.is_empty() {
            hdr |= IL;
        }
        out.push(hdr);
        out.push(type_len);
        if short {
            out.push(payload_len.to_be_bytes()[3]);
        } else {
            out.extend_from_slice(&payload_len.to_be_bytes());
        }
        if !r.id.is_empty() {
            out.push(id_len);
        }
        out.extend_from_slice(&r.record_type);
        out.extend_from_slice(&r.id);
        out.extend_from_slice(&r.payload);
    }
    Ok(out)
}

/// The NDEF message holding one URI record: what Tapkit writes to a card.
pub fn uri_message(uri: &str) -> Vec<u8> {
    // One record with a one-byte type and no id can always be encoded.
    encode_message(&[Record::uri(uri)]).unwrap_or_default()
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], NdefError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(NdefError::Truncated {
                at: self.at,
                needed: n.saturating_sub(self.bytes.len() - self.at),
            })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn byte(&mut self) -> Result<u8, NdefError> {
        Ok(self.take(1)?[0])
    }
}

/// Decodes an NDEF message. Never panics: any malformation is an [`NdefError`].
pub fn decode_message(bytes: &[u8]) -> Result<Vec<Record>, NdefError> {
    if bytes.is_empty() {
        return Err(NdefError::Empty);
    }
    let mut c = Cursor { bytes, at: 0 };
    let mut records: Vec<Record> = Vec::new();
    let mut chunking = false;
    loop {
        let first = records.is_empty() && !chunking;
        let hdr = c.byte()?;
        let tnf = Tnf::from_bits(hdr)?;
        if first != (hdr & MB != 0) {
            return Err(NdefError::Malformed("the message-begin flag is misplaced"));
        }
        let type_len = usize::from(c.byte()?);
        let payload_len = if hdr & SR != 0 {
            usize::from(c.byte()?)
        } else {
            let b = c.take(4)?;
            let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            usize::try_from(n).map_err(|_| NdefError::TooLarge(usize::MAX))?
        };
        let id_len = if hdr & IL != 0 {
            usize::from(c.byte()?)
        } else {
            0
        };
        let record_type = c.take(type_len)?.to_vec();
        let id = c.take(id_len)?.to_vec();
        let payload = c.take(payload_len)?;
        if matches!(tnf, Tnf::Empty | Tnf::Unknown | Tnf::Unchanged) && type_len != 0 {
            return Err(NdefError::Malformed(
                "an empty, unknown or unchanged record has a type",
            ));
        }
        if tnf == Tnf::Empty && (payload_len != 0 || id_len != 0) {
            return Err(NdefError::Malformed("an empty record carries data"));
        }
        if chunking {
            if tnf != Tnf::Unchanged || id_len != 0 {
                return Err(NdefError::Malformed(
                    "a continuation chunk is not marked unchanged",
                ));
            }
            if let Some(last) = records.last_mut() {
                last.payload.extend_from_slice(payload);
            }
        } else {
            if tnf == Tnf::Unchanged {
                return Err(NdefError::Malformed("an unchanged record starts a chunk"));
            }
            records.push(Record {
                tnf,
                record_type,
                id,
                payload: payload.to_vec(),
            });
        }
        chunking = hdr & CF != 0;
        if hdr & ME != 0 {
            if chunking {
                return Err(NdefError::Malformed(
                    "the last record is an unfinished chunk",
                ));
            }
            break;
        }
        if c.at == bytes.len() {
            return Err(NdefError::Malformed(
                "the message ends without a message-end flag",
            ));
        }
    }
    if c.at != bytes.len() {
        return Err(NdefError::TrailingBytes(bytes.len() - c.at));
    }
    Ok(records)
}

/// Decodes a message and returns the URI of its first record, as phones do.
pub fn decode_first_uri(bytes: &[u8]) -> Result<String, NdefError> {
    let records = decode_message(bytes)?;
    records.first().ok_or(NdefError::Empty)?.to_uri()
}

/// Hex helper for messages and logs: `D1 01 15`.
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::hex;
    use proptest::prelude::*;

    #[test]
    fn golden_example_com_both_ways() {
        // nfc-reference.md §1.4
        let msg = hex("D1 01 15 55 04 6578616D706C652E636F6D2F722F414243313233");
        assert_eq!(uri_message("https://example.com/r/ABC123"), msg);
        assert_eq!(
            decode_first_uri(&msg).unwrap(),
            "https://example.com/r/ABC123"
        );
    }

    #[test]
    fn golden_google_both_ways() {
        // NXP's example: 03 0F D1 01 0B 55 04 google.com
        let msg = hex("D1 01 0B 55 04 676F6F676C652E636F6D");
        assert_eq!(uri_message("https://google.com"), msg);
        assert_eq!(decode_first_uri(&msg).unwrap(), "https://google.com");
    }

    #[test]
    fn longest_prefix_wins() {
        assert_eq!(split_uri_prefix("http://www.x.y"), (0x01, "x.y"));
        assert_eq!(split_uri_prefix("https://www.x.y"), (0x02, "x.y"));
        assert_eq!(split_uri_prefix("ftp://anonymous:anonymous@h"), (0x07, "h"));
        assert_eq!(split_uri_prefix("urn:epc:id:1"), (0x1E, "1"));
        assert_eq!(split_uri_prefix("urn:nfc:x"), (0x23, "x"));
        assert_eq!(split_uri_prefix("gopher://x"), (0x00, "gopher://x"));
    }

    #[test]
    fn every_prefix_code_round_trips() {
        for (code, prefix) in URI_PREFIXES.iter().enumerate() {
            let uri = format!("{prefix}rest");
            let rec = Record::uri(&uri);
            let back =
                decode_first_uri(&encode_message(std::slice::from_ref(&rec)).unwrap()).unwrap();
            assert_eq!(back, uri, "code {code:#04x}");
        }
    }

    #[test]
    fn long_records_are_written_and_read() {
        let uri = format!("https://example.com/{}", "a".repeat(300));
        let msg = uri_message(&uri);
        assert_eq!(&msg[..7], &hex("C1 01 00 00 01 39 55")[..]);
        assert_eq!(decode_first_uri(&msg).unwrap(), uri);
        // a short record is also accepted in long form
        let long_form = hex("C1 01 00 00 00 05 55 04 61 2E 62 6F");
        assert_eq!(decode_first_uri(&long_form).unwrap(), "https://a.bo");
    }

    #[test]
    fn bad_uri_records_are_errors_not_panics() {
        assert_eq!(
            decode_first_uri(&hex("D1 01 00 55")),
            Err(NdefError::EmptyUri)
        );
        assert_eq!(
            decode_first_uri(&hex("D1 01 02 55 24 41")),
            Err(NdefError::ReservedUriCode(0x24))
        );
        assert_eq!(
            decode_first_uri(&hex("D1 01 02 55 04 FF")),
            Err(NdefError::BadUriText)
        );
        assert_eq!(
            decode_first_uri(&hex("D1 01 02 55 04 0A")),
            Err(NdefError::BadUriText)
        );
        assert_eq!(
            decode_first_uri(&hex("D1 01 02 54 04 41")),
            Err(NdefError::NotUri)
        );
        assert_eq!(decode_first_uri(&hex("D0 00 00")), Err(NdefError::NotUri));
        assert!(matches!(
            decode_message(&hex("D1 01 15 55 04")),
            Err(NdefError::Truncated { .. })
        ));
        assert_eq!(
            decode_message(&hex("D7 00 00")),
            Err(NdefError::ReservedTnf)
        );
        assert_eq!(
            decode_message(&hex("D1 01 01 55 00 00")),
            Err(NdefError::TrailingBytes(1))
        );
        assert!(matches!(
            decode_message(&hex("91 01 01 55 00")),
            Err(NdefError::Malformed(_))
        ));
        assert!(matches!(
            decode_message(&hex("51 01 01 55 00")),
            Err(NdefError::Malformed(_))
        ));
    }

    #[test]
    fn chunks_are_reassembled_and_ids_kept() {
        // first chunk (MB, CF, SR, TNF 1) "U" payload 04 'a'; last chunk (ME, SR, TNF 6) ".b"
        let msg = hex("B1 01 02 55 04 61 56 00 02 2E 62");
        let recs = decode_message(&msg).unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].to_uri().unwrap(), "https://a.b");
        let with_id = Record {
            id: b"x".to_vec(),
            ..Record::uri("tel:1")
        };
        let enc = encode_message(std::slice::from_ref(&with_id)).unwrap();
        assert_eq!(enc[0], 0xD9);
        assert_eq!(decode_message(&enc).unwrap(), vec![with_id]);
    }

    #[test]
    fn two_records_get_mb_and_me_right() {
        let recs = vec![Record::uri("https://a.b"), Record::uri("tel:123")];
        let enc = encode_message(&recs).unwrap();
        assert_eq!(enc[0] & (MB | ME), MB);
        assert_eq!(decode_message(&enc).unwrap(), recs);
        assert_eq!(encode_message(&[]), Err(NdefError::Empty));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_message(&bytes);
            let _ = decode_first_uri(&bytes);
        }

        #[test]
        fn uri_round_trips(uri in "[ -~]{0,400}") {
            prop_assert_eq!(decode_first_uri(&uri_message(&uri)).unwrap(), uri);
        }
    }
}

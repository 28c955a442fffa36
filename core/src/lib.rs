//! Tapkit core: the pure domain logic shared by the provisioner, the server and the kiosk.
//!
//! Nothing in this crate does I/O, so all of it is unit-testable and fuzzable:
//!
//! - [`code`]: referral codes (`IRONGYM-7K2M9Q`) with a check symbol;
//! - [`ndef`]: NDEF messages and URI records;
//! - [`type2`]: NFC Forum Type 2 Tag memory (capability container and TLVs);
//! - [`ntag`]: the NTAG213/215/216 memory model, lock bits and the UID/counter mirror;
//! - [`apdu`]: typed PC/SC APDUs and status words;
//! - [`base64`]: standard base64;
//! - [`json_int`]: integers in JSON bodies read as JSON Schema reads them (`2.0` is 2);
//! - [`qr`]: QR symbols as module matrices (rectangles, raster, SVG);
//! - [`kiosk`]: the counter display's rotating, signed QR token;
//! - [`kiosk_wire`]: the JSON bodies the counter display and the server exchange;
//! - [`ntag424`]: NTAG 424 DNA's SUN messages, EV2 secure messaging and keys per card.

pub mod apdu;
pub mod base64;
pub mod code;
pub mod date;
pub mod hex;
pub mod json_int;
pub mod kiosk;
pub mod kiosk_wire;
pub mod ndef;
pub mod ntag;
pub mod ntag424;
pub mod qr;
pub mod type2;

/// Test helpers shared by the unit tests of this crate.
#[cfg(test)]
pub(crate) mod testutil {
    /// Parses spaced hex like `D1 01 15` (test vectors from the references).
    pub fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}

/// Decodes the NDEF URI held in a Type 2 tag memory image (from page 0), the way a phone
/// would: the first record of the first NDEF TLV. `Ok(None)` for an empty or unformatted
/// tag. This is the entry point the fuzz target drives.
pub fn read_tag_uri(memory: &[u8]) -> Result<Option<String>, TagReadError> {
    let scan = type2::scan(memory)?;
    match scan.ndef {
        None => Ok(None),
        Some(m) if m.is_empty() => Ok(None),
        Some(m) => Ok(Some(ndef::decode_first_uri(&m)?)),
    }
}

/// An error and its causes on one line, each cause once (HTTP clients' top message alone
/// says little: "error sending request"). Shared by the provisioner and the kiosk.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// Why a tag's memory does not yield a URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TagReadError {
    /// The TLV structure is broken.
    #[error(transparent)]
    Tlv(#[from] type2::TlvError),
    /// The NDEF message is broken or not a URI.
    #[error(transparent)]
    Ndef(#[from] ndef::NdefError),
}

//! Typed APDUs for PC/SC Part 3 contactless readers (ACR122U / ACR1252U class):
//! storage-card pseudo-APDUs, the reader's direct-transmit wrapper, LED/buzzer, and
//! status words.

use std::fmt;

/// A command APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apdu {
    /// Class byte (FF for reader pseudo-APDUs).
    pub cla: u8,
    /// Instruction.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (Lc is derived).
    pub data: Vec<u8>,
    /// Expected length, if any.
    pub le: Option<u8>,
}

/// How a reader passes native tag commands through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// ACR122U: PN532 InCommunicateThru `FF 00 00 00 Lc D4 42 <cmd>` → `D5 43 st …`.
    Pn532,
    /// ACR1252U and similar: the raw command in `FF 00 00 00 Lc <cmd>`.
    Raw,
}

impl Apdu {
    fn pseudo(ins: u8, p1: u8, p2: u8, data: Vec<u8>, le: Option<u8>) -> Self {
        Self {
            cla: 0xFF,
            ins,
            p1,
            p2,
            data,
            le,
        }
    }

    /// `FF CA 00 00 00`: the card's UID.
    pub fn get_uid() -> Self {
        Self::pseudo(0xCA, 0x00, 0x00, Vec::new(), Some(0))
    }

    /// `FF B0 00 pg 10`: READ BINARY of four pages.
    pub fn read_binary(page: u8) -> Self {
        Self::pseudo(0xB0, 0x00, page, Vec::new(), Some(0x10))
    }

    /// `FF D6 00 pg 04 d0..d3`: UPDATE BINARY of one page.
    pub fn update_binary(page: u8, data: [u8; 4]) -> Self {
        Self::pseudo(0xD6, 0x00, page, data.to_vec(), None)
    }

    /// Direct transmit of a native tag command in the reader's dialect.
    pub fn direct(dialect: Dialect, command: &[u8]) -> Self {
        let data = match dialect {
            Dialect::Pn532 => [&[0xD4, 0x42][..], command].concat(),
            Dialect::Raw => command.to_vec(),
        };
        Self::pseudo(0x00, 0x00, 0x00, data, None)
    }

    /// ACR122U LED/buzzer control `FF 00 40 P2 04 T1 T2 reps link`.
    pub fn led_buzzer(p2: u8, t1: u8, t2: u8, reps: u8, link: u8) -> Self {
        Self::pseudo(0x00, 0x40, p2, vec![t1, t2, reps, link], None)
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![self.cla, self.ins, self.p1, self.p2];
        if !self.data.is_empty() {
            out.push(u8::try_from(self.data.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            out.push(le);
        }
        out
    }

    /// Parses wire bytes (short APDUs only), for the simulator.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let (&[cla, ins, p1, p2], rest) = bytes.split_first_chunk::<4>()?;
        let (data, le) = match rest {
            [] => (Vec::new(), None),
            [le] => (Vec::new(), Some(*le)),
            [lc, tail @ ..] => {
                let lc = usize::from(*lc);
                match tail.len().checked_sub(lc)? {
                    0 => (tail.to_vec(), None),
                    1 => (tail[..lc].to_vec(), tail.last().copied()),
                    _ => return None,
                }
            }
        };
        Some(Self {
            cla,
            ins,
            p1,
            p2,
            data,
            le,
        })
    }
}

/// A response status word, decoded to the names of the PC/SC Part 3 and ACS manuals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWord {
    /// 90 00.
    Ok,
    /// 63 00: the operation on the card failed (a NAK, or the card left).
    Failed,
    /// 6A 81: function not supported.
    NotSupported,
    /// 67 00: wrong length.
    WrongLength,
    /// 69 82: security status not satisfied.
    SecurityNotSatisfied,
    /// 69 86: command not allowed.
    NotAllowed,
    /// 6A 82: address not found.
    AddressNotFound,
    /// 6B 00: wrong P1/P2.
    WrongParameters,
    /// 6D 00 / 6E 00 / 69 81: instruction or class not supported.
    UnsupportedInstruction,
    /// Anything else.
    Other(u16),
}

impl StatusWord {
    /// Decodes SW1 SW2.
    pub fn from_bytes(sw1: u8, sw2: u8) -> Self {
        match (sw1, sw2) {
            (0x90, 0x00) => Self::Ok,
            (0x63, 0x00) => Self::Failed,
            (0x6A, 0x81) => Self::NotSupported,
            (0x67, 0x00) => Self::WrongLength,
            (0x69, 0x82) => Self::SecurityNotSatisfied,
            (0x69, 0x86) => Self::NotAllowed,
            (0x6A, 0x82) => Self::AddressNotFound,
            (0x6B, 0x00) => Self::WrongParameters,
            (0x6D | 0x6E, 0x00) | (0x69, 0x81) => Self::UnsupportedInstruction,
            _ => Self::Other(u16::from_be_bytes([sw1, sw2])),
        }
    }

    /// Encodes back to SW1 SW2.
    pub fn to_bytes(self) -> [u8; 2] {
        match self {
            Self::Ok => [0x90, 0x00],
            Self::Failed => [0x63, 0x00],
            Self::NotSupported => [0x6A, 0x81],
            Self::WrongLength => [0x67, 0x00],
            Self::SecurityNotSatisfied => [0x69, 0x82],
            Self::NotAllowed => [0x69, 0x86],
            Self::AddressNotFound => [0x6A, 0x82],
            Self::WrongParameters => [0x6B, 0x00],
            Self::UnsupportedInstruction => [0x6D, 0x00],
            Self::Other(v) => v.to_be_bytes(),
        }
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b] = self.to_bytes();
        write!(f, "{a:02X} {b:02X}")
    }
}

/// A response split into data and status word; `None` when shorter than two bytes
/// (a card torn away mid-APDU gives an empty response through vpcd).
pub fn split_response(resp: &[u8]) -> Option<(&[u8], StatusWord)> {
    let (data, sw) = resp.split_last_chunk::<2>()?;
    Some((data, StatusWord::from_bytes(sw[0], sw[1])))
}

/// Result of unwrapping a direct-transmit answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectReply {
    /// The tag answered with these bytes.
    Data(Vec<u8>),
    /// The PN532 reported a status (01 timeout, 02 CRC, 03 parity …): no valid answer,
    /// typically a 4-bit NAK or no tag.
    TagError(u8),
    /// The reader refused the wrapper (not this dialect).
    Refused(StatusWord),
}

/// Unwraps a direct-transmit response in `dialect`.
pub fn unwrap_direct(dialect: Dialect, resp: &[u8]) -> Option<DirectReply> {
    let (data, sw) = split_response(resp)?;
    if sw != StatusWord::Ok {
        return Some(DirectReply::Refused(sw));
    }
    Some(match dialect {
        Dialect::Pn532 => match data {
            [0xD5, 0x43, 0x00, rest @ ..] => DirectReply::Data(rest.to_vec()),
            [0xD5, 0x43, st, ..] => DirectReply::TagError(*st),
            _ => DirectReply::Refused(StatusWord::Other(0)),
        },
        Dialect::Raw => DirectReply::Data(data.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_match_reference_bytes() {
        assert_eq!(Apdu::get_uid().to_bytes(), [0xFF, 0xCA, 0x00, 0x00, 0x00]);
        assert_eq!(
            Apdu::read_binary(4).to_bytes(),
            [0xFF, 0xB0, 0x00, 0x04, 0x10]
        );
        assert_eq!(
            Apdu::update_binary(5, [1, 2, 3, 4]).to_bytes(),
            [0xFF, 0xD6, 0x00, 0x05, 0x04, 1, 2, 3, 4]
        );
        assert_eq!(
            Apdu::direct(Dialect::Pn532, &[0x60]).to_bytes(),
            [0xFF, 0x00, 0x00, 0x00, 0x03, 0xD4, 0x42, 0x60]
        );
        assert_eq!(
            Apdu::direct(Dialect::Raw, &[0x3A, 0x20, 0x3F]).to_bytes(),
            [0xFF, 0x00, 0x00, 0x00, 0x03, 0x3A, 0x20, 0x3F]
        );
        assert_eq!(
            Apdu::led_buzzer(0x50, 5, 5, 3, 1).to_bytes(),
            [0xFF, 0x00, 0x40, 0x50, 0x04, 0x05, 0x05, 0x03, 0x01]
        );
    }

    #[test]
    fn parse_round_trips() {
        for a in [
            Apdu::get_uid(),
            Apdu::read_binary(0x10),
            Apdu::update_binary(4, [9, 9, 9, 9]),
            Apdu::direct(Dialect::Pn532, &[0x3A, 4, 6]),
        ] {
            assert_eq!(Apdu::parse(&a.to_bytes()), Some(a));
        }
        assert_eq!(Apdu::parse(&[0xFF, 0xCA]), None);
        assert_eq!(Apdu::parse(&[0xFF, 0xD6, 0, 4, 9, 1]), None);
    }

    #[test]
    fn status_words_round_trip() {
        for sw in [
            StatusWord::Ok,
            StatusWord::Failed,
            StatusWord::NotSupported,
            StatusWord::WrongLength,
            StatusWord::SecurityNotSatisfied,
            StatusWord::NotAllowed,
            StatusWord::AddressNotFound,
            StatusWord::WrongParameters,
            StatusWord::UnsupportedInstruction,
            StatusWord::Other(0x6283),
        ] {
            let [a, b] = sw.to_bytes();
            assert_eq!(StatusWord::from_bytes(a, b), sw);
        }
        assert_eq!(StatusWord::Failed.to_string(), "63 00");
    }

    #[test]
    fn direct_replies_unwrap() {
        let ok = [
            0xD5, 0x43, 0x00, 0x00, 0x04, 0x04, 0x02, 0x01, 0x00, 0x11, 0x03, 0x90, 0x00,
        ];
        assert_eq!(
            unwrap_direct(Dialect::Pn532, &ok),
            Some(DirectReply::Data(vec![
                0x00, 0x04, 0x04, 0x02, 0x01, 0x00, 0x11, 0x03
            ]))
        );
        assert_eq!(
            unwrap_direct(Dialect::Pn532, &[0xD5, 0x43, 0x01, 0x90, 0x00]),
            Some(DirectReply::TagError(1))
        );
        assert_eq!(
            unwrap_direct(Dialect::Raw, &[0x63, 0x00]),
            Some(DirectReply::Refused(StatusWord::Failed))
        );
        assert_eq!(unwrap_direct(Dialect::Raw, &[]), None);
        assert_eq!(split_response(&[0x90]), None);
    }
}

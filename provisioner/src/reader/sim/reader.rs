//! An emulated PC/SC reader holding one [`SimTag`]: the PC/SC Part 3 storage-card
//! pseudo-APDUs, direct transmit in either dialect (the ACR122U's PN532
//! InCommunicateThru wrapper, or the raw command of ACR1252U-class readers), LED/buzzer
//! and firmware escapes sent as APDUs, and scripted faults.

use std::time::Duration;

use tapkit_core::apdu::{Dialect, StatusWord};
use tapkit_core::ntag::cmd;

use super::ntag424::Ntag424;
use super::tag::{SimTag, SimTagKind, TagReply};

/// A scripted fault. Write and APDU numbers count from 1 since the card was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The card is pulled away during the n-th page write: the write is not applied,
    /// the reader answers `63 00`, and the card is gone.
    PullAtWrite(u32),
    /// The card is torn away in the middle of the n-th page write: the EEPROM write
    /// completes but no response comes back at all (an empty response through vpcd).
    TearAtWrite(u32),
    /// The n-th APDU gets a NAK from the tag (`63 00` / PN532 status 01).
    NakAt(u32),
    /// Every APDU takes this long (a slow card or a long RF distance).
    Slow(Duration),
    /// After n APDUs another client resets the card (in-process transport only: vpcd
    /// cannot push a reset to the client).
    ResetAfter(u32),
    /// NTAG 424 DNA: the card is torn away during its n-th ChangeKey or
    /// ChangeFileSettings: the change is made, no answer comes back, the card is gone.
    TearAtChange(u32),
    /// NTAG 424 DNA: the key in this slot is one nobody knows (a card keyed elsewhere);
    /// its version still reads 0, as if factory-fresh.
    WrongKey(u8),
    /// NTAG 424 DNA: the n-th answer of a secure-messaging session is the previous one
    /// again (a replayed response with a stale command counter).
    ReplayResponse(u32),
}

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, arg) = s.split_once(':').ok_or_else(|| fault_help(s))?;
        let n: u32 = arg.parse().map_err(|_| fault_help(s))?;
        Ok(match name {
            "pull-at-write" => Self::PullAtWrite(n),
            "tear-at-write" => Self::TearAtWrite(n),
            "nak-at" => Self::NakAt(n),
            "slow-ms" => Self::Slow(Duration::from_millis(u64::from(n))),
            "reset-after" => Self::ResetAfter(n),
            "tear-at-change" => Self::TearAtChange(n),
            "wrong-key" if n <= 4 => Self::WrongKey(n as u8),
            "replay-response" => Self::ReplayResponse(n),
            _ => return Err(fault_help(s)),
        })
    }
}

fn fault_help(s: &str) -> String {
    format!(
        "unknown fault {s:?}; use pull-at-write:N, tear-at-write:N, nak-at:N, slow-ms:MS, reset-after:N, or for ntag424 tear-at-change:N, wrong-key:SLOT (0-4), replay-response:N"
    )
}

/// What the reader does with one APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderOutcome {
    /// A normal response (data + status word).
    Reply(Vec<u8>),
    /// The reply is sent, then the card leaves the field.
    ReplyThenRemove(Vec<u8>),
    /// The card is torn away before any reply: no response at all.
    TornAway,
    /// Another client reset the card before this APDU ran (in-process only).
    ResetByOtherClient,
}

/// An emulated reader with a card on it.
#[derive(Debug)]
pub struct SimReader {
    tag: SimTag,
    /// The NTAG 424 DNA behind `tag` when it is one (its state outlives power cycles).
    dna: Option<Box<Ntag424>>,
    changes: u32,
    secured: u32,
    last_secured: Option<Vec<u8>>,
    faults: Vec<Fault>,
    apdus: u32,
    writes: u32,
    led: u8,
    dialect: Dialect,
    /// Set when the tag's memory changed since the last [`SimReader::take_dirty`].
    dirty: bool,
}

impl SimReader {
    /// A reader holding `tag`, with scripted `faults`.
    pub fn new(tag: SimTag, faults: Vec<Fault>) -> Self {
        let dna = (tag.kind() == SimTagKind::Ntag424).then(|| {
            let mut card = Ntag424::factory(tag.uid(), super::random_seed());
            for f in &faults {
                if let Fault::WrongKey(slot) = f {
                    card.set_unknown_key(*slot);
                }
            }
            Box::new(card)
        });
        Self {
            tag,
            dna,
            changes: 0,
            secured: 0,
            last_secured: None,
            faults,
            apdus: 0,
            writes: 0,
            led: 0,
            dialect: Dialect::Pn532,
            dirty: false,
        }
    }

    /// The card.
    pub fn tag(&self) -> &SimTag {
        &self.tag
    }

    /// The NTAG 424 DNA, when the card is one.
    pub fn ntag424(&self) -> Option<&Ntag424> {
        self.dna.as_deref()
    }

    /// Makes it an ACR1252U-class reader (`Dialect::Raw`: direct transmit carries the
    /// tag's command as is, and answers its bytes with `90 00`, a 4-bit ACK/NAK as one
    /// byte, silence as `63 00`) or the ACR122U (`Dialect::Pn532`, the default).
    pub fn set_dialect(&mut self, dialect: Dialect) {
        self.dialect = dialect;
    }

    /// Replaces the faults (for example after a re-insertion, to retry cleanly).
    pub fn set_faults(&mut self, faults: Vec<Fault>) {
        self.faults = faults;
    }

    /// The ATR of the card.
    pub fn atr(&self) -> Vec<u8> {
        self.tag.kind().atr()
    }

    /// The card is (re)presented or the field is reset: counters restart.
    pub fn power_on(&mut self) {
        self.tag.power_on();
        if let Some(d) = &mut self.dna {
            d.power_on();
        }
        self.changes = 0;
        self.secured = 0;
        self.last_secured = None;
        self.apdus = 0;
        self.writes = 0;
    }

    /// The field is switched off.
    pub fn power_off(&mut self) {
        self.tag.power_off();
    }

    /// Whether the memory changed since the last call (for `--image` saving).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// The configured per-APDU delay, if any.
    pub fn delay(&self) -> Option<Duration> {
        self.faults.iter().find_map(|f| match f {
            Fault::Slow(d) => Some(*d),
            _ => None,
        })
    }

    /// Handles one command APDU.
    pub fn transmit(&mut self, apdu: &[u8]) -> ReaderOutcome {
        self.apdus += 1;
        let n = self.apdus;
        if self.faults.contains(&Fault::ResetAfter(n - 1)) && n > 1 {
            self.faults.retain(|f| *f != Fault::ResetAfter(n - 1));
            self.tag.power_on();
            return ReaderOutcome::ResetByOtherClient;
        }
        let is_write = is_page_write(apdu);
        if is_write {
            self.writes += 1;
            let w = self.writes;
            if self.faults.contains(&Fault::PullAtWrite(w)) {
                self.faults.retain(|f| *f != Fault::PullAtWrite(w));
                return ReaderOutcome::ReplyThenRemove(StatusWord::Failed.to_bytes().to_vec());
            }
            if self.faults.contains(&Fault::TearAtWrite(w)) {
                self.faults.retain(|f| *f != Fault::TearAtWrite(w));
                let _ = self.handle(apdu); // the EEPROM write completes
                return ReaderOutcome::TornAway;
            }
        }
        if self.dna.is_some() && apdu.first() != Some(&0xFF) {
            return self.dna_command(apdu);
        }
        if self.faults.contains(&Fault::NakAt(n)) {
            self.faults.retain(|f| *f != Fault::NakAt(n));
            self.tag.power_off(); // a NAK leaves the tag in IDLE
            return ReaderOutcome::Reply(
                if apdu.starts_with(&[0xFF, 0x00, 0x00, 0x00]) && self.dialect == Dialect::Pn532 {
                    vec![0xD5, 0x43, 0x01, 0x90, 0x00]
                } else {
                    StatusWord::Failed.to_bytes().to_vec()
                },
            );
        }
        ReaderOutcome::Reply(self.handle(apdu))
    }

    /// An ISO 7816 APDU for the NTAG 424 DNA, with its faults.
    fn dna_command(&mut self, apdu: &[u8]) -> ReaderOutcome {
        let Some(card) = self.dna.as_deref_mut() else {
            return ReaderOutcome::Reply(StatusWord::UnsupportedInstruction.to_bytes().to_vec());
        };
        if matches!(apdu, [0x90, 0xC4 | 0x5F, ..]) {
            self.changes += 1;
            let n = self.changes;
            if self.faults.contains(&Fault::TearAtChange(n)) {
                self.faults.retain(|f| *f != Fault::TearAtChange(n));
                let _ = card.command(apdu); // the change is written
                return ReaderOutcome::TornAway;
            }
        }
        let reply = card.command(apdu);
        // A secure-messaging answer: data with a MAC and 91 00.
        // Only kept when a replay is scripted: no copy per APDU otherwise.
        let replays = self
            .faults
            .iter()
            .any(|f| matches!(f, Fault::ReplayResponse(_)));
        if replays && reply.len() >= 10 && reply.ends_with(&[0x91, 0x00]) && apdu.len() > 5 {
            self.secured += 1;
            let n = self.secured;
            let previous = self.last_secured.replace(reply.clone());
            if self.faults.contains(&Fault::ReplayResponse(n))
                && let Some(p) = previous
            {
                self.faults.retain(|f| *f != Fault::ReplayResponse(n));
                return ReaderOutcome::Reply(p);
            }
        }
        ReaderOutcome::Reply(reply)
    }

    fn tag_command(&mut self, frame: &[u8]) -> TagReply {
        let before_writes = frame.first() == Some(&cmd::WRITE);
        let r = self.tag.command(frame);
        if before_writes && r == TagReply::Ack {
            self.dirty = true;
        }
        if frame.first() == Some(&cmd::READ) || frame.first() == Some(&cmd::FAST_READ) {
            // The NFC counter may have counted.
            self.dirty = true;
        }
        r
    }

    fn handle(&mut self, apdu: &[u8]) -> Vec<u8> {
        let ok = |mut d: Vec<u8>| {
            d.extend_from_slice(&[0x90, 0x00]);
            d
        };
        let failed = StatusWord::Failed.to_bytes().to_vec();
        let iso4 = self.tag.kind() == SimTagKind::Ntag424;
        match apdu {
            // GET DATA: UID
            [0xFF, 0xCA, 0x00, 0x00, _] => {
                let uid = self.tag.uid();
                ok(uid.to_vec())
            }
            // GET DATA: ATS (only ISO 14443-4 cards have one)
            [0xFF, 0xCA, 0x01, 0x00, _] if iso4 => ok(vec![0x06, 0x77, 0x77, 0x71, 0x02, 0x80]),
            [0xFF, 0xCA, 0x01, 0x00, _] => StatusWord::NotSupported.to_bytes().to_vec(),
            // READ BINARY (4 pages at most)
            [0xFF, 0xB0, 0x00, page, le] if *le <= 0x10 && !iso4 => {
                match self.tag_command(&[cmd::READ, *page]) {
                    TagReply::Data(mut d) => {
                        d.truncate(if *le == 0 { 16 } else { usize::from(*le) });
                        ok(d)
                    }
                    _ => failed,
                }
            }
            [0xFF, 0xB0, ..] => StatusWord::WrongLength.to_bytes().to_vec(),
            // UPDATE BINARY (one page)
            [0xFF, 0xD6, 0x00, page, 0x04, d0, d1, d2, d3] if !iso4 => {
                match self.tag_command(&[cmd::WRITE, *page, *d0, *d1, *d2, *d3]) {
                    TagReply::Ack => ok(Vec::new()),
                    _ => failed,
                }
            }
            // ACR1252U-class readers take LED and buzzer commands as escapes, not APDUs.
            [0xFF, 0x00, 0x40 | 0x48, ..] if self.dialect == Dialect::Raw => {
                StatusWord::NotSupported.to_bytes().to_vec()
            }
            // Direct transmit, raw: the tag's command as is.
            [0xFF, 0x00, 0x00, 0x00, lc, frame @ ..]
                if usize::from(*lc) == frame.len() && self.dialect == Dialect::Raw =>
            {
                match self.tag_command(frame) {
                    TagReply::Data(d) => ok(d),
                    TagReply::Ack => ok(vec![0x0A]),
                    TagReply::Nak(n) => ok(vec![n]),
                    TagReply::Silent => failed,
                }
            }
            // LED / buzzer
            [0xFF, 0x00, 0x40, p2, 0x04, _, _, _, _] => {
                let mask_r = p2 & 0x04 != 0;
                let mask_g = p2 & 0x08 != 0;
                if mask_r {
                    self.led = (self.led & !1) | (p2 & 1);
                }
                if mask_g {
                    self.led = (self.led & !2) | (p2 & 2);
                }
                vec![0x90, self.led]
            }
            // Firmware version (ASCII, no status word, as ACS documents)
            [0xFF, 0x00, 0x48, 0x00, 0x00] => b"ACR122U215".to_vec(),
            // PICC operating parameter
            [0xFF, 0x00, 0x50, 0x00, 0x00] => vec![0x90, 0xFF],
            [0xFF, 0x00, 0x51, pp, 0x00] => vec![0x90, *pp],
            // Buzzer on detection
            [0xFF, 0x00, 0x52, _, 0x00] => vec![0x90, 0x00],
            // Direct transmit: PN532 InCommunicateThru / InDataExchange
            [0xFF, 0x00, 0x00, 0x00, lc, rest @ ..] if usize::from(*lc) == rest.len() => match rest
            {
                [0xD4, 0x42, frame @ ..] => ok(self.pn532(0x43, frame)),
                [0xD4, 0x40, 0x01, frame @ ..] => ok(self.pn532(0x41, frame)),
                _ => StatusWord::NotSupported.to_bytes().to_vec(),
            },
            [0xFF, ..] => StatusWord::UnsupportedInstruction.to_bytes().to_vec(),
            _ if iso4 => vec![0x6D, 0x00],
            _ => StatusWord::UnsupportedInstruction.to_bytes().to_vec(),
        }
    }

    /// The PN532 answer `D5 <code> <status> <data>`; 4-bit ACK/NAK arrive as a CRC
    /// error (status 02), silence as a timeout (status 01), as on real hardware.
    fn pn532(&mut self, code: u8, frame: &[u8]) -> Vec<u8> {
        match self.tag_command(frame) {
            TagReply::Data(d) => [&[0xD5, code, 0x00][..], &d].concat(),
            TagReply::Ack | TagReply::Nak(_) => vec![0xD5, code, 0x02],
            TagReply::Silent => vec![0xD5, code, 0x01],
        }
    }
}

fn is_page_write(apdu: &[u8]) -> bool {
    match apdu {
        [0xFF, 0xD6, ..] => true,
        [0xFF, 0x00, 0x00, 0x00, _, 0xD4, 0x42, c, ..]
        | [0xFF, 0x00, 0x00, 0x00, _, 0xD4, 0x40, 0x01, c, ..]
        | [0xFF, 0x00, 0x00, 0x00, _, c, ..] => *c == cmd::WRITE,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(kind: SimTagKind, faults: Vec<Fault>) -> SimReader {
        let mut r = SimReader::new(SimTag::with_seed(kind, 1), faults);
        r.power_on();
        r
    }

    fn reply(o: ReaderOutcome) -> Vec<u8> {
        match o {
            ReaderOutcome::Reply(v) => v,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn pseudo_apdus_and_direct_transmit() {
        let mut r = reader(SimTagKind::Ntag215, vec![]);
        let uid = reply(r.transmit(&[0xFF, 0xCA, 0, 0, 0]));
        assert_eq!(uid.len(), 9);
        assert_eq!(&uid[7..], &[0x90, 0x00]);
        assert_eq!(reply(r.transmit(&[0xFF, 0xCA, 1, 0, 0])), vec![0x6A, 0x81]);
        let v = reply(r.transmit(&[0xFF, 0, 0, 0, 3, 0xD4, 0x42, 0x60]));
        assert_eq!(v, vec![0xD5, 0x43, 0, 0, 4, 4, 2, 1, 0, 0x11, 3, 0x90, 0]);
        assert_eq!(
            reply(r.transmit(&[0xFF, 0xD6, 0, 4, 4, 1, 2, 3, 4])),
            vec![0x90, 0]
        );
        let rb = reply(r.transmit(&[0xFF, 0xB0, 0, 4, 0x10]));
        assert_eq!(&rb[..4], &[1, 2, 3, 4]);
        assert_eq!(rb.len(), 18);
        // write to page 0 → NAK → 63 00, then the tag is IDLE: direct transmit times out
        assert_eq!(
            reply(r.transmit(&[0xFF, 0xD6, 0, 0, 4, 1, 2, 3, 4])),
            vec![0x63, 0]
        );
        assert_eq!(
            reply(r.transmit(&[0xFF, 0, 0, 0, 3, 0xD4, 0x42, 0x60])),
            vec![0xD5, 0x43, 1, 0x90, 0]
        );
        r.power_on();
        let fr = reply(r.transmit(&[0xFF, 0, 0, 0, 5, 0xD4, 0x42, 0x3A, 4, 6]));
        assert_eq!(fr.len(), 3 + 12 + 2);
        assert_eq!(reply(r.transmit(&[0xFF, 0xB0, 0, 4, 0x20])), vec![0x67, 0]);
    }

    #[test]
    fn led_buzzer_and_firmware() {
        let mut r = reader(SimTagKind::Ntag213, vec![]);
        assert_eq!(
            reply(r.transmit(&[0xFF, 0, 0x40, 0x50, 4, 5, 5, 3, 1])),
            vec![0x90, 0x00]
        );
        assert_eq!(
            reply(r.transmit(&[0xFF, 0, 0x40, 0x0E, 4, 1, 1, 1, 1])),
            vec![0x90, 0x02]
        );
        assert_eq!(
            reply(r.transmit(&[0xFF, 0, 0x48, 0, 0])),
            b"ACR122U215".to_vec()
        );
    }

    #[test]
    fn faults_fire_once_at_their_count() {
        let w = |p: u8| [0xFF, 0xD6, 0, p, 4, 9, 9, 9, 9];
        let mut r = reader(SimTagKind::Ntag215, vec![Fault::PullAtWrite(2)]);
        assert_eq!(reply(r.transmit(&w(4))), vec![0x90, 0]);
        assert_eq!(
            r.transmit(&w(5)),
            ReaderOutcome::ReplyThenRemove(vec![0x63, 0])
        );
        assert_ne!(&r.tag().eeprom()[20..24], &[9, 9, 9, 9]);

        let mut r = reader(SimTagKind::Ntag215, vec![Fault::TearAtWrite(1)]);
        assert_eq!(r.transmit(&w(6)), ReaderOutcome::TornAway);
        assert_eq!(&r.tag().eeprom()[24..28], &[9, 9, 9, 9]);

        let mut r = reader(
            SimTagKind::Ntag215,
            vec![Fault::NakAt(2), Fault::ResetAfter(3)],
        );
        assert_eq!(reply(r.transmit(&[0xFF, 0xB0, 0, 4, 16])).len(), 18);
        assert_eq!(reply(r.transmit(&[0xFF, 0xB0, 0, 4, 16])), vec![0x63, 0]);
        r.power_on();
        assert_eq!(reply(r.transmit(&[0xFF, 0xB0, 0, 4, 16])).len(), 18);
        assert_eq!(reply(r.transmit(&[0xFF, 0xB0, 0, 4, 16])).len(), 18);
        assert_eq!(reply(r.transmit(&[0xFF, 0xB0, 0, 4, 16])).len(), 18);
        assert_eq!(
            r.transmit(&[0xFF, 0xB0, 0, 4, 16]),
            ReaderOutcome::ResetByOtherClient
        );
        assert_eq!(reply(r.transmit(&[0xFF, 0xB0, 0, 4, 16])).len(), 18);
    }

    #[test]
    fn ntag424_answers_iso_apdus_only() {
        let mut r = reader(SimTagKind::Ntag424, vec![]);
        assert_eq!(
            reply(r.transmit(&[0x90, 0x60, 0, 0, 0])).last(),
            Some(&0xAF)
        );
        assert_eq!(
            reply(r.transmit(&[0xFF, 0xCA, 1, 0, 0]))[..6],
            [6, 0x77, 0x77, 0x71, 2, 0x80]
        );
        assert_eq!(
            reply(r.transmit(&[0xFF, 0, 0, 0, 3, 0xD4, 0x42, 0x60])),
            vec![0xD5, 0x43, 1, 0x90, 0]
        );
    }

    #[test]
    fn fault_specs_parse() {
        assert_eq!("pull-at-write:3".parse(), Ok(Fault::PullAtWrite(3)));
        assert_eq!(
            "slow-ms:250".parse(),
            Ok(Fault::Slow(Duration::from_millis(250)))
        );
        assert!(
            "explode:1"
                .parse::<Fault>()
                .unwrap_err()
                .contains("pull-at-write:N")
        );
        assert!("nak-at".parse::<Fault>().is_err());
    }
}

//! NTAG 424 DNA with SUN (`ntag424-reference.md` §11): write the URL template, turn on
//! SDM, change the card's keys to Tapkit's per-card keys, and verify two taps with the
//! server's own algorithm; and the way back to factory keys.
//!
//! **Never a card with unknown keys.** Before each ChangeKey the step is handed to the
//! caller's journal (which must make it durable before returning). The card's key
//! versions (GetKeyVersion, readable without a key) say which slots changed: factory
//! keys are version 0, Tapkit's keys carry the key file's version. A card pulled in the
//! middle is recognised on the next placement from those versions and finished (or, by
//! `reset`, rolled back); no key is ever guessed.
//!
//! Keys are never logged: only slots and versions are.

use serde::Serialize;
use tapkit_core::apdu::{Apdu, StatusWord, split_response};
use tapkit_core::ndef;
use tapkit_core::ntag424::crypto::Key;
use tapkit_core::ntag424::keyfile::KeyFile;
use tapkit_core::ntag424::keys::{FILE_SLOT, META_SLOT, MasterKey};
use tapkit_core::ntag424::session::{self, CommMode, Session, SmError};
use tapkit_core::ntag424::sun;

use super::{DriverError, TagDriver};
use crate::reader::Transport;

/// The placeholders a card fills in on every read.
pub const E_PLACEHOLDER: &str = "00000000000000000000000000000000";
/// The MAC's placeholder.
pub const C_PLACEHOLDER: &str = "0000000000000000";

const FACTORY: Key = [0; 16];
const NDEF_FILE: u8 = 2;
/// The NDEF application's DF name.
const NDEF_APP: [u8; 7] = [0xD2, 0x76, 0x00, 0x00, 0x85, 0x01, 0x01];

/// What the card's keys are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum KeyState {
    /// All five keys as delivered (version 0).
    Factory,
    /// All five keys are Tapkit's, of this key version.
    Tapkit {
        /// The key file's version.
        version: u8,
    },
    /// Some slots changed, some not: a sequence that was interrupted.
    Partial {
        /// The version the changed slots carry.
        version: u8,
        /// The slots still at version 0.
        #[serde(skip)]
        versions: [u8; 5],
    },
}

/// One ChangeKey, journaled before it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyStep {
    /// The card.
    pub uid: String,
    /// `provision` (to Tapkit's keys) or `reset` (back to factory keys).
    pub op: &'static str,
    /// The key slot about to change.
    pub slot: u8,
    /// The slot's key version before the change (0 = factory).
    pub from_version: u8,
    /// Its version after.
    pub to_version: u8,
}

/// What `write_sun` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SunReport {
    /// Always `NTAG424DNA`.
    #[serde(rename = "type")]
    pub tag_type: tapkit_core::ntag::TagType,
    /// UID, hex.
    pub uid: String,
    /// The key file's version the card is keyed with (register the card with it).
    pub key_version: u8,
    /// The URL as stored, with its placeholders.
    pub url: String,
    /// The two URLs read back as a phone reads them, each verified.
    pub urls_as_read: Vec<String>,
    /// SDMReadCtr of the last read.
    pub counter: u32,
    /// The card was found half-provisioned (pulled mid-sequence) and finished.
    pub resumed: bool,
    /// The card was already done with this URL: nothing was written.
    pub already_written: bool,
    /// ChangeKey commands sent by this run.
    pub keys_changed: u8,
    /// APDUs this operation took.
    pub apdus: u32,
}

/// What `reset_sun` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResetReport {
    /// UID, hex.
    pub uid: String,
    /// The key version the card was keyed with (0: it was factory already).
    pub was_version: u8,
    /// ChangeKey commands sent.
    pub keys_changed: u8,
}

/// An NTAG 424 DNA as found on the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnaCard {
    /// Its UID (from GetVersion).
    pub uid: [u8; 7],
    /// Key versions of slots 0–4.
    pub versions: [u8; 5],
    /// Whether SDM is on for the NDEF file.
    pub sdm: bool,
}

impl DnaCard {
    /// The key state, from the versions.
    pub fn key_state(&self) -> Result<KeyState, DriverError> {
        let nonzero: Vec<u8> = self.versions.iter().copied().filter(|v| *v != 0).collect();
        match nonzero.first() {
            None => Ok(KeyState::Factory),
            Some(&v) if nonzero.iter().any(|x| *x != v) => Err(DriverError::SunKeys {
                detail: format!(
                    "its key slots carry several key versions ({:?})",
                    self.versions
                ),
            }),
            Some(&version) if nonzero.len() == 5 => Ok(KeyState::Tapkit { version }),
            Some(&version) => Ok(KeyState::Partial {
                version,
                versions: self.versions,
            }),
        }
    }
}

/// The SUN URL template for `url`: `url?e=<32 zeros>&c=<16 zeros>`.
pub fn sun_template(url: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}e={E_PLACEHOLDER}&c={C_PLACEHOLDER}")
}

/// The NDEF file for `template` and the byte offsets of `e`'s and `c`'s values in it.
fn ndef_file(template: &str) -> Result<(Vec<u8>, u32, u32), DriverError> {
    let message = ndef::uri_message(template);
    let mut file = Vec::with_capacity(2 + message.len());
    let too_long = || DriverError::DoesNotFit {
        tag: tapkit_core::ntag::TagType::Ntag424Dna,
        needed: 2 + message.len(),
        available: 128,
    };
    // One ISO UPDATE BINARY of at most 128 bytes is written atomically [D §8.6].
    if 2 + message.len() > 128 {
        return Err(too_long());
    }
    file.extend_from_slice(
        &u16::try_from(message.len())
            .map_err(|_| too_long())?
            .to_be_bytes(),
    );
    file.extend_from_slice(&message);
    let needle = format!("e={E_PLACEHOLDER}&c={C_PLACEHOLDER}");
    let at = file
        .windows(needle.len())
        .rposition(|w| w == needle.as_bytes())
        .ok_or_else(too_long)?;
    // At most 128 bytes, so the offsets fit.
    let e = u32::try_from(at + 2).unwrap_or(0);
    let c = e + 32 + 3;
    Ok((file, e, c))
}

/// ChangeFileSettings' data: SDM on, plain comm, Read free, Write/RW/Change key 0; UID
/// and counter mirrored in encrypted PICCData (MetaRead = key 1), the MAC with key 2 over
/// nothing (input offset = MAC offset), counter retrieval never.
fn sdm_settings(picc: u32, mac: u32) -> Vec<u8> {
    let mut v = vec![0x40, 0x00, 0xE0, 0xC1, 0xFF, (META_SLOT << 4) | FILE_SLOT];
    for o in [picc, mac, mac] {
        v.extend_from_slice(&o.to_le_bytes()[..3]);
    }
    v
}

/// The factory NDEF settings (no SDM, everything free but Change: key 0).
const FACTORY_SETTINGS: [u8; 3] = [0x00, 0xE0, 0xEE];

/// The part of a SUN template before `e`'s value (`https://…/r/CODE?e=`).
fn template_base(template: &str) -> &str {
    template
        .rfind("e=")
        .map_or(template, |i| &template[..i + 2])
}

/// `on_card` when it is `template` with values filled in, else the card belongs to
/// another URL.
fn ours(template: &str, on_card: Option<String>) -> Result<String, DriverError> {
    match on_card {
        Some(url) if url.starts_with(template_base(template)) => Ok(url),
        other => Err(DriverError::SunHoldsOtherUrl {
            existing: other.unwrap_or_else(|| "no URL (an empty NDEF file)".into()),
        }),
    }
}

fn unknown_version(version: u8) -> DriverError {
    DriverError::SunKeys {
        detail: format!(
            "it is keyed under key version {version}, which this key file does not have; use the key file it was keyed with"
        ),
    }
}

fn refused(op: &'static str, sw: StatusWord) -> DriverError {
    DriverError::SunRefused {
        op,
        status: sw.to_string(),
    }
}

impl<T: Transport> TagDriver<T> {
    /// A native command `90 INS 00 00 [Lc data] 00`: the data and the status word.
    fn dna(&mut self, ins: u8, data: &[u8]) -> Result<(Vec<u8>, StatusWord), DriverError> {
        let resp = self.exchange(&Apdu {
            cla: 0x90,
            ins,
            p1: 0,
            p2: 0,
            data: data.to_vec(),
            le: Some(0),
        })?;
        let (d, sw) = split_response(&resp).ok_or(crate::reader::TransportError::NoResponse)?;
        Ok((d.to_vec(), sw))
    }

    fn iso(
        &mut self,
        ins: u8,
        p1: u8,
        p2: u8,
        data: &[u8],
        le: Option<u8>,
    ) -> Result<Vec<u8>, DriverError> {
        let resp = self.exchange(&Apdu {
            cla: 0x00,
            ins,
            p1,
            p2,
            data: data.to_vec(),
            le,
        })?;
        match split_response(&resp) {
            Some((d, StatusWord::Ok)) => Ok(d.to_vec()),
            Some((_, sw)) => Err(refused(
                match ins {
                    0xA4 => "selecting the NDEF file",
                    0xB0 => "reading the NDEF file",
                    _ => "writing the NDEF file",
                },
                sw,
            )),
            None => Err(crate::reader::TransportError::NoResponse.into()),
        }
    }

    fn select_ndef(&mut self) -> Result<(), DriverError> {
        self.iso(0xA4, 0x04, 0x0C, &NDEF_APP, Some(0))?;
        self.iso(0xA4, 0x00, 0x0C, &[0xE1, 0x04], None)?;
        Ok(())
    }

    /// Checks that the card is an NTAG 424 DNA; `otherwise` says, for the type found,
    /// what to do instead.
    pub fn expect_ntag424(
        &mut self,
        otherwise: impl FnOnce(tapkit_core::ntag::TagType) -> String,
    ) -> Result<(), DriverError> {
        match self.read_type()? {
            tapkit_core::ntag::TagType::Ntag424Dna => Ok(()),
            tag => Err(DriverError::Unsupported {
                tag,
                reason: otherwise(tag),
            }),
        }
    }

    /// GetVersion's UID, the key versions and whether SDM is on.
    pub fn dna_card(&mut self) -> Result<DnaCard, DriverError> {
        let mut uid = None;
        let (_, sw) = self.dna(0x60, &[])?;
        if sw == StatusWord::Other(0x91AF) {
            let (_, sw) = self.dna(0xAF, &[])?;
            if sw == StatusWord::Other(0x91AF) {
                let (d, sw) = self.dna(0xAF, &[])?;
                if sw == StatusWord::Other(0x9100) && d.len() >= 7 {
                    uid = <[u8; 7]>::try_from(&d[..7]).ok();
                }
            }
        }
        let uid = uid.ok_or(DriverError::Protocol {
            op: "GetVersion",
            detail: "no UID in its third part".into(),
        })?;
        if uid == [0; 7] {
            return Err(DriverError::SunKeys {
                detail: "it has Random ID turned on, which Tapkit does not use".into(),
            });
        }
        self.select_ndef()?;
        let mut versions = [0u8; 5];
        for (slot, v) in (0u8..).zip(versions.iter_mut()) {
            match self.dna(0x64, &[slot])? {
                (d, StatusWord::Other(0x9100)) if d.len() == 1 => *v = d[0],
                (_, sw) => return Err(refused("GetKeyVersion", sw)),
            }
        }
        let sdm = match self.dna(0xF5, &[NDEF_FILE])? {
            (d, StatusWord::Other(0x9100)) if d.len() >= 7 => d[1] & 0x40 != 0,
            (_, sw) => return Err(refused("GetFileSettings", sw)),
        };
        Ok(DnaCard { uid, versions, sdm })
    }

    /// AuthenticateEV2First with `key` in `slot`. A wrong key is [`DriverError::SunKeys`].
    fn authenticate(&mut self, slot: u8, key: &Key, what: &str) -> Result<Session, DriverError> {
        let (d, sw) = self.dna(0x71, &[slot, 0x00])?;
        let enc_b: [u8; 16] = match (sw, d.try_into()) {
            (StatusWord::Other(0x91AF), Ok(b)) => b,
            (sw, _) => return Err(refused("AuthenticateEV2First", sw)),
        };
        let mut rnd_a = [0u8; 16];
        getrandom::fill(&mut rnd_a).map_err(|e| DriverError::Protocol {
            op: "AuthenticateEV2First",
            detail: format!("no random numbers from the system: {e}"),
        })?;
        let (part2, rnd_b) = session::reader_answer(key, &enc_b, &rnd_a);
        let (d, sw) = self.dna(0xAF, &part2)?;
        let wrong = || DriverError::SunKeys {
            detail: format!("its key {slot} is not {what}"),
        };
        match sw {
            StatusWord::Other(0x9100) => {
                session::reader_confirm(key, &rnd_a, &rnd_b, &d).map_err(|_| wrong())
            }
            StatusWord::Other(0x91AE) => Err(wrong()),
            sw => Err(refused("AuthenticateEV2First", sw)),
        }
    }

    /// A command in secure messaging; its answer opened and checked.
    fn secure(
        &mut self,
        s: &mut Session,
        op: &'static str,
        ins: u8,
        header: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, DriverError> {
        let field = s.wrap_command(CommMode::Full, ins, header, data);
        match self.dna(ins, &field)? {
            (d, StatusWord::Other(0x9100)) => s
                .open_response(CommMode::Full, &d)
                .map_err(|error| DriverError::SecureMessaging { op, error }),
            (_, StatusWord::Other(0x911E)) if ins == 0xC4 => Err(DriverError::SunKeys {
                detail: format!("its key {} is not the one Tapkit expected there", header[0]),
            }),
            (_, sw) => Err(refused(op, sw)),
        }
    }

    fn change_key(
        &mut self,
        s: &mut Session,
        slot: u8,
        new: (&Key, u8),
        old: &Key,
        step: &KeyStep,
        journal: &mut dyn FnMut(&KeyStep) -> Result<(), String>,
    ) -> Result<(), DriverError> {
        journal(step).map_err(DriverError::Journal)?;
        tracing::info!(
            slot,
            from = step.from_version,
            to = step.to_version,
            "ChangeKey"
        );
        let data = session::change_key_data(slot, new.0, old, new.1);
        if slot != 0 {
            self.secure(s, "ChangeKey", 0xC4, &[slot], &data)?;
            return Ok(());
        }
        // Key 0 is the session's own key: the answer is a bare 91 00, the session is over.
        let field = s.wrap_command(CommMode::Full, 0xC4, &[0], &data);
        match self.dna(0xC4, &field)? {
            (d, StatusWord::Other(0x9100)) if d.is_empty() => Ok(()),
            (_, StatusWord::Other(0x9100)) => Err(DriverError::SecureMessaging {
                op: "ChangeKey",
                error: SmError::Length { got: 0 },
            }),
            (_, sw) => Err(refused("ChangeKey", sw)),
        }
    }

    /// Reads the NDEF file as a phone does (select, NLEN, message) and returns the URL.
    pub fn read_sun_url(&mut self) -> Result<String, DriverError> {
        self.read_ndef_uri()?
            .ok_or_else(|| DriverError::Content("the NDEF file holds no message".into()))
    }

    /// Like [`Self::read_sun_url`], `None` for an empty NDEF file.
    pub fn read_ndef_uri(&mut self) -> Result<Option<String>, DriverError> {
        self.select_ndef()?;
        let nlen = self.iso(0xB0, 0, 0, &[], Some(2))?;
        let n = match nlen.as_slice() {
            [hi, lo] => usize::from(u16::from_be_bytes([*hi, *lo])),
            _ => 0,
        };
        if n == 0 {
            return Ok(None);
        }
        let Ok(len) = u8::try_from(n) else {
            return Err(DriverError::Content(format!(
                "its NDEF length {n} is longer than the file"
            )));
        };
        let message = self.iso(0xB0, 0, 2, &[], Some(len))?;
        ndef::decode_first_uri(&message)
            .map(Some)
            .map_err(|e| DriverError::Content(e.to_string()))
    }

    /// Two taps, as a phone makes them (the field reset between), each checked with the
    /// server's algorithm: K_meta decrypts `e` to this UID, the counter rises, `c`
    /// verifies with the card's own K_file.
    fn verify_taps(
        &mut self,
        uid: &[u8; 7],
        key: &MasterKey,
        template: &str,
    ) -> Result<(Vec<String>, u32), DriverError> {
        let bad = |detail: String| DriverError::SunVerify { detail };
        let mut urls = Vec::new();
        let mut last = 0;
        for _ in 0..2 {
            self.transport_mut().reconnect()?;
            let url = ours(template, self.read_ndef_uri()?)?;
            let query = &url[template_base(template).len()..];
            let e = query.get(..32).unwrap_or_default();
            let c = query.get(35..51).unwrap_or_default();
            let picc = sun::decrypt_picc(&key.meta_key(), e)
                .map_err(|e| bad(format!("its e= does not decrypt ({e})")))?;
            if &picc.uid != uid {
                return Err(bad("its e= names another UID".into()));
            }
            if picc.counter <= last {
                return Err(bad(format!(
                    "its counter went from {last} to {}",
                    picc.counter
                )));
            }
            sun::check_mac(&key.card_key(FILE_SLOT, uid), &picc, c, b"")
                .map_err(|e| bad(format!("its c= does not verify ({e})")))?;
            last = picc.counter;
            urls.push(url);
        }
        Ok((urls, last))
    }

    /// Provisions an NTAG 424 DNA for `url` with SUN (see the module's note), or finishes
    /// one that was pulled mid-way. `journal` gets each ChangeKey before it is sent.
    pub fn write_sun(
        &mut self,
        url: &str,
        keys: &KeyFile,
        journal: &mut dyn FnMut(&KeyStep) -> Result<(), String>,
    ) -> Result<SunReport, DriverError> {
        let start = self.traffic.apdus;
        let template = sun_template(url);
        let (file, picc_at, mac_at) = ndef_file(&template)?;
        let card = self.dna_card()?;
        let uid_hex = crate::hex::encode(&card.uid);
        let state = card.key_state()?;
        let key_for = |version: u8| keys.version(version).ok_or(unknown_version(version));
        let (key, versions) = match state {
            KeyState::Tapkit { version } => {
                let key = key_for(version)?;
                // Finished already: by an earlier run, or one torn at its last ChangeKey
                // (for another URL: SunHoldsOtherUrl).
                let (urls, counter) = self.verify_taps(&card.uid, key, &template)?;
                return Ok(SunReport {
                    tag_type: tapkit_core::ntag::TagType::Ntag424Dna,
                    uid: uid_hex,
                    key_version: version,
                    url: template,
                    urls_as_read: urls,
                    counter,
                    resumed: false,
                    already_written: true,
                    keys_changed: 0,
                    apdus: self.traffic.apdus - start,
                });
            }
            KeyState::Partial { version, versions } => (key_for(version)?, versions),
            KeyState::Factory => (
                keys.current().ok_or(DriverError::SunKeys {
                    detail: "the key file has no key".into(),
                })?,
                [0; 5],
            ),
        };
        let v = key.version();
        let resumed = state != KeyState::Factory;
        if card.sdm {
            // Settings were changed before the card left: the URL must be ours.
            self.transport_mut().reconnect()?;
            ours(&template, self.read_ndef_uri()?)?;
        } else {
            // ISO UPDATE BINARY works only before authenticating [D Tables 89, 92].
            self.select_ndef()?;
            self.iso(0xD6, 0, 0, &file, None)?;
        }
        self.select_ndef()?;
        let k0 = if versions[0] == 0 {
            FACTORY
        } else {
            key.card_key(0, &card.uid)
        };
        let mut s = self.authenticate(
            0,
            &k0,
            if versions[0] == 0 {
                "the factory key: this card was keyed elsewhere (another brand's, or another key file's); Tapkit leaves it untouched"
            } else {
                "this key file's"
            },
        )?;
        self.secure(
            &mut s,
            "ChangeFileSettings",
            0x5F,
            &[NDEF_FILE],
            &sdm_settings(picc_at, mac_at),
        )?;
        let mut changed = 0;
        for slot in [1u8, 2, 3, 4, 0] {
            if versions[usize::from(slot)] == v {
                continue;
            }
            let step = KeyStep {
                uid: uid_hex.clone(),
                op: "provision",
                slot,
                from_version: 0,
                to_version: v,
            };
            self.change_key(
                &mut s,
                slot,
                (&key.card_key(slot, &card.uid), v),
                &FACTORY,
                &step,
                journal,
            )?;
            changed += 1;
        }
        let (urls, counter) = self.verify_taps(&card.uid, key, &template)?;
        Ok(SunReport {
            tag_type: tapkit_core::ntag::TagType::Ntag424Dna,
            uid: uid_hex,
            key_version: v,
            url: template,
            urls_as_read: urls,
            counter,
            resumed,
            already_written: false,
            keys_changed: changed,
            apdus: self.traffic.apdus - start,
        })
    }

    /// Returns a Tapkit SUN card to factory keys and settings, with an empty NDEF file,
    /// for reuse. Safe to repeat after an interruption: it starts from the versions.
    pub fn reset_sun(
        &mut self,
        keys: &KeyFile,
        journal: &mut dyn FnMut(&KeyStep) -> Result<(), String>,
    ) -> Result<ResetReport, DriverError> {
        let card = self.dna_card()?;
        let uid_hex = crate::hex::encode(&card.uid);
        let was = match card.key_state()? {
            KeyState::Factory => 0,
            KeyState::Tapkit { version } | KeyState::Partial { version, .. } => version,
        };
        let mut changed = 0;
        if was != 0 || card.sdm {
            let key = if was == 0 {
                None
            } else {
                Some(keys.version(was).ok_or(unknown_version(was))?)
            };
            let slot_key = |slot: u8| match (key, card.versions[usize::from(slot)]) {
                (Some(k), v) if v != 0 => k.card_key(slot, &card.uid),
                _ => FACTORY,
            };
            let mut s = self.authenticate(0, &slot_key(0), "this key file's")?;
            self.secure(
                &mut s,
                "ChangeFileSettings",
                0x5F,
                &[NDEF_FILE],
                &FACTORY_SETTINGS,
            )?;
            for slot in [1u8, 2, 3, 4, 0] {
                let from = card.versions[usize::from(slot)];
                if from == 0 {
                    continue;
                }
                let step = KeyStep {
                    uid: uid_hex.clone(),
                    op: "reset",
                    slot,
                    from_version: from,
                    to_version: 0,
                };
                self.change_key(&mut s, slot, (&FACTORY, 0), &slot_key(slot), &step, journal)?;
                changed += 1;
            }
        }
        // End any session left open (key 0 unchanged), so the ISO write is allowed.
        self.transport_mut().reconnect()?;
        self.select_ndef()?;
        self.iso(0xD6, 0, 0, &[0u8; 128], None)?;
        self.iso(0xD6, 0, 128, &[0u8; 128], None)?;
        Ok(ResetReport {
            uid: uid_hex,
            was_version: was,
            keys_changed: changed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::sim::{Fault, SimTag, SimTagKind, SimTransport};

    const URL: &str = "https://book.example.com/r/IRONGYM-7K2M9Q";

    fn keyfile() -> KeyFile {
        KeyFile::new([0x42; 16])
    }

    fn driver(faults: Vec<Fault>) -> TagDriver<SimTransport> {
        TagDriver::new(SimTransport::new(
            SimTag::with_seed(SimTagKind::Ntag424, 77),
            faults,
        ))
    }

    fn no_journal() -> impl FnMut(&KeyStep) -> Result<(), String> {
        |_| Ok(())
    }

    #[test]
    fn the_template_puts_e_and_c_where_the_card_fills_them() {
        let t = sun_template(URL);
        let (file, e, c) = ndef_file(&t).unwrap();
        let at = |o: u32, n: usize| {
            std::str::from_utf8(&file[o as usize..o as usize + n])
                .unwrap()
                .to_owned()
        };
        assert_eq!(at(e - 2, 2), "e=");
        assert_eq!(at(e, 32), E_PLACEHOLDER);
        assert_eq!(at(c - 3, 3), "&c=");
        assert_eq!(at(c, 16), C_PLACEHOLDER);
        assert_eq!(file.len(), c as usize + 16);
        let long = format!("https://{}.example/r/X", "a".repeat(80));
        assert!(matches!(
            ndef_file(&sun_template(&long)),
            Err(DriverError::DoesNotFit { .. })
        ));
    }

    #[test]
    fn a_blank_card_is_provisioned_and_verifies_twice() {
        let mut d = driver(vec![]);
        let mut steps = Vec::new();
        let r = d
            .write_sun(URL, &keyfile(), &mut |s| {
                steps.push(s.clone());
                Ok(())
            })
            .unwrap();
        assert_eq!(r.key_version, 1);
        assert_eq!(r.keys_changed, 5);
        assert_eq!(r.counter, 2);
        assert_eq!(
            steps.iter().map(|s| s.slot).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 0]
        );
        let card = d.transport().reader().ntag424().unwrap();
        assert_eq!(card.key_versions(), [1; 5]);
        let k = keyfile().current().unwrap().clone();
        let uid: [u8; 7] = crate::hex::decode(&r.uid).unwrap().try_into().unwrap();
        assert_eq!(card.key(1), k.meta_key());
        assert_eq!(card.key(2), k.card_key(2, &uid));
        assert_ne!(r.urls_as_read[0], r.urls_as_read[1]);
        // Again: nothing to do, the card verifies.
        let again = d.write_sun(URL, &keyfile(), &mut no_journal()).unwrap();
        assert!(again.already_written);
        assert_eq!(again.counter, 4);
        // Another URL on a finished card is refused.
        let e = d
            .write_sun(
                "https://book.example.com/r/OTHER-1",
                &keyfile(),
                &mut no_journal(),
            )
            .unwrap_err();
        assert!(e.to_string().contains("already a Tapkit SUN card"), "{e}");
    }

    #[test]
    fn a_tear_during_any_change_is_finished_on_the_next_placement() {
        for n in 1..=6 {
            let mut d = driver(vec![Fault::TearAtChange(n)]);
            let e = d.write_sun(URL, &keyfile(), &mut no_journal()).unwrap_err();
            assert!(e.card_left(), "change {n}: {e}");
            d.transport_mut().reinsert();
            let r = d.write_sun(URL, &keyfile(), &mut no_journal()).unwrap();
            assert_eq!(
                d.transport().reader().ntag424().unwrap().key_versions(),
                [1; 5],
                "change {n}"
            );
            assert_eq!(r.resumed || r.already_written, n > 1, "change {n}: {r:?}");
        }
    }

    #[test]
    fn a_card_keyed_elsewhere_is_left_untouched() {
        for slot in [0u8, 3] {
            let mut d = driver(vec![Fault::WrongKey(slot)]);
            let e = d.write_sun(URL, &keyfile(), &mut no_journal()).unwrap_err();
            assert!(matches!(e, DriverError::SunKeys { .. }), "{e}");
            assert!(e.to_string().contains(&format!("key {slot}")), "{e}");
        }
    }

    #[test]
    fn a_replayed_answer_stops_the_sequence() {
        let mut d = driver(vec![Fault::ReplayResponse(2)]);
        let e = d.write_sun(URL, &keyfile(), &mut no_journal()).unwrap_err();
        assert!(matches!(e, DriverError::SecureMessaging { .. }), "{e}");
        // Put back, it finishes: nothing unknown was left on the card.
        d.transport_mut().reinsert();
        d.transport_mut().reader_mut().set_faults(vec![]);
        d.write_sun(URL, &keyfile(), &mut no_journal()).unwrap();
    }

    #[test]
    fn reset_returns_the_card_to_factory_even_after_a_tear() {
        let mut d = driver(vec![]);
        d.write_sun(URL, &keyfile(), &mut no_journal()).unwrap();
        d.transport_mut()
            .reader_mut()
            .set_faults(vec![Fault::TearAtChange(3)]);
        assert!(d.reset_sun(&keyfile(), &mut no_journal()).is_err());
        d.transport_mut().reinsert();
        let r = d.reset_sun(&keyfile(), &mut no_journal()).unwrap();
        assert_eq!(r.was_version, 1);
        let card = d.transport().reader().ntag424().unwrap();
        assert_eq!(card.key_versions(), [0; 5]);
        assert_eq!(card.key(2), [0; 16]);
        assert!(card.ndef_settings().sdm.is_none());
        // And it provisions again, under a rotated key.
        let mut kf = keyfile();
        kf.rotate([0x17; 16]).unwrap();
        let r = d.write_sun(URL, &kf, &mut no_journal()).unwrap();
        assert_eq!(r.key_version, 2);
        assert_eq!(r.counter, 2, "re-enabling SDM restarts the counter");
    }
}

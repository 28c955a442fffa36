//! An emulated NTAG 424 DNA (`ntag424-reference.md`): the NDEF application and its three
//! files, ISO SELECT / READ BINARY / UPDATE BINARY, GetVersion, AuthenticateEV2First,
//! secure messaging in CommMode MAC and Full with the command counter, GetFileSettings /
//! ChangeFileSettings, GetKeyVersion, ChangeKey and GetCardUID. With SDM on, every
//! unauthenticated read of the NDEF file renders a fresh SUN message (encrypted PICCData
//! and SDMMAC) with SDMReadCtr one higher, as the chip does.
//!
//! The card's side of the crypto is `tapkit_core::ntag424`, the same code the provisioner
//! and the server use, itself checked against NXP's published vectors; the provisioner's
//! tests against this card therefore check the protocol (framing, order, counters,
//! offsets), not the crypto twice.
//!
//! Not emulated, and answered `91 1C` (illegal command): ReadData / WriteData, LRP,
//! SetConfiguration, Read_Sig, GetFileCounters. SDM file-data encryption and a MAC
//! without both the UID and the counter mirrored are refused with `91 9E`.
//!
//! Every input is bytes from outside (pcscd): [`Ntag424::command`] answers any byte string
//! with a status word and never panics (fuzzed: `fuzz/fuzz_targets/ntag424_apdu.rs` and a
//! property test below).

use tapkit_core::ntag424::crypto::{Block, Key, ecb_encrypt};
use tapkit_core::ntag424::session::{self, CommMode, Session};
use tapkit_core::ntag424::sun::{self, Picc};

/// The NDEF application's DF name.
pub const NDEF_APP: [u8; 7] = [0xD2, 0x76, 0x00, 0x00, 0x85, 0x01, 0x01];

/// The factory capability container (23 meaningful bytes of the 32-byte file 01).
const FACTORY_CC: [u8; 23] = [
    0x00, 0x17, 0x20, 0x01, 0x00, 0x00, 0xFF, 0x04, 0x06, 0xE1, 0x04, 0x01, 0x00, 0x00, 0x00, 0x05,
    0x06, 0xE1, 0x05, 0x00, 0x80, 0x82, 0x83,
];

/// Native status words (`91 xx`).
mod rc {
    pub const OK: u8 = 0x00;
    pub const ILLEGAL_COMMAND: u8 = 0x1C;
    pub const INTEGRITY: u8 = 0x1E;
    pub const NO_SUCH_KEY: u8 = 0x40;
    pub const LENGTH: u8 = 0x7E;
    pub const PERMISSION_DENIED: u8 = 0x9D;
    pub const PARAMETER: u8 = 0x9E;
    pub const ADDITIONAL_FRAME: u8 = 0xAF;
    pub const AUTHENTICATION: u8 = 0xAE;
    pub const FILE_NOT_FOUND: u8 = 0xF0;
}

/// The SDM part of a file's settings, field by field as ChangeFileSettings sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdm {
    /// SDMOptions: bit7 UID mirror, bit6 SDMReadCtr, bit5 limit, bit4 ENC, bit0 ASCII.
    pub options: u8,
    /// SDMAccessRights as sent (LSB first).
    pub rights: [u8; 2],
    /// Where the plain UID goes (MetaRead = E).
    pub uid_offset: Option<u32>,
    /// Where the plain counter goes (MetaRead = E).
    pub ctr_offset: Option<u32>,
    /// Where the encrypted PICCData goes (MetaRead = key).
    pub picc_offset: Option<u32>,
    /// Where the MAC's input starts.
    pub mac_input_offset: Option<u32>,
    /// Encrypted file data: offset and length.
    pub enc: Option<(u32, u32)>,
    /// Where the MAC goes.
    pub mac_offset: Option<u32>,
    /// SDMReadCtrLimit.
    pub limit: Option<u32>,
}

impl Sdm {
    fn meta_read(&self) -> u8 {
        self.rights[1] >> 4
    }
    fn file_read(&self) -> u8 {
        self.rights[1] & 0x0F
    }
}

/// A file's settings (GetFileSettings / ChangeFileSettings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSettings {
    /// FileOption: bit6 SDM, bits1-0 CommMode.
    pub option: u8,
    /// AccessRights as sent (LSB first): `[RW<<4 | Change, Read<<4 | Write]`.
    pub rights: [u8; 2],
    /// SDM, when bit 6 of the option is set.
    pub sdm: Option<Sdm>,
}

impl FileSettings {
    fn plain(rights: [u8; 2], option: u8) -> Self {
        Self {
            option,
            rights,
            sdm: None,
        }
    }
    fn read_key(&self) -> u8 {
        self.rights[1] >> 4
    }
    fn write_key(&self) -> u8 {
        self.rights[1] & 0x0F
    }
    fn change_key(&self) -> u8 {
        self.rights[0] & 0x0F
    }

    /// Parses ChangeFileSettings' CmdData (the conditional fields of [D Table 69]).
    pub fn parse(d: &[u8]) -> Result<Self, u8> {
        let mut r = Reader(d);
        let option = r.u8()?;
        let rights = [r.u8()?, r.u8()?];
        let sdm = if option & 0x40 != 0 {
            let options = r.u8()?;
            let sdm_rights = [r.u8()?, r.u8()?];
            let meta = sdm_rights[1] >> 4;
            let file = sdm_rights[1] & 0x0F;
            let uid_offset = (options & 0x80 != 0 && meta == 0xE)
                .then(|| r.u24())
                .transpose()?;
            let ctr_offset = (options & 0x40 != 0 && meta == 0xE)
                .then(|| r.u24())
                .transpose()?;
            let picc_offset = (meta <= 4).then(|| r.u24()).transpose()?;
            let mac_input_offset = (file != 0xF).then(|| r.u24()).transpose()?;
            let enc = if file != 0xF && options & 0x10 != 0 {
                Some((r.u24()?, r.u24()?))
            } else {
                None
            };
            let mac_offset = (file != 0xF).then(|| r.u24()).transpose()?;
            let limit = (options & 0x20 != 0).then(|| r.u24()).transpose()?;
            Some(Sdm {
                options,
                rights: sdm_rights,
                uid_offset,
                ctr_offset,
                picc_offset,
                mac_input_offset,
                enc,
                mac_offset,
                limit,
            })
        } else {
            None
        };
        if !r.0.is_empty() {
            return Err(rc::LENGTH);
        }
        Ok(Self {
            option,
            rights,
            sdm,
        })
    }

    /// GetFileSettings' answer for a file of `size` bytes.
    pub fn render(&self, size: u32) -> Vec<u8> {
        let mut v = vec![0x00, self.option, self.rights[0], self.rights[1]];
        push24(&mut v, size);
        if let Some(s) = &self.sdm {
            v.push(s.options);
            v.extend_from_slice(&s.rights);
            for o in [
                s.uid_offset,
                s.ctr_offset,
                s.picc_offset,
                s.mac_input_offset,
            ]
            .into_iter()
            .flatten()
            {
                push24(&mut v, o);
            }
            if let Some((o, l)) = s.enc {
                push24(&mut v, o);
                push24(&mut v, l);
            }
            for o in [s.mac_offset, s.limit].into_iter().flatten() {
                push24(&mut v, o);
            }
        }
        v
    }

    /// The checks of [D Table 71] that a file of `size` bytes must pass (`91 9E`).
    fn check(&self, size: u32) -> Result<(), u8> {
        let Some(s) = &self.sdm else {
            return Ok(());
        };
        let bad = Err(rc::PARAMETER);
        let (meta, file) = (s.meta_read(), s.file_read());
        let uid = s.options & 0x80 != 0;
        let ctr = s.options & 0x40 != 0;
        if s.options & 0x01 == 0 || (meta != 0xF && !uid && !ctr) || (uid && meta == 0xF) {
            return bad;
        }
        if (meta > 4 && meta != 0xE && meta != 0xF) || (file > 4 && file != 0xF) {
            return bad;
        }
        // Not emulated (see the module's note).
        if s.enc.is_some() || (file != 0xF && !(uid && ctr && meta <= 4)) {
            return bad;
        }
        let mut spans: Vec<(u32, u32)> = Vec::new();
        spans.extend(s.uid_offset.map(|o| (o, 14)));
        spans.extend(s.ctr_offset.map(|o| (o, 6)));
        spans.extend(s.picc_offset.map(|o| (o, 32)));
        spans.extend(s.mac_offset.map(|o| (o, 16)));
        for (i, &(o, l)) in spans.iter().enumerate() {
            if o + l > size {
                return bad;
            }
            if spans[..i].iter().any(|&(p, m)| o < p + m && p < o + l) {
                return bad;
            }
        }
        if let (Some(input), Some(mac)) = (s.mac_input_offset, s.mac_offset)
            && input > mac
        {
            return bad;
        }
        Ok(())
    }
}

fn push24(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes()[..3]);
}

/// A cursor over command data that answers `91 7E` when it runs out.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8, u8> {
        let (&b, rest) = self.0.split_first().ok_or(rc::LENGTH)?;
        self.0 = rest;
        Ok(b)
    }
    fn u24(&mut self) -> Result<u32, u8> {
        Ok(u32::from_le_bytes([self.u8()?, self.u8()?, self.u8()?, 0]))
    }
}

/// What the last command was, for the SDM counter rule (a run of reads of one kind
/// shares one counter value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
    Other,
    IsoRead,
}

/// An emulated NTAG 424 DNA.
#[derive(Debug, Clone)]
pub struct Ntag424 {
    uid: [u8; 7],
    keys: [Key; 5],
    versions: [u8; 5],
    cc: [u8; 32],
    ndef: [u8; 256],
    ndef_settings: FileSettings,
    sdm_ctr: u32,
    rng: u64,
    // Volatile: lost when the field goes.
    app_selected: bool,
    file: Option<u8>,
    pending: Option<(u8, Block)>,
    auth: Option<(u8, Session)>,
    version_frame: u8,
    last: Last,
    rendered: Option<Vec<u8>>,
}

/// The number of a file of the NDEF application, by its ISO file id.
fn file_by_id(fid: [u8; 2]) -> Option<u8> {
    match fid {
        [0xE1, 0x03] => Some(1),
        [0xE1, 0x04] => Some(2),
        [0xE1, 0x05] => Some(3),
        _ => None,
    }
}

impl Ntag424 {
    /// A card as delivered: all keys zero, version 0, factory files.
    pub fn factory(uid: [u8; 7], seed: u64) -> Self {
        let mut cc = [0u8; 32];
        cc[..FACTORY_CC.len()].copy_from_slice(&FACTORY_CC);
        Self {
            uid,
            keys: [[0; 16]; 5],
            versions: [0; 5],
            cc,
            ndef: [0; 256],
            ndef_settings: FileSettings::plain([0xE0, 0xEE], 0x00),
            sdm_ctr: 0,
            rng: seed | 1,
            app_selected: false,
            file: None,
            pending: None,
            auth: None,
            version_frame: 0,
            last: Last::Other,
            rendered: None,
        }
    }

    /// Puts a key nobody knows into `slot` (the `wrong-key` fault: a card keyed
    /// elsewhere). Its version stays, so the card still looks factory-fresh.
    pub fn set_unknown_key(&mut self, slot: u8) {
        if let Some(k) = self.keys.get_mut(usize::from(slot)) {
            for b in k.iter_mut() {
                *b = 0xA5;
            }
            k[0] = slot;
        }
    }

    /// The key in `slot` (tests).
    pub fn key(&self, slot: u8) -> Key {
        self.keys[usize::from(slot) % 5]
    }

    /// The key versions of slots 0–4.
    pub fn key_versions(&self) -> [u8; 5] {
        self.versions
    }

    /// The NDEF file as stored (placeholders, not a rendered SUN message).
    pub fn ndef_file(&self) -> &[u8] {
        &self.ndef
    }

    /// SDMReadCtr.
    pub fn sdm_counter(&self) -> u32 {
        self.sdm_ctr
    }

    /// The NDEF file's settings.
    pub fn ndef_settings(&self) -> &FileSettings {
        &self.ndef_settings
    }

    /// The card enters the field (or the field was reset): everything volatile is gone.
    pub fn power_on(&mut self) {
        self.app_selected = false;
        self.file = None;
        self.pending = None;
        self.auth = None;
        self.version_frame = 0;
        self.last = Last::Other;
        self.rendered = None;
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: the card's randomness need not be secret in an emulator, only fresh.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn random_block(&mut self) -> Block {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.random().to_le_bytes());
        b[8..].copy_from_slice(&self.random().to_le_bytes());
        b
    }

    /// Answers one command APDU (data and status word). Any byte string is answered.
    pub fn command(&mut self, apdu: &[u8]) -> Vec<u8> {
        // What the previous command left behind lasts one command only.
        let was = std::mem::replace(&mut self.last, Last::Other);
        let frame = std::mem::take(&mut self.version_frame);
        let pending = self.pending.take();
        match apdu {
            [0x00, rest @ ..] => self.iso(rest, was),
            [0x90, ins, 0x00, 0x00, rest @ ..] => match native_data(rest) {
                Some(data) => {
                    let r = self.native(*ins, data, frame, pending);
                    if r.len() >= 2 && r[r.len() - 2] == 0x91 {
                        let code = r[r.len() - 1];
                        if code != rc::OK && code != rc::ADDITIONAL_FRAME {
                            // Any error ends the session [D §9.1.9].
                            self.auth = None;
                        }
                    }
                    r
                }
                None => {
                    self.auth = None;
                    vec![0x91, rc::LENGTH]
                }
            },
            [0x90, ..] => vec![0x6A, 0x86],
            [_, ..] => vec![0x6E, 0x00],
            [] => vec![0x67, 0x00],
        }
    }

    fn iso(&mut self, rest: &[u8], was: Last) -> Vec<u8> {
        match rest {
            // SELECT by DF name (the application).
            [0xA4, 0x04, p2, lc, tail @ ..] if *p2 == 0x00 || *p2 == 0x0C => {
                let Some(name) = lc_data(*lc, tail) else {
                    return vec![0x67, 0x00];
                };
                if name == NDEF_APP {
                    self.app_selected = true;
                    self.file = None;
                    vec![0x90, 0x00]
                } else {
                    vec![0x6A, 0x82]
                }
            }
            // SELECT by file id.
            [0xA4, 0x00, p2, lc, tail @ ..] if *p2 == 0x00 || *p2 == 0x0C => {
                let Some(fid) = lc_data(*lc, tail) else {
                    return vec![0x67, 0x00];
                };
                match (
                    self.app_selected,
                    <[u8; 2]>::try_from(fid).ok().and_then(file_by_id),
                ) {
                    (true, Some(f)) => {
                        self.file = Some(f);
                        vec![0x90, 0x00]
                    }
                    _ => vec![0x6A, 0x82],
                }
            }
            [0xA4, ..] => vec![0x6A, 0x86],
            [0xB0, p1, p2, le] => self.read_binary(*p1, *p2, *le, was),
            [0xD6, p1, p2, lc, tail @ ..] => {
                let Some(data) = lc_data(*lc, tail) else {
                    return vec![0x67, 0x00];
                };
                self.update_binary(*p1, *p2, data)
            }
            [0xB0, ..] => vec![0x67, 0x00],
            _ => vec![0x6D, 0x00],
        }
    }

    fn file_size(f: u8) -> usize {
        match f {
            1 => 32,
            2 => 256,
            _ => 128,
        }
    }

    fn read_binary(&mut self, p1: u8, p2: u8, le: u8, was: Last) -> Vec<u8> {
        if self.auth.is_some() {
            return vec![0x69, 0x82];
        }
        if p1 & 0x80 != 0 {
            return vec![0x6A, 0x86]; // SFI reads: which SFI maps to which file is unknown
        }
        let Some(f) = self.file else {
            return vec![0x69, 0x86];
        };
        let offset = usize::from(u16::from_be_bytes([p1, p2]));
        let size = Self::file_size(f);
        if offset > size {
            return vec![0x6B, 0x00];
        }
        let content: Vec<u8> = match f {
            1 => self.cc.to_vec(),
            3 => return vec![0x69, 0x82], // CommMode.Full, read key 2
            _ => {
                if self.ndef_settings.read_key() != 0xE {
                    return vec![0x69, 0x82];
                }
                if self.ndef_settings.sdm.is_some() {
                    if was != Last::IsoRead || self.rendered.is_none() {
                        match self.render_sun() {
                            Ok(r) => self.rendered = Some(r),
                            Err(sw) => return sw.to_vec(),
                        }
                    }
                    self.last = Last::IsoRead;
                    self.rendered.clone().unwrap_or_default()
                } else {
                    self.ndef.to_vec()
                }
            }
        };
        let want = if le == 0 { 256 } else { usize::from(le) };
        let end = (offset + want).min(size);
        let mut out = content[offset..end].to_vec();
        out.extend_from_slice(&[0x90, 0x00]);
        out
    }

    /// The NDEF file as a reader sees it now: SDMReadCtr one higher, fresh PICCData, the
    /// MAC over the rendered text.
    fn render_sun(&mut self) -> Result<Vec<u8>, [u8; 2]> {
        let Some(s) = self.ndef_settings.sdm.clone() else {
            return Ok(self.ndef.to_vec());
        };
        let limit = s.limit.unwrap_or(0x00FF_FFFF);
        if self.sdm_ctr >= limit {
            return Err([0x69, 0x82]);
        }
        self.sdm_ctr += 1;
        let picc = Picc {
            uid: self.uid,
            counter: self.sdm_ctr,
        };
        let mut file = self.ndef.to_vec();
        // The offsets passed FileSettings::check against the file's size; `get` keeps a
        // mistake there from ever panicking.
        let put = |file: &mut Vec<u8>, at: u32, text: &str| {
            let at = at as usize;
            if let Some(dst) = file.get_mut(at..at + text.len()) {
                dst.copy_from_slice(text.as_bytes());
            }
        };
        if let Some(o) = s.uid_offset {
            put(&mut file, o, &crate::hex::encode(&self.uid));
        }
        if let Some(o) = s.ctr_offset {
            put(
                &mut file,
                o,
                &crate::hex::encode(&self.sdm_ctr.to_be_bytes()[1..]),
            );
        }
        if let (Some(o), meta @ 0..=4) = (s.picc_offset, s.meta_read()) {
            let r = self.random().to_le_bytes();
            let e = sun::encrypt_picc(
                &self.keys[usize::from(meta)],
                &picc,
                [r[0], r[1], r[2], r[3], r[4]],
            );
            put(&mut file, o, &crate::hex::encode(&e));
        }
        if let (Some(mac_at), Some(input), file_key @ 0..=4) =
            (s.mac_offset, s.mac_input_offset, s.file_read())
        {
            let text = file
                .get(input as usize..mac_at as usize)
                .unwrap_or_default()
                .to_vec();
            let mac = sun::sdm_mac(&self.keys[usize::from(file_key)], &picc, &text);
            put(&mut file, mac_at, &crate::hex::encode(&mac));
        }
        Ok(file)
    }

    fn update_binary(&mut self, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
        if self.auth.is_some() {
            return vec![0x69, 0x82];
        }
        if p1 & 0x80 != 0 {
            return vec![0x6A, 0x86];
        }
        let Some(f) = self.file else {
            return vec![0x69, 0x86];
        };
        let offset = usize::from(u16::from_be_bytes([p1, p2]));
        if offset + data.len() > Self::file_size(f) {
            return vec![0x6B, 0x00];
        }
        match f {
            2 if self.ndef_settings.write_key() == 0xE => {
                self.ndef[offset..offset + data.len()].copy_from_slice(data);
                self.rendered = None;
                vec![0x90, 0x00]
            }
            _ => vec![0x69, 0x82],
        }
    }

    fn ok(mut data: Vec<u8>) -> Vec<u8> {
        data.extend_from_slice(&[0x91, rc::OK]);
        data
    }

    fn native(&mut self, ins: u8, data: &[u8], frame: u8, pending: Option<(u8, Block)>) -> Vec<u8> {
        match ins {
            0x60 => {
                if self.auth.is_some() {
                    // Authenticated GetVersion is MACed over all three frames; not
                    // emulated: the provisioner asks before it authenticates.
                    return vec![0x91, rc::ILLEGAL_COMMAND];
                }
                self.version_frame = 1;
                vec![0x04, 0x04, 0x02, 0x30, 0x00, 0x11, 0x05, 0x91, 0xAF]
            }
            0xAF if frame == 1 => {
                self.version_frame = 2;
                vec![0x04, 0x04, 0x02, 0x01, 0x02, 0x11, 0x05, 0x91, 0xAF]
            }
            0xAF if frame == 2 => {
                let mut v = self.uid.to_vec();
                v.extend_from_slice(&[0xCD, 0x65, 0x93, 0x5D, 0x40, 0x21, 0x26]);
                Self::ok(v)
            }
            0x71 => self.authenticate_first(data),
            0xAF => match pending {
                Some((key_no, rnd_b)) => self.authenticate_second(key_no, &rnd_b, data),
                None => vec![0x91, rc::ILLEGAL_COMMAND],
            },
            0x64 => self.get_key_version(data),
            0xF5 => self.get_file_settings(data),
            0x5F => self.change_file_settings(data),
            0xC4 => self.change_key(data),
            0x51 => self.get_card_uid(data),
            _ => vec![0x91, rc::ILLEGAL_COMMAND],
        }
    }

    fn authenticate_first(&mut self, data: &[u8]) -> Vec<u8> {
        if !self.app_selected {
            return vec![0x91, rc::PERMISSION_DENIED];
        }
        let [key_no, len_cap, caps @ ..] = data else {
            return vec![0x91, rc::LENGTH];
        };
        if usize::from(*len_cap) != caps.len() || caps.len() > 6 {
            return vec![0x91, rc::LENGTH];
        }
        if caps.first().is_some_and(|c| c & 0x02 != 0) {
            return vec![0x91, rc::PERMISSION_DENIED]; // LRP asked of an AES card
        }
        let Some(&k) = self.keys.get(usize::from(*key_no)) else {
            return vec![0x91, rc::NO_SUCH_KEY];
        };
        self.auth = None;
        let rnd_b = self.random_block();
        let enc = ecb_encrypt(&k, &rnd_b);
        self.pending = Some((*key_no, rnd_b));
        let mut v = enc.to_vec();
        v.extend_from_slice(&[0x91, rc::ADDITIONAL_FRAME]);
        v
    }

    fn authenticate_second(&mut self, key_no: u8, rnd_b: &Block, data: &[u8]) -> Vec<u8> {
        let k = self.keys[usize::from(key_no)];
        let r = self.random().to_le_bytes();
        let ti = [r[0], r[1], r[2], r[3]];
        match session::card_confirm(&k, rnd_b, data, ti) {
            Ok((answer, s)) => {
                self.auth = Some((key_no, s));
                Self::ok(answer.to_vec())
            }
            Err(session::SmError::Length { .. }) => vec![0x91, rc::LENGTH],
            Err(_) => vec![0x91, rc::AUTHENTICATION],
        }
    }

    /// Opens a command's data in `mode` when authenticated (plain otherwise), and hands
    /// the header and data to `f`, whose `Ok` data is answered in `answer_mode`.
    fn secured(
        &mut self,
        ins: u8,
        data: &[u8],
        header_len: usize,
        modes: (CommMode, CommMode),
        f: impl FnOnce(&mut Self, &[u8], &[u8]) -> Result<Vec<u8>, u8>,
    ) -> Vec<u8> {
        let Some((_, s)) = self.auth.clone() else {
            if modes.0 == CommMode::Full {
                return vec![0x91, rc::AUTHENTICATION];
            }
            if data.len() < header_len {
                return vec![0x91, rc::LENGTH];
            }
            let (h, d) = data.split_at(header_len);
            return match f(self, h, d) {
                Ok(v) => Self::ok(v),
                Err(code) => vec![0x91, code],
            };
        };
        let (header, plain) = match s.open_command(modes.0, ins, header_len, data) {
            Ok(x) => x,
            Err(session::SmError::Length { .. }) => return vec![0x91, rc::LENGTH],
            Err(_) => return vec![0x91, rc::INTEGRITY],
        };
        match f(self, &header, &plain) {
            Ok(v) => match &mut self.auth {
                Some((_, s)) => Self::ok(s.wrap_response(modes.1, &v)),
                // The command ended the session (ChangeKey of the session's own key).
                None => vec![0x91, rc::OK],
            },
            Err(code) => vec![0x91, code],
        }
    }

    fn get_key_version(&mut self, data: &[u8]) -> Vec<u8> {
        self.secured(0x64, data, 1, (CommMode::Mac, CommMode::Mac), |c, h, d| {
            if !d.is_empty() {
                return Err(rc::LENGTH);
            }
            c.versions
                .get(usize::from(h[0]))
                .map(|v| vec![*v])
                .ok_or(rc::NO_SUCH_KEY)
        })
    }

    fn get_file_settings(&mut self, data: &[u8]) -> Vec<u8> {
        self.secured(0xF5, data, 1, (CommMode::Mac, CommMode::Mac), |c, h, d| {
            if !d.is_empty() {
                return Err(rc::LENGTH);
            }
            match h[0] {
                1 => Ok(FileSettings::plain([0x00, 0xE0], 0x00).render(32)),
                2 => Ok(c.ndef_settings.render(256)),
                3 => Ok(FileSettings::plain([0x30, 0x23], 0x03).render(128)),
                _ => Err(rc::FILE_NOT_FOUND),
            }
        })
    }

    fn change_file_settings(&mut self, data: &[u8]) -> Vec<u8> {
        let change = self.ndef_settings.change_key();
        let key_no = self.auth.as_ref().map(|(k, _)| *k);
        self.secured(
            0x5F,
            data,
            1,
            (CommMode::Full, CommMode::Full),
            |c, h, d| {
                let settings = FileSettings::parse(d)?;
                if h[0] != 2 {
                    // SDM on another file is refused by the chip; the emulation also
                    // keeps files 01 and 03 as delivered.
                    return Err(if settings.sdm.is_some() || h[0] == 1 || h[0] == 3 {
                        rc::PERMISSION_DENIED
                    } else {
                        rc::FILE_NOT_FOUND
                    });
                }
                if key_no != Some(change) {
                    return Err(rc::AUTHENTICATION);
                }
                settings.check(256)?;
                if settings.sdm.is_some() {
                    c.sdm_ctr = 0;
                }
                c.ndef_settings = settings;
                c.rendered = None;
                Ok(Vec::new())
            },
        )
    }

    fn change_key(&mut self, data: &[u8]) -> Vec<u8> {
        let key_no = self.auth.as_ref().map(|(k, _)| *k);
        self.secured(
            0xC4,
            data,
            1,
            (CommMode::Full, CommMode::Full),
            |c, h, d| {
                let slot = usize::from(h[0] & 0x0F);
                if slot > 4 || h[0] & 0xF0 != 0 {
                    return Err(rc::NO_SUCH_KEY);
                }
                if key_no != Some(0) {
                    return Err(rc::AUTHENTICATION);
                }
                if slot == 0 {
                    let [new @ .., version] = d else {
                        return Err(rc::LENGTH);
                    };
                    let new: Key = new.try_into().map_err(|_| rc::LENGTH)?;
                    c.keys[0] = new;
                    c.versions[0] = *version;
                    c.auth = None; // changing the session's own key ends the session
                    return Ok(Vec::new());
                }
                if d.len() != 21 {
                    return Err(rc::LENGTH);
                }
                let mut new: Key = [0; 16];
                for (i, b) in new.iter_mut().enumerate() {
                    *b = d[i] ^ c.keys[slot][i];
                }
                if tapkit_core::ntag424::crypto::crc32nk(&new) != d[17..21] {
                    return Err(rc::INTEGRITY);
                }
                c.keys[slot] = new;
                c.versions[slot] = d[16];
                Ok(Vec::new())
            },
        )
    }

    fn get_card_uid(&mut self, data: &[u8]) -> Vec<u8> {
        if self.auth.is_none() {
            return vec![0x91, rc::AUTHENTICATION];
        }
        self.secured(
            0x51,
            data,
            0,
            (CommMode::Full, CommMode::Full),
            |c, _, d| {
                if d.is_empty() {
                    Ok(c.uid.to_vec())
                } else {
                    Err(rc::LENGTH)
                }
            },
        )
    }
}

/// The data of a native APDU's tail after `90 INS 00 00`: nothing but `00`, or
/// `Lc data 00`.
fn native_data(rest: &[u8]) -> Option<&[u8]> {
    match rest {
        [0x00] => Some(&[]),
        [lc, tail @ .., 0x00] if usize::from(*lc) == tail.len() && *lc != 0 => Some(tail),
        _ => None,
    }
}

/// An ISO command's data: `Lc` bytes, optionally followed by a stray `Le` byte.
fn lc_data(lc: u8, tail: &[u8]) -> Option<&[u8]> {
    let n = usize::from(lc);
    match tail.len() {
        l if l == n => Some(tail),
        l if l == n + 1 => Some(&tail[..n]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tapkit_core::ntag424::session::{reader_answer, reader_confirm};

    const UID: [u8; 7] = [0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66];

    fn native(ins: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![0x90, ins, 0, 0];
        if !data.is_empty() {
            v.push(u8::try_from(data.len()).unwrap());
            v.extend_from_slice(data);
        }
        v.push(0);
        v
    }

    fn sw(r: &[u8]) -> [u8; 2] {
        [r[r.len() - 2], r[r.len() - 1]]
    }

    fn select(c: &mut Ntag424) {
        let mut a = vec![0x00, 0xA4, 0x04, 0x0C, 0x07];
        a.extend_from_slice(&NDEF_APP);
        a.push(0);
        assert_eq!(c.command(&a), vec![0x90, 0]);
    }

    fn auth(c: &mut Ntag424, slot: u8, k: &Key) -> Session {
        let r = c.command(&native(0x71, &[slot, 0]));
        assert_eq!(sw(&r), [0x91, 0xAF]);
        let rnd_a = [7u8; 16];
        let (part2, rnd_b) = reader_answer(k, &r[..16].try_into().unwrap(), &rnd_a);
        let r = c.command(&native(0xAF, &part2));
        assert_eq!(sw(&r), [0x91, 0x00], "{r:02X?}");
        reader_confirm(k, &rnd_a, &rnd_b, &r[..32]).unwrap()
    }

    fn send(
        c: &mut Ntag424,
        s: &mut Session,
        mode: CommMode,
        ins: u8,
        h: &[u8],
        d: &[u8],
    ) -> Vec<u8> {
        let r = c.command(&native(ins, &s.wrap_command(mode, ins, h, d)));
        assert_eq!(sw(&r), [0x91, 0x00], "{ins:02X}: {r:02X?}");
        s.open_response(mode, &r[..r.len() - 2]).unwrap()
    }

    #[test]
    fn factory_card_identifies_and_shows_its_settings() {
        let mut c = Ntag424::factory(UID, 1);
        assert_eq!(sw(&c.command(&[0x90, 0x60, 0, 0, 0])), [0x91, 0xAF]);
        assert_eq!(sw(&c.command(&[0x90, 0xAF, 0, 0, 0])), [0x91, 0xAF]);
        let p3 = c.command(&[0x90, 0xAF, 0, 0, 0]);
        assert_eq!(&p3[..7], &UID);
        select(&mut c);
        assert_eq!(
            c.command(&native(0xF5, &[2])),
            vec![0, 0, 0xE0, 0xEE, 0, 1, 0, 0x91, 0]
        );
        assert_eq!(c.command(&native(0x64, &[3])), vec![0, 0x91, 0]);
    }

    /// The whole provisioning sequence of `ntag424-reference.md` §11 against the card,
    /// then two phone reads that verify with the server's algorithm.
    #[test]
    fn provisioned_card_signs_every_read() {
        let mut c = Ntag424::factory(UID, 9);
        select(&mut c);
        let url = b"tapkit.example/r/CODE?e=00000000000000000000000000000000&c=0000000000000000";
        let mut file = vec![0u8, 0, 0xD1, 0x01, 0, 0x55, 0x04];
        file.extend_from_slice(url);
        file[1] = (file.len() - 2) as u8;
        file[4] = (url.len() + 1) as u8;
        let sel = vec![0x00, 0xA4, 0x00, 0x0C, 0x02, 0xE1, 0x04];
        assert_eq!(c.command(&sel), vec![0x90, 0]);
        let mut upd = vec![0x00, 0xD6, 0, 0, file.len() as u8];
        upd.extend_from_slice(&file);
        assert_eq!(c.command(&upd), vec![0x90, 0]);
        let picc = 7 + 24;
        let mac = picc + 32 + 3;
        let mut s = auth(&mut c, 0, &[0; 16]);
        let mut cfs = vec![0x40, 0x00, 0xE0, 0xC1, 0xFF, 0x12];
        push24(&mut cfs, picc);
        push24(&mut cfs, mac);
        push24(&mut cfs, mac);
        send(&mut c, &mut s, CommMode::Full, 0x5F, &[2], &cfs);
        let meta = [0x11; 16];
        let kfile = [0x22; 16];
        let d = session::change_key_data(1, &meta, &[0; 16], 1);
        send(&mut c, &mut s, CommMode::Full, 0xC4, &[1], &d);
        let d = session::change_key_data(2, &kfile, &[0; 16], 1);
        send(&mut c, &mut s, CommMode::Full, 0xC4, &[2], &d);
        assert_eq!(
            send(&mut c, &mut s, CommMode::Full, 0x51, &[], &[]),
            UID.to_vec()
        );
        let d = session::change_key_data(0, &[0x33; 16], &[0; 16], 1);
        let r = c.command(&native(
            0xC4,
            &s.wrap_command(CommMode::Full, 0xC4, &[0], &d),
        ));
        assert_eq!(
            r,
            vec![0x91, 0x00],
            "key 0 changed: no MAC, the session is over"
        );
        assert_eq!(c.key_versions(), [1, 1, 1, 0, 0]);

        let mut last = 0;
        for _ in 0..2 {
            c.power_on();
            select(&mut c);
            assert_eq!(c.command(&sel), vec![0x90, 0]);
            let nlen = c.command(&[0x00, 0xB0, 0, 0, 2]);
            let body = c.command(&[0x00, 0xB0, 0, 2, nlen[1]]);
            let text = String::from_utf8(body[5..body.len() - 2].to_vec()).unwrap();
            let e = &text[24..56];
            let cc = &text[59..75];
            let p = sun::decrypt_picc(&meta, e).unwrap();
            assert_eq!(p.uid, UID);
            assert!(p.counter > last, "{} after {last}", p.counter);
            last = p.counter;
            sun::check_mac(&kfile, &p, cc, b"").unwrap();
        }
        assert_eq!(last, 2, "one count per tap: NLEN and body share one");
    }

    #[test]
    fn a_replayed_command_and_a_wrong_key_are_refused() {
        let mut c = Ntag424::factory(UID, 3);
        select(&mut c);
        let mut s = auth(&mut c, 0, &[0; 16]);
        let cmd = native(0xF5, &s.wrap_command(CommMode::Mac, 0xF5, &[2], &[]));
        assert_eq!(sw(&c.command(&cmd)), [0x91, 0x00]);
        s.cmd_ctr += 1;
        // The same bytes again: the card's counter moved on, so the MAC is stale.
        assert_eq!(c.command(&cmd), vec![0x91, 0x1E]);
        // The error ended the session: a MACed command is now a plain one with 8 bytes
        // too many.
        let next = native(0xF5, &s.wrap_command(CommMode::Mac, 0xF5, &[2], &[]));
        assert_eq!(c.command(&next), vec![0x91, 0x7E]);

        let mut c = Ntag424::factory(UID, 4);
        c.set_unknown_key(0);
        select(&mut c);
        let r = c.command(&native(0x71, &[0, 0]));
        let (part2, _) = reader_answer(&[0; 16], &r[..16].try_into().unwrap(), &[1; 16]);
        assert_eq!(c.command(&native(0xAF, &part2)), vec![0x91, 0xAE]);
    }

    #[test]
    fn change_key_checks_the_crc_and_settings_their_rules() {
        let mut c = Ntag424::factory(UID, 5);
        select(&mut c);
        let s = auth(&mut c, 0, &[0; 16]);
        let mut d = session::change_key_data(3, &[9; 16], &[0; 16], 1);
        d[20] ^= 1;
        let r = c.command(&native(
            0xC4,
            &s.wrap_command(CommMode::Full, 0xC4, &[3], &d),
        ));
        assert_eq!(r, vec![0x91, 0x1E]);
        assert_eq!(c.key(3), [0; 16]);
        let mut s = auth(&mut c, 0, &[0; 16]);
        // Overlapping PICCData and MAC.
        let cfs = [
            0x40, 0x00, 0xE0, 0xC1, 0xFF, 0x12, 0x20, 0, 0, 0x30, 0, 0, 0x30, 0, 0,
        ];
        let r = c.command(&native(
            0x5F,
            &s.wrap_command(CommMode::Full, 0x5F, &[2], &cfs),
        ));
        assert_eq!(r, vec![0x91, 0x9E]);
        let _ = s.open_response(CommMode::Full, &[]);
    }

    proptest! {
        #[test]
        fn any_bytes_are_answered(cmds in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..80), 1..12)) {
            let mut c = Ntag424::factory(UID, 11);
            for (i, mut a) in cmds.into_iter().enumerate() {
                // Steer some commands into the card's deeper states.
                match i % 4 {
                    0 if a.len() >= 2 => { a[0] = 0x90; }
                    1 if a.len() >= 4 => { a[0] = 0x90; a[2] = 0; a[3] = 0; }
                    2 if a.len() >= 2 => { a[0] = 0x00; }
                    _ => {}
                }
                let r = c.command(&a);
                prop_assert!(r.len() >= 2);
            }
        }
    }
}

//! AuthenticateEV2First and the secure messaging of the session it opens: the command
//! counter, CommMode.MAC and CommMode.Full (`ntag424-reference.md` §5, §6). Both sides
//! are here, pure: the reader's (the provisioner) and the card's (the simulator), so each
//! is tested against the other and against AN12196's worked sequence.

use super::crypto::{
    Block, Key, cbc_decrypt, cbc_encrypt, cmac, ct_eq, ecb_encrypt, mac_t, pad, unpad,
};

/// Why a step of secure messaging failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmError {
    /// The card's proof of RndA (or the reader's of RndB) did not match: the key used
    /// is not the key in that slot.
    #[error("the card did not prove it holds the key: wrong key for that slot")]
    WrongKey,
    /// A message of the wrong length.
    #[error("a secure-messaging message of {got} bytes, which is not a valid length")]
    Length {
        /// Its length.
        got: usize,
    },
    /// A MAC that does not verify.
    #[error("a secure-messaging MAC did not verify (a corrupted or replayed message)")]
    BadMac,
    /// Encrypted data without valid padding.
    #[error("encrypted data did not decrypt to padded data (a corrupted message)")]
    BadPadding,
    /// The command counter is at its end; authenticate again.
    #[error("the command counter is exhausted; authenticate again")]
    CounterExhausted,
}

/// How a command's data travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommMode {
    /// In clear, no MAC.
    Plain,
    /// In clear, with a MAC.
    Mac,
    /// Encrypted, with a MAC.
    Full,
}

/// `RndX` rotated left one byte (RndB′, RndA′).
pub fn rotl(b: &Block) -> Block {
    std::array::from_fn(|i| b[(i + 1) % 16])
}

/// An open EV2 session: its keys, its transaction id and its command counter.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    enc: Key,
    mac: Key,
    /// The transaction identifier the card chose.
    pub ti: [u8; 4],
    /// Commands exchanged since authentication.
    pub cmd_ctr: u16,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("ti", &self.ti)
            .field("cmd_ctr", &self.cmd_ctr)
            .finish_non_exhaustive()
    }
}

/// KSesAuthENC and KSesAuthMAC from the key and both random numbers.
pub fn session_keys(k: &Key, rnd_a: &Block, rnd_b: &Block) -> (Key, Key) {
    let mut sv = [0u8; 32];
    sv[2..6].copy_from_slice(&[0x00, 0x01, 0x00, 0x80]);
    sv[6..8].copy_from_slice(&rnd_a[0..2]);
    for i in 0..6 {
        sv[8 + i] = rnd_a[2 + i] ^ rnd_b[i];
    }
    sv[14..24].copy_from_slice(&rnd_b[6..16]);
    sv[24..32].copy_from_slice(&rnd_a[8..16]);
    sv[0..2].copy_from_slice(&[0xA5, 0x5A]);
    let enc = cmac(k, &sv);
    sv[0..2].copy_from_slice(&[0x5A, 0xA5]);
    let mac = cmac(k, &sv);
    (enc, mac)
}

/// The reader's part 2: from the card's `E(K, RndB)` and the reader's fresh `rnd_a`, the
/// 32 bytes to send (`E(K, RndA ‖ RndB′)`) and RndB.
pub fn reader_answer(k: &Key, enc_rnd_b: &Block, rnd_a: &Block) -> ([u8; 32], Block) {
    let mut rnd_b = *enc_rnd_b;
    // One block: CBC with a zero IV is ECB.
    let _ = cbc_decrypt(k, &[0; 16], &mut rnd_b);
    let mut msg = [0u8; 32];
    msg[..16].copy_from_slice(rnd_a);
    msg[16..].copy_from_slice(&rotl(&rnd_b));
    let _ = cbc_encrypt(k, &[0; 16], &mut msg);
    (msg, rnd_b)
}

/// The reader's last step: checks the card's answer (`E(K, TI ‖ RndA′ ‖ caps)`) and
/// opens the session.
pub fn reader_confirm(
    k: &Key,
    rnd_a: &Block,
    rnd_b: &Block,
    answer: &[u8],
) -> Result<Session, SmError> {
    let mut plain: [u8; 32] = answer
        .try_into()
        .map_err(|_| SmError::Length { got: answer.len() })?;
    let _ = cbc_decrypt(k, &[0; 16], &mut plain);
    if !ct_eq(&plain[4..20], &rotl(rnd_a)) {
        return Err(SmError::WrongKey);
    }
    let (enc, mac) = session_keys(k, rnd_a, rnd_b);
    Ok(Session {
        enc,
        mac,
        ti: [plain[0], plain[1], plain[2], plain[3]],
        cmd_ctr: 0,
    })
}

/// The card's side of part 2: checks the reader's `E(K, RndA ‖ RndB′)` against its
/// `rnd_b`, and answers `E(K, TI ‖ RndA′ ‖ 12×00)` with the session it opens.
pub fn card_confirm(
    k: &Key,
    rnd_b: &Block,
    part2: &[u8],
    ti: [u8; 4],
) -> Result<([u8; 32], Session), SmError> {
    let mut plain: [u8; 32] = part2
        .try_into()
        .map_err(|_| SmError::Length { got: part2.len() })?;
    let _ = cbc_decrypt(k, &[0; 16], &mut plain);
    if !ct_eq(&plain[16..], &rotl(rnd_b)) {
        return Err(SmError::WrongKey);
    }
    let mut rnd_a = [0u8; 16];
    rnd_a.copy_from_slice(&plain[..16]);
    let mut answer = [0u8; 32];
    answer[..4].copy_from_slice(&ti);
    answer[4..20].copy_from_slice(&rotl(&rnd_a));
    let _ = cbc_encrypt(k, &[0; 16], &mut answer);
    let (enc, mac) = session_keys(k, &rnd_a, rnd_b);
    Ok((
        answer,
        Session {
            enc,
            mac,
            ti,
            cmd_ctr: 0,
        },
    ))
}

impl Session {
    /// A session from known keys (tests, and the simulator's bookkeeping).
    pub fn from_keys(enc: Key, mac: Key, ti: [u8; 4], cmd_ctr: u16) -> Self {
        Self {
            enc,
            mac,
            ti,
            cmd_ctr,
        }
    }

    fn iv(&self, label: [u8; 2], ctr: u16) -> Block {
        let mut b = [0u8; 16];
        b[..2].copy_from_slice(&label);
        b[2..6].copy_from_slice(&self.ti);
        b[6..8].copy_from_slice(&ctr.to_le_bytes());
        ecb_encrypt(&self.enc, &b)
    }

    /// The IV of a command's encrypted data (at the current counter).
    pub fn command_iv(&self) -> Block {
        self.iv([0xA5, 0x5A], self.cmd_ctr)
    }

    fn response_iv(&self) -> Block {
        self.iv([0x5A, 0xA5], self.cmd_ctr.wrapping_add(1))
    }

    /// The MAC of a command: `MACt(Cmd ‖ CmdCtr ‖ TI ‖ header ‖ data)`.
    pub fn command_mac(&self, cmd: u8, header: &[u8], data: &[u8]) -> [u8; 8] {
        let mut m = Vec::with_capacity(7 + header.len() + data.len());
        m.push(cmd);
        m.extend_from_slice(&self.cmd_ctr.to_le_bytes());
        m.extend_from_slice(&self.ti);
        m.extend_from_slice(header);
        m.extend_from_slice(data);
        mac_t(&self.mac, &m)
    }

    /// The MAC of a response: `MACt(RC ‖ CmdCtr+1 ‖ TI ‖ data)`.
    pub fn response_mac(&self, rc: u8, data: &[u8]) -> [u8; 8] {
        let mut m = Vec::with_capacity(7 + data.len());
        m.push(rc);
        m.extend_from_slice(&self.cmd_ctr.wrapping_add(1).to_le_bytes());
        m.extend_from_slice(&self.ti);
        m.extend_from_slice(data);
        mac_t(&self.mac, &m)
    }

    /// `E(K_enc, iv, pad(data))`; nothing for no data.
    fn seal(&self, iv: &Block, data: &[u8]) -> Vec<u8> {
        let mut ct = if data.is_empty() {
            Vec::new()
        } else {
            pad(data)
        };
        let _ = cbc_encrypt(&self.enc, iv, &mut ct);
        ct
    }

    /// Opens `data ‖ MACt` of either direction in `mode`: checks the MAC against
    /// `expected_mac(data)` and, in Full mode, decrypts `data` with `iv`.
    fn open_sealed(
        &self,
        mode: CommMode,
        sealed: &[u8],
        iv: &Block,
        expected_mac: impl FnOnce(&[u8]) -> [u8; 8],
    ) -> Result<Vec<u8>, SmError> {
        if mode == CommMode::Plain {
            return Ok(sealed.to_vec());
        }
        let Some(split) = sealed.len().checked_sub(8) else {
            return Err(SmError::Length { got: sealed.len() });
        };
        let (data, mac) = sealed.split_at(split);
        if !ct_eq(&expected_mac(data), mac) {
            return Err(SmError::BadMac);
        }
        if mode == CommMode::Mac || data.is_empty() {
            return Ok(data.to_vec());
        }
        let mut d = data.to_vec();
        cbc_decrypt(&self.enc, iv, &mut d).ok_or(SmError::Length { got: data.len() })?;
        Ok(unpad(&d).ok_or(SmError::BadPadding)?.to_vec())
    }

    /// The reader's command data field in `mode`: `header ‖ data ‖ [MAC]` (Plain, Mac)
    /// or `header ‖ E(data) ‖ MAC` (Full). The counter moves on when the response is
    /// opened ([`Self::open_response`]).
    pub fn wrap_command(&self, mode: CommMode, cmd: u8, header: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = header.to_vec();
        match mode {
            CommMode::Plain => out.extend_from_slice(data),
            CommMode::Mac => {
                out.extend_from_slice(data);
                out.extend_from_slice(&self.command_mac(cmd, header, data));
            }
            CommMode::Full => {
                let ct = self.seal(&self.command_iv(), data);
                out.extend_from_slice(&ct);
                out.extend_from_slice(&self.command_mac(cmd, header, &ct));
            }
        }
        out
    }

    /// The reader opens the card's answer `resp` (without the status word) to a command
    /// in `mode` that succeeded (`91 00`): checks its MAC, decrypts it, and moves the
    /// counter on. Any error ends the session (the caller drops it).
    pub fn open_response(&mut self, mode: CommMode, resp: &[u8]) -> Result<Vec<u8>, SmError> {
        if self.cmd_ctr == u16::MAX {
            return Err(SmError::CounterExhausted);
        }
        let iv = self.response_iv();
        let plain = self.open_sealed(mode, resp, &iv, |data| self.response_mac(0x00, data))?;
        self.cmd_ctr += 1;
        Ok(plain)
    }

    /// The card opens a command's data field (`header_len` bytes of plain header, then
    /// the rest) in `mode`: checks its MAC and decrypts it. Returns the header and the
    /// plain data; the counter is not moved (the card moves it when it answers).
    pub fn open_command(
        &self,
        mode: CommMode,
        cmd: u8,
        header_len: usize,
        field: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), SmError> {
        if field.len() < header_len {
            return Err(SmError::Length { got: field.len() });
        }
        if self.cmd_ctr == u16::MAX {
            return Err(SmError::CounterExhausted);
        }
        let (header, rest) = field.split_at(header_len);
        let iv = self.command_iv();
        let data = self.open_sealed(mode, rest, &iv, |data| self.command_mac(cmd, header, data))?;
        Ok((header.to_vec(), data))
    }

    /// The card's answer to a command that succeeded: `data ‖ [MAC]` or
    /// `E(data) ‖ MAC`, and the counter moves on.
    pub fn wrap_response(&mut self, mode: CommMode, data: &[u8]) -> Vec<u8> {
        let out = match mode {
            CommMode::Plain => data.to_vec(),
            CommMode::Mac => {
                let mut v = data.to_vec();
                v.extend_from_slice(&self.response_mac(0x00, data));
                v
            }
            CommMode::Full => {
                let mut ct = self.seal(&self.response_iv(), data);
                let mac = self.response_mac(0x00, &ct);
                ct.extend_from_slice(&mac);
                ct
            }
        };
        self.cmd_ctr = self.cmd_ctr.saturating_add(1);
        out
    }
}

/// ChangeKey's plain KeyData for `slot`: `new ‖ version` for key 0 (the session's own
/// key), `(new XOR old) ‖ version ‖ CRC32NK(new)` for keys 1–4.
pub fn change_key_data(slot: u8, new: &Key, old: &Key, version: u8) -> Vec<u8> {
    if slot == 0 {
        let mut v = new.to_vec();
        v.push(version);
        return v;
    }
    let mut v: Vec<u8> = new.iter().zip(old).map(|(a, b)| a ^ b).collect();
    v.push(version);
    v.extend_from_slice(&super::crypto::crc32nk(new));
    v
}

#[cfg(test)]
mod tests {
    use super::super::test_hex::{h, hex16};
    use super::*;
    use crate::hex;

    #[test]
    fn an12196_table_14_authentication() {
        let k = [0u8; 16];
        let enc_rnd_b = hex16("A04C124213C186F22399D33AC2A30215");
        let rnd_a = hex16("13C5DB8A5930439FC3DEF9A4C675360F");
        let (part2, rnd_b) = reader_answer(&k, &enc_rnd_b, &rnd_a);
        assert_eq!(hex::encode(&rnd_b), "B9E2FC789B64BF237CCCAA20EC7E6E48");
        assert_eq!(
            hex::encode(&part2),
            "35C3E05A752E0144BAC0DE51C1F22C56B34408A23D8AEA266CAB947EA8E0118D"
        );
        let answer = h("3FA64DB5446D1F34CD6EA311167F5E4985B89690C04A05F17FA7AB2F08120663");
        let s = reader_confirm(&k, &rnd_a, &rnd_b, &answer).unwrap();
        assert_eq!(s.ti, [0x9D, 0x00, 0xC4, 0xDF]);
        assert_eq!(hex::encode(&s.enc), "1309C877509E5A215007FF0ED19CA564");
        assert_eq!(hex::encode(&s.mac), "4C6626F5E72EA694202139295C7A7FC7");
        // The card side gives the same answer and the same session.
        let (card_answer, card) = card_confirm(&k, &rnd_b, &part2, s.ti).unwrap();
        assert_eq!(card_answer.to_vec(), answer);
        assert_eq!(card, s);
    }

    #[test]
    fn a_wrong_key_is_refused_on_both_sides() {
        let (good, bad) = ([0u8; 16], [1u8; 16]);
        let rnd_a = [7u8; 16];
        let rnd_b = [9u8; 16];
        let enc_rnd_b = ecb_encrypt(&good, &rnd_b);
        let (part2, _) = reader_answer(&bad, &enc_rnd_b, &rnd_a);
        assert_eq!(
            card_confirm(&good, &rnd_b, &part2, [0; 4]).err(),
            Some(SmError::WrongKey)
        );
        let (part2, rb) = reader_answer(&good, &enc_rnd_b, &rnd_a);
        let (answer, _) = card_confirm(&good, &rnd_b, &part2, [1, 2, 3, 4]).unwrap();
        assert_eq!(
            reader_confirm(&bad, &rnd_a, &rb, &answer).err(),
            Some(SmError::WrongKey)
        );
        assert_eq!(
            reader_confirm(&good, &rnd_a, &rb, &answer[..31]).err(),
            Some(SmError::Length { got: 31 })
        );
    }

    #[test]
    fn an12196_table_8_mac_mode() {
        let mut s = Session::from_keys(
            [0; 16],
            hex16("8248134A386E86EB7FAF54A52E536CB6"),
            [0x7A, 0x21, 0x08, 0x5E],
            0,
        );
        let field = s.wrap_command(CommMode::Mac, 0xF5, &[0x02], &[]);
        assert_eq!(hex::encode(&field), "026597A457C8CD442C");
        let data = h("0040EEEE000100D1FE001F00004400004400002000006A0000");
        let mut resp = data.clone();
        resp.extend(h("2A474282E7A47986"));
        assert_eq!(s.open_response(CommMode::Mac, &resp).unwrap(), data);
        assert_eq!(s.cmd_ctr, 1);
    }

    #[test]
    fn an12196_table_19_full_mode() {
        // The session of Table 14, one command (Table 18's WriteData) later.
        let mut s = Session::from_keys(
            hex16("1309C877509E5A215007FF0ED19CA564"),
            hex16("4C6626F5E72EA694202139295C7A7FC7"),
            [0x9D, 0x00, 0xC4, 0xDF],
            1,
        );
        assert_eq!(
            hex::encode(&s.command_iv()),
            "3E27082AB2ACC1EF55C57547934E9962"
        );
        let settings = h("4000E0C1F121200000430000430000");
        let field = s.wrap_command(CommMode::Full, 0x5F, &[0x02], &settings);
        assert_eq!(
            hex::encode(&field),
            "0261B6D97903566E84C3AE5274467E89EAD799B7C1A0EF7A04"
        );
        assert_eq!(
            s.open_response(CommMode::Full, &h("57BFF87B1241E93D"))
                .unwrap(),
            b""
        );
        assert_eq!(s.cmd_ctr, 2);
    }

    #[test]
    fn reader_and_card_agree_in_every_mode_and_tampering_is_caught() {
        let k = [5u8; 16];
        let rnd_a = [1u8; 16];
        let rnd_b: Block = std::array::from_fn(|i| i as u8);
        let (part2, rb) = reader_answer(&k, &ecb_encrypt(&k, &rnd_b), &rnd_a);
        let (answer, mut card) = card_confirm(&k, &rnd_b, &part2, [4, 3, 2, 1]).unwrap();
        let mut reader = reader_confirm(&k, &rnd_a, &rb, &answer).unwrap();
        for (i, mode) in [
            CommMode::Plain,
            CommMode::Mac,
            CommMode::Full,
            CommMode::Full,
        ]
        .into_iter()
        .enumerate()
        {
            let data: Vec<u8> = (0..(i * 7) as u8).collect();
            let field = reader.wrap_command(mode, 0x8D, &[2, 0, 0, 0], &data);
            let (header, plain) = card.open_command(mode, 0x8D, 4, &field).unwrap();
            assert_eq!(
                (header.as_slice(), plain.as_slice()),
                (&[2u8, 0, 0, 0][..], &data[..])
            );
            let resp = card.wrap_response(mode, &data);
            assert_eq!(reader.open_response(mode, &resp).unwrap(), data);
            assert_eq!(reader.cmd_ctr, card.cmd_ctr);
        }
        // A replayed command (the counter has moved on) and a flipped bit are refused.
        let field = reader.wrap_command(CommMode::Mac, 0x8D, &[2], &[1, 2, 3]);
        let mut replay = card.clone();
        replay.cmd_ctr += 1;
        assert_eq!(
            replay.open_command(CommMode::Mac, 0x8D, 1, &field).err(),
            Some(SmError::BadMac)
        );
        let mut flipped = field.clone();
        flipped[1] ^= 1;
        assert_eq!(
            card.open_command(CommMode::Mac, 0x8D, 1, &flipped).err(),
            Some(SmError::BadMac)
        );
        let resp = card.clone().wrap_response(CommMode::Full, &[9; 20]);
        let mut r2 = reader.clone();
        r2.cmd_ctr += 1;
        assert_eq!(
            r2.open_response(CommMode::Full, &resp).err(),
            Some(SmError::BadMac)
        );
        assert_eq!(
            reader.open_response(CommMode::Full, &resp[..5]).err(),
            Some(SmError::Length { got: 5 })
        );
        let mut end = reader.clone();
        end.cmd_ctr = u16::MAX;
        assert_eq!(
            end.open_response(CommMode::Plain, &[]).err(),
            Some(SmError::CounterExhausted)
        );
        assert!(!format!("{reader:?}").contains("enc"));
    }

    #[test]
    fn change_key_data_layouts() {
        let new = hex16("F3847D627727ED3BC9C4CC050489B966");
        let zero = [0u8; 16];
        let k0 = change_key_data(0, &new, &zero, 1);
        assert_eq!(k0.len(), 17);
        assert_eq!(k0[16], 1);
        let k2 = change_key_data(2, &new, &[0xFF; 16], 1);
        assert_eq!(k2.len(), 21);
        assert_eq!(k2[0], 0xF3 ^ 0xFF);
        assert_eq!(k2[17..], [0x78, 0x9D, 0xFA, 0xDC]);
    }
}

//! Keys per card: AN10922 AES-128 key diversification, and the scheme Tapkit derives a
//! card's five application keys with from the brand's master key
//! (`ntag424-reference.md` §10).
//!
//! | slot | role | derived from |
//! |---|---|---|
//! | 0 | AppMasterKey (ChangeKey, ChangeFileSettings) | master, UID, slot, version |
//! | 1 | K_meta: encrypts the PICCData (UID and counter) | master, version: **no UID**, the server learns it only by decrypting |
//! | 2 | K_file: the SDM MAC | master, UID, slot, version |
//! | 3, 4 | unused by Tapkit, but never left at the factory key | master, UID, slot, version |
//!
//! The key version (1..=255) is the card's key version byte of every slot, and is
//! registered with the card, so a brand can rotate: new cards get the new version, old
//! cards still verify under theirs.

use super::crypto::{Block, Key, cbc_encrypt, ecb_encrypt};

/// The application id AN10922 inputs carry (NTAG 424 DNA has no 3-byte AID of its own;
/// `3042F5` is what the published tools use).
const AID: [u8; 3] = [0x30, 0x42, 0xF5];

/// The slot whose key encrypts PICCData (SDM MetaRead).
pub const META_SLOT: u8 = 1;
/// The slot whose key makes the SDM MAC (SDM FileRead).
pub const FILE_SLOT: u8 = 2;

fn dbl(b: &Block) -> Block {
    let mut out = [0u8; 16];
    let mut carry = 0u8;
    for i in (0..16).rev() {
        out[i] = (b[i] << 1) | carry;
        carry = b[i] >> 7;
    }
    out[15] ^= 0x87 & carry.wrapping_neg();
    out
}

/// The CMAC subkeys K1 and K2 of `k` (SP 800-38B §6.1).
fn subkeys(k: &Key) -> (Block, Block) {
    let l = ecb_encrypt(k, &[0; 16]);
    let k1 = dbl(&l);
    let k2 = dbl(&k1);
    (k1, k2)
}

/// AN10922 AES-128 diversification of `master` with the input `m` (1 to 31 bytes);
/// `None` for an input outside that range.
pub fn diversify(master: &Key, m: &[u8]) -> Option<Key> {
    if m.is_empty() || m.len() > 31 {
        return None;
    }
    let mut d = [0u8; 32];
    d[0] = 0x01;
    d[1..=m.len()].copy_from_slice(m);
    let (k1, k2) = subkeys(master);
    let last = if m.len() + 1 < 32 {
        d[m.len() + 1] = 0x80;
        k2
    } else {
        k1
    };
    for i in 0..16 {
        d[16 + i] ^= last[i];
    }
    cbc_encrypt(master, &[0; 16], &mut d)?;
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[16..]);
    Some(out)
}

/// The brand's master key of one key version. Its `Debug` shows the version only, so a
/// key never reaches a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    version: u8,
    key: Key,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("version", &self.version)
            .field("key", &"<secret>")
            .finish()
    }
}

impl MasterKey {
    /// A master key of `version` (1..=255: version 0 is the factory's); `None` for 0.
    pub fn new(version: u8, key: Key) -> Option<Self> {
        (version != 0).then_some(Self { version, key })
    }

    /// Its key version.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The key itself, as hex: for writing the key file, nowhere else.
    pub fn key_hex(&self) -> String {
        crate::hex::encode(&self.key)
    }

    /// K_meta of this version: one for every card (the server must decrypt the PICCData
    /// before it knows the UID).
    pub fn meta_key(&self) -> Key {
        let mut m = *b"TAPKIT-META-?";
        m[12] = self.version;
        diversify(&self.key, &m).unwrap_or_default()
    }

    /// The key of `slot` (0..=4) of the card with `uid`; slot 1 is [`Self::meta_key`].
    pub fn card_key(&self, slot: u8, uid: &[u8; 7]) -> Key {
        if slot == META_SLOT {
            return self.meta_key();
        }
        let mut m = [0u8; 18];
        m[..7].copy_from_slice(uid);
        m[7..10].copy_from_slice(&AID);
        m[10..16].copy_from_slice(b"TAPKIT");
        m[16] = slot;
        m[17] = self.version;
        diversify(&self.key, &m).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_hex::{h, hex16};
    use super::*;
    use crate::hex;

    #[test]
    fn an10922_vector() {
        let master = hex16("00112233445566778899AABBCCDDEEFF");
        let mut m = h("04782E21801D80");
        m.extend(h("3042F5"));
        m.extend(b"NXP Abu");
        let k = diversify(&master, &m).unwrap();
        assert_eq!(hex::encode(&k), "A8DD63A3B89D54B37CA802473FDA9175");
    }

    #[test]
    fn an10957_short_input_is_not_plain_cmac() {
        let master = hex16("F3F9377698707B688EAF84ABE39E3791");
        let k = diversify(&master, &h("04DEADBEEFFEED")).unwrap();
        assert_eq!(hex::encode(&k), "0BB408BAFF98B6EE9F2E1585777F6A51");
        let plain = super::super::crypto::cmac(&master, &h("0104DEADBEEFFEED"));
        assert_eq!(hex::encode(&plain), "721E2C01E81AF85D815633969CEA2607");
    }

    #[test]
    fn a_31_byte_input_uses_k1_and_bad_lengths_are_refused() {
        let master = [7u8; 16];
        let a = diversify(&master, &[1u8; 31]).unwrap();
        let b = diversify(&master, &[1u8; 30]).unwrap();
        assert_ne!(a, b);
        // 01 ‖ M is exactly two blocks: AN10922 is then plain CMAC.
        let mut d = vec![1u8];
        d.extend([1u8; 31]);
        assert_eq!(a, super::super::crypto::cmac(&master, &d));
        assert_eq!(diversify(&master, &[]), None);
        assert_eq!(diversify(&master, &[0; 32]), None);
    }

    #[test]
    fn card_keys_differ_by_slot_uid_and_version_and_meta_has_no_uid() {
        let v1 = MasterKey::new(1, [9; 16]).unwrap();
        let v2 = MasterKey::new(2, [9; 16]).unwrap();
        let uid = [4, 1, 2, 3, 4, 5, 6];
        let other = [4, 1, 2, 3, 4, 5, 7];
        let keys: Vec<Key> = (0..5).map(|s| v1.card_key(s, &uid)).collect();
        for i in 0..5 {
            for j in i + 1..5 {
                assert_ne!(keys[i], keys[j], "slots {i} and {j}");
            }
        }
        assert_ne!(v1.card_key(FILE_SLOT, &uid), v1.card_key(FILE_SLOT, &other));
        assert_ne!(v1.card_key(FILE_SLOT, &uid), v2.card_key(FILE_SLOT, &uid));
        assert_eq!(v1.card_key(META_SLOT, &uid), v1.card_key(META_SLOT, &other));
        assert_ne!(v1.meta_key(), v2.meta_key());
        assert_eq!(MasterKey::new(0, [9; 16]), None);
        assert!(!format!("{v1:?}").contains("9, 9"));
    }
}

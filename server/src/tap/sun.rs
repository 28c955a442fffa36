//! NTAG 424 DNA taps: `/r/{code}?e=<32 hex>&c=<16 hex>`. The card signs every read
//! (SUN), so a tap is checked, not trusted:
//!
//! 1. `e` is decrypted with K_meta, one per key version, derived once at start (no
//!    search over cards): it gives the card's UID and read counter;
//! 2. the UID must be a card registered to this partner, under that key version;
//! 3. `c` must verify with the card's own K_file, derived from its UID;
//! 4. the counter must rise: checked and advanced by the click writer, in the
//!    transaction that stores the click, like an NTAG21x mirror's.
//!
//! The brand's master keys come from `TAPKIT_SUN_KEYS_FILE`, the provisioner's key file
//! format ([`tapkit_core::ntag424::keyfile`]).

use tapkit_core::ntag424::crypto::Key;
use tapkit_core::ntag424::keyfile::KeyFile;
use tapkit_core::ntag424::keys::FILE_SLOT;
use tapkit_core::ntag424::sun::{self, Picc, SunError};

/// The brand's SUN keys as the tap needs them.
#[derive(Debug)]
pub struct SunKeys {
    file: KeyFile,
    /// K_meta per version, newest first.
    metas: Vec<(u8, Key)>,
}

impl SunKeys {
    /// The keys of a key file.
    pub fn new(file: KeyFile) -> Self {
        let mut metas: Vec<(u8, Key)> = file
            .all()
            .iter()
            .map(|m| (m.version(), m.meta_key()))
            .collect();
        metas.reverse();
        Self { file, metas }
    }

    /// Reads `TAPKIT_SUN_KEYS_FILE`, if set.
    pub fn from_env() -> Result<Option<Self>, String> {
        let Some(path) = std::env::var_os("TAPKIT_SUN_KEYS_FILE") else {
            return Ok(None);
        };
        let path = std::path::PathBuf::from(path);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read TAPKIT_SUN_KEYS_FILE {}: {e}", path.display()))?;
        let file = KeyFile::parse(&text)
            .map_err(|e| format!("TAPKIT_SUN_KEYS_FILE {}: {e}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = std::fs::metadata(&path)
                && m.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(
                    path = %path.display(),
                    "the SUN key file can be read by other users; chmod 600 it"
                );
            }
        }
        Ok(Some(Self::new(file)))
    }

    /// The key versions under which `e` decrypts to Tapkit's PICCData, newest first
    /// (one, but for the 1 in 256 chance that a wrong key also gives the tag: only a
    /// card registered under that very version then counts). `Err` for an `e` that is
    /// not 32 hex digits.
    pub fn decrypt(&self, e: &str) -> Result<Vec<(u8, Picc)>, SunError> {
        let mut out = Vec::with_capacity(1);
        for (version, k_meta) in &self.metas {
            match sun::decrypt_picc(k_meta, e) {
                Ok(p) => out.push((*version, p)),
                Err(SunError::BadTag { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(out)
    }

    /// Whether the key file holds `version`.
    pub fn has_version(&self, version: i64) -> bool {
        u8::try_from(version).is_ok_and(|v| self.file.version(v).is_some())
    }

    /// Whether `c` is the MAC of this read by the card keyed under `version`.
    pub fn mac_ok(&self, version: u8, picc: &Picc, c: &str) -> bool {
        self.file.version(version).is_some_and(|master| {
            let k_file = master.card_key(FILE_SLOT, &picc.uid);
            sun::check_mac(&k_file, picc, c, b"").is_ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapkit_core::ntag424::keys::MasterKey;

    fn tap(master: &MasterKey, uid: [u8; 7], counter: u32) -> (String, String) {
        let picc = Picc { uid, counter };
        let e = sun::encrypt_picc(&master.meta_key(), &picc, [7; 5]);
        let c = sun::sdm_mac(&master.card_key(FILE_SLOT, &uid), &picc, b"");
        (tapkit_core::hex::encode(&e), tapkit_core::hex::encode(&c))
    }

    #[test]
    fn old_and_new_key_versions_verify_and_a_changed_digit_does_not() {
        let mut file = KeyFile::new([1; 16]);
        file.rotate([2; 16]);
        let keys = SunKeys::new(file.clone());
        let uid = [4, 1, 2, 3, 4, 5, 6];
        for v in [1u8, 2] {
            let (e, c) = tap(file.version(v).unwrap(), uid, 9);
            let found = keys.decrypt(&e).unwrap();
            let (version, picc) = found.iter().find(|(fv, _)| *fv == v).copied().unwrap();
            assert_eq!((picc.uid, picc.counter), (uid, 9));
            assert!(keys.mac_ok(version, &picc, &c));
            let mut bad = c.into_bytes();
            bad[15] = if bad[15] == b'0' { b'1' } else { b'0' };
            assert!(!keys.mac_ok(version, &picc, &String::from_utf8(bad).unwrap()));
        }
        // Another brand's card decrypts under none of these versions (but by chance).
        let stranger = MasterKey::new(1, [3; 16]).unwrap();
        let (e, _) = tap(&stranger, uid, 1);
        assert!(keys.decrypt(&e).unwrap().len() <= 1);
        assert!(keys.decrypt("00").is_err());
    }
}

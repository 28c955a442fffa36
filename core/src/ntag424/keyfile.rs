//! The brand's SUN key file: its NTAG 424 DNA master keys by version. The provisioner
//! writes it (`provisioner keys new`, owner-only) and keys cards with it; the server
//! reads the same file (`TAPKIT_SUN_KEYS_FILE`) to verify their taps.
//!
//! ```text
//! # tapkit-sun-keys 1
//! # NTAG 424 DNA master keys. Secret: keep it owner-only, never commit or print it.
//! 1 8F1E…(32 hex digits)
//! 2 03AB…
//! ```
//!
//! One line per key version (1..=255): the version, a space, the master key. New cards
//! get the highest version; cards keyed under an older one still verify, so a key is
//! rotated by adding a line, never by editing one.

use super::crypto::Key;
use super::keys::MasterKey;

/// The first line of every key file.
pub const HEADER: &str = "# tapkit-sun-keys 1";

/// What is wrong with a key file, by line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    /// Not a Tapkit key file.
    #[error("not a Tapkit SUN key file: its first line must be `{HEADER}`")]
    Header,
    /// A line that is not `VERSION HEX`.
    #[error(
        "line {line}: {what}; each key line is a version (1 to 255), a space and 32 hex digits"
    )]
    Line {
        /// 1-based.
        line: usize,
        /// What was wrong.
        what: String,
    },
    /// No keys at all.
    #[error("the key file holds no keys; make one with `provisioner keys new --out FILE`")]
    Empty,
}

/// The master keys of a brand, by version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyFile {
    keys: Vec<MasterKey>,
}

impl KeyFile {
    /// Parses a key file.
    pub fn parse(text: &str) -> Result<Self, KeyFileError> {
        let mut lines = text.lines();
        if lines.next().map(str::trim_end) != Some(HEADER) {
            return Err(KeyFileError::Header);
        }
        let mut keys: Vec<MasterKey> = Vec::new();
        for (i, raw) in lines.enumerate() {
            let line = i + 2;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let bad = |what: String| KeyFileError::Line { line, what };
            let (v, k) = l
                .split_once(' ')
                .ok_or_else(|| bad("no space between version and key".into()))?;
            let version: u8 = v
                .parse()
                .ok()
                .filter(|&v| v != 0)
                .ok_or_else(|| bad(format!("version {v:?} is not 1 to 255")))?;
            let bytes =
                crate::hex::decode(k.trim()).map_err(|_| bad("the key is not hex".into()))?;
            let key: Key = bytes.try_into().map_err(|b: Vec<u8>| {
                bad(format!("the key has {} hex digits, not 32", 2 * b.len()))
            })?;
            if keys.iter().any(|m| m.version() == version) {
                return Err(bad(format!("version {version} is listed twice")));
            }
            keys.extend(MasterKey::new(version, key));
        }
        if keys.is_empty() {
            return Err(KeyFileError::Empty);
        }
        keys.sort_by_key(MasterKey::version);
        Ok(Self { keys })
    }

    /// A new file with one key, version 1.
    pub fn new(first: Key) -> Self {
        Self {
            keys: MasterKey::new(1, first).into_iter().collect(),
        }
    }

    /// Adds the next version (for rotation); `None` when 255 versions exist.
    pub fn rotate(&mut self, key: Key) -> Option<u8> {
        let next = self
            .current()
            .map_or(Some(1), |m| m.version().checked_add(1))?;
        self.keys.extend(MasterKey::new(next, key));
        Some(next)
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{HEADER}\n# NTAG 424 DNA master keys. Secret: keep it owner-only, never commit or print it.\n# New cards get the highest version; add a line to rotate, never edit one.\n"
        );
        for m in &self.keys {
            s.push_str(&format!("{} {}\n", m.version(), m.key_hex()));
        }
        s
    }

    /// The key new cards get: the highest version.
    pub fn current(&self) -> Option<&MasterKey> {
        self.keys.last()
    }

    /// The key of `version`.
    pub fn version(&self, version: u8) -> Option<&MasterKey> {
        self.keys.iter().find(|m| m.version() == version)
    }

    /// Every key, oldest first.
    pub fn all(&self) -> &[MasterKey] {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rotates() {
        let mut f = KeyFile::new([1; 16]);
        assert_eq!(f.rotate([2; 16]), Some(2));
        let text = f.render();
        assert!(text.starts_with(HEADER));
        let back = KeyFile::parse(&text).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.current().map(MasterKey::version), Some(2));
        assert!(back.version(1).is_some());
        assert!(back.version(3).is_none());
    }

    proptest::proptest! {
        /// Any text is a key file or an error naming what is wrong, never a panic.
        #[test]
        fn any_text_is_answered(body in "\\PC{0,200}") {
            let _ = KeyFile::parse(&body);
            let _ = KeyFile::parse(&format!("{HEADER}\n{body}"));
        }
    }

    #[test]
    fn bad_files_name_the_line() {
        assert_eq!(KeyFile::parse("1 00"), Err(KeyFileError::Header));
        assert_eq!(KeyFile::parse(HEADER), Err(KeyFileError::Empty));
        let err = |body: &str| {
            KeyFile::parse(&format!("{HEADER}\n{body}"))
                .unwrap_err()
                .to_string()
        };
        assert!(err("0 00112233445566778899AABBCCDDEEFF").contains("line 2: version \"0\""));
        assert!(err("# c\n1 0011").contains("line 3: the key has 4 hex digits"));
        assert!(err("1 zz112233445566778899AABBCCDDEEFF").contains("not hex"));
        assert!(err("1").contains("no space"));
        let twice = "1 00112233445566778899AABBCCDDEEFF\n1 00112233445566778899AABBCCDDEEFF";
        assert!(err(twice).contains("listed twice"));
    }
}

//! The kiosk's state directory: its identity (id and secret, owner-only), the last good
//! display config, and the last measured clock offset. Every write is atomic
//! (write a temporary file, fsync, rename, fsync the directory), so a power cut leaves
//! the old file or the new one, never half of either.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What enrolment gave this kiosk.
#[derive(Clone, Serialize, Deserialize)]
pub struct Identity {
    /// The server's base URL.
    pub server: String,
    /// The kiosk id.
    pub kiosk_id: i64,
    /// The kiosk secret, hex (signs QR tokens, authenticates to the server).
    pub secret: String,
    /// The affiliate's referral code.
    pub affiliate_code: String,
    /// When it enrolled, Unix ms.
    pub enrolled_at_ms: i64,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("server", &self.server)
            .field("kiosk_id", &self.kiosk_id)
            .field("affiliate_code", &self.affiliate_code)
            .finish_non_exhaustive() // never print the secret
    }
}

impl Identity {
    /// The secret's bytes.
    pub fn secret_bytes(&self) -> Vec<u8> {
        tapkit_core::hex::decode(&self.secret).unwrap_or_default()
    }
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

/// The default: `$STATE_DIRECTORY` (set by systemd's `StateDirectory=`), else
/// `$XDG_STATE_HOME/tapkit-kiosk`, else `~/.local/state/tapkit-kiosk`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("STATE_DIRECTORY").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("tapkit-kiosk");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/state/tapkit-kiosk")
}

const IDENTITY: &str = "identity.json";
const CONFIG: &str = "config.json";
const CLOCK: &str = "clock.json";

/// `clock.json`.
#[derive(Serialize, Deserialize)]
struct ClockFile {
    offset_ms: i64,
}

/// Why reading the state failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Not enrolled yet.
    #[error(
        "this kiosk is not enrolled ({0} does not exist): run `display-kiosk enroll --server URL --code CODE` first"
    )]
    NotEnrolled(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        source: std::io::Error,
    },
    /// A file is damaged.
    #[error("{path} is damaged ({message}); enrol again to replace it")]
    Damaged {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl StateDir {
    /// Opens (creating, owner-only) the directory.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let io = |source| StateError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(path).map_err(io)?;
        set_mode(path, 0o700).map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The enrolled identity.
    pub fn identity(&self) -> Result<Identity, StateError> {
        let p = self.path.join(IDENTITY);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotEnrolled(p.display().to_string()));
            }
            Err(source) => {
                return Err(StateError::Io {
                    path: p.display().to_string(),
                    source,
                });
            }
        };
        let id: Identity = serde_json::from_str(&text).map_err(|e| StateError::Damaged {
            path: p.display().to_string(),
            message: e.to_string(),
        })?;
        if id.secret_bytes().len() != 32 {
            return Err(StateError::Damaged {
                path: p.display().to_string(),
                message: "the secret is not 64 hex digits".into(),
            });
        }
        Ok(id)
    }

    /// Saves the identity, readable by the owner only.
    pub fn save_identity(&self, id: &Identity) -> Result<(), StateError> {
        let text = serde_json::to_vec_pretty(id).unwrap_or_default();
        self.write(IDENTITY, &text, 0o600)
    }

    /// The cached display config as received (raw JSON), if any.
    pub fn cached_config(&self) -> Option<String> {
        std::fs::read_to_string(self.path.join(CONFIG)).ok()
    }

    /// Caches a display config.
    pub fn save_config(&self, raw: &str) -> Result<(), StateError> {
        self.write(CONFIG, raw.as_bytes(), 0o600)
    }

    /// Forgets the cached config (a new enrolment for another affiliate).
    pub fn clear_config(&self) {
        let _ = std::fs::remove_file(self.path.join(CONFIG));
    }

    /// The last measured offset of the server's clock over ours, ms.
    pub fn clock_offset(&self) -> i64 {
        std::fs::read_to_string(self.path.join(CLOCK))
            .ok()
            .and_then(|t| serde_json::from_str::<ClockFile>(&t).ok())
            .map_or(0, |c| c.offset_ms)
            .clamp(-86_400_000, 86_400_000)
    }

    /// Remembers the clock offset.
    pub fn save_clock_offset(&self, offset_ms: i64) -> Result<(), StateError> {
        let text = serde_json::to_vec(&ClockFile { offset_ms }).unwrap_or_default();
        self.write(CLOCK, &text, 0o600)
    }

    fn write(&self, name: &str, bytes: &[u8], mode: u32) -> Result<(), StateError> {
        let path = self.path.join(name);
        write_atomic(&path, bytes, mode).map_err(|source| StateError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

/// Writes `bytes` to `path` atomically with permissions `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
        let mut f = opts.open(&tmp)?;
        set_mode(&tmp, mode)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmp(name: &str) -> PathBuf {
        let p =
            std::env::temp_dir().join(format!("tapkit-kiosk-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn identity_is_owner_only_and_round_trips() {
        let dir = StateDir::open(&tmp("id")).unwrap();
        assert!(matches!(dir.identity(), Err(StateError::NotEnrolled(_))));
        let id = Identity {
            server: "http://127.0.0.1:1".into(),
            kiosk_id: 3,
            secret: "ab".repeat(32),
            affiliate_code: "SHINE-7K2M9Q".into(),
            enrolled_at_ms: 1,
        };
        dir.save_identity(&id).unwrap();
        let back = dir.identity().unwrap();
        assert_eq!((back.kiosk_id, back.secret.clone()), (3, "ab".repeat(32)));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join(IDENTITY)), 0o600);
        assert_eq!(mode(dir.path()), 0o700);
        assert!(
            !format!("{back:?}").contains("abab"),
            "Debug never prints the secret"
        );
        std::fs::write(dir.path().join(IDENTITY), "{").unwrap();
        assert!(matches!(dir.identity(), Err(StateError::Damaged { .. })));
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = StateDir::open(&tmp("atomic")).unwrap();
        dir.save_config("{\"version\":\"a\"}").unwrap();
        // A directory where the temporary file should go makes the write fail midway.
        std::fs::create_dir(dir.path().join("config.tmp")).unwrap();
        assert!(dir.save_config("{\"version\":\"b\"}").is_err());
        assert_eq!(dir.cached_config().unwrap(), "{\"version\":\"a\"}");
        dir.save_clock_offset(-1234).unwrap();
        assert_eq!(dir.clock_offset(), -1234);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(CLOCK)).unwrap(),
            r#"{"offset_ms":-1234}"#,
            "the file kiosks already have keeps its form"
        );
        std::fs::write(dir.path().join(CLOCK), "{").unwrap();
        assert_eq!(dir.clock_offset(), 0, "a damaged clock file is no offset");
    }
}

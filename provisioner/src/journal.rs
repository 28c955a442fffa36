//! The batch journal: an append-only JSON-lines file, one line per card handled,
//! flushed and synced before the next card. It makes a batch resumable after a crash
//! and is the audit trail of which card went to whom.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What happened to one card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The URL was written and verified.
    Written,
    /// The card already held this partner's URL.
    AlreadyProvisioned,
    /// The card was refused (wrong type, too small, locked, another partner's).
    Refused,
    /// Writing failed (card pulled, NAK, verify mismatch), or the server refused to
    /// register the written card.
    Failed,
    /// A card written in an earlier run (server offline then) is now registered with
    /// the server.
    Registered,
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// When (UTC, RFC 3339).
    pub time: String,
    /// Partner name.
    pub partner: String,
    /// The affiliate's id on the server, when the partner list came from the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affiliate_id: Option<i64>,
    /// The member's id on the server, for a member card (`provision --members`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<i64>,
    /// Referral code (a member card: the member's page code).
    pub code: String,
    /// URL written (with the mirror placeholder when on).
    pub url: String,
    /// Card UID (hex), when the card was identified.
    pub uid: Option<String>,
    /// Tag type, when identified.
    pub tag_type: Option<String>,
    /// What happened.
    pub outcome: Outcome,
    /// Read back and compared.
    pub verified: bool,
    /// Permanently locked.
    pub locked: bool,
    /// Whether the card is registered with the server (`None`: no server in this batch).
    pub server_registered: Option<bool>,
    /// Why, for refusals and failures.
    pub detail: Option<String>,
    /// NTAG 424 DNA written with SUN: the key file's version its keys are (registered
    /// with the card).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_version: Option<u8>,
}

impl Entry {
    /// Whether this line means the partner has its card.
    pub fn is_done(&self) -> bool {
        self.verified
            && matches!(
                self.outcome,
                Outcome::Written | Outcome::AlreadyProvisioned | Outcome::Registered
            )
    }
}

/// An open journal.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
}

/// Why the journal cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// Cannot open, read or write.
    #[error("cannot read or write the journal {path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line in the middle is not a journal entry (the file is not a journal).
    #[error(
        "journal {path} line {line} is not a journal entry ({reason}), so this file is not appended to"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// Parser message.
        reason: String,
    },
}

impl Journal {
    /// Opens (or creates) the journal and returns the entries already in it. A last line
    /// cut short by a crash is ignored (and reported in the log); a bad line elsewhere
    /// is an error, so a wrong file is never appended to.
    pub fn open(path: &Path) -> Result<(Self, Vec<Entry>), JournalError> {
        let io = |source| JournalError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut entries = Vec::new();
        // Byte offset where a crash-torn last line starts, to cut it off.
        let mut torn_at = None;
        match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let pieces: Vec<&str> = text.split_inclusive('\n').collect();
                let last = pieces.iter().rposition(|l| !l.trim().is_empty());
                let mut offset = 0;
                for (i, line) in pieces.into_iter().enumerate() {
                    let start = offset;
                    offset += line.len();
                    let line = line.trim_end_matches(['\n', '\r']);
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<Entry>(line) {
                        Ok(e) => entries.push(e),
                        // Half an entry at the very end: the process died mid-append.
                        Err(e) if Some(i) == last && line.starts_with('{') && e.is_eof() => {
                            tracing::warn!(
                                line = i + 1,
                                "dropping a journal line cut short by a crash"
                            );
                            torn_at = Some(start as u64);
                        }
                        Err(e) => {
                            return Err(JournalError::Corrupt {
                                path: path.display().to_string(),
                                line: i + 1,
                                reason: e.to_string(),
                            });
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        if let Some(at) = torn_at {
            file.set_len(at).map_err(io)?;
        }
        Ok((
            Self {
                file,
                path: path.to_owned(),
            },
            entries,
        ))
    }

    /// Appends one entry and makes it durable before returning.
    pub fn append(&mut self, entry: &Entry) -> Result<(), JournalError> {
        let io = |source| JournalError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let mut line = serde_json::to_vec(entry).map_err(|e| io(std::io::Error::other(e)))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io)?;
        self.file.flush().map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}

/// The current time as RFC 3339 UTC, e.g. `2026-11-21T10:54:03Z`.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

pub use tapkit_core::date::rfc3339;

/// The record of NTAG 424 DNA key changes: an append-only JSON-lines file beside the
/// journal, each line made durable (fsync) before the change it announces is sent to
/// the card. It names slots and versions, never a key.
pub fn key_step_recorder(
    path: &std::path::Path,
) -> Result<impl FnMut(&crate::driver::sun::KeyStep) -> Result<(), String> + use<>, JournalError> {
    use std::io::Write;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| JournalError::Io {
            path: path.display().to_string(),
            source,
        })?;
    /// One line: when, what, and the step's own fields.
    #[derive(serde::Serialize)]
    struct Line<'a> {
        at_ms: u128,
        event: &'static str,
        #[serde(flatten)]
        step: &'a crate::driver::sun::KeyStep,
    }
    let shown = path.display().to_string();
    Ok(move |step: &crate::driver::sun::KeyStep| {
        let line = Line {
            at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis()),
            event: "change_key",
            step,
        };
        let mut f = &file;
        serde_json::to_writer(f, &line)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(f))
            .and_then(|()| f.sync_data())
            .map_err(|e| format!("{shown}: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(code: &str, outcome: Outcome) -> Entry {
        Entry {
            time: now_rfc3339(),
            partner: "Iron Gym".into(),
            affiliate_id: None,
            member_id: None,
            code: code.into(),
            url: format!("https://b.example.com/r/{code}"),
            uid: Some("04A1B2C3D4E5F6".into()),
            tag_type: Some("NTAG215".into()),
            outcome,
            verified: outcome == Outcome::Written,
            locked: false,
            server_registered: None,
            detail: None,
            key_version: None,
        }
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_258_443), "2026-11-21T10:54:03Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn append_reopen_and_survive_a_torn_last_line() {
        let dir = std::env::temp_dir().join(format!("tapkit-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j.jsonl");
        let _ = std::fs::remove_file(&path);
        let (mut j, old) = Journal::open(&path).unwrap();
        assert!(old.is_empty());
        j.append(&entry("A", Outcome::Written)).unwrap();
        j.append(&entry("B", Outcome::Refused)).unwrap();
        drop(j);
        // A crash mid-append leaves half a line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"time":"2026-11-21T10:54:03Z","partner":"C"#)
            .unwrap();
        drop(f);
        let (mut j, old) = Journal::open(&path).unwrap();
        assert_eq!(old.len(), 2);
        assert!(old[0].is_done() && !old[1].is_done());
        j.append(&entry("C", Outcome::Written)).unwrap();
        drop(j);
        let (_, all) = Journal::open(&path).unwrap();
        assert_eq!(
            all.iter().map(|e| e.code.as_str()).collect::<Vec<_>>(),
            vec!["A", "B", "C"]
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().lines().count(),
            3,
            "the torn half-line is gone"
        );
        // A file that is not a journal is refused, not appended to.
        std::fs::write(&path, "hello\n").unwrap();
        let err = Journal::open(&path).unwrap_err().to_string();
        assert!(err.contains("line 1 is not a journal entry"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! What the desk keeps on disk for offline check-ins, in the state directory:
//!
//! - `roster.json`: the last [`SignedRoster`] from the server, checked against the
//!   kiosk's secret whenever it is read (an edited or foreign file is ignored).
//! - `checkin-queue.jsonl`: offline check-ins granted and not yet answered by the server,
//!   one JSON line each. A line is appended and fsynced before the screen says yes; the
//!   file is rewritten atomically (without the answered ones) after each answer. A
//!   crash between the server's answer and the rewrite submits that line again, and the
//!   server answers it from its idempotency key: the visit is used once.
//! - `checkin-rejected.jsonl`: offline check-ins the server refused outright, with why,
//!   kept for staff (never dropped).
//! - `checkin-unreadable.jsonl`: queue lines that did not read (a line torn by a power
//!   cut mid-append, before the screen said yes), kept as they were when the queue is
//!   rewritten.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tapkit_core::kiosk_wire::{Roster, SignedRoster, roster_authentic};

use crate::state::write_atomic;

const ROSTER: &str = "roster.json";
const QUEUE: &str = "checkin-queue.jsonl";
const REJECTED: &str = "checkin-rejected.jsonl";
const UNREADABLE: &str = "checkin-unreadable.jsonl";

/// An offline check-in waiting for the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// The read's idempotency key (sent again with it).
    pub key: String,
    /// The card's URL as read.
    pub url: String,
    /// When the desk granted it (the server's clock as the kiosk knew it).
    pub offline_at_ms: i64,
}

/// The roster and the queue files of one state directory, with the kiosk's secret to
/// check the roster.
pub struct Queues {
    dir: PathBuf,
    secret: Vec<u8>,
}

impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queues")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn io_at(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl Queues {
    /// The files in `dir`.
    pub fn new(dir: &Path, secret: Vec<u8>) -> Self {
        Self {
            dir: dir.to_path_buf(),
            secret,
        }
    }

    /// The stored roster, if there is one, it is this kiosk's and its signature holds.
    pub fn roster(&self) -> Option<Roster> {
        let text = std::fs::read_to_string(self.dir.join(ROSTER)).ok()?;
        self.check(&text).ok()
    }

    /// Checks a signed roster (as the server sent it, or as stored) and reads it.
    pub fn check(&self, text: &str) -> Result<Roster, String> {
        let signed: SignedRoster = crate::wire::parse(text).map_err(|e| e.to_string())?;
        if !roster_authentic(&self.secret, &signed.roster, &signed.signature) {
            return Err("the roster's signature does not hold for this kiosk's secret".into());
        }
        crate::wire::parse(&signed.roster).map_err(|e| e.to_string())
    }

    /// Stores a signed roster after checking it; an older one than the stored is kept out.
    pub fn save_roster(&self, text: &str, kiosk_id: i64) -> Result<Roster, String> {
        let r = self.check(text)?;
        if r.kiosk_id != kiosk_id {
            return Err(format!(
                "the roster is for kiosk {}, not this one",
                r.kiosk_id
            ));
        }
        if let Some(old) = self.roster()
            && old.version > r.version
        {
            return Ok(old);
        }
        let path = self.dir.join(ROSTER);
        write_atomic(&path, text.as_bytes(), 0o600).map_err(|e| io_at(&path, e).to_string())?;
        Ok(r)
    }

    /// The queued check-ins, oldest first. A line that does not read (a torn last line
    /// after a power cut) is skipped and logged.
    pub fn queued(&self) -> Vec<Queued> {
        let Ok(text) = std::fs::read_to_string(self.dir.join(QUEUE)) else {
            return Vec::new();
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| match serde_json::from_str(l) {
                Ok(q) => Some(q),
                Err(e) => {
                    tracing::warn!(%e, "a check-in queue line does not read; skipped");
                    None
                }
            })
            .collect()
    }

    /// How many check-ins are queued.
    pub fn len(&self) -> usize {
        self.queued().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a check-in and syncs it to disk.
    pub fn push(&mut self, q: &Queued) -> std::io::Result<()> {
        append(&self.dir.join(QUEUE), q)
    }

    /// Removes the check-in with `key` (the server answered it). A line that does not
    /// read is not dropped with the rewrite: it goes to the unreadable file as it was.
    pub fn remove(&mut self, key: &str) -> std::io::Result<()> {
        let path = self.dir.join(QUEUE);
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        let mut text = String::new();
        for line in old.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Queued>(line) {
                Ok(q) if q.key == key => {}
                Ok(_) => {
                    text += line;
                    text.push('\n');
                }
                Err(e) => {
                    #[derive(Serialize)]
                    struct Unreadable<'a> {
                        line: &'a str,
                        why: String,
                    }
                    append(
                        &self.dir.join(UNREADABLE),
                        &Unreadable {
                            line,
                            why: format!("the queue line does not read: {e}"),
                        },
                    )?;
                }
            }
        }
        write_atomic(&path, text.as_bytes(), 0o600).map_err(|e| io_at(&path, e))
    }

    /// Moves a check-in the server refused to the rejected file, with why.
    pub fn reject(&mut self, q: &Queued, why: &str) -> std::io::Result<()> {
        #[derive(Serialize)]
        struct Rejected<'a> {
            #[serde(flatten)]
            queued: &'a Queued,
            why: &'a str,
        }
        append(&self.dir.join(REJECTED), &Rejected { queued: q, why })?;
        self.remove(&q.key)
    }

    /// The rejected check-ins' lines.
    pub fn rejected(&self) -> usize {
        lines_in(&self.dir.join(REJECTED))
    }

    /// The queue lines kept aside as unreadable.
    pub fn unreadable(&self) -> usize {
        lines_in(&self.dir.join(UNREADABLE))
    }
}

fn lines_in(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().filter(|l| !l.trim().is_empty()).count())
}

fn append(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let mut line = serde_json::to_string(value).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(|e| io_at(path, e))?;
    // After a torn last line (a power cut mid-append), start on a line of our own, so
    // this one is not glued to the torn bytes.
    let len = f.metadata().map_err(|e| io_at(path, e))?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        #[cfg(unix)]
        std::os::unix::fs::FileExt::read_at(&std::fs::File::open(path)?, &mut last, len - 1)
            .map_err(|e| io_at(path, e))?;
        if last[0] != b'\n' {
            line.insert(0, '\n');
        }
    }
    f.write_all(line.as_bytes()).map_err(|e| io_at(path, e))?;
    f.sync_data().map_err(|e| io_at(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapkit_core::kiosk_wire::sign_roster;

    fn dir(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("tapkit-queue-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn signed(secret: &[u8], kiosk: i64, version: i64) -> String {
        let r = Roster {
            kiosk_id: kiosk,
            version,
            expires_at_ms: 10,
            cards: Vec::new(),
        };
        let text = serde_json::to_string(&r).unwrap();
        serde_json::to_string(&SignedRoster {
            signature: sign_roster(secret, &text),
            roster: text,
        })
        .unwrap()
    }

    #[test]
    fn a_roster_is_kept_only_when_signed_for_this_kiosk() {
        let d = dir("roster");
        let q = Queues::new(&d, b"secret".to_vec());
        assert!(q.roster().is_none());
        assert!(
            q.save_roster(&signed(b"other", 1, 5), 1)
                .unwrap_err()
                .contains("signature")
        );
        assert!(
            q.save_roster(&signed(b"secret", 2, 5), 1)
                .unwrap_err()
                .contains("kiosk 2")
        );
        assert_eq!(
            q.save_roster(&signed(b"secret", 1, 5), 1).unwrap().version,
            5
        );
        // An older one does not replace it.
        assert_eq!(
            q.save_roster(&signed(b"secret", 1, 3), 1).unwrap().version,
            5
        );
        assert_eq!(q.roster().unwrap().version, 5);
        // Edited on disk: ignored.
        let path = d.join(ROSTER);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\\\"version\\\":5", "\\\"version\\\":9");
        std::fs::write(&path, text).unwrap();
        assert!(q.roster().is_none());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_queue_keeps_what_was_not_answered() {
        let d = dir("queue");
        let mut q = Queues::new(&d, Vec::new());
        let item = |k: &str| Queued {
            key: k.into(),
            url: "https://b.example.com/m/a?m=04A1B2C3D4E5F6x000001".into(),
            offline_at_ms: 1,
        };
        q.push(&item("a")).unwrap();
        q.push(&item("b")).unwrap();
        // A torn last line (power cut mid-append) is skipped, the rest kept.
        let path = d.join(QUEUE);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"key\":\"c\",\"ur").unwrap();
        assert_eq!(
            q.queued()
                .iter()
                .map(|x| x.key.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        q.push(&item("d")).unwrap();
        assert_eq!(
            q.queued()
                .iter()
                .map(|x| x.key.as_str())
                .collect::<Vec<_>>(),
            ["a", "b", "d"]
        );
        q.remove("d").unwrap();
        q.remove("a").unwrap();
        q.reject(&item("b"), "422: bad").unwrap();
        assert!(q.is_empty());
        assert_eq!(q.rejected(), 1);
        // The torn line was kept aside with the rewrite, not dropped.
        assert_eq!(q.unreadable(), 1);
        let _ = std::fs::remove_dir_all(&d);
    }
}

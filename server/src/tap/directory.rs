//! The `/r/{code}` hop's in-memory directory: code → affiliate (id, active) and the
//! channel kill-switches, so a tap costs no database read before its click is queued.
//!
//! Freshness: a change made through this server's admin API reloads the directory at
//! once; every replica also polls the database's `change_epoch` (bumped by every such
//! change) once a second and reloads when it moved, so a suspension or kill-switch made on
//! another replica takes effect there within about a second. A code missing from the
//! directory is looked up in the database (an affiliate created on another replica a
//! moment ago still works).
//!
//! Misses are remembered too, until the next reload: a flood of taps with well-formed but
//! unknown codes or card UIDs costs one database read per distinct value, not one per
//! tap. A reload (on any change, here or on another replica within about a second)
//! forgets them, so a code created elsewhere works as soon as this replica has seen the
//! change. At most [`MAX_MISSES`] of each are kept; past that the older ones are dropped.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::store::{Store, StoreError};

/// What the hop needs to know about an affiliate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    /// Affiliate id.
    pub id: i64,
    /// Status is `active`.
    pub active: bool,
    /// When its link stops earning (Unix ms), if it does.
    pub expires_at: Option<i64>,
}

/// A card as the tap needs it: its latest binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedCard {
    /// The binding (cards row).
    pub id: i64,
    /// The affiliate it is bound to.
    pub affiliate_id: i64,
    /// Still bound (not lost or retired).
    pub active: bool,
    /// NTAG 424 DNA: the key version its taps verify under (`None`: NTAG21x).
    pub key_version: Option<u8>,
}

/// A kiosk as the tap needs it to check its QR tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedKiosk {
    /// The affiliate whose counter it stands on.
    pub affiliate_id: i64,
    /// Not retired.
    pub active: bool,
    /// Its secret's generation.
    pub generation: i64,
}

#[derive(Debug, Default)]
struct Snapshot {
    /// Kiosk id → what its token check needs.
    kiosks: HashMap<i64, ListedKiosk>,
    epoch: i64,
    by_code: HashMap<String, Listed>,
    /// Card UID (upper-case hex) → its latest binding.
    cards: HashMap<String, ListedCard>,
    /// Channels off for the whole program.
    killed_all: HashSet<String>,
    /// Channels off per affiliate (looked up by `&str`: no allocation per tap).
    killed: HashMap<i64, HashSet<String>>,
}

/// How many unknown codes (and, apart, card UIDs) the directory remembers between reloads.
pub const MAX_MISSES: usize = 10_000;

/// Codes and card UIDs the database did not have at `epoch`.
#[derive(Debug, Default)]
struct Misses {
    epoch: i64,
    codes: HashSet<String>,
    cards: HashSet<String>,
}

/// Which kind of value missed.
#[derive(Debug, Clone, Copy)]
pub enum Miss {
    /// A referral code.
    Code,
    /// A card UID.
    Card,
}

/// The cached directory of one program.
#[derive(Debug)]
pub struct Directory {
    store: Store,
    program_id: i64,
    snap: RwLock<Arc<Snapshot>>,
    reloads: std::sync::atomic::AtomicU64,
    misses: std::sync::Mutex<Misses>,
    /// Database lookups made for values the directory did not hold.
    lookups: std::sync::atomic::AtomicU64,
}

impl ListedCard {
    /// A card binding as the tap sees it (`status` as stored: only `active` is bound).
    pub fn new(id: i64, affiliate_id: i64, status: &str, key_version: Option<i64>) -> Self {
        Self {
            id,
            affiliate_id,
            active: status == "active",
            key_version: key_version.and_then(|v| u8::try_from(v).ok()),
        }
    }
}

impl Directory {
    /// Loads the directory of `program_id`.
    pub async fn load(store: Store, program_id: i64) -> Result<Arc<Self>, StoreError> {
        let d = Arc::new(Self {
            store,
            program_id,
            snap: RwLock::new(Arc::new(Snapshot {
                epoch: -1,
                ..Snapshot::default()
            })),
            reloads: 0.into(),
            misses: std::sync::Mutex::default(),
            lookups: 0.into(),
        });
        d.reload().await?;
        Ok(d)
    }

    fn current(&self) -> Arc<Snapshot> {
        // A poisoned lock only means a panic elsewhere mid-swap of an Arc: the value
        // inside is still a whole snapshot.
        self.snap
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The affiliate with this canonical code, if cached.
    pub fn lookup(&self, code: &str) -> Option<Listed> {
        self.current().by_code.get(code).copied()
    }

    /// A card's latest binding, by UID (upper-case hex).
    pub fn card(&self, uid: &str) -> Option<ListedCard> {
        self.current().cards.get(uid).copied()
    }

    /// A kiosk by id.
    pub fn kiosk(&self, id: i64) -> Option<ListedKiosk> {
        self.current().kiosks.get(&id).copied()
    }

    /// Whether `value` is known to be missing from the database since the last reload.
    pub fn known_missing(&self, kind: Miss, value: &str) -> bool {
        let epoch = self.current().epoch;
        let m = self
            .misses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.epoch == epoch
            && match kind {
                Miss::Code => m.codes.contains(value),
                Miss::Card => m.cards.contains(value),
            }
    }

    /// Counts a database lookup made for a value the directory did not hold.
    pub fn looked_up(&self) {
        self.lookups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Database lookups for values the directory did not hold (for `/metrics`).
    pub fn lookups(&self) -> u64 {
        self.lookups.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Remembers that the database does not have `value`, until the next reload. `epoch`
    /// is the snapshot's epoch read before the database was asked, so a miss seen before
    /// a concurrent reload is not kept past it.
    pub fn note_missing(&self, kind: Miss, value: &str, epoch: i64) {
        let mut m = self
            .misses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if epoch != self.current().epoch {
            return;
        }
        if m.epoch != epoch {
            *m = Misses {
                epoch,
                ..Misses::default()
            };
        }
        let set = match kind {
            Miss::Code => &mut m.codes,
            Miss::Card => &mut m.cards,
        };
        if set.len() >= MAX_MISSES {
            set.clear();
        }
        set.insert(value.to_owned());
    }

    /// The epoch of the snapshot in use (pair with [`Self::note_missing`]).
    pub fn epoch(&self) -> i64 {
        self.current().epoch
    }

    /// Whether a channel is off for the affiliate or the whole program.
    pub fn killed(&self, affiliate_id: i64, channel: &str) -> bool {
        let s = self.current();
        s.killed_all.contains(channel)
            || s.killed
                .get(&affiliate_id)
                .is_some_and(|off| off.contains(channel))
    }

    /// Reads everything again.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let rows = self.store.directory_rows(self.program_id).await?;
        let mut snap = Snapshot {
            epoch: rows.epoch,
            ..Snapshot::default()
        };
        for a in rows.affiliates {
            snap.by_code.insert(
                a.code,
                Listed {
                    id: a.id,
                    active: a.active,
                    expires_at: a.expires_at,
                },
            );
        }
        // Ordered by id: a UID's later binding replaces its earlier ones.
        for c in rows.cards {
            snap.cards.insert(
                c.uid,
                ListedCard::new(c.id, c.affiliate_id, &c.status, c.key_version),
            );
        }
        for k in rows.kiosks {
            snap.kiosks.insert(
                k.id,
                ListedKiosk {
                    affiliate_id: k.affiliate_id,
                    active: k.status == "active",
                    generation: k.generation,
                },
            );
        }
        for (aff, channel) in rows.kills {
            match aff {
                Some(a) => {
                    snap.killed.entry(a).or_default().insert(channel);
                }
                None => {
                    snap.killed_all.insert(channel);
                }
            }
        }
        let mut w = self
            .snap
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Never replace a newer snapshot with an older one (two reloads racing).
        if snap.epoch >= w.epoch {
            *w = Arc::new(snap);
        }
        self.reloads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Reloads if the database's change epoch moved since the last load.
    pub async fn refresh(&self) -> Result<bool, StoreError> {
        let epoch = self.store.change_epoch().await?;
        if epoch != self.current().epoch {
            self.reload().await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// How many times the directory was loaded (for `/metrics`).
    pub fn reloads(&self) -> u64 {
        self.reloads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Polls the change epoch every `every` until the process ends; errors are logged
    /// once per outage, not once per poll.
    pub fn spawn_poller(self: &Arc<Self>, every: Duration) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut failing = false;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(d) = me.upgrade() else { return };
                match d.refresh().await {
                    Ok(_) if failing => {
                        tracing::info!("directory refresh works again");
                        failing = false;
                    }
                    Ok(_) => {}
                    Err(e) if !failing => {
                        tracing::warn!(%e, "cannot refresh the directory; serving the last one");
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
        });
    }
}

//! Group commit for clicks: requests hand their click to one writer, which inserts
//! every click waiting at that moment in a single transaction and commits once, then
//! answers each request. A request still gets its 302 only after its own click is
//! durable, but N concurrent clicks cost one commit instead of N
//! (`shared/docs/performance.md`: ~4k/s one-per-transaction vs ~55k/s batched on SQLite).
//!
//! On SQLite the writer is a thread with a connection of its own and prepared statements
//! ([`crate::store::click_db`]); on PostgreSQL a task writing one multi-row INSERT per batch.
//! Ids are reserved in blocks, and the per-IP rate limit is decided inside the same
//! transaction, so it costs no extra round trip per request and holds across replicas
//! on PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::store::{NewClick, Store, StoreError};

/// Largest batch written in one transaction.
const MAX_BATCH: usize = 512;

/// Click ids reserved per round trip.
const ID_BLOCK: i64 = 4096;

/// A written click: its id and final outcome (the rate limit may have flagged it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Click id.
    pub id: i64,
    /// `attributed`, `unattributed`, `preview` or `flagged`.
    pub outcome: &'static str,
}

type Reply = oneshot::Sender<Result<Written, String>>;

/// Counters for `/metrics` and tests.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed.
    pub batches: AtomicU64,
    /// Clicks written.
    pub clicks: AtomicU64,
    /// Largest batch so far.
    pub max_batch: AtomicU64,
    /// Batches by size bucket: ≤1, ≤4, ≤16, ≤64, ≤256, ≤512 (for `/metrics`).
    pub size_buckets: [AtomicU64; 6],
    /// Clicks stored, by channel ([`CHANNELS`]) and final outcome ([`OUTCOMES`]): counted
    /// by the writer, so a click stored for a client that hung up still counts.
    pub stored: [[AtomicU64; 4]; 4],
}

/// Upper bounds of [`WriterStats::size_buckets`].
pub const SIZE_BUCKETS: [u64; 6] = [1, 4, 16, 64, 256, 512];

/// Channels of clicks, in the order of [`WriterStats::stored`].
pub const CHANNELS: [&str; 4] = ["nfc", "qr", "kiosk", "link"];
/// Click outcomes, in the order of [`WriterStats::stored`].
pub const OUTCOMES: [&str; 4] = ["attributed", "unattributed", "preview", "flagged"];

impl WriterStats {
    /// Counts a stored click by its channel and final outcome.
    fn stored_one(&self, channel: &str, outcome: &str) {
        let c = CHANNELS.iter().position(|x| *x == channel);
        let o = OUTCOMES.iter().position(|x| *x == outcome);
        if let (Some(c), Some(o)) = (c, o) {
            self.stored[c][o].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The handle requests use.
#[derive(Debug, Clone)]
pub struct ClickWriter {
    tx: mpsc::Sender<(NewClick, Reply)>,
    stats: Arc<WriterStats>,
}

impl ClickWriter {
    /// Starts the writer (on SQLite a thread of its own, on PostgreSQL a task on the
    /// current runtime); `limit_per_hour` is the per-IP click limit (0: off).
    pub fn start(store: Store, limit_per_hour: u32) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<(NewClick, Reply)>(4 * MAX_BATCH);
        let stats = Arc::new(WriterStats::default());
        let done = Finish {
            stats: stats.clone(),
        };
        match store.click_db() {
            Some(db) => {
                // A blocking thread: SQLite calls block, and a thread of its own keeps the
                // batch's commit off the runtime's two workers without an async hop.
                std::thread::Builder::new()
                    .name("tapkit-clicks".into())
                    .spawn(move || sqlite_writer(&db, rx, limit_per_hour, &done))
                    .map_err(|e| {
                        StoreError::Config(format!("could not start the click writer thread: {e}"))
                    })?;
            }
            None => {
                tokio::spawn(postgres_writer(store, rx, limit_per_hour, done));
            }
        }
        Ok(Self { tx, stats })
    }

    /// Records a click; returns once it is committed, with its id and final outcome.
    pub async fn record(&self, click: NewClick) -> Result<Written, StoreError> {
        let (reply, done) = oneshot::channel();
        let closed = || StoreError::Db(sqlx::Error::PoolClosed);
        self.tx.send((click, reply)).await.map_err(|_| closed())?;
        match done.await {
            Ok(Ok(w)) => Ok(w),
            Ok(Err(e)) => Err(StoreError::Db(sqlx::Error::Protocol(e))),
            Err(_) => Err(closed()),
        }
    }

    /// Writer counters.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }
}

/// Counts a written batch and answers its requests.
struct Finish {
    stats: Arc<WriterStats>,
}

impl Finish {
    fn batch(
        &self,
        clicks: &[NewClick],
        replies: impl Iterator<Item = Reply>,
        result: Result<&[i64], String>,
    ) {
        let n = clicks.len() as u64;
        let st = &self.stats;
        st.batches.fetch_add(1, Ordering::Relaxed);
        st.clicks.fetch_add(n, Ordering::Relaxed);
        st.max_batch.fetch_max(n, Ordering::Relaxed);
        if let Some(i) = SIZE_BUCKETS.iter().position(|b| n <= *b) {
            st.size_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        match result {
            Ok(ids) => {
                for ((reply, id), c) in replies.zip(ids).zip(clicks) {
                    st.stored_one(c.channel, c.outcome);
                    let _ = reply.send(Ok(Written {
                        id: *id,
                        outcome: c.outcome,
                    }));
                }
            }
            Err(e) => {
                tracing::error!(%e, n, "writing a batch of clicks failed");
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// The SQLite writer thread: takes every click waiting, writes them in one transaction
/// through the click connection, answers. Ends when every sender is gone. A graceful
/// shutdown first lets every in-flight request finish, and each waits for its commit,
/// so no click whose 302 was sent is lost; a click queued by a request that was dropped
/// before its answer (the client went away) may be, and no 302 was sent for it.
fn sqlite_writer(
    db: &crate::store::ClickDbHandle,
    mut rx: mpsc::Receiver<(NewClick, Reply)>,
    limit_per_hour: u32,
    done: &Finish,
) {
    let mut clicks = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    let mut these = Vec::with_capacity(MAX_BATCH);
    let mut saved = Vec::with_capacity(MAX_BATCH);
    let mut ids = 0..0;
    while let Some((c, r)) = rx.blocking_recv() {
        clicks.push(c);
        replies.push(r);
        while clicks.len() < MAX_BATCH {
            let Ok((c, r)) = rx.try_recv() else { break };
            clicks.push(c);
            replies.push(r);
        }
        let mut db = db.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let allocated = (|| {
            if ids.end - ids.start < clicks.len() as i64 {
                ids = db.allocate_ids(ID_BLOCK)?;
            }
            these.clear();
            these.extend((ids.start..).take(clicks.len()));
            ids.start += clicks.len() as i64;
            Ok::<(), rusqlite::Error>(())
        })();
        saved.clear();
        saved.extend(clicks.iter().map(Decided::of));
        let result = allocated
            .as_ref()
            .map_err(ToString::to_string)
            .and_then(|()| {
                db.write(&mut clicks, &these, limit_per_hour)
                    .map_err(|e| e.to_string())
            });
        match result {
            Err(e) if allocated.is_ok() && clicks.len() > 1 => {
                // The transaction rolled back; one bad click must not cost the others
                // their redirect: each is written alone, as it arrived.
                tracing::warn!(%e, n = clicks.len(), "a batch of clicks failed; writing each alone");
                for (i, reply) in replies.drain(..).enumerate() {
                    saved[i].restore(&mut clicks[i]);
                    let one = std::slice::from_mut(&mut clicks[i]);
                    let id = &these[i..=i];
                    let r = db.write(one, id, limit_per_hour).map(|()| id);
                    done.batch(one, std::iter::once(reply), r.map_err(|e| e.to_string()));
                }
            }
            result => {
                drop(db);
                done.batch(
                    &clicks,
                    replies.drain(..),
                    result.map(|()| these.as_slice()),
                );
            }
        }
        clicks.clear();
    }
}

/// What writing a click may decide about it inside the transaction (the counter check,
/// the rate limit): kept so that a click written again alone, after its batch failed,
/// starts as it arrived and not with a verdict of the rolled-back transaction.
#[derive(Debug, Clone, Copy)]
struct Decided {
    outcome: &'static str,
    reason: Option<&'static str>,
    rate_limit: bool,
}

impl Decided {
    fn of(c: &NewClick) -> Self {
        Self {
            outcome: c.outcome,
            reason: c.reason,
            rate_limit: c.rate_limit,
        }
    }

    fn restore(self, c: &mut NewClick) {
        c.outcome = self.outcome;
        c.reason = self.reason;
        c.rate_limit = self.rate_limit;
    }
}

/// The PostgreSQL writer task: the same, through sqlx (several replicas share the
/// database: ids come in blocks, the rate limit takes advisory locks).
async fn postgres_writer(
    store: Store,
    mut rx: mpsc::Receiver<(NewClick, Reply)>,
    limit_per_hour: u32,
    done: Finish,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut ids = 0..0;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (mut clicks, replies): (Vec<NewClick>, Vec<Reply>) = batch.drain(..).unzip();
        let saved: Vec<Decided> = clicks.iter().map(Decided::of).collect();
        let allocated = async {
            if ids.end - ids.start < clicks.len() as i64 {
                ids = store.allocate_click_ids(ID_BLOCK).await?;
            }
            let these: Vec<i64> = (ids.start..).take(clicks.len()).collect();
            ids.start += clicks.len() as i64;
            Ok::<_, StoreError>(these)
        }
        .await;
        let these = match allocated {
            Ok(these) => these,
            Err(e) => {
                done.batch(&clicks, replies.into_iter(), Err(e.to_string()));
                continue;
            }
        };
        match store
            .insert_clicks(&mut clicks, &these, limit_per_hour)
            .await
        {
            Ok(()) => done.batch(&clicks, replies.into_iter(), Ok(&these)),
            Err(e) if clicks.len() > 1 => {
                // As on SQLite: the batch rolled back, so each click is written alone.
                tracing::warn!(%e, n = clicks.len(), "a batch of clicks failed; writing each alone");
                for (i, reply) in replies.into_iter().enumerate() {
                    saved[i].restore(&mut clicks[i]);
                    let one = std::slice::from_mut(&mut clicks[i]);
                    let id = &these[i..=i];
                    let r = store.insert_clicks(one, id, limit_per_hour).await;
                    done.batch(
                        one,
                        std::iter::once(reply),
                        r.map(|()| id).map_err(|e| e.to_string()),
                    );
                }
            }
            Err(e) => done.batch(&clicks, replies.into_iter(), Err(e.to_string())),
        }
    }
}

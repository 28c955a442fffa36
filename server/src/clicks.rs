//! Group commit for clicks: requests hand their click to one writer task, which inserts
//! every click waiting at that moment in a single transaction and commits once, then
//! answers each request. A request still gets its 302 only after its own click is
//! durable, but N concurrent clicks cost one commit instead of N
//! (`shared/docs/performance.md`: ~4k/s one-per-transaction vs ~55k/s batched on SQLite).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::store::{NewClick, Store, StoreError};

/// Largest batch written in one transaction.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<i64, String>>;

/// Counters for `/metrics` and tests.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed.
    pub batches: AtomicU64,
    /// Clicks written.
    pub clicks: AtomicU64,
    /// Largest batch so far.
    pub max_batch: AtomicU64,
}

/// The handle requests use.
#[derive(Debug, Clone)]
pub struct ClickWriter {
    tx: mpsc::Sender<(NewClick, Reply)>,
    stats: Arc<WriterStats>,
}

impl ClickWriter {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Store) -> Self {
        let (tx, mut rx) = mpsc::channel::<(NewClick, Reply)>(4 * MAX_BATCH);
        let stats = Arc::new(WriterStats::default());
        let st = stats.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            // Ends when every sender is gone (server shut down): nothing queued is lost.
            while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (clicks, replies): (Vec<NewClick>, Vec<Reply>) = batch.drain(..).unzip();
                let result = store.insert_clicks(&clicks).await;
                st.batches.fetch_add(1, Ordering::Relaxed);
                st.clicks.fetch_add(clicks.len() as u64, Ordering::Relaxed);
                st.max_batch
                    .fetch_max(clicks.len() as u64, Ordering::Relaxed);
                match result {
                    Ok(ids) => {
                        for (reply, id) in replies.into_iter().zip(ids) {
                            let _ = reply.send(Ok(id));
                        }
                    }
                    Err(e) => {
                        tracing::error!(%e, n = clicks.len(), "writing a batch of clicks failed");
                        for reply in replies {
                            let _ = reply.send(Err(e.to_string()));
                        }
                    }
                }
            }
        });
        Self { tx, stats }
    }

    /// Records a click; returns once it is committed.
    pub async fn record(&self, click: NewClick) -> Result<i64, StoreError> {
        let (reply, done) = oneshot::channel();
        let closed = || StoreError::Db(sqlx::Error::PoolClosed);
        self.tx.send((click, reply)).await.map_err(|_| closed())?;
        match done.await {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(e)) => Err(StoreError::Db(sqlx::Error::Protocol(e))),
            Err(_) => Err(closed()),
        }
    }

    /// Writer counters.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }
}

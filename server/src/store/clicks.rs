//! Clicks: the group-commit writer's batches (on SQLite through the click connection of [`super::click_db`], on PostgreSQL multi-row INSERTs with the per-IP limit decided inside the transaction), ids reserved in blocks.

use sqlx::Row;

use super::{Store, StoreError, click_db};

/// A click to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClick {
    /// When, Unix ms.
    pub at: i64,
    /// The code as resolved (or as given, when invalid).
    pub code: String,
    /// Affiliate, when the code resolved.
    pub affiliate_id: Option<i64>,
    /// `nfc`, `qr`, `kiosk`, `link`.
    pub channel: &'static str,
    /// Card, for NFC taps from a registered card.
    pub card_id: Option<i64>,
    /// Tap counter from the mirror.
    pub counter: Option<i64>,
    /// User agent (truncated).
    pub user_agent: Option<String>,
    /// Referer (truncated).
    pub referer: Option<String>,
    /// Keyed hash of the client IP (never the IP).
    pub ip_hash: String,
    /// `attributed`, `unattributed`, `preview`, `flagged`.
    pub outcome: &'static str,
    /// Why not attributed / why flagged.
    pub reason: Option<&'static str>,
    /// Subject to the per-IP rate limit: the click would earn attribution, unless its
    /// hashed IP has had too many clicks in the last hour (decided when it is written).
    pub rate_limit: bool,
    /// An NFC tap of an active card (`card_id`, `counter`): the card's counter is
    /// checked and advanced inside the transaction that stores the click, so the click
    /// and its counter commit together. A counter that did not rise (a replayed or
    /// copied URL) makes the click `flagged` / `replayed_counter`; a card ended since
    /// the tap's lookup makes it `unattributed` / `card_revoked`.
    pub check_counter: bool,
    /// The link's campaign tags, when it carried any (boxed: most taps have none).
    pub utm: Option<Box<Utm>>,
}

/// A link's `utm_source`, `utm_medium` and `utm_campaign`, as stored: percent-decoded,
/// control characters dropped, at most [`Utm::MAX_CHARS`] characters each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Utm {
    /// `utm_source` (`whatsapp`, `newsletter` …).
    pub source: Option<String>,
    /// `utm_medium`.
    pub medium: Option<String>,
    /// `utm_campaign`.
    pub campaign: Option<String>,
}

impl Utm {
    /// The longest value kept, in characters.
    pub const MAX_CHARS: usize = 100;
}

/// The order in which a batch checks card counters: by card, then in arrival order. Two
/// taps of one card are decided in the order they came; and every transaction locks card
/// rows in ascending id, so two replicas' batches never deadlock on PostgreSQL.
pub(super) fn counter_order(clicks: &[NewClick]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..clicks.len())
        .filter(|&i| clicks[i].check_counter && clicks[i].card_id.is_some())
        .collect();
    order.sort_by_key(|&i| clicks[i].card_id);
    order
}

/// What a click whose counter did not advance becomes: `card_active` says whether the
/// card is still bound (then the counter did not rise).
pub(super) fn counter_refused(c: &mut NewClick, card_active: bool) {
    c.rate_limit = false;
    if card_active {
        c.outcome = "flagged";
        c.reason = Some("replayed_counter");
    } else {
        c.outcome = "unattributed";
        c.reason = Some("card_revoked");
    }
}

/// Raises an active card's counter if the tap's is higher (gaps are normal: phones read
/// cards without always reaching the server).
pub(super) const ADVANCE_COUNTER: &str = "UPDATE cards SET last_counter = $2 WHERE id = $1 AND status = 'active' AND (last_counter IS NULL OR last_counter < $2)";

/// Rows per multi-row INSERT on PostgreSQL (12 parameters each: 6,144 at most, well
/// under its 65,535). The click writer's batches are at most this long, so a batch is one
/// statement.
const INSERT_CHUNK: usize = 512;

/// SQLite's `synchronous` setting (WAL mode): what a committed click survives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SqliteSync {
    /// Synced at every commit: survives power loss and OS crashes.
    #[default]
    Full,
    /// Synced at checkpoints: survives a crash (even SIGKILL) of the server process,
    /// not of the machine.
    Normal,
}

/// The click connection, shared by the click writer's thread and [`Store::insert_clicks`].
pub(crate) type ClickDbHandle = std::sync::Arc<std::sync::Mutex<click_db::ClickDb>>;

impl Store {
    /// On SQLite, the connection clicks are written through.
    pub(crate) fn click_db(&self) -> Option<ClickDbHandle> {
        self.click_db.clone()
    }

    /// Runs `f` with the click connection on a blocking thread (SQLite only).
    async fn with_click_db<T: Send + 'static>(
        db: &ClickDbHandle,
        f: impl FnOnce(&mut click_db::ClickDb) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = db.clone();
        tokio::task::spawn_blocking(move || {
            f(&mut db.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
        })
        .await
        .map_err(|e| StoreError::Db(sqlx::Error::Protocol(format!("click writer: {e}"))))?
        .map_err(StoreError::from)
    }

    /// Records one click outside the group-commit writer (tests, tools); returns its id.
    pub async fn insert_click(&self, c: &NewClick) -> Result<i64, StoreError> {
        let ids = self.allocate_click_ids(1).await?;
        let mut one = [c.clone()];
        self.insert_clicks(&mut one, &[ids.start], 0).await?;
        Ok(ids.start)
    }

    /// Writes a batch of clicks with their `ids` in one transaction (on SQLite through
    /// the click connection, [`click_db`]; on PostgreSQL multi-row INSERTs).
    /// With `limit_per_hour` > 0, a click marked `rate_limit` whose hashed IP already has
    /// that many clicks in the last hour (committed ones, and earlier ones in this batch)
    /// is turned into `flagged` / `rate_limited` before it is written. On PostgreSQL the
    /// batch takes a transaction-scoped advisory lock per hashed IP (in sorted order, so
    /// replicas never deadlock), which makes the limit exact across replicas.
    pub async fn insert_clicks(
        &self,
        clicks: &mut [NewClick],
        ids: &[i64],
        limit_per_hour: u32,
    ) -> Result<(), StoreError> {
        debug_assert_eq!(clicks.len(), ids.len());
        if let Some(db) = &self.click_db {
            let (mut owned, ids) = (clicks.to_vec(), ids.to_vec());
            let owned = Self::with_click_db(db, move |db| {
                db.write(&mut owned, &ids, limit_per_hour).map(|()| owned)
            })
            .await?;
            clicks.clone_from_slice(&owned);
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        self.write_clicks(&mut tx, clicks, ids, limit_per_hour)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// PostgreSQL's half of [`Store::insert_clicks`], inside its transaction.
    async fn write_clicks(
        &self,
        conn: &mut sqlx::AnyConnection,
        clicks: &mut [NewClick],
        ids: &[i64],
        limit_per_hour: u32,
    ) -> Result<(), StoreError> {
        for i in counter_order(clicks) {
            let (card, counter) = (clicks[i].card_id, clicks[i].counter);
            let advanced = sqlx::query(ADVANCE_COUNTER)
                .bind(card)
                .bind(counter)
                .execute(&mut *conn)
                .await?
                .rows_affected()
                == 1;
            if !advanced {
                let status: Option<String> = sqlx::query("SELECT status FROM cards WHERE id = $1")
                    .bind(card)
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|r| r.try_get("status"))
                    .transpose()?;
                counter_refused(&mut clicks[i], status.as_deref() == Some("active"));
            }
        }
        if limit_per_hour > 0 && clicks.iter().any(|c| c.rate_limit) {
            let mut ips: Vec<String> = clicks
                .iter()
                .filter(|c| c.rate_limit)
                .map(|c| c.ip_hash.clone())
                .collect();
            ips.sort_unstable();
            ips.dedup();
            let list = (0..ips.len())
                .map(|i| format!("${}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            {
                // VALUES is scanned in order: the locks are taken in sorted order.
                let sql = format!(
                    "SELECT COUNT(pg_advisory_xact_lock(hashtext(v))) AS n FROM (VALUES {}) AS t(v)",
                    (0..ips.len())
                        .map(|i| format!("(${})", i + 1))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let mut q = sqlx::query(&sql);
                for ip in &ips {
                    q = q.bind(ip.as_str());
                }
                q.fetch_one(&mut *conn).await?;
            }
            let sql = format!(
                "SELECT ip_hash, COUNT(*) AS n FROM clicks WHERE at >= $1 AND ip_hash IN ({list}) GROUP BY ip_hash"
            );
            let since = clicks.iter().map(|c| c.at).min().unwrap_or(0) - 3_600_000;
            let mut q = sqlx::query(&sql).bind(since);
            for ip in &ips {
                q = q.bind(ip.as_str());
            }
            let mut seen: std::collections::HashMap<String, i64> = q
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("ip_hash")?, r.try_get("n")?)))
                .collect::<Result<_, sqlx::Error>>()?;
            // Every click from a limited IP counts, in batch order.
            for c in clicks.iter_mut() {
                if ips.binary_search(&c.ip_hash).is_err() {
                    continue;
                }
                let n = seen.entry(c.ip_hash.clone()).or_insert(0);
                if c.rate_limit && *n >= i64::from(limit_per_hour) {
                    c.outcome = "flagged";
                    c.reason = Some("rate_limited");
                }
                *n += 1;
            }
        }
        for (chunk, chunk_ids) in clicks.chunks(INSERT_CHUNK).zip(ids.chunks(INSERT_CHUNK)) {
            let mut sql = String::with_capacity(64 + chunk.len() * 64);
            sql.push_str(
                "INSERT INTO clicks (id, at, code, affiliate_id, channel, card_id, counter, user_agent, referer, ip_hash, outcome, reason, utm_source, utm_medium, utm_campaign) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 15;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for k in 1..=15 {
                    if k > 1 {
                        sql.push_str(", ");
                    }
                    sql.push('$');
                    sql.push_str(&(b + k).to_string());
                }
                sql.push(')');
            }
            let mut q = sqlx::query(&sql);
            for (c, id) in chunk.iter().zip(chunk_ids) {
                q = q
                    .bind(*id)
                    .bind(c.at)
                    .bind(c.code.as_str())
                    .bind(c.affiliate_id)
                    .bind(c.channel)
                    .bind(c.card_id)
                    .bind(c.counter)
                    .bind(c.user_agent.as_deref())
                    .bind(c.referer.as_deref())
                    .bind(c.ip_hash.as_str())
                    .bind(c.outcome)
                    .bind(c.reason)
                    .bind(c.utm.as_ref().and_then(|u| u.source.as_deref()))
                    .bind(c.utm.as_ref().and_then(|u| u.medium.as_deref()))
                    .bind(c.utm.as_ref().and_then(|u| u.campaign.as_deref()));
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// A click's affiliate, time and outcome, if it exists (the same query attribution
    /// uses inside a money transaction).
    pub async fn click(&self, id: i64) -> Result<Option<(Option<i64>, i64, String)>, StoreError> {
        Ok(super::money::click(&self.pool, id)
            .await?
            .map(|c| (c.affiliate_id, c.at, c.outcome)))
    }

    /// Number of clicks (tests and benchmarks compare it with the 302s sent).
    pub async fn click_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM clicks")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// Reserves `n` consecutive click ids (one statement per block; unique across
    /// replicas).
    pub async fn allocate_click_ids(&self, n: i64) -> Result<std::ops::Range<i64>, StoreError> {
        if let Some(db) = &self.click_db {
            return Self::with_click_db(db, move |db| db.allocate_ids(n)).await;
        }
        let end: i64 = sqlx::query(
            "UPDATE id_blocks SET next_id = next_id + $1 WHERE name = 'clicks' RETURNING next_id",
        )
        .bind(n)
        .fetch_one(&self.pool)
        .await?
        .try_get("next_id")?;
        Ok(end - n..end)
    }
}

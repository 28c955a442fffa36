//! Writing clicks to a SQLite file: the hot path of every `/r/{code}` on SQLite.
//!
//! The rest of the store goes through sqlx. Clicks do not, on SQLite: the click writer
//! (`clicks.rs`) owns one connection of its own on a dedicated thread and writes each
//! batch with statements prepared once, in one `BEGIN IMMEDIATE … COMMIT`. Through sqlx
//! every batch built a new multi-row SQL string, hashed it into sqlx's statement cache,
//! converted each value through the `Any` driver, crossed to sqlx's SQLite thread and
//! back, and took whichever pool connection was free, whose page cache the previous
//! write by another connection had made stale (perf: the writer thread was 38 % of the
//! server's CPU, ~19 µs per click). Here a click is one `sqlite3_step` of a prepared
//! statement.
//!
//! rusqlite links the same bundled SQLite that sqlx does (libsqlite3-sys 0.30): one
//! library, one file format, WAL shared with the pool's connections.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::clicks::{counter_order, counter_refused};
use crate::store::{NewClick, SqliteSync};

const INSERT: &str = "INSERT INTO clicks (id, at, code, affiliate_id, channel, card_id, counter, user_agent, referer, ip_hash, outcome, reason, utm_source, utm_medium, utm_campaign) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
const COUNT_RECENT: &str = "SELECT COUNT(*) FROM clicks WHERE ip_hash = ?1 AND at >= ?2";
const CARD_STATUS: &str = "SELECT status FROM cards WHERE id = ?1";
/// [`super::clicks::ADVANCE_COUNTER`] with SQLite's numbered parameters (rusqlite binds
/// by position; `$N` would be numbered by order of appearance).
const ADVANCE_COUNTER: &str = "UPDATE cards SET last_counter = ?2 WHERE id = ?1 AND status = 'active' AND (last_counter IS NULL OR last_counter < ?2)";
const ALLOCATE: &str =
    "UPDATE id_blocks SET next_id = next_id + ?1 WHERE name = 'clicks' RETURNING next_id";

/// One connection to the SQLite file, for clicks only.
#[derive(Debug)]
pub(crate) struct ClickDb {
    conn: Connection,
}

impl ClickDb {
    /// Opens the (already migrated) database file with the same settings as the pool's
    /// connections: WAL, the chosen `synchronous`, a 5 s busy timeout, foreign keys on.
    pub(crate) fn open(path: &Path, sync: SqliteSync) -> Result<Self, rusqlite::Error> {
        Ok(Self {
            conn: open_connection(path, sync)?,
        })
    }

    /// Reserves `n` consecutive click ids (the same `id_blocks` row PostgreSQL uses).
    pub(crate) fn allocate_ids(&mut self, n: i64) -> Result<Range<i64>, rusqlite::Error> {
        let end: i64 = self
            .conn
            .prepare_cached(ALLOCATE)?
            .query_row([n], |r| r.get(0))?;
        Ok(end - n..end)
    }

    /// Writes `clicks` with their `ids` in one transaction. With `limit_per_hour` > 0, a
    /// click marked `rate_limit` whose hashed IP already has that many clicks in the last
    /// hour (stored ones, and earlier ones in this batch) becomes `flagged` /
    /// `rate_limited` before it is written. `BEGIN IMMEDIATE` takes the write lock before
    /// counting, so nothing can slip in between the count and the insert.
    pub(crate) fn write(
        &mut self,
        clicks: &mut [NewClick],
        ids: &[i64],
        limit_per_hour: u32,
    ) -> Result<(), rusqlite::Error> {
        debug_assert_eq!(clicks.len(), ids.len());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Card counters first, so a replayed tap is neither attributed nor rate-limited.
        for i in counter_order(clicks) {
            let (card, counter) = (clicks[i].card_id, clicks[i].counter);
            let advanced = tx
                .prepare_cached(ADVANCE_COUNTER)?
                .execute(params![card, counter])?
                == 1;
            if !advanced {
                let status: Option<String> = tx
                    .prepare_cached(CARD_STATUS)?
                    .query_row([card], |r| r.get(0))
                    .optional()?;
                counter_refused(&mut clicks[i], status.as_deref() == Some("active"));
            }
        }
        if limit_per_hour > 0 && clicks.iter().any(|c| c.rate_limit) {
            let since = clicks.iter().map(|c| c.at).min().unwrap_or(0) - 3_600_000;
            let mut count = tx.prepare_cached(COUNT_RECENT)?;
            // Hashed IP → its clicks so far: the stored ones of the last hour, then this
            // batch's in order. Only IPs with a click that could be limited are counted.
            let mut seen: HashMap<&str, i64> = HashMap::new();
            for c in clicks.iter().filter(|c| c.rate_limit) {
                if !seen.contains_key(c.ip_hash.as_str()) {
                    let stored: i64 = count.query_row(params![c.ip_hash, since], |r| r.get(0))?;
                    seen.insert(c.ip_hash.as_str(), stored);
                }
            }
            let over: Vec<bool> = clicks
                .iter()
                .map(|c| match seen.get_mut(c.ip_hash.as_str()) {
                    Some(n) => {
                        let over = c.rate_limit && *n >= i64::from(limit_per_hour);
                        *n += 1;
                        over
                    }
                    None => false,
                })
                .collect();
            drop(seen);
            for (c, over) in clicks.iter_mut().zip(over) {
                if over {
                    c.outcome = "flagged";
                    c.reason = Some("rate_limited");
                }
            }
        }
        {
            let mut insert = tx.prepare_cached(INSERT)?;
            for (c, id) in clicks.iter().zip(ids) {
                insert.execute(params![
                    id,
                    c.at,
                    c.code,
                    c.affiliate_id,
                    c.channel,
                    c.card_id,
                    c.counter,
                    c.user_agent,
                    c.referer,
                    c.ip_hash,
                    c.outcome,
                    c.reason,
                    c.utm.as_ref().and_then(|u| u.source.as_deref()),
                    c.utm.as_ref().and_then(|u| u.medium.as_deref()),
                    c.utm.as_ref().and_then(|u| u.campaign.as_deref()),
                ])?;
            }
        }
        tx.commit()
    }
}

/// A connection to the (already migrated) database file with the pool's settings: WAL,
/// the chosen `synchronous`, a 5 s busy timeout, foreign keys on (the click writer's
/// and the check-in writer's, [`super::checkin_db`]).
pub(crate) fn open_connection(
    path: &Path,
    sync: SqliteSync,
) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(
        None,
        "synchronous",
        match sync {
            SqliteSync::Full => "FULL",
            SqliteSync::Normal => "NORMAL",
        },
    )?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(8);
    Ok(conn)
}

//! Check-ins on SQLite: one connection of their own on a dedicated thread, as clicks
//! have ([`super::click_db`]), and a group commit. The kiosks' check-ins waiting at a
//! moment are written in one `BEGIN IMMEDIATE … COMMIT` (one fsync), each in its own
//! savepoint, so one that fails leaves the others as they are; each answer is sent only
//! once its batch is committed. Through sqlx, every statement crossed to sqlx's SQLite
//! thread and back: perf showed over half the server's CPU in those thread switches,
//! and 200 check-ins at once queued for SQLite's write lock in busy_timeout's sleeps
//! (`scripts/bench-checkin.sh`, BENCHMARKS.md). Here a statement is one prepared
//! `sqlite3_step`.
//!
//! The decision is the store's shared one ([`super::checkins::decide`]); the statements
//! are those of [`super::checkins`] with SQLite's numbered parameters (rusqlite binds
//! by position).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::checkins::{CheckIn, DeskView, Found, Recorded, Tap, Tapped, decide, settle};
use super::click_db::open_connection;
use super::{SqliteSync, StoreError};

const BY_KEY: &str = "SELECT id, member_id, card_id, kiosk_id, counter, accepted, reason, visit, at, \
    offline_at, overdraft FROM checkins WHERE kiosk_id = ?1 AND idempotency_key = ?2";
const MEMBER: &str =
    "SELECT id, status, failed_on, period FROM members WHERE program_id = ?1 AND code = ?2";
const CARD: &str = "SELECT id, status FROM member_cards WHERE member_id = ?1 AND uid = ?2 \
    ORDER BY CASE WHEN status = 'active' THEN 0 ELSE 1 END, id DESC LIMIT 1";
const ADVANCE: &str = "UPDATE member_cards SET last_counter = ?2 WHERE id = ?1 \
    AND status = 'active' AND last_counter < ?2";
const TAKE_ROLLED: &str = "UPDATE members SET visits_rolled_used = visits_rolled_used + 1, updated_at = ?3 \
    WHERE id = ?1 AND period = ?2 AND status IN ('active', 'past_due') AND visits_rolled_used < visits_rolled";
const TAKE_INCLUDED: &str = "UPDATE members SET visits_used = visits_used + 1, updated_at = ?3 \
    WHERE id = ?1 AND period = ?2 AND status IN ('active', 'past_due') \
    AND (visits_included IS NULL OR visits_used < visits_included) RETURNING visits_included";
const VIEW: &str = "SELECT first_name, plan, visits_included, visits_used, visits_rolled, \
    visits_rolled_used FROM members WHERE id = ?1";
const INSERT: &str = "INSERT INTO checkins (program_id, member_id, card_id, kiosk_id, counter, accepted, \
    reason, visit, period, idempotency_key, at, offline_at, overdraft) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
    RETURNING id, member_id, card_id, kiosk_id, counter, accepted, reason, visit, at, offline_at, overdraft";
const ACCEPTED: &str =
    "SELECT 1 FROM checkins WHERE card_id = ?1 AND counter = ?2 AND accepted = 1";

/// A tap, owned (it crosses to the writer's thread).
struct Job {
    tap: OwnedTap,
    done: tokio::sync::oneshot::Sender<Result<Tapped, StoreError>>,
}

struct OwnedTap {
    program_id: i64,
    code: Option<String>,
    uid: String,
    counter: i64,
    kiosk_id: i64,
    kiosk_allowed: bool,
    idempotency_key: Option<String>,
    offline_at: Option<i64>,
    now: i64,
    grace_days: u32,
    refuse: fn(&super::checkins::Standing<'_>, i64, u32) -> Option<&'static str>,
}

impl OwnedTap {
    fn tap(&self) -> Tap<'_> {
        Tap {
            program_id: self.program_id,
            code: self.code.as_deref(),
            uid: &self.uid,
            counter: self.counter,
            kiosk_id: self.kiosk_id,
            kiosk_allowed: self.kiosk_allowed,
            idempotency_key: self.idempotency_key.as_deref(),
            offline_at: self.offline_at,
            now: self.now,
            grace_days: self.grace_days,
            refuse: self.refuse,
        }
    }
}

/// The writer's queue.
#[derive(Debug, Clone)]
pub(crate) struct Handle(tokio::sync::mpsc::Sender<Job>);

/// The most check-ins one commit takes.
const BATCH: usize = 256;

/// Opens the check-in connection and starts its thread.
pub(crate) fn spawn(path: &Path, sync: SqliteSync) -> Result<Handle, StoreError> {
    let mut conn = open_connection(path, sync)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Job>(4 * BATCH);
    std::thread::Builder::new()
        .name("tapkit-checkins".into())
        .spawn(move || {
            while let Some(first) = rx.blocking_recv() {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(j) => batch.push(j),
                        Err(_) => break,
                    }
                }
                match write(&mut conn, &batch) {
                    Ok(answers) => {
                        for (job, answer) in batch.into_iter().zip(answers) {
                            let _ = job.done.send(answer);
                        }
                    }
                    // The batch's commit failed (nothing of it was written): each
                    // check-in again on its own, so one cannot fail the others.
                    Err(e) => {
                        tracing::warn!(%e, size = batch.len(), "a check-in batch failed; writing its check-ins one by one");
                        for job in batch {
                            let one = write(&mut conn, std::slice::from_ref(&job))
                                .map_err(StoreError::from)
                                .and_then(|mut a| {
                                    a.pop().unwrap_or_else(|| Err(StoreError::Config("no answer".into())))
                                });
                            let _ = job.done.send(one);
                        }
                    }
                }
            }
        })
        .map_err(|e| StoreError::Config(format!("cannot start the check-in thread: {e}")))?;
    Ok(Handle(tx))
}

impl Handle {
    /// Checks the tap in through the writer; answers once committed.
    pub(crate) async fn check_in(&self, tap: &Tap<'_>) -> Result<Tapped, StoreError> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            tap: OwnedTap {
                program_id: tap.program_id,
                code: tap.code.map(str::to_owned),
                uid: tap.uid.to_owned(),
                counter: tap.counter,
                kiosk_id: tap.kiosk_id,
                kiosk_allowed: tap.kiosk_allowed,
                idempotency_key: tap.idempotency_key.map(str::to_owned),
                offline_at: tap.offline_at,
                now: tap.now,
                grace_days: tap.grace_days,
                refuse: tap.refuse,
            },
            done,
        };
        let stopped = || StoreError::Config("the check-in writer stopped".into());
        self.0.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn write(
    conn: &mut Connection,
    batch: &[Job],
) -> Result<Vec<Result<Tapped, StoreError>>, rusqlite::Error> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut answers = Vec::with_capacity(batch.len());
    for job in batch {
        let t = job.tap.tap();
        let sp = tx.savepoint()?;
        match one(&sp, &t) {
            Ok(r) => {
                let member = view(&sp, &r)?;
                sp.commit()?;
                answers.push(Ok(Tapped {
                    recorded: r,
                    member,
                }));
            }
            Err(Failure::KeyTaken) => {
                drop(sp); // rolls back
                let key = t.idempotency_key.unwrap_or_default();
                answers.push(match by_key(&tx, t.kiosk_id, key)? {
                    Some(done) => {
                        let r = Recorded::Replayed(done);
                        let member = view(&tx, &r)?;
                        Ok(Tapped {
                            recorded: r,
                            member,
                        })
                    }
                    None => Err(StoreError::Config("a check-in vanished".into())),
                });
            }
            Err(Failure::Db(e)) => {
                drop(sp);
                answers.push(Err(e.into()));
            }
        }
    }
    tx.commit()?;
    Ok(answers)
}

enum Failure {
    KeyTaken,
    Db(rusqlite::Error),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(e)
    }
}

fn checkin(r: &rusqlite::Row<'_>) -> rusqlite::Result<CheckIn> {
    Ok(CheckIn {
        id: r.get(0)?,
        member_id: r.get(1)?,
        card_id: r.get(2)?,
        kiosk_id: r.get(3)?,
        counter: r.get(4)?,
        accepted: r.get::<_, i64>(5)? != 0,
        reason: r.get(6)?,
        visit: r.get(7)?,
        at: r.get(8)?,
        offline_at: r.get(9)?,
        overdraft: r.get(10)?,
    })
}

/// The check-in's member as it is now.
fn view(conn: &Connection, r: &Recorded) -> rusqlite::Result<Option<DeskView>> {
    let (Recorded::New(c) | Recorded::Replayed(c)) = r;
    let Some(id) = c.member_id else {
        return Ok(None);
    };
    conn.prepare_cached(VIEW)?
        .query_row([id], |r| {
            Ok(DeskView {
                first_name: r.get(0)?,
                plan: r.get(1)?,
                visits_included: r.get(2)?,
                visits_used: r.get(3)?,
                visits_rolled: r.get(4)?,
                visits_rolled_used: r.get(5)?,
            })
        })
        .optional()
}

fn by_key(conn: &Connection, kiosk_id: i64, key: &str) -> rusqlite::Result<Option<CheckIn>> {
    conn.prepare_cached(BY_KEY)?
        .query_row(params![kiosk_id, key], checkin)
        .optional()
}

/// One check-in, in the caller's savepoint: find, decide, the counter, the visit, the log.
fn one(conn: &Connection, t: &Tap<'_>) -> Result<Recorded, Failure> {
    if let Some(key) = t.idempotency_key
        && let Some(done) = by_key(conn, t.kiosk_id, key)?
    {
        return Ok(Recorded::Replayed(done));
    }
    let found = match t.code {
        None => None,
        Some(code) => {
            let m = conn
                .prepare_cached(MEMBER)?
                .query_row(params![t.program_id, code], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()?;
            match m {
                None => None,
                Some((member_id, status, failed_on, period)) => {
                    let card = conn
                        .prepare_cached(CARD)?
                        .query_row(params![member_id, t.uid], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?;
                    Some(Found {
                        member_id,
                        status,
                        failed_on,
                        period,
                        card,
                    })
                }
            }
        }
    };
    let (member_id, card_id, period, refused) = decide(t, found.as_ref());
    let mut reason = refused.map(str::to_owned);
    let offline = t.offline_at.is_some();
    if let Some(card) = card_id {
        // The counter first, even for a refusal: a URL seen once is never new again.
        let rose = conn
            .prepare_cached(ADVANCE)?
            .execute(params![card, t.counter])?
            == 1;
        // Offline check-ins arrive late, after later taps: only a tap already accepted
        // is a copy.
        let copy = if offline {
            conn.prepare_cached(ACCEPTED)?
                .exists(params![card, t.counter])?
        } else {
            !rose && reason.is_none()
        };
        if copy {
            reason = Some("counter_not_rising".to_owned());
        }
    }
    let mut visit = None;
    if reason.is_none() {
        match (member_id, period.as_deref()) {
            (Some(id), Some(p)) => {
                if conn
                    .prepare_cached(TAKE_ROLLED)?
                    .execute(params![id, p, t.now])?
                    == 1
                {
                    visit = Some("rolled");
                } else {
                    let included: Option<Option<i64>> = conn
                        .prepare_cached(TAKE_INCLUDED)?
                        .query_row(params![id, p, t.now], |r| r.get(0))
                        .optional()?;
                    visit = match included {
                        None => None,
                        Some(None) => Some("unlimited"),
                        Some(Some(_)) => Some("included"),
                    };
                }
                if visit.is_none() {
                    reason = Some("no_visits_left".to_owned());
                }
            }
            _ => reason = Some("unknown_card".to_owned()),
        }
    }
    let (reason, overdraft) = settle(offline, reason);
    let inserted = conn.prepare_cached(INSERT)?.query_row(
        params![
            t.program_id,
            member_id,
            card_id,
            t.kiosk_id,
            t.counter,
            i64::from(reason.is_none()),
            reason,
            visit,
            period,
            t.idempotency_key,
            t.now,
            t.offline_at,
            overdraft,
        ],
        checkin,
    );
    match inserted {
        Ok(c) => Ok(Recorded::New(c)),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation
                && t.idempotency_key.is_some() =>
        {
            Err(Failure::KeyTaken)
        }
        Err(e) => Err(Failure::Db(e)),
    }
}

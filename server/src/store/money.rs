//! The money side of the store: bookings and their stamped attribution, conversion
//! events, the commission log, the double-entry ledger, periods, payouts and reviews.
//!
//! Every write happens inside a [`MoneyTx`]: one database transaction that holds the
//! program's money lock (in-process, plus SQLite: `BEGIN IMMEDIATE`, one writer;
//! PostgreSQL: a transaction-scoped advisory lock per program, so replicas take turns). Conversions
//! are rare next to clicks, and serialising them makes the tier counts, the every-Nth
//! review sample and de-duplication exact.
//!
//! Ledger conventions: a posting's amount is positive for a debit and negative for a
//! credit, and a transaction's postings sum to zero per unit (the database refuses
//! anything else, see migration 0005). The partner's account is `partner_payable`; what
//! the program owes a partner is minus that account's balance. Which accounts a
//! commission moves between is [`crate::money::posting`]'s business; this module only
//! reads and writes rows.

use serde::Serialize;
use sqlx::FromRow;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::vocab::{BookingAttribution, CommissionStatus, ConversionOutcome, UnattributedReason};
use crate::store::{Backend, Store, StoreError};

/// A booking as stamped by its first event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Booking {
    /// Row id.
    pub id: i64,
    /// The booking system's id.
    pub booking_id: String,
    /// Attributed to a click, or to nobody.
    pub attribution: BookingAttribution,
    /// Why not attributed.
    pub reason: Option<UnattributedReason>,
    /// The click it is attributed to.
    pub click_id: Option<i64>,
    /// The affiliate it is attributed to.
    pub affiliate_id: Option<i64>,
    /// The click's channel.
    pub channel: Option<String>,
    /// The click's time.
    pub click_at: Option<i64>,
    /// The click's hashed IP.
    pub click_ip_hash: Option<String>,
    /// The customer (booking system id), from the first event.
    pub customer_id: Option<String>,
    /// Stamped, Unix ms.
    pub stamped_at: i64,
}

const BOOKING_COLS: &str = "id, booking_id, attribution, reason, click_id, affiliate_id, channel, click_at, click_ip_hash, customer_id, stamped_at";

/// A stored word of a vocabulary.
pub(super) fn word<T: std::str::FromStr<Err = super::vocab::UnknownWord>>(
    r: &AnyRow,
    col: &str,
) -> Result<T, StoreError> {
    Ok(r.try_get::<String, _>(col)?.parse()?)
}

fn booking(r: &AnyRow) -> Result<Booking, StoreError> {
    Ok(Booking::from_row(r)?)
}

/// A click as the attribution check needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClickRow {
    /// Affiliate.
    pub affiliate_id: Option<i64>,
    /// When.
    pub at: i64,
    /// Outcome.
    pub outcome: String,
    /// Channel.
    pub channel: String,
    /// Hashed IP.
    pub ip_hash: String,
}

/// A commission log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct CommissionLine {
    /// Row id.
    pub id: i64,
    /// Booking row.
    pub booking_ref: i64,
    /// Affiliate.
    pub affiliate_id: i64,
    /// Where the commission stands after this line.
    pub status: CommissionStatus,
    /// Unit.
    pub unit: String,
    /// Amount (reversals are negative).
    pub amount_minor: i64,
    /// The conversion amount it was computed from.
    pub basis_minor: Option<i64>,
    /// Tier at the time.
    pub tier: Option<String>,
    /// Rule name.
    pub rule: Option<String>,
    /// Month it counts in (`YYYY-MM`).
    pub month: String,
    /// When an earned line may be paid out.
    pub payable_at: Option<i64>,
    /// Its ledger transaction (earned, reversed).
    pub transaction_id: Option<i64>,
    /// Why (refused, held, reversed).
    pub reason: Option<String>,
    /// Written, Unix ms.
    pub created_at: i64,
}

pub(super) const COMMISSION_COLS: &str = "id, booking_ref, affiliate_id, status, unit, amount_minor, basis_minor, tier, rule, month, payable_at, transaction_id, reason, created_at";

pub(super) fn commission(r: &AnyRow) -> Result<CommissionLine, StoreError> {
    Ok(CommissionLine::from_row(r)?)
}

/// A new commission line (see [`MoneyTx::add_commission`]).
#[derive(Debug, Clone)]
pub struct NewCommission<'a> {
    /// Booking row.
    pub booking_ref: i64,
    /// The event that caused it (none for review decisions).
    pub event_ref: Option<i64>,
    /// Affiliate.
    pub affiliate_id: i64,
    /// Status.
    pub status: CommissionStatus,
    /// Unit.
    pub unit: &'a str,
    /// Amount.
    pub amount_minor: i64,
    /// Basis.
    pub basis_minor: Option<i64>,
    /// Tier.
    pub tier: Option<&'a str>,
    /// Rule.
    pub rule: Option<&'a str>,
    /// Month.
    pub month: &'a str,
    /// Payable at.
    pub payable_at: Option<i64>,
    /// Ledger transaction.
    pub transaction_id: Option<i64>,
    /// Reason.
    pub reason: Option<&'a str>,
}

/// A conversion event to record.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// The sender's event id.
    pub event_id: &'a str,
    /// Kind.
    pub kind: &'a str,
    /// Lead action.
    pub action: Option<&'a str>,
    /// Booking row.
    pub booking_ref: i64,
    /// Occurred, Unix ms.
    pub occurred_at: i64,
    /// Received, Unix ms.
    pub received_at: i64,
    /// Amount.
    pub amount_minor: Option<i64>,
    /// Currency.
    pub currency: Option<&'a str>,
    /// Customer id.
    pub customer_id: Option<&'a str>,
    /// Customer's email domain (fraud rule), lower case.
    pub email_domain: Option<&'a str>,
    /// What it did.
    pub outcome: ConversionOutcome,
    /// Why.
    pub reason: Option<&'a str>,
}

/// A money transaction (see the module docs).
pub struct MoneyTx {
    pub(super) tx: Transaction<'static, Any>,
    pub(super) backend: Backend,
    pub(super) program_id: i64,
    /// This process's turn (the database lock orders the replicas); released with the
    /// transaction.
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

/// Whether a program already accepted an event id: one query for the pool (the fast
/// path) and for a money transaction.
async fn event_seen<'e>(
    db: impl sqlx::Executor<'e, Database = Any>,
    program_id: i64,
    event_id: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "SELECT 1 AS one FROM conversion_events WHERE program_id = $1 AND event_id = $2",
    )
    .bind(program_id)
    .bind(event_id)
    .fetch_optional(db)
    .await?
    .is_some())
}

impl Store {
    /// A click, for re-validating an attribution token outside a money transaction
    /// (a `membership_started` event).
    pub async fn attribution_click(&self, id: i64) -> Result<Option<ClickRow>, StoreError> {
        click(self.pool(), id).await
    }
}

/// A click, for re-validating an attribution token.
pub(super) async fn click<'e>(
    db: impl sqlx::Executor<'e, Database = Any>,
    id: i64,
) -> Result<Option<ClickRow>, StoreError> {
    let row =
        sqlx::query("SELECT affiliate_id, at, outcome, channel, ip_hash FROM clicks WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(row.map(|r| ClickRow::from_row(&r)).transpose()?)
}

/// Whether a channel is switched off for the program or the affiliate.
pub(super) async fn channel_killed<'e>(
    db: impl sqlx::Executor<'e, Database = Any>,
    program_id: i64,
    affiliate_id: i64,
    channel: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "SELECT 1 AS one FROM kill_switches WHERE program_id = $1 AND channel = $2 AND (affiliate_id IS NULL OR affiliate_id = $3)",
    )
    .bind(program_id)
    .bind(channel)
    .bind(affiliate_id)
    .fetch_optional(db)
    .await?
    .is_some())
}

impl Store {
    /// Starts a money transaction for a program (see the module docs).
    pub async fn begin_money(&self, program_id: i64) -> Result<MoneyTx, StoreError> {
        // One money transaction at a time per process: on SQLite the others would only
        // spin in busy_timeout waiting for the write lock.
        let turn = self.money.clone().lock_owned().await;
        let mut tx = match self.backend() {
            Backend::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool().begin().await?,
        };
        if self.backend() == Backend::Postgres {
            // 0x7470_6b74 ("tpkt"): Tapkit's money lock, one per program.
            sqlx::query("SELECT CAST(1 AS BIGINT) AS n FROM (SELECT pg_advisory_xact_lock(1953524596, CAST($1 AS INTEGER))) AS l")
                .bind(program_id)
                .fetch_one(&mut *tx)
                .await?;
        }
        Ok(MoneyTx {
            tx,
            backend: self.backend(),
            program_id,
            _turn: turn,
        })
    }

    /// Whether an event id was already accepted (the fast path for duplicate deliveries,
    /// outside the money lock).
    pub async fn event_seen(&self, program_id: i64, event_id: &str) -> Result<bool, StoreError> {
        event_seen(self.pool(), program_id, event_id).await
    }

    /// The affiliate's commission log, newest first (at most `limit` lines).
    pub async fn affiliate_commissions(
        &self,
        affiliate_id: i64,
        limit: i64,
    ) -> Result<Vec<CommissionLine>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COMMISSION_COLS} FROM commissions WHERE affiliate_id = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(affiliate_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(commission).collect()
    }
}

impl MoneyTx {
    /// Commits.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Whether the event id was already accepted (under the money lock).
    pub async fn event_seen(&mut self, event_id: &str) -> Result<bool, StoreError> {
        event_seen(&mut *self.tx, self.program_id, event_id).await
    }

    /// Whether the booking already took this kind (and lead action) of event.
    pub async fn booking_event_seen(
        &mut self,
        booking_ref: i64,
        kind: &str,
        action: Option<&str>,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "SELECT 1 AS one FROM conversion_events WHERE booking_ref = $1 AND kind = $2 AND COALESCE(action, '') = $3",
        )
        .bind(booking_ref)
        .bind(kind)
        .bind(action.unwrap_or(""))
        .fetch_optional(&mut *self.tx)
        .await?
        .is_some())
    }

    /// The kinds of event a booking has taken so far.
    pub async fn booking_kinds(&mut self, booking_ref: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT kind FROM conversion_events WHERE booking_ref = $1")
            .bind(booking_ref)
            .fetch_all(&mut *self.tx)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("kind"))
            .collect::<Result<_, _>>()?)
    }

    /// The amount of the booking's `booking_paid` event.
    pub async fn paid_amount(&mut self, booking_ref: i64) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT amount_minor FROM conversion_events WHERE booking_ref = $1 AND kind = 'booking_paid'",
        )
        .bind(booking_ref)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row
            .map(|r| r.try_get("amount_minor"))
            .transpose()?
            .flatten())
    }

    /// A booking by the booking system's id.
    pub async fn booking(&mut self, booking_id: &str) -> Result<Option<Booking>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {BOOKING_COLS} FROM bookings WHERE program_id = $1 AND booking_id = $2"
        ))
        .bind(self.program_id)
        .bind(booking_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(booking).transpose()
    }

    /// A booking by row id.
    pub async fn booking_by_ref(&mut self, id: i64) -> Result<Booking, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {BOOKING_COLS} FROM bookings WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::NotFound("booking"))?;
        booking(&row)
    }

    /// Stamps a booking's attribution (once: the row never changes afterwards).
    pub async fn stamp(&mut self, b: &Booking) -> Result<Booking, StoreError> {
        let row = sqlx::query(&format!(
            "INSERT INTO bookings (program_id, booking_id, attribution, reason, click_id, affiliate_id, channel, click_at, click_ip_hash, customer_id, stamped_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {BOOKING_COLS}"
        ))
        .bind(self.program_id)
        .bind(&b.booking_id)
        .bind(b.attribution.as_str())
        .bind(b.reason.map(|r| r.as_str()))
        .bind(b.click_id)
        .bind(b.affiliate_id)
        .bind(&b.channel)
        .bind(b.click_at)
        .bind(&b.click_ip_hash)
        .bind(&b.customer_id)
        .bind(b.stamped_at)
        .fetch_one(&mut *self.tx)
        .await?;
        booking(&row)
    }

    /// A click, for re-validating an attribution token.
    pub async fn click(&mut self, id: i64) -> Result<Option<ClickRow>, StoreError> {
        click(&mut *self.tx, id).await
    }

    /// An affiliate's kind, status, tier override and customer identity.
    pub async fn affiliate(&mut self, id: i64) -> Result<AffiliateMoney, StoreError> {
        let r = sqlx::query(
            "SELECT kind, status, tier, customer_id, email_sha256, phone_sha256 FROM affiliates WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::NotFound("affiliate"))?;
        Ok(AffiliateMoney::from_row(&r)?)
    }

    /// Whether a channel is switched off for the program or the affiliate.
    pub async fn channel_killed(
        &mut self,
        affiliate_id: i64,
        channel: &str,
    ) -> Result<bool, StoreError> {
        channel_killed(&mut *self.tx, self.program_id, affiliate_id, channel).await
    }

    /// Records an accepted event.
    pub async fn add_event(&mut self, e: &NewEvent<'_>) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO conversion_events (program_id, event_id, kind, action, booking_ref, occurred_at, received_at, amount_minor, currency, customer_id, email_domain, outcome, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
        )
        .bind(self.program_id)
        .bind(e.event_id)
        .bind(e.kind)
        .bind(e.action)
        .bind(e.booking_ref)
        .bind(e.occurred_at)
        .bind(e.received_at)
        .bind(e.amount_minor)
        .bind(e.currency)
        .bind(e.customer_id)
        .bind(e.email_domain)
        .bind(e.outcome.as_str())
        .bind(e.reason)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// The booking's current commission lines: the latest line of each unit.
    pub async fn commission_state(
        &mut self,
        booking_ref: i64,
    ) -> Result<Vec<CommissionLine>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COMMISSION_COLS} FROM commissions WHERE booking_ref = $1 ORDER BY id"
        ))
        .bind(booking_ref)
        .fetch_all(&mut *self.tx)
        .await?;
        let lines: Vec<CommissionLine> = rows.iter().map(commission).collect::<Result<_, _>>()?;
        // Every status change writes one line per unit of the booking, so the latest line
        // of each unit is the current state.
        let mut latest: Vec<CommissionLine> = Vec::new();
        for l in lines {
            match latest.iter_mut().find(|x| x.unit == l.unit) {
                Some(x) => *x = l,
                None => latest.push(l),
            }
        }
        Ok(latest)
    }

    /// Appends a commission line.
    pub async fn add_commission(
        &mut self,
        c: &NewCommission<'_>,
        now: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO commissions (program_id, booking_ref, event_ref, affiliate_id, status, unit, amount_minor, basis_minor, tier, rule, month, payable_at, transaction_id, reason, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
        )
        .bind(self.program_id)
        .bind(c.booking_ref)
        .bind(c.event_ref)
        .bind(c.affiliate_id)
        .bind(c.status.as_str())
        .bind(c.unit)
        .bind(c.amount_minor)
        .bind(c.basis_minor)
        .bind(c.tier)
        .bind(c.rule)
        .bind(c.month)
        .bind(c.payable_at)
        .bind(c.transaction_id)
        .bind(c.reason)
        .bind(now)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("id")?)
    }
}

/// An affiliate as the money side needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AffiliateMoney {
    /// Kind.
    pub kind: String,
    /// Status.
    pub status: String,
    /// Tier override.
    pub tier: Option<String>,
    /// Its customer id in the booking system.
    pub customer_id: Option<String>,
    /// SHA-256 hex of its normalised email.
    pub email_sha256: Option<String>,
    /// SHA-256 hex of its normalised phone.
    pub phone_sha256: Option<String>,
}

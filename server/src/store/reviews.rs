//! Reviews and what decides them: the fraud reads a booking's first commission is
//! checked against (addresses, email domains, the every-Nth sample), the tier volume,
//! the review queue and its verdicts.

use serde::Serialize;
use sqlx::FromRow;
use sqlx::Row;

use super::money::MoneyTx;
use super::vocab::{HoldReason, Verdict};
use super::{Store, StoreError};

/// A review of a held booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Review {
    /// Id.
    pub id: i64,
    /// Booking row.
    pub booking_ref: i64,
    /// The booking system's id.
    pub booking_id: String,
    /// Affiliate.
    pub affiliate_id: Option<i64>,
    /// Why it was held.
    pub reason: HoldReason,
    /// Held, Unix ms.
    pub created_at: i64,
    /// The verdict, once decided.
    pub decision: Option<Verdict>,
    /// Decided, Unix ms.
    pub decided_at: Option<i64>,
}

/// A review as deciding it needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct ReviewState {
    /// The booking row reviewed.
    pub booking_ref: i64,
    /// Its verdict, if decided.
    pub decision: Option<Verdict>,
}

/// Distinct bookings an affiliate earned on in a month: the count its tier is reached
/// by, read the same way by the webhook (under the money lock) and by the portal.
pub(super) async fn earned_referrals<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    affiliate_id: i64,
    month: Option<&str>,
) -> Result<u32, StoreError> {
    let q = match month {
        Some(m) => sqlx::query(
            "SELECT COUNT(DISTINCT booking_ref) AS n FROM commissions WHERE affiliate_id = $1 AND status = 'earned' AND month = $2",
        )
        .bind(affiliate_id)
        .bind(m),
        None => sqlx::query(
            "SELECT COUNT(DISTINCT booking_ref) AS n FROM commissions WHERE affiliate_id = $1 AND status = 'earned'",
        )
        .bind(affiliate_id),
    };
    let n: i64 = q.fetch_one(db).await?.try_get("n")?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

impl Store {
    /// Reviews, oldest first; `open` keeps the undecided ones.
    pub async fn reviews(&self, program_id: i64, open: bool) -> Result<Vec<Review>, StoreError> {
        let filter = if open { " AND d.review_id IS NULL" } else { "" };
        let rows = sqlx::query(&format!(
            "SELECT r.id, r.booking_ref, b.booking_id, b.affiliate_id, r.reason, r.created_at, d.decision, d.decided_at \
             FROM reviews r JOIN bookings b ON b.id = r.booking_ref \
             LEFT JOIN review_decisions d ON d.review_id = r.id \
             WHERE r.program_id = $1{filter} ORDER BY r.id"
        ))
        .bind(program_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok(Review::from_row(r)?))
            .collect::<Result<_, StoreError>>()
    }
}

impl MoneyTx {
    /// Distinct bookings the affiliate earned on in a month (its volume for the tiers).
    pub async fn referrals_in_month(
        &mut self,
        affiliate_id: i64,
        month: &str,
    ) -> Result<u32, StoreError> {
        earned_referrals(&mut *self.tx, affiliate_id, Some(month)).await
    }

    /// Converted referrals of the affiliate since it joined (a `lifetime` tier window).
    pub async fn referrals_ever(&mut self, affiliate_id: i64) -> Result<u32, StoreError> {
        earned_referrals(&mut *self.tx, affiliate_id, None).await
    }

    /// Whether this customer already converted (earned, pending or held) through another
    /// booking of the program that took one of `kinds` (a first purchase is not undone by
    /// the customer's earlier sign-up lead).
    pub async fn customer_converted_before(
        &mut self,
        customer_id: &str,
        booking_ref: i64,
        kinds: &[&str],
    ) -> Result<bool, StoreError> {
        let list = (0..kinds.len())
            .map(|i| format!("${}", i + 4))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT 1 AS one FROM commissions c JOIN bookings b ON b.id = c.booking_ref \
             WHERE b.program_id = $1 AND b.customer_id = $2 AND b.id <> $3 AND c.status IN ('pending', 'held', 'earned') \
             AND EXISTS (SELECT 1 FROM conversion_events e WHERE e.booking_ref = b.id AND e.kind IN ({list})) LIMIT 1"
        );
        let mut q = sqlx::query(&sql)
            .bind(self.program_id)
            .bind(customer_id)
            .bind(booking_ref);
        for k in kinds {
            q = q.bind(*k);
        }
        Ok(q.fetch_optional(&mut *self.tx).await?.is_some())
    }

    /// Attributed bookings stamped since `since` whose click came from this hashed IP.
    pub async fn bookings_from_ip(&mut self, ip_hash: &str, since: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM bookings WHERE program_id = $1 AND click_ip_hash = $2 AND stamped_at >= $3 AND attribution = 'attributed'",
        )
        .bind(self.program_id)
        .bind(ip_hash)
        .bind(since)
        .fetch_one(&mut *self.tx)
        .await?
        .try_get("n")?)
    }

    /// Attributed events for an affiliate since `since` from customers of an email domain.
    pub async fn events_from_domain(
        &mut self,
        affiliate_id: i64,
        domain: &str,
        since: i64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            "SELECT COUNT(DISTINCT e.booking_ref) AS n FROM conversion_events e JOIN bookings b ON b.id = e.booking_ref \
             WHERE b.affiliate_id = $1 AND e.email_domain = $2 AND e.received_at >= $3",
        )
        .bind(affiliate_id)
        .bind(domain)
        .bind(since)
        .fetch_one(&mut *self.tx)
        .await?
        .try_get("n")?)
    }

    /// Whether the affiliate signed up at `/refer` and has neither a booking of its own
    /// (by its customer id) nor an earned commission yet.
    pub async fn unproven_referrer(&mut self, affiliate_id: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "SELECT 1 AS one FROM affiliates a WHERE a.id = $1 AND a.signup_key IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM commissions c WHERE c.affiliate_id = a.id AND c.status = 'earned') \
             AND NOT EXISTS (SELECT 1 FROM bookings b WHERE a.customer_id IS NOT NULL \
                             AND b.program_id = a.program_id AND b.customer_id = a.customer_id)",
        )
        .bind(affiliate_id)
        .fetch_optional(&mut *self.tx)
        .await?
        .is_some())
    }

    /// Whether a hashed IP is known as the affiliate's own.
    pub async fn affiliate_ip_known(
        &mut self,
        affiliate_id: i64,
        ip_hash: &str,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "SELECT 1 AS one FROM affiliate_ips WHERE affiliate_id = $1 AND ip_hash = $2",
        )
        .bind(affiliate_id)
        .bind(ip_hash)
        .fetch_optional(&mut *self.tx)
        .await?
        .is_some())
    }

    /// Remembers a hashed IP as the affiliate's own activity.
    pub async fn add_affiliate_ip(
        &mut self,
        affiliate_id: i64,
        ip_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO affiliate_ips (affiliate_id, ip_hash, seen_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(affiliate_id)
        .bind(ip_hash)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Queues a booking for review.
    pub async fn add_review(
        &mut self,
        booking_ref: i64,
        reason: HoldReason,
        now: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO reviews (program_id, booking_ref, reason, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(self.program_id)
        .bind(booking_ref)
        .bind(reason.as_str())
        .bind(now)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// A review: its booking row and verdict, if decided.
    pub async fn review(&mut self, id: i64) -> Result<ReviewState, StoreError> {
        let r = sqlx::query(
            "SELECT r.booking_ref, d.decision FROM reviews r LEFT JOIN review_decisions d ON d.review_id = r.id \
             WHERE r.id = $1 AND r.program_id = $2",
        )
        .bind(id)
        .bind(self.program_id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::NotFound("review"))?;
        Ok(ReviewState::from_row(&r)?)
    }

    /// Records a review decision.
    pub async fn decide(
        &mut self,
        review_id: i64,
        decision: Verdict,
        note: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO review_decisions (review_id, decision, note, decided_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(review_id)
        .bind(decision.as_str())
        .bind(note)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The next number of a program's sequence (e.g. first commission decisions, for the
    /// every-Nth review sample): one row update instead of counting history.
    pub async fn next_in_sequence(&mut self, name: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO money_counters (program_id, name, n) VALUES ($1, $2, 1) \
             ON CONFLICT (program_id, name) DO UPDATE SET n = money_counters.n + 1 RETURNING n",
        )
        .bind(self.program_id)
        .bind(name)
        .fetch_one(&mut *self.tx)
        .await?
        .try_get("n")?)
    }

    /// The last number a program's sequence gave out (0 before the first), without
    /// taking one: the money lock makes "read, decide, then take" exact.
    pub async fn sequence_value(&mut self, name: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT n FROM money_counters WHERE program_id = $1 AND name = $2")
            .bind(self.program_id)
            .bind(name)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.map(|r| r.try_get("n")).transpose()?.unwrap_or(0))
    }
}

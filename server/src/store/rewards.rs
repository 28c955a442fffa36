//! Rewards as stored (`migrations/*/0015_rewards.sql`): each reward a referrer or a
//! referred friend holds, and each use of one at the checkout. Every write happens in a
//! [`MoneyTx`], one at a time per program across replicas, and a balance moves only
//! from the value the caller read, so no reward is spent twice.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::money::{MoneyTx, word};
use super::vocab::RewardKind;
use super::{Store, StoreError};

/// A reward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reward {
    /// Row id.
    pub id: i64,
    /// The code the checkout takes.
    pub code: String,
    /// The referrer who holds it (none for a friend's offer).
    pub affiliate_id: Option<i64>,
    /// The booking whose commission it was issued for.
    pub booking_ref: Option<i64>,
    /// The friend's click it was offered on.
    pub click_id: Option<i64>,
    /// Ledger unit (`credit:USD`, `voucher:free-basic-service`).
    pub unit: String,
    /// What it is worth.
    pub kind: RewardKind,
    /// What it is for.
    pub applies_to: String,
    /// Credit: issued; fixed: amount off.
    pub value_minor: Option<i64>,
    /// Percent: basis points.
    pub percent_bp: Option<i64>,
    /// The most off one booking.
    pub cap_minor: Option<i64>,
    /// What was issued (minor units of credit, or 1 voucher).
    pub issued_minor: i64,
    /// What is left.
    pub balance: i64,
    /// Issued, Unix ms.
    pub issued_at: i64,
    /// Usable until, Unix ms.
    pub expires_at: i64,
    /// Expired or taken back, Unix ms.
    pub closed_at: Option<i64>,
    /// `expired` or `refunded`.
    pub closed_reason: Option<String>,
}

const COLS: &str = "id, code, affiliate_id, booking_ref, click_id, unit, kind, applies_to, \
    value_minor, percent_bp, cap_minor, issued_minor, balance, issued_at, expires_at, closed_at, closed_reason";

fn reward(r: &AnyRow) -> Result<Reward, StoreError> {
    Ok(Reward {
        id: r.try_get("id")?,
        code: r.try_get("code")?,
        affiliate_id: r.try_get("affiliate_id")?,
        booking_ref: r.try_get("booking_ref")?,
        click_id: r.try_get("click_id")?,
        unit: r.try_get("unit")?,
        kind: word(r, "kind")?,
        applies_to: r.try_get("applies_to")?,
        value_minor: r.try_get("value_minor")?,
        percent_bp: r.try_get("percent_bp")?,
        cap_minor: r.try_get("cap_minor")?,
        issued_minor: r.try_get("issued_minor")?,
        balance: r.try_get("balance")?,
        issued_at: r.try_get("issued_at")?,
        expires_at: r.try_get("expires_at")?,
        closed_at: r.try_get("closed_at")?,
        closed_reason: r.try_get("closed_reason")?,
    })
}

/// The reward with this code in a program: one query for a money transaction and for the
/// pool.
async fn by_code<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    program_id: i64,
    code: &str,
) -> Result<Option<Reward>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLS} FROM rewards WHERE program_id = $1 AND code = $2"
    ))
    .bind(program_id)
    .bind(code)
    .fetch_optional(db)
    .await?;
    row.as_ref().map(reward).transpose()
}

/// The friend's offer written for a click, if any (transaction or pool).
async fn of_click<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    click_id: i64,
) -> Result<Option<Reward>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM rewards WHERE click_id = $1"))
        .bind(click_id)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(reward).transpose()
}

/// A reward to write (its terms come from [`crate::rewards::catalogue::Terms`]).
#[derive(Debug, Clone)]
pub struct NewReward<'a> {
    /// The code.
    pub code: &'a str,
    /// Holder (a referrer), or
    pub affiliate_id: Option<i64>,
    /// the friend's click.
    pub click_id: Option<i64>,
    /// The booking it was earned on.
    pub booking_ref: Option<i64>,
    /// Unit.
    pub unit: &'a str,
    /// Terms.
    pub terms: &'a crate::rewards::catalogue::Terms,
    /// Issued amount (credit minor units, or 1).
    pub issued_minor: i64,
    /// Expiry, Unix ms.
    pub expires_at: i64,
    /// Its issue transaction (none for a friend's offer).
    pub transaction_id: Option<i64>,
}

/// One use of a reward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redemption {
    /// Row id.
    pub id: i64,
    /// The reward.
    pub reward_id: i64,
    /// The booking it was used on.
    pub booking_id: String,
    /// The booking's amount the checkout sent.
    pub amount_minor: i64,
    /// What it took off.
    pub discount_minor: i64,
    /// What left the balance.
    pub units: i64,
    /// When, Unix ms.
    pub redeemed_at: i64,
    /// Reversed by a refund, Unix ms.
    pub reversed_at: Option<i64>,
}

const REDEMPTION_COLS: &str =
    "id, reward_id, booking_id, amount_minor, discount_minor, units, redeemed_at, reversed_at";

fn redemption(r: &AnyRow) -> Result<Redemption, sqlx::Error> {
    Ok(Redemption {
        id: r.try_get("id")?,
        reward_id: r.try_get("reward_id")?,
        booking_id: r.try_get("booking_id")?,
        amount_minor: r.try_get("amount_minor")?,
        discount_minor: r.try_get("discount_minor")?,
        units: r.try_get("units")?,
        redeemed_at: r.try_get("redeemed_at")?,
        reversed_at: r.try_get("reversed_at")?,
    })
}

/// The referral funnel of one affiliate kind: links → taps → bookings → rewards →
/// redemptions (all time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Funnel {
    /// `customer`, `business` or `influencer`.
    pub kind: String,
    /// Referrers (affiliates) of the kind.
    pub referrers: i64,
    /// Attributed taps on their links and cards.
    pub taps: i64,
    /// Bookings attributed to them.
    pub bookings: i64,
    /// Rewards issued to them.
    pub rewards: i64,
    /// Uses of those rewards at the checkout, not reversed.
    pub redemptions: i64,
}

/// What is outstanding in one unit: rewards issued and neither used nor expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outstanding {
    /// Unit.
    pub unit: String,
    /// Open rewards.
    pub rewards: i64,
    /// Their balance (minor units of credit, or vouchers).
    pub balance: i64,
}

impl MoneyTx {
    /// Writes a reward.
    pub async fn add_reward(&mut self, r: &NewReward<'_>, now: i64) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO rewards (program_id, code, affiliate_id, booking_ref, click_id, unit, kind, applies_to, \
             value_minor, percent_bp, cap_minor, issued_minor, balance, issued_at, expires_at, transaction_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15) RETURNING id",
        )
        .bind(self.program_id)
        .bind(r.code)
        .bind(r.affiliate_id)
        .bind(r.booking_ref)
        .bind(r.click_id)
        .bind(r.unit)
        .bind(r.terms.kind.as_str())
        .bind(&r.terms.applies_to)
        .bind(r.terms.value_minor)
        .bind(r.terms.percent_bp)
        .bind(r.terms.cap_minor)
        .bind(r.issued_minor)
        .bind(now)
        .bind(r.expires_at)
        .bind(r.transaction_id)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Whether a code is taken.
    pub async fn reward_code_taken(&mut self, code: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query("SELECT 1 AS one FROM rewards WHERE code = $1")
            .bind(code)
            .fetch_optional(&mut *self.tx)
            .await?
            .is_some())
    }

    /// The reward with this code, in this program.
    pub async fn reward_by_code(&mut self, code: &str) -> Result<Option<Reward>, StoreError> {
        by_code(&mut *self.tx, self.program_id, code).await
    }

    /// The friend's offer written for a click, if it was redeemed before.
    pub async fn reward_of_click(&mut self, click_id: i64) -> Result<Option<Reward>, StoreError> {
        of_click(&mut *self.tx, click_id).await
    }

    /// Open rewards issued for a booking's commission.
    pub async fn open_rewards_of_booking(
        &mut self,
        booking_ref: i64,
    ) -> Result<Vec<Reward>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM rewards WHERE booking_ref = $1 AND closed_at IS NULL ORDER BY id"
        ))
        .bind(booking_ref)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(reward).collect()
    }

    /// Open rewards whose expiry is at or before `now` (at most `limit`).
    pub async fn rewards_due_to_expire(
        &mut self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<Reward>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM rewards WHERE program_id = $1 AND closed_at IS NULL AND expires_at <= $2 ORDER BY id LIMIT $3"
        ))
        .bind(self.program_id)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(reward).collect()
    }

    /// Moves a reward's balance from `read` (what the caller read) by `delta`; false if
    /// the balance is no longer `read` (nothing written).
    pub async fn move_reward_balance(
        &mut self,
        id: i64,
        read: i64,
        delta: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE rewards SET balance = balance + $3 WHERE id = $1 AND balance = $2 AND closed_at IS NULL",
        )
        .bind(id)
        .bind(read)
        .bind(delta)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Closes an open reward (its balance to zero): `expired` or `refunded`.
    pub async fn close_reward(
        &mut self,
        id: i64,
        reason: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE rewards SET balance = 0, closed_at = $2, closed_reason = $3 WHERE id = $1 AND closed_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .bind(reason)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The use of a reward on a booking, if there was one.
    pub async fn redemption_of(
        &mut self,
        reward_id: i64,
        booking_id: &str,
    ) -> Result<Option<Redemption>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {REDEMPTION_COLS} FROM reward_redemptions WHERE reward_id = $1 AND booking_id = $2"
        ))
        .bind(reward_id)
        .bind(booking_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.as_ref().map(redemption).transpose()?)
    }

    /// Writes a use of a reward.
    pub async fn add_redemption(
        &mut self,
        r: &Redemption,
        transaction_id: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO reward_redemptions (reward_id, booking_id, amount_minor, discount_minor, units, redeemed_at, transaction_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(r.reward_id)
        .bind(&r.booking_id)
        .bind(r.amount_minor)
        .bind(r.discount_minor)
        .bind(r.units)
        .bind(r.redeemed_at)
        .bind(transaction_id)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// The live (not reversed) uses of rewards on a booking of the brand's, with their
    /// rewards, in this program.
    pub async fn live_redemptions_on(
        &mut self,
        booking_id: &str,
    ) -> Result<Vec<(Redemption, Reward)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT d.id AS d_id, d.reward_id, d.booking_id, d.amount_minor, d.discount_minor, d.units, d.redeemed_at, d.reversed_at, \
             r.{} FROM reward_redemptions d JOIN rewards r ON r.id = d.reward_id \
             WHERE r.program_id = $1 AND d.booking_id = $2 AND d.reversed_at IS NULL ORDER BY d.id",
            COLS.replace(", ", ", r.")
        ))
        .bind(self.program_id)
        .bind(booking_id)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|row| {
                let d = Redemption {
                    id: row.try_get("d_id")?,
                    ..redemption_with_id(row)?
                };
                Ok((d, reward(row)?))
            })
            .collect()
    }

    /// Marks a use reversed.
    pub async fn reverse_redemption(
        &mut self,
        id: i64,
        transaction_id: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE reward_redemptions SET reversed_at = $2, reversal_transaction_id = $3 WHERE id = $1 AND reversed_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .bind(transaction_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}

/// A redemption read from a join whose `id` column is the reward's.
fn redemption_with_id(r: &AnyRow) -> Result<Redemption, sqlx::Error> {
    Ok(Redemption {
        id: 0,
        reward_id: r.try_get("reward_id")?,
        booking_id: r.try_get("booking_id")?,
        amount_minor: r.try_get("amount_minor")?,
        discount_minor: r.try_get("discount_minor")?,
        units: r.try_get("units")?,
        redeemed_at: r.try_get("redeemed_at")?,
        reversed_at: r.try_get("reversed_at")?,
    })
}

impl Store {
    /// The reward with this code, outside any transaction (a lookup).
    pub async fn reward_by_code(
        &self,
        program_id: i64,
        code: &str,
    ) -> Result<Option<Reward>, StoreError> {
        by_code(self.pool(), program_id, code).await
    }

    /// The friend's offer written for a click, outside any transaction.
    pub async fn reward_of_click(&self, click_id: i64) -> Result<Option<Reward>, StoreError> {
        of_click(self.pool(), click_id).await
    }

    /// A referrer's rewards, newest first (at most `limit`), each with its uses.
    pub async fn rewards_of(
        &self,
        affiliate_id: i64,
        limit: i64,
    ) -> Result<Vec<(Reward, Vec<Redemption>)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM rewards WHERE affiliate_id = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(affiliate_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let r = reward(row)?;
            let uses = sqlx::query(&format!(
                "SELECT {REDEMPTION_COLS} FROM reward_redemptions WHERE reward_id = $1 ORDER BY id"
            ))
            .bind(r.id)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(redemption)
            .collect::<Result<_, _>>()?;
            out.push((r, uses));
        }
        Ok(out)
    }

    /// The referral funnel per affiliate kind.
    pub async fn referral_funnel(&self, program_id: i64) -> Result<Vec<Funnel>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.kind, COUNT(*) AS referrers, \
             CAST(COALESCE(SUM((SELECT COUNT(*) FROM clicks c WHERE c.affiliate_id = a.id AND c.outcome = 'attributed')), 0) AS BIGINT) AS taps, \
             CAST(COALESCE(SUM((SELECT COUNT(*) FROM bookings b WHERE b.affiliate_id = a.id)), 0) AS BIGINT) AS bookings, \
             CAST(COALESCE(SUM((SELECT COUNT(*) FROM rewards r WHERE r.affiliate_id = a.id)), 0) AS BIGINT) AS rewards, \
             CAST(COALESCE(SUM((SELECT COUNT(*) FROM reward_redemptions d JOIN rewards r ON r.id = d.reward_id \
                                WHERE r.affiliate_id = a.id AND d.reversed_at IS NULL)), 0) AS BIGINT) AS redemptions \
             FROM affiliates a WHERE a.program_id = $1 GROUP BY a.kind ORDER BY a.kind",
        )
        .bind(program_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Funnel {
                    kind: r.try_get("kind")?,
                    referrers: r.try_get("referrers")?,
                    taps: r.try_get("taps")?,
                    bookings: r.try_get("bookings")?,
                    rewards: r.try_get("rewards")?,
                    redemptions: r.try_get("redemptions")?,
                })
            })
            .collect()
    }

    /// Rewards outstanding by unit: the brand's liability.
    pub async fn rewards_outstanding(
        &self,
        program_id: i64,
    ) -> Result<Vec<Outstanding>, StoreError> {
        let rows = sqlx::query(
            "SELECT unit, COUNT(*) AS n, CAST(COALESCE(SUM(balance), 0) AS BIGINT) AS balance FROM rewards \
             WHERE program_id = $1 AND closed_at IS NULL AND balance > 0 AND affiliate_id IS NOT NULL \
             GROUP BY unit ORDER BY unit",
        )
        .bind(program_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Outstanding {
                    unit: r.try_get("unit")?,
                    rewards: r.try_get("n")?,
                    balance: r.try_get("balance")?,
                })
            })
            .collect()
    }
}

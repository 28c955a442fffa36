//! What the console and the portal read and write beyond the API's store: admins,
//! sessions, sign-in links, and the reports behind the pages (exports, per-day charts,
//! a partner's referral history).

use sqlx::FromRow;
use sqlx::Row;

use crate::store::{Affiliate, Store, StoreError};

/// A session row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    /// `admin` or `partner`.
    pub subject: String,
    /// admins.id or affiliates.id.
    pub subject_id: i64,
    /// Unix ms.
    pub expires_at: i64,
}

/// A sign-in link row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LinkRow {
    /// `admin` or `partner`.
    pub subject: String,
    /// admins.id or affiliates.id.
    pub subject_id: i64,
    /// Unix ms.
    pub expires_at: i64,
    /// When it was used.
    pub used_at: Option<i64>,
}

/// One referral as the partner sees it: no customer data.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Referral {
    /// When the booking was first reported, Unix ms.
    pub at: i64,
    /// The channel of the click it came through.
    pub channel: Option<String>,
    /// The latest commission status.
    pub status: String,
    /// Unit.
    pub unit: String,
    /// Amount.
    pub amount_minor: i64,
    /// The month it counts in.
    pub month: String,
}

/// One month and unit of a partner's money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthMoney {
    /// `YYYY-MM`.
    pub month: String,
    /// Unit.
    pub unit: String,
    /// Waiting for the service or a review.
    pub pending: i64,
    /// Earned (accrued on the ledger) in the month.
    pub earned: i64,
    /// Taken back (refunds, clawbacks) in the month, as a positive amount.
    pub refunded: i64,
}

impl MonthMoney {
    fn new(month: String, unit: String) -> Self {
        Self {
            month,
            unit,
            pending: 0,
            earned: 0,
            refunded: 0,
        }
    }
}

/// Flagged or preview traffic of a date range, by reason.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FlaggedRow {
    /// `flagged` or `preview`.
    pub outcome: String,
    /// Why.
    pub reason: String,
    /// Count.
    pub n: i64,
}

fn rows_err(e: sqlx::Error) -> StoreError {
    StoreError::from(e)
}

impl Store {
    /// Adds an admin (or sets the password of an existing one); returns its id.
    pub async fn upsert_admin(
        &self,
        email: &str,
        password_hash: Option<&str>,
        now: i64,
    ) -> Result<i64, StoreError> {
        sqlx::query(
            "INSERT INTO admins (email, password_hash, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (email) DO UPDATE SET password_hash = COALESCE(excluded.password_hash, admins.password_hash)",
        )
        .bind(email)
        .bind(password_hash)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(sqlx::query("SELECT id FROM admins WHERE email = $1")
            .bind(email)
            .fetch_one(self.pool())
            .await?
            .try_get("id")?)
    }

    /// An admin by email: id and password hash.
    pub async fn admin_by_email(
        &self,
        email: &str,
    ) -> Result<Option<(i64, Option<String>)>, StoreError> {
        let row = sqlx::query("SELECT id, password_hash FROM admins WHERE email = $1")
            .bind(email)
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .map(|r| Ok::<_, sqlx::Error>((r.try_get("id")?, r.try_get("password_hash")?)))
            .transpose()?)
    }

    /// An admin's email.
    pub async fn admin_email(&self, id: i64) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT email FROM admins WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("email")).transpose()?)
    }

    /// Stores a session.
    pub async fn add_session(
        &self,
        id_hash: &str,
        subject: &str,
        subject_id: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM web_sessions WHERE expires_at < $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, subject, subject_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(subject)
        .bind(subject_id)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A session by the hash of its id.
    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT subject, subject_id, expires_at FROM web_sessions WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| SessionRow::from_row(&r)).transpose()?)
    }

    /// Ends a session.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Stores a sign-in link.
    pub async fn add_link(
        &self,
        token_hash: &str,
        subject: &str,
        subject_id: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sign_in_links (token_hash, subject, subject_id, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(subject)
        .bind(subject_id)
        .bind(expires_at)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A sign-in link by the hash of its secret.
    pub async fn link(&self, token_hash: &str) -> Result<Option<LinkRow>, StoreError> {
        let row = sqlx::query(
            "SELECT subject, subject_id, expires_at, used_at FROM sign_in_links WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| LinkRow::from_row(&r)).transpose()?)
    }

    /// Uses a link up: true for exactly one caller while it is unused and unexpired.
    pub async fn use_link(&self, token_hash: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE sign_in_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(token_hash)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Links made for a subject since `since` (throttles emailed links).
    pub async fn links_since(
        &self,
        subject: &str,
        subject_id: i64,
        since: i64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM sign_in_links WHERE subject = $1 AND subject_id = $2 AND created_at >= $3",
        )
        .bind(subject)
        .bind(subject_id)
        .bind(since)
        .fetch_one(self.pool())
        .await?
        .try_get("n")?)
    }

    /// The program's affiliate whose email (the hashed one set by the admin, or a contact
    /// that is this address) is `email`.
    pub async fn affiliate_by_email(
        &self,
        program_id: i64,
        email: &str,
    ) -> Result<Option<Affiliate>, StoreError> {
        let norm = email.trim().to_lowercase();
        let row = sqlx::query(
            "SELECT id FROM affiliates WHERE program_id = $1 AND (email_sha256 = $2 OR lower(trim(contact)) = $3) ORDER BY id LIMIT 1",
        )
        .bind(program_id)
        .bind(crate::api::partners::email_sha256(&norm))
        .bind(&norm)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(r) => Ok(Some(self.affiliate(r.try_get("id")?).await?)),
            None => Ok(None),
        }
    }

    /// A partner's referrals, newest first: one line per booking and unit with its
    /// latest commission state and the channel of its click.
    pub async fn referrals(
        &self,
        affiliate_id: i64,
        limit: i64,
    ) -> Result<Vec<Referral>, StoreError> {
        let rows = sqlx::query(
            "SELECT b.stamped_at AS at, b.channel AS channel, c.status AS status, c.unit AS unit, \
                    c.amount_minor AS amount_minor, c.month AS month \
             FROM commissions c JOIN bookings b ON b.id = c.booking_ref \
             WHERE c.affiliate_id = $1 AND c.id = ( \
                 SELECT MAX(c2.id) FROM commissions c2 \
                 WHERE c2.booking_ref = c.booking_ref AND c2.unit = c.unit AND c2.affiliate_id = c.affiliate_id) \
             ORDER BY b.stamped_at DESC, c.id DESC LIMIT $2",
        )
        .bind(affiliate_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(Referral::from_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(rows_err)
    }

    /// A partner's money by month and unit: pending (the latest state of each booking is
    /// pending or held, in the month it will count in), earned and refunded (accrual and
    /// reversal postings to its payable account in each ledger period: what the payouts
    /// were computed from). No row limit: these are totals.
    pub async fn earnings_by_month(
        &self,
        affiliate_id: i64,
    ) -> Result<Vec<MonthMoney>, StoreError> {
        use std::collections::BTreeMap;
        let mut out: BTreeMap<(String, String), MonthMoney> = BTreeMap::new();
        let pending = sqlx::query(
            "SELECT c.month AS month, c.unit AS unit, CAST(COALESCE(SUM(c.amount_minor), 0) AS BIGINT) AS n \
             FROM commissions c WHERE c.affiliate_id = $1 AND c.status IN ('pending', 'held') AND c.id = ( \
                 SELECT MAX(c2.id) FROM commissions c2 \
                 WHERE c2.booking_ref = c.booking_ref AND c2.unit = c.unit AND c2.affiliate_id = c.affiliate_id) \
             GROUP BY c.month, c.unit",
        )
        .bind(affiliate_id)
        .fetch_all(self.pool())
        .await?;
        for r in &pending {
            let (month, unit): (String, String) = (r.try_get("month")?, r.try_get("unit")?);
            out.entry((month.clone(), unit.clone()))
                .or_insert_with(|| MonthMoney::new(month, unit))
                .pending = r.try_get("n")?;
        }
        let ledger = sqlx::query(
            "SELECT t.period AS month, p.unit AS unit, t.kind AS kind, \
                    CAST(COALESCE(SUM(-p.amount_minor), 0) AS BIGINT) AS n \
             FROM ledger_postings p JOIN ledger_transactions t ON t.id = p.transaction_id \
             WHERE p.account = $1 AND p.affiliate_id = $2 AND t.kind IN ('accrual', 'reversal') \
             GROUP BY t.period, p.unit, t.kind",
        )
        .bind(crate::store::vocab::Account::PartnerPayable.as_str())
        .bind(affiliate_id)
        .fetch_all(self.pool())
        .await?;
        for r in &ledger {
            let (month, unit): (String, String) = (r.try_get("month")?, r.try_get("unit")?);
            let kind: String = r.try_get("kind")?;
            let n: i64 = r.try_get("n")?;
            let e = out
                .entry((month.clone(), unit.clone()))
                .or_insert_with(|| MonthMoney::new(month, unit));
            if kind == "accrual" {
                e.earned += n;
            } else {
                e.refunded -= n;
            }
        }
        Ok(out.into_values().rev().collect())
    }

    /// A partner's payout lines over every closed period, newest first.
    pub async fn affiliate_payouts(
        &self,
        affiliate_id: i64,
    ) -> Result<Vec<(String, String, i64, Option<i64>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.period AS period, p.unit AS unit, p.payout_minor AS payout_minor, pp.paid_at AS paid_at \
             FROM payouts p LEFT JOIN payout_payments pp ON pp.payout_id = p.id \
             WHERE p.affiliate_id = $1 ORDER BY p.period DESC, p.unit",
        )
        .bind(affiliate_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("period")?,
                    r.try_get("unit")?,
                    r.try_get("payout_minor")?,
                    r.try_get("paid_at")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(rows_err)
    }

    /// Earned referrals of a month, or ever (`None`): the tier count.
    pub async fn earned_referrals(
        &self,
        affiliate_id: i64,
        month: Option<&str>,
    ) -> Result<u32, StoreError> {
        super::reviews::earned_referrals(self.pool(), affiliate_id, month).await
    }

    /// Attributed conversions per UTC day (bookings stamped with an affiliate) of
    /// `from_day..=to_day`.
    pub async fn conversions_per_day(
        &self,
        program_id: i64,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT stamped_at / 86400000 AS day, COUNT(*) AS n FROM bookings \
             WHERE program_id = $1 AND attribution = 'attributed' AND stamped_at >= $2 AND stamped_at < $3 \
             GROUP BY stamped_at / 86400000 ORDER BY day",
        )
        .bind(program_id)
        .bind(from_day * 86_400_000)
        .bind((to_day + 1) * 86_400_000)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("day")?, r.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(rows_err)
    }

    /// Flagged and preview traffic of a date range by reason.
    pub async fn flagged_reasons(
        &self,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<FlaggedRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT outcome, COALESCE(reason, '') AS reason, COUNT(*) AS n FROM clicks \
             WHERE outcome IN ('flagged', 'preview') AND affiliate_id IS NOT NULL AND at >= $1 AND at < $2 \
             GROUP BY outcome, COALESCE(reason, '') ORDER BY n DESC",
        )
        .bind(from_day * 86_400_000)
        .bind((to_day + 1) * 86_400_000)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(FlaggedRow::from_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(rows_err)
    }

    /// Rows of one export (`clicks`, `conversions` or `commissions`) for Unix ms
    /// `[from, to)`: a header and string cells. No IP hash, user agent or customer data
    /// leaves through an export.
    pub async fn export_rows(
        &self,
        which: Export,
        program_id: i64,
        from: i64,
        to: i64,
    ) -> Result<(Vec<&'static str>, Vec<Vec<String>>), StoreError> {
        let (header, sql): (Vec<&'static str>, &str) = match which {
            Export::Clicks => (
                vec![
                    "click_id",
                    "at_utc",
                    "code",
                    "affiliate_id",
                    "channel",
                    "outcome",
                    "reason",
                    "card_uid",
                    "counter",
                    "referer",
                    "utm_source",
                    "utm_medium",
                    "utm_campaign",
                ],
                "SELECT c.id AS a, c.at AS t, c.code AS b, c.affiliate_id AS n1, c.channel AS c, c.outcome AS d, \
                        c.reason AS e, k.uid AS f, c.counter AS n2, c.referer AS g, \
                        c.utm_source AS u1, c.utm_medium AS u2, c.utm_campaign AS u3 \
                 FROM clicks c LEFT JOIN cards k ON k.id = c.card_id \
                 WHERE c.at >= $2 AND c.at < $3 \
                   AND (c.affiliate_id IS NULL OR c.affiliate_id IN (SELECT id FROM affiliates WHERE program_id = $1)) \
                 ORDER BY c.id",
            ),
            Export::Conversions => (
                vec![
                    "event_id",
                    "received_utc",
                    "booking_id",
                    "affiliate_id",
                    "kind",
                    "channel",
                    "amount_minor",
                    "currency",
                    "outcome",
                    "reason",
                ],
                "SELECT e.id AS a, e.received_at AS t, b.booking_id AS b, e.kind AS c, b.affiliate_id AS n1, \
                        b.channel AS d, e.amount_minor AS n2, e.currency AS e, e.outcome AS f, e.reason AS g \
                 FROM conversion_events e JOIN bookings b ON b.id = e.booking_ref \
                 WHERE e.program_id = $1 AND e.received_at >= $2 AND e.received_at < $3 ORDER BY e.id",
            ),
            Export::Commissions => (
                vec![
                    "commission_id",
                    "created_utc",
                    "booking_id",
                    "affiliate_id",
                    "status",
                    "unit",
                    "amount_minor",
                    "month",
                    "tier",
                    "rule",
                ],
                "SELECT c.id AS a, c.created_at AS t, b.booking_id AS b, c.status AS c, c.affiliate_id AS n1, \
                        c.unit AS d, c.amount_minor AS n2, c.month AS e, c.tier AS f, c.rule AS g \
                 FROM commissions c JOIN bookings b ON b.id = c.booking_ref \
                 WHERE c.program_id = $1 AND c.created_at >= $2 AND c.created_at < $3 ORDER BY c.id",
            ),
        };
        let rows = sqlx::query(sql)
            .bind(program_id)
            .bind(from)
            .bind(to)
            .fetch_all(self.pool())
            .await?;
        let text = |r: &sqlx::any::AnyRow, c: &str| -> Result<String, sqlx::Error> {
            Ok(r.try_get::<Option<String>, _>(c)?.unwrap_or_default())
        };
        let num = |r: &sqlx::any::AnyRow, c: &str| -> Result<String, sqlx::Error> {
            Ok(r.try_get::<Option<i64>, _>(c)?
                .map(|v| v.to_string())
                .unwrap_or_default())
        };
        let out = rows
            .iter()
            .map(|r| {
                let at: i64 = r.try_get("t")?;
                let mut row = vec![
                    num(r, "a")?,
                    crate::web::iso_time(at),
                    text(r, "b")?,
                    num(r, "n1")?,
                    text(r, "c")?,
                    text(r, "d")?,
                    if which == Export::Clicks {
                        text(r, "e")?
                    } else {
                        num(r, "n2")?
                    },
                    if which == Export::Clicks {
                        text(r, "f")?
                    } else {
                        text(r, "e")?
                    },
                    if which == Export::Clicks {
                        num(r, "n2")?
                    } else {
                        text(r, "f")?
                    },
                    text(r, "g")?,
                ];
                if which == Export::Clicks {
                    for u in ["u1", "u2", "u3"] {
                        row.push(text(r, u)?);
                    }
                }
                Ok(row)
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(rows_err)?;
        Ok((header, out))
    }
}

/// Which CSV export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    /// Clicks (taps and scans).
    Clicks,
    /// Conversion webhook events.
    Conversions,
    /// Commission log lines.
    Commissions,
}

impl Export {
    /// From the URL's name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "clicks.csv" => Some(Self::Clicks),
            "conversions.csv" => Some(Self::Conversions),
            "commissions.csv" => Some(Self::Commissions),
            _ => None,
        }
    }

    /// The file's base name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Clicks => "clicks",
            Self::Conversions => "conversions",
            Self::Commissions => "commissions",
        }
    }
}

//! The ledger side of the store: balanced transactions and their postings, periods and
//! their close, payout lines and payments, and the reads behind the payout reports.
//! Writes happen inside a [`MoneyTx`] (see [`super::money`]).

use serde::Serialize;
use sqlx::FromRow;
use sqlx::Row;

use super::money::{COMMISSION_COLS, CommissionLine, MoneyTx, commission, word};
use super::vocab::{Account, TransactionKind};
use super::{Backend, Store, StoreError};

/// One posting of a ledger transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    /// Account.
    pub account: Account,
    /// The partner, for partner accounts.
    pub affiliate_id: Option<i64>,
    /// Unit.
    pub unit: String,
    /// Debit positive, credit negative.
    pub amount_minor: i64,
}

/// A transaction on the ledger.
#[derive(Debug, Clone)]
pub struct NewTransaction<'a> {
    /// Period `YYYY-MM` (must be open).
    pub period: &'a str,
    /// What the transaction is.
    pub kind: TransactionKind,
    /// Partner concerned.
    pub affiliate_id: Option<i64>,
    /// Booking concerned.
    pub booking_ref: Option<i64>,
    /// The member's invoice it is about (membership money).
    pub invoice_ref: Option<i64>,
    /// Human description.
    pub memo: String,
    /// Postings (sum to zero per unit).
    pub postings: Vec<Posting>,
}

/// A payout report line (one affiliate, one unit, one closed period).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PayoutLine {
    /// Id.
    pub id: i64,
    /// Period.
    pub period: String,
    /// Affiliate.
    pub affiliate_id: i64,
    /// Its referral code.
    pub code: String,
    /// Its name.
    pub name: String,
    /// Unit.
    pub unit: String,
    /// Owed at the start of the period.
    pub opening_minor: i64,
    /// Earned in the period.
    pub earned_minor: i64,
    /// Reversed (refunds, clawbacks) in the period.
    pub reversed_minor: i64,
    /// Issued in the period as rewards the referrer redeems at the checkout (net of
    /// rewards taken back), so not paid out.
    pub issued_minor: i64,
    /// Earned but still inside the holding period.
    pub held_minor: i64,
    /// Paid out for the period.
    pub payout_minor: i64,
    /// Owed after the payout (held, or below the minimum, or negative after clawbacks).
    pub carried_minor: i64,
    /// When marked paid.
    pub paid_at: Option<i64>,
    /// Payment reference.
    #[sqlx(rename = "reference")]
    pub paid_reference: Option<String>,
}

/// A commission line on the ledger of a period, with its booking's id and channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodCommission {
    /// The line.
    pub line: CommissionLine,
    /// The booking system's id of its booking.
    pub booking_id: String,
    /// The channel of the click the booking is attributed to.
    pub channel: Option<String>,
}

/// A ledger transaction with its postings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerTransaction {
    /// Id.
    pub id: i64,
    /// Period `YYYY-MM`.
    pub period: String,
    /// What it is.
    pub kind: TransactionKind,
    /// The partner concerned.
    pub affiliate_id: Option<i64>,
    /// Its postings (they sum to zero per unit).
    pub postings: Vec<Posting>,
}

/// A partner's balance in one unit over a period (see [`MoneyTx::period_balances`]).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PeriodBalance {
    /// Affiliate.
    pub affiliate_id: i64,
    /// Unit.
    pub unit: String,
    /// Owed before the period.
    #[sqlx(rename = "opening")]
    pub opening_minor: i64,
    /// Accrued in it.
    #[sqlx(rename = "earned")]
    pub earned_minor: i64,
    /// Reversed in it (positive).
    #[sqlx(rename = "reversed")]
    pub reversed_minor: i64,
    /// Issued in it as rewards (positive).
    #[sqlx(rename = "issued")]
    pub issued_minor: i64,
}

/// Earned commissions still inside their holding period (see [`MoneyTx::held_back`]).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HeldBack {
    /// Affiliate.
    pub affiliate_id: i64,
    /// Unit.
    pub unit: String,
    /// Amount held.
    #[sqlx(rename = "held")]
    pub held_minor: i64,
}

/// A stored payout line as marking it paid needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutState {
    /// Affiliate.
    pub affiliate_id: i64,
    /// Unit.
    pub unit: String,
    /// Amount paid out.
    pub payout_minor: i64,
    /// The closed period it belongs to.
    pub period: String,
    /// Whether it was already marked paid.
    pub paid: bool,
}

/// An amount in one unit (what is owed to a partner, a line of an answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct UnitAmount {
    /// `USD`, `credit:USD` or `voucher:<name>`.
    pub unit: String,
    /// Minor units (vouchers: a count).
    #[sqlx(rename = "owed")]
    pub amount_minor: i64,
}

fn sum(expr: &str) -> String {
    // PostgreSQL's SUM(bigint) is NUMERIC, which the Any driver cannot decode.
    format!("CAST(COALESCE(SUM({expr}), 0) AS BIGINT)")
}

impl Store {
    /// Closed periods, newest first, with their close time.
    pub async fn closed_periods(&self, program_id: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT period, closed_at FROM ledger_periods WHERE program_id = $1 ORDER BY period DESC",
        )
        .bind(program_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.try_get("period")?, r.try_get("closed_at")?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// When a period was closed, if it was.
    pub async fn period_closed_at(
        &self,
        program_id: i64,
        period: &str,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT closed_at FROM ledger_periods WHERE program_id = $1 AND period = $2",
        )
        .bind(program_id)
        .bind(period)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get("closed_at")).transpose()?)
    }

    /// A closed period's payout lines, by affiliate then unit.
    pub async fn payout_lines(
        &self,
        program_id: i64,
        period: &str,
    ) -> Result<Vec<PayoutLine>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.id, p.period, p.affiliate_id, a.code, a.name, p.unit, p.opening_minor, p.earned_minor, \
             p.reversed_minor, p.issued_minor, p.held_minor, p.payout_minor, p.carried_minor, pp.paid_at, pp.reference \
             FROM payouts p JOIN affiliates a ON a.id = p.affiliate_id \
             LEFT JOIN payout_payments pp ON pp.payout_id = p.id \
             WHERE p.program_id = $1 AND p.period = $2 ORDER BY p.affiliate_id, p.unit",
        )
        .bind(program_id)
        .bind(period)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(PayoutLine::from_row)
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Commission lines that landed on the ledger in a period (earned and reversed), for
    /// the payout report's per-partner pages.
    pub async fn period_commissions(
        &self,
        program_id: i64,
        period: &str,
    ) -> Result<Vec<PeriodCommission>, StoreError> {
        let cols = COMMISSION_COLS
            .split(", ")
            .map(|c| format!("c.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {cols}, b.booking_id AS ext_booking, b.channel AS channel FROM commissions c \
             JOIN ledger_transactions t ON t.id = c.transaction_id \
             JOIN bookings b ON b.id = c.booking_ref \
             WHERE t.program_id = $1 AND t.period = $2 ORDER BY c.affiliate_id, c.id"
        ))
        .bind(program_id)
        .bind(period)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PeriodCommission {
                    line: commission(r)?,
                    booking_id: r.try_get("ext_booking")?,
                    channel: r.try_get("channel")?,
                })
            })
            .collect::<Result<_, StoreError>>()
    }

    /// Every ledger transaction with its postings (checks and exports), oldest first.
    pub async fn ledger(&self, program_id: i64) -> Result<Vec<LedgerTransaction>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, t.period, t.kind, t.affiliate_id AS t_aff, p.account, p.affiliate_id, p.unit, p.amount_minor \
             FROM ledger_transactions t JOIN ledger_postings p ON p.transaction_id = t.id \
             WHERE t.program_id = $1 ORDER BY t.id, p.id",
        )
        .bind(program_id)
        .fetch_all(self.pool())
        .await?;
        let mut out: Vec<LedgerTransaction> = Vec::new();
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            let posting = Posting {
                account: word(r, "account")?,
                affiliate_id: r.try_get("affiliate_id")?,
                unit: r.try_get("unit")?,
                amount_minor: r.try_get("amount_minor")?,
            };
            match out.last_mut() {
                Some(last) if last.id == id => last.postings.push(posting),
                _ => out.push(LedgerTransaction {
                    id,
                    period: r.try_get("period")?,
                    kind: word(r, "kind")?,
                    affiliate_id: r.try_get("t_aff")?,
                    postings: vec![posting],
                }),
            }
        }
        Ok(out)
    }

    /// What the program owes an affiliate per unit (minus its `partner_payable` balance).
    pub async fn owed(&self, affiliate_id: i64) -> Result<Vec<UnitAmount>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT unit, {} AS owed FROM ledger_postings WHERE account = $1 AND affiliate_id = $2 GROUP BY unit ORDER BY unit",
            sum("-amount_minor")
        ))
        .bind(Account::PartnerPayable.as_str())
        .bind(affiliate_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(UnitAmount::from_row)
            .collect::<Result<_, sqlx::Error>>()?)
    }
}

impl MoneyTx {
    /// The latest closed period, if any.
    pub async fn last_closed(&mut self) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT MAX(period) AS p FROM ledger_periods WHERE program_id = $1")
            .bind(self.program_id)
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(row.try_get("p")?)
    }

    /// Writes a balanced transaction: postings first, then the header, whose insert
    /// trigger checks the balance (see migration 0005).
    pub async fn post(&mut self, t: &NewTransaction<'_>, now: i64) -> Result<i64, StoreError> {
        let id: i64 = match self.backend {
            Backend::Postgres => sqlx::query(
                "SELECT CAST(nextval(pg_get_serial_sequence('ledger_transactions', 'id')) AS BIGINT) AS id",
            ),
            // Under BEGIN IMMEDIATE this transaction is the only writer.
            Backend::Sqlite => {
                sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 AS id FROM ledger_transactions")
            }
        }
        .fetch_one(&mut *self.tx)
        .await?
        .try_get("id")?;
        for p in &t.postings {
            sqlx::query(
                "INSERT INTO ledger_postings (transaction_id, account, affiliate_id, unit, amount_minor) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(p.account.as_str())
            .bind(p.affiliate_id)
            .bind(&p.unit)
            .bind(p.amount_minor)
            .execute(&mut *self.tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO ledger_transactions (id, program_id, period, kind, affiliate_id, booking_ref, invoice_ref, memo, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(self.program_id)
        .bind(t.period)
        .bind(t.kind.as_str())
        .bind(t.affiliate_id)
        .bind(t.booking_ref)
        .bind(t.invoice_ref)
        .bind(&t.memo)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(id)
    }

    /// The earliest period before `period` that has ledger transactions and is still
    /// open (periods are closed in order).
    pub async fn earlier_open_period(
        &mut self,
        period: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(t.period) AS p FROM ledger_transactions t WHERE t.program_id = $1 AND t.period < $2 \
             AND NOT EXISTS (SELECT 1 FROM ledger_periods l WHERE l.program_id = t.program_id AND l.period = t.period)",
        )
        .bind(self.program_id)
        .bind(period)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("p")?)
    }

    /// Whether the period is closed.
    pub async fn is_closed(&mut self, period: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query(
                "SELECT 1 AS one FROM ledger_periods WHERE program_id = $1 AND period = $2",
            )
            .bind(self.program_id)
            .bind(period)
            .fetch_optional(&mut *self.tx)
            .await?
            .is_some(),
        )
    }

    /// Per (affiliate, unit): owed before the period, accrued in it, reversed in it.
    pub async fn period_balances(
        &mut self,
        period: &str,
    ) -> Result<Vec<PeriodBalance>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT p.affiliate_id, p.unit, \
               {} AS opening, \
               {} AS earned, \
               {} AS reversed, \
               {} AS issued \
             FROM ledger_postings p JOIN ledger_transactions t ON t.id = p.transaction_id \
             WHERE t.program_id = $1 AND p.account = $2 AND t.period <= $3 \
             GROUP BY p.affiliate_id, p.unit ORDER BY p.affiliate_id, p.unit",
            sum("CASE WHEN t.period < $3 THEN -p.amount_minor ELSE 0 END"),
            sum("CASE WHEN t.period = $3 AND t.kind = 'accrual' THEN -p.amount_minor ELSE 0 END"),
            sum("CASE WHEN t.period = $3 AND t.kind = 'reversal' THEN p.amount_minor ELSE 0 END"),
            // Month close's own postings are payouts; a settlement on partner_payable is a
            // reward issued (or, negative, taken back).
            sum("CASE WHEN t.period = $3 AND t.kind = 'settlement' THEN p.amount_minor ELSE 0 END"),
        ))
        .bind(self.program_id)
        .bind(Account::PartnerPayable.as_str())
        .bind(period)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .iter()
            .map(PeriodBalance::from_row)
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Per (affiliate, unit): earned commissions on the ledger up to `period` that are
    /// still inside their holding period at `end_ms` and not reversed.
    pub async fn held_back(
        &mut self,
        period: &str,
        end_ms: i64,
    ) -> Result<Vec<HeldBack>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT c.affiliate_id, c.unit, {} AS held FROM commissions c \
             JOIN ledger_transactions t ON t.id = c.transaction_id \
             WHERE c.program_id = $1 AND c.status = 'earned' AND t.period <= $2 AND c.payable_at > $3 \
             AND NOT EXISTS (SELECT 1 FROM commissions r JOIN ledger_transactions rt ON rt.id = r.transaction_id \
                             WHERE r.booking_ref = c.booking_ref AND r.unit = c.unit AND r.status = 'reversed' AND rt.period <= $2) \
             GROUP BY c.affiliate_id, c.unit",
            sum("c.amount_minor")
        ))
        .bind(self.program_id)
        .bind(period)
        .bind(end_ms)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .iter()
            .map(HeldBack::from_row)
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Records a payout report line.
    pub async fn add_payout(
        &mut self,
        period: &str,
        l: &PayoutLine,
        transaction_id: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO payouts (program_id, period, affiliate_id, unit, opening_minor, earned_minor, reversed_minor, held_minor, payout_minor, carried_minor, transaction_id, issued_minor) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(self.program_id)
        .bind(period)
        .bind(l.affiliate_id)
        .bind(&l.unit)
        .bind(l.opening_minor)
        .bind(l.earned_minor)
        .bind(l.reversed_minor)
        .bind(l.held_minor)
        .bind(l.payout_minor)
        .bind(l.carried_minor)
        .bind(transaction_id)
        .bind(l.issued_minor)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Marks the period closed.
    pub async fn close_period(&mut self, period: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ledger_periods (program_id, period, closed_at) VALUES ($1, $2, $3)",
        )
        .bind(self.program_id)
        .bind(period)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// A stored payout line.
    pub async fn payout(&mut self, id: i64) -> Result<PayoutState, StoreError> {
        let r = sqlx::query(
            "SELECT p.affiliate_id, p.unit, p.payout_minor, p.period, pp.payout_id AS paid FROM payouts p \
             LEFT JOIN payout_payments pp ON pp.payout_id = p.id WHERE p.id = $1 AND p.program_id = $2",
        )
        .bind(id)
        .bind(self.program_id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::NotFound("payout"))?;
        Ok(PayoutState {
            affiliate_id: r.try_get("affiliate_id")?,
            unit: r.try_get("unit")?,
            payout_minor: r.try_get("payout_minor")?,
            period: r.try_get("period")?,
            paid: r.try_get::<Option<i64>, _>("paid")?.is_some(),
        })
    }

    /// Records that a payout was paid.
    pub async fn add_payment(
        &mut self,
        payout_id: i64,
        reference: Option<&str>,
        transaction_id: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO payout_payments (payout_id, paid_at, reference, transaction_id) VALUES ($1, $2, $3, $4)",
        )
        .bind(payout_id)
        .bind(now)
        .bind(reference)
        .bind(transaction_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

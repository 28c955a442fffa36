//! Membership money as stored (`migrations/*/0010_member_money.sql`): an invoice moving
//! from open to paid or refunded, and the commission log of memberships. Every write
//! here happens inside a [`MoneyTx`], so it is serialised with the rest of the money
//! side (one program's money transactions take turns, across replicas too), and an
//! invoice's status moves only from the status the caller read: a retried or
//! concurrent settlement finds the invoice paid already and writes nothing.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::members::{INVOICE_COLS, Invoice, MEMBER_COLS, Member, invoice, member};
use super::money::MoneyTx;
use crate::store::{Store, StoreError};

/// A line of the membership commission log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemberCommission {
    /// Row id.
    pub id: i64,
    /// The member.
    pub member_id: i64,
    /// The paid invoice it is for.
    pub invoice_id: i64,
    /// The partner who brought the member.
    pub affiliate_id: i64,
    /// `earned` or `reversed`.
    pub status: String,
    /// Unit (`USD`, `credit:USD`, `voucher:…`).
    pub unit: String,
    /// Amount (a reversal is negative).
    pub amount_minor: i64,
    /// The invoice amount it was computed from.
    pub basis_minor: i64,
    /// The rule's name.
    pub rule: String,
    /// The month it counts in, `YYYY-MM`.
    pub month: String,
    /// Its ledger transaction.
    pub transaction_id: i64,
    /// Written, Unix ms.
    pub created_at: i64,
}

const COLS: &str = "id, member_id, invoice_id, affiliate_id, status, unit, amount_minor, \
    basis_minor, rule, month, transaction_id, created_at";

fn line(r: &AnyRow) -> Result<MemberCommission, sqlx::Error> {
    Ok(MemberCommission {
        id: r.try_get("id")?,
        member_id: r.try_get("member_id")?,
        invoice_id: r.try_get("invoice_id")?,
        affiliate_id: r.try_get("affiliate_id")?,
        status: r.try_get("status")?,
        unit: r.try_get("unit")?,
        amount_minor: r.try_get("amount_minor")?,
        basis_minor: r.try_get("basis_minor")?,
        rule: r.try_get("rule")?,
        month: r.try_get("month")?,
        transaction_id: r.try_get("transaction_id")?,
        created_at: r.try_get("created_at")?,
    })
}

/// A membership commission line to write.
#[derive(Debug, Clone, Copy)]
pub struct NewMemberCommission<'a> {
    /// The member.
    pub member_id: i64,
    /// The invoice.
    pub invoice_id: i64,
    /// The partner.
    pub affiliate_id: i64,
    /// `earned` or `reversed`.
    pub status: &'a str,
    /// Unit.
    pub unit: &'a str,
    /// Amount (negative for a reversal).
    pub amount_minor: i64,
    /// The invoice amount.
    pub basis_minor: i64,
    /// Rule name.
    pub rule: &'a str,
    /// Month, `YYYY-MM`.
    pub month: &'a str,
    /// Its ledger transaction.
    pub transaction_id: i64,
}

impl MoneyTx {
    /// An invoice of this program, with its member, read inside the money transaction.
    pub async fn invoice_with_member(
        &mut self,
        invoice_id: i64,
    ) -> Result<Option<(Invoice, Member)>, StoreError> {
        let Some(r) = sqlx::query(&format!(
            "SELECT {INVOICE_COLS} FROM invoices WHERE id = $1"
        ))
        .bind(invoice_id)
        .fetch_optional(&mut *self.tx)
        .await?
        else {
            return Ok(None);
        };
        let inv = invoice(&r)?;
        let r = sqlx::query(&format!(
            "SELECT {MEMBER_COLS} FROM members WHERE id = $1 AND program_id = $2"
        ))
        .bind(inv.member_id)
        .bind(self.program_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(match r {
            Some(r) => Some((inv, member(&r)?)),
            None => None,
        })
    }

    /// Moves an invoice from `from` (`open` or `failed`) to `to` (`paid`, `failed`,
    /// `refunded`), stamping the time the status asks for. Returns whether it moved:
    /// `false` when the invoice was no longer in `from`.
    pub async fn move_invoice(
        &mut self,
        invoice_id: i64,
        from: &[&str],
        to: &str,
        reference: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let allowed: Vec<String> = from
            .iter()
            .filter(|s| ["open", "failed", "paid"].contains(s))
            .map(|s| format!("'{s}'"))
            .collect();
        // The time goes into the column the new status stamps; a failure stamps none.
        let stamp = match to {
            "paid" => ", paid_at = $4",
            "refunded" => ", refunded_at = $4",
            _ => "",
        };
        let sql = format!(
            "UPDATE invoices SET status = $1, reference = COALESCE($2, reference){stamp} \
             WHERE id = $3 AND status IN ({})",
            allowed.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(to).bind(reference).bind(invoice_id);
        if !stamp.is_empty() {
            q = q.bind(now);
        }
        let done = q.execute(&mut *self.tx).await?.rows_affected();
        Ok(done == 1)
    }

    /// A past-due member whose payment came in is active again, in the same period.
    pub async fn restore_member(&mut self, member_id: i64, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE members SET status = 'active', status_reason = NULL, failed_on = NULL, \
             retries = 0, updated_at = $1 WHERE id = $2 AND status = 'past_due'",
        )
        .bind(now)
        .bind(member_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The periods of the member's invoices that earned a commission, oldest first.
    pub async fn commissioned_periods(
        &mut self,
        member_id: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT i.period FROM member_commissions c JOIN invoices i ON i.id = c.invoice_id \
             WHERE c.member_id = $1 AND c.status = 'earned' ORDER BY i.period",
        )
        .bind(member_id)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?)
    }

    /// The commission lines of one invoice.
    pub async fn invoice_commissions(
        &mut self,
        invoice_id: i64,
    ) -> Result<Vec<MemberCommission>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM member_commissions WHERE invoice_id = $1 ORDER BY id"
        ))
        .bind(invoice_id)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows.iter().map(line).collect::<Result<_, _>>()?)
    }

    /// Appends a line to the membership commission log.
    pub async fn add_member_commission(
        &mut self,
        c: &NewMemberCommission<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO member_commissions (program_id, member_id, invoice_id, affiliate_id, status, \
             unit, amount_minor, basis_minor, rule, month, transaction_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(self.program_id)
        .bind(c.member_id)
        .bind(c.invoice_id)
        .bind(c.affiliate_id)
        .bind(c.status)
        .bind(c.unit)
        .bind(c.amount_minor)
        .bind(c.basis_minor)
        .bind(c.rule)
        .bind(c.month)
        .bind(c.transaction_id)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

impl Store {
    /// An invoice by id.
    pub async fn invoice(&self, id: i64) -> Result<Option<Invoice>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {INVOICE_COLS} FROM invoices WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(invoice).transpose()?)
    }

    /// A member's commission log, oldest first.
    pub async fn member_commissions(
        &self,
        member_id: i64,
    ) -> Result<Vec<MemberCommission>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM member_commissions WHERE member_id = $1 ORDER BY id"
        ))
        .bind(member_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(line).collect::<Result<_, _>>()?)
    }
}

/// A failed charge to record: the member's standing moves from what the caller read
/// (`from_status`, `from_retries`) to the new one, and the invoice becomes `failed`.
#[derive(Debug, Clone, Copy)]
pub struct ChargeFailure<'a> {
    /// The invoice.
    pub invoice_id: i64,
    /// Its member.
    pub member_id: i64,
    /// The member's status as read.
    pub from_status: &'a str,
    /// The member's failed retries as read.
    pub from_retries: i64,
    /// The invoice's failed attempts as read.
    pub from_failures: i64,
    /// The new status (`past_due` or `lapsed`).
    pub status: &'a str,
    /// Day of the first failure.
    pub failed_on: Option<i64>,
    /// Failed retries since.
    pub retries: i64,
    /// What the payment system said.
    pub failure: &'a str,
}

impl Store {
    /// Invoices a charge run may ask the payment system for, with their members:
    /// open ones never charged of active members (a past-due member's next invoice
    /// waits until the failed one is settled), and failed ones of past-due members (the
    /// caller decides whether a retry is due). Oldest first, at most `limit`.
    pub async fn chargeable_invoices(
        &self,
        program_id: i64,
        limit: i64,
    ) -> Result<Vec<(Invoice, Member)>, StoreError> {
        let icols: Vec<String> = INVOICE_COLS
            .split(", ")
            .map(|c| format!("i.{} AS i_{}", c.trim(), c.trim()))
            .collect();
        let mcols: Vec<String> = MEMBER_COLS
            .split(", ")
            .map(|c| format!("m.{}", c.trim()))
            .collect();
        let rows = sqlx::query(&format!(
            "SELECT {}, {} FROM invoices i JOIN members m ON m.id = i.member_id \
             WHERE m.program_id = $1 AND ((i.status = 'open' AND m.status = 'active') \
             OR (i.status = 'failed' AND m.status = 'past_due')) ORDER BY i.id LIMIT $2",
            icols.join(", "),
            mcols.join(", ")
        ))
        .bind(program_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push((prefixed_invoice(r)?, member(r)?));
        }
        Ok(out)
    }

    /// Records a failed charge, in one transaction. Returns `false`, writing nothing,
    /// when the member's standing or the invoice's attempts are no longer what the
    /// caller read (another replica, or another delivery, recorded this answer first).
    /// A member who lapses has their unpaid invoices (the failed one too) voided:
    /// nothing more is charged, and a month never paid for is not recurring revenue.
    pub async fn record_charge_failure(
        &self,
        f: &ChargeFailure<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let moved = sqlx::query(
            "UPDATE members SET status = $1, failed_on = $2, retries = $3, \
             status_reason = CASE WHEN $4 = 'lapsed' THEN 'payment_failed' ELSE status_reason END, \
             updated_at = $5 WHERE id = $6 AND status = $7 AND retries = $8",
        )
        .bind(f.status)
        .bind(f.failed_on)
        .bind(f.retries)
        .bind(f.status)
        .bind(now)
        .bind(f.member_id)
        .bind(f.from_status)
        .bind(f.from_retries)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved != 1 {
            return Ok(false);
        }
        let failed = sqlx::query(
            "UPDATE invoices SET status = 'failed', charge_failures = charge_failures + 1, \
             last_charge_at = $1, failure = $2 WHERE id = $3 AND status IN ('open', 'failed') \
             AND charge_failures = $4",
        )
        .bind(now)
        .bind(f.failure)
        .bind(f.invoice_id)
        .bind(f.from_failures)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if failed != 1 {
            return Ok(false); // dropping the transaction rolls the member back
        }
        if f.status == "lapsed" {
            sqlx::query(
                "UPDATE invoices SET status = 'void' WHERE member_id = $1 AND status IN ('open', 'failed')",
            )
            .bind(f.member_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// How failed charges turned out: invoices whose charge failed at least once, those
/// paid in the end, and those still failing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Invoices with a failed charge.
    pub failed: i64,
    /// Of those, paid (or paid and refunded) in the end.
    pub recovered: i64,
    /// Of those, still being retried.
    pub retrying: i64,
}

impl Store {
    /// The program's [`Recovery`] of failed payments.
    pub async fn payment_recovery(&self, program_id: i64) -> Result<Recovery, StoreError> {
        let r = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS failed, \
             CAST(COALESCE(SUM(CASE WHEN i.status IN ('paid', 'refunded') THEN 1 ELSE 0 END), 0) AS BIGINT) AS recovered, \
             CAST(COALESCE(SUM(CASE WHEN i.status = 'failed' AND m.status = 'past_due' THEN 1 ELSE 0 END), 0) AS BIGINT) AS retrying \
             FROM invoices i JOIN members m ON m.id = i.member_id \
             WHERE m.program_id = $1 AND i.charge_failures > 0",
        )
        .bind(program_id)
        .fetch_one(self.pool())
        .await?;
        Ok(Recovery {
            failed: r.try_get("failed")?,
            recovered: r.try_get("recovered")?,
            retrying: r.try_get("retrying")?,
        })
    }
}

fn prefixed_invoice(r: &AnyRow) -> Result<Invoice, sqlx::Error> {
    Ok(Invoice {
        id: r.try_get("i_id")?,
        member_id: r.try_get("i_member_id")?,
        period: r.try_get("i_period")?,
        kind: r.try_get("i_kind")?,
        plan: r.try_get("i_plan")?,
        amount_minor: r.try_get("i_amount_minor")?,
        currency: r.try_get("i_currency")?,
        status: r.try_get("i_status")?,
        created_at: r.try_get("i_created_at")?,
        paid_at: r.try_get("i_paid_at")?,
        refunded_at: r.try_get("i_refunded_at")?,
        reference: r.try_get("i_reference")?,
        charge_failures: r.try_get("i_charge_failures")?,
        failure: r.try_get("i_failure")?,
    })
}

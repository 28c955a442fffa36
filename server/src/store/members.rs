//! Members and their invoices as stored (`migrations/*/0009_members.sql`). A member is
//! created with its first invoice in one transaction, and one membership per customer
//! and program is live at a time, which the database enforces (a second one is
//! [`StoreError::AlreadyMember`], even from two replicas at once).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::store::{Store, StoreError};

/// A member as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Id.
    pub id: i64,
    /// Program.
    pub program_id: i64,
    /// The brand's opaque customer id.
    pub customer_id: String,
    /// Where dunning emails go.
    pub email: String,
    /// The plan's id in the program config.
    pub plan: String,
    /// A downgrade waiting for the next period.
    pub pending_plan: Option<String>,
    /// `active`, `past_due`, `lapsed`, `paused` or `cancelled`.
    pub status: String,
    /// Why it is lapsed or cancelled (`payment_failed`, …).
    pub status_reason: Option<String>,
    /// Day number of the first failed charge, while past due.
    pub failed_on: Option<i64>,
    /// Failed retries since.
    pub retries: i64,
    /// Paused until this period (`YYYY-MM`, exclusive).
    pub paused_until: Option<String>,
    /// Cancelled at the end of the period.
    pub cancel_at_period_end: bool,
    /// The current period, `YYYY-MM`.
    pub period: String,
    /// Visits this period includes (`None`: unlimited).
    pub visits_included: Option<i64>,
    /// Included visits used.
    pub visits_used: i64,
    /// Visits rolled over from the previous period.
    pub visits_rolled: i64,
    /// Rolled-over visits used.
    pub visits_rolled_used: i64,
    /// The partner who brought the member.
    pub affiliate_id: Option<i64>,
    /// Created, Unix ms.
    pub created_at: i64,
    /// Last changed, Unix ms.
    pub updated_at: i64,
    /// The code of the member's page and cards (`/m/{code}`), once a card is bound.
    pub code: Option<String>,
    /// The first name shown at check-in.
    pub first_name: Option<String>,
}

pub(super) const MEMBER_COLS: &str = "id, program_id, customer_id, email, plan, pending_plan, status, \
    status_reason, failed_on, retries, paused_until, cancel_at_period_end, period, \
    visits_included, visits_used, visits_rolled, visits_rolled_used, affiliate_id, \
    created_at, updated_at, code, first_name";

pub(super) fn member(r: &AnyRow) -> Result<Member, sqlx::Error> {
    Ok(Member {
        id: r.try_get("id")?,
        program_id: r.try_get("program_id")?,
        customer_id: r.try_get("customer_id")?,
        email: r.try_get("email")?,
        plan: r.try_get("plan")?,
        pending_plan: r.try_get("pending_plan")?,
        status: r.try_get("status")?,
        status_reason: r.try_get("status_reason")?,
        failed_on: r.try_get("failed_on")?,
        retries: r.try_get("retries")?,
        paused_until: r.try_get("paused_until")?,
        cancel_at_period_end: r.try_get::<i64, _>("cancel_at_period_end")? != 0,
        period: r.try_get("period")?,
        visits_included: r.try_get("visits_included")?,
        visits_used: r.try_get("visits_used")?,
        visits_rolled: r.try_get("visits_rolled")?,
        visits_rolled_used: r.try_get("visits_rolled_used")?,
        affiliate_id: r.try_get("affiliate_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        code: r.try_get("code")?,
        first_name: r.try_get("first_name")?,
    })
}

/// An invoice as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// Id.
    pub id: i64,
    /// Its member.
    pub member_id: i64,
    /// The period it pays for, `YYYY-MM`.
    pub period: String,
    /// `first`, `renewal` or `upgrade`.
    pub kind: String,
    /// The plan it bills.
    pub plan: String,
    /// Amount, minor units.
    pub amount_minor: i64,
    /// Currency.
    pub currency: String,
    /// `open`, `paid`, `failed`, `refunded` or `void`.
    pub status: String,
    /// Issued, Unix ms.
    pub created_at: i64,
    /// Paid, Unix ms.
    pub paid_at: Option<i64>,
    /// Refunded, Unix ms.
    pub refunded_at: Option<i64>,
    /// The payment's reference in the brand's payment system (or the admin's note).
    pub reference: Option<String>,
    /// Charge attempts the payment system answered "failed".
    pub charge_failures: i64,
    /// Why the last charge failed.
    pub failure: Option<String>,
}

pub(super) const INVOICE_COLS: &str = "id, member_id, period, kind, plan, amount_minor, currency, \
    status, created_at, paid_at, refunded_at, reference, charge_failures, failure";

pub(super) fn invoice(r: &AnyRow) -> Result<Invoice, sqlx::Error> {
    Ok(Invoice {
        id: r.try_get("id")?,
        member_id: r.try_get("member_id")?,
        period: r.try_get("period")?,
        kind: r.try_get("kind")?,
        plan: r.try_get("plan")?,
        amount_minor: r.try_get("amount_minor")?,
        currency: r.try_get("currency")?,
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
        paid_at: r.try_get("paid_at")?,
        refunded_at: r.try_get("refunded_at")?,
        reference: r.try_get("reference")?,
        charge_failures: r.try_get("charge_failures")?,
        failure: r.try_get("failure")?,
    })
}

/// A member to create, with the first invoice's amount already decided
/// ([`crate::members::billing::first_charge`]).
#[derive(Debug, Clone, Copy)]
pub struct NewMember<'a> {
    /// Program.
    pub program_id: i64,
    /// The brand's customer id.
    pub customer_id: &'a str,
    /// Email.
    pub email: &'a str,
    /// Plan id.
    pub plan: &'a str,
    /// The first period, `YYYY-MM`.
    pub period: &'a str,
    /// The first name shown at check-in.
    pub first_name: Option<&'a str>,
    /// Its visits (`None`: unlimited).
    pub visits_included: Option<i64>,
    /// The partner who brought the member.
    pub affiliate_id: Option<i64>,
    /// The prorated first charge, minor units.
    pub first_charge_minor: i64,
    /// Its currency.
    pub currency: &'a str,
    /// The `membership_started` event it came from.
    pub event_id: Option<&'a str>,
    /// Now, Unix ms.
    pub now: i64,
}

impl Store {
    /// Creates a member and its first invoice (open), in one transaction.
    pub async fn create_member(&self, m: &NewMember<'_>) -> Result<(Member, Invoice), StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO members (program_id, customer_id, email, plan, period, visits_included, \
             affiliate_id, created_at, updated_at, event_id, first_name) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {MEMBER_COLS}"
        ))
        .bind(m.program_id)
        .bind(m.customer_id)
        .bind(m.email)
        .bind(m.plan)
        .bind(m.period)
        .bind(m.visits_included)
        .bind(m.affiliate_id)
        .bind(m.now)
        .bind(m.now)
        .bind(m.event_id)
        .bind(m.first_name)
        .fetch_one(&mut *tx)
        .await;
        let created = match row {
            Ok(r) => member(&r)?,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                drop(tx);
                let live = self.live_member(m.program_id, m.customer_id).await?;
                return Err(StoreError::AlreadyMember {
                    customer_id: m.customer_id.to_owned(),
                    member_id: live.map_or(0, |l| l.id),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let row = sqlx::query(&format!(
            "INSERT INTO invoices (member_id, period, kind, plan, amount_minor, currency, created_at) \
             VALUES ($1, $2, 'first', $3, $4, $5, $6) RETURNING {INVOICE_COLS}"
        ))
        .bind(created.id)
        .bind(m.period)
        .bind(m.plan)
        .bind(m.first_charge_minor)
        .bind(m.currency)
        .bind(m.now)
        .fetch_one(&mut *tx)
        .await?;
        let first = invoice(&row)?;
        tx.commit().await?;
        Ok((created, first))
    }

    /// The member a `membership_started` event created, if it was processed.
    pub async fn member_by_event(
        &self,
        program_id: i64,
        event_id: &str,
    ) -> Result<Option<Member>, StoreError> {
        self.member_where(program_id, "event_id = $2", event_id)
            .await
    }

    /// The member whose page code is `code`.
    pub async fn member_by_code(
        &self,
        program_id: i64,
        code: &str,
    ) -> Result<Option<Member>, StoreError> {
        self.member_where(program_id, "code = $2", code).await
    }

    /// The newest member with a page code whose email is `email` (case ignored): whom a
    /// member sign-in link goes to.
    pub async fn member_by_email(
        &self,
        program_id: i64,
        email: &str,
    ) -> Result<Option<Member>, StoreError> {
        let filter = "lower(email) = lower($2) AND code IS NOT NULL ORDER BY id DESC LIMIT 1";
        self.member_where(program_id, filter, email.trim()).await
    }

    /// A member by id.
    pub async fn member(&self, id: i64) -> Result<Option<Member>, StoreError> {
        let row = sqlx::query(&format!("SELECT {MEMBER_COLS} FROM members WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(member).transpose()?)
    }

    /// The customer's live membership of the program (active, past due or paused).
    pub async fn live_member(
        &self,
        program_id: i64,
        customer_id: &str,
    ) -> Result<Option<Member>, StoreError> {
        let filter = "customer_id = $2 AND status IN ('active', 'past_due', 'paused')";
        self.member_where(program_id, filter, customer_id).await
    }

    /// The first member of the program that `filter` finds: a condition on `$2` (`value`),
    /// optionally followed by an ORDER BY.
    async fn member_where(
        &self,
        program_id: i64,
        filter: &str,
        value: &str,
    ) -> Result<Option<Member>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {MEMBER_COLS} FROM members WHERE program_id = $1 AND {filter}"
        ))
        .bind(program_id)
        .bind(value)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(member).transpose()?)
    }

    /// A member's invoices, oldest first; only the open ones with `open_only`.
    pub async fn member_invoices(
        &self,
        member_id: i64,
        open_only: bool,
    ) -> Result<Vec<Invoice>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {INVOICE_COLS} FROM invoices WHERE member_id = $1 \
             AND ($2 = 0 OR status = 'open') ORDER BY id"
        ))
        .bind(member_id)
        .bind(i64::from(open_only))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(invoice).collect::<Result<Vec<_>, _>>()?)
    }

    /// The plans members of the program hold (current or pending), for the start-up check
    /// that no plan in use left the config.
    pub async fn plans_in_use(&self, program_id: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT plan FROM members WHERE program_id = $1 AND status <> 'cancelled' \
             UNION SELECT pending_plan FROM members WHERE program_id = $2 \
             AND pending_plan IS NOT NULL AND status <> 'cancelled' ORDER BY 1",
        )
        .bind(program_id)
        .bind(program_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()?)
    }
}

/// A plan as the renewal run prices it: id, price, visits (`None`: unlimited).
#[derive(Debug, Clone, Copy)]
pub struct PlanPrice<'a> {
    /// Plan id.
    pub id: &'a str,
    /// Price per month, minor units.
    pub price_minor: i64,
    /// Visits per month (`None`: unlimited).
    pub visits: Option<i64>,
}

/// What one renewal pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenewalPass {
    /// Renewal invoices issued.
    pub invoiced: u64,
    /// Members moved into the new period (renewed, resumed or still paused).
    pub advanced: u64,
    /// Members whose cancellation took effect.
    pub cancelled: u64,
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds the plans table of a renewal statement: (id, price, visits; -1 for unlimited).
fn bind_plans<'q>(plans: &[PlanPrice<'_>], mut q: AnyQuery<'q>) -> AnyQuery<'q> {
    for p in plans {
        q = q
            .bind(p.id.to_owned())
            .bind(p.price_minor)
            .bind(p.visits.unwrap_or(-1));
    }
    q
}

/// Live statuses: the member is billed, or paused and will be again.
const LIVE: &str = "('active', 'past_due', 'paused')";

/// Members renewed (or resumed) by a pass from `$from` to `$to`: not cancelling, or a
/// pause that ends by `$to`.
/// A pause asked for (`paused_until` set on a billed member) starts with the next period.
const RENEWING: &str = "((m.status IN ('active', 'past_due') AND m.cancel_at_period_end = 0 \
    AND (m.paused_until IS NULL OR m.paused_until <= $TO)) \
    OR (m.status = 'paused' AND m.cancel_at_period_end = 0 AND m.paused_until <= $TO))";

impl Store {
    /// The oldest period a live member of the program is still in, if before `before`.
    pub async fn oldest_unrenewed_period(
        &self,
        program_id: i64,
        before: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT MIN(period) AS p FROM members WHERE program_id = $1 AND status IN {LIVE} \
             AND period < $2"
        ))
        .bind(program_id)
        .bind(before)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("p")?)
    }

    /// Moves the program's live members in period `from` into `to`, in one transaction:
    /// a renewal invoice at the (pending or current) plan's price for each member who
    /// renews, the period's visits (the plan's, plus the unused included ones rolled
    /// over; none after a pause), cancellations that were waiting for the period's end,
    /// and pauses that go on. Safe to run twice and on several replicas at once: one
    /// renewal invoice per member and period (a unique index), and each member moves
    /// only from `from` (a second pass finds no one there).
    pub async fn renewal_pass(
        &self,
        program_id: i64,
        from: &str,
        to: &str,
        plans: &[PlanPrice<'_>],
        currency: &str,
        now: i64,
    ) -> Result<RenewalPass, StoreError> {
        if plans.is_empty() {
            return Ok(RenewalPass::default());
        }
        // The plans as a table: $5.. in triples (id, price, visits; -1 for unlimited).
        let values: Vec<String> = (0..plans.len())
            .map(|i| format!("(${}, ${}, ${})", 5 + 3 * i, 6 + 3 * i, 7 + 3 * i))
            .collect();
        let with = format!(
            "WITH plans (id, price, visits) AS (VALUES {})",
            values.join(", ")
        );
        let renewing = RENEWING.replace("$TO", "$2");
        let mut tx = self.pool.begin().await?;
        // $1 program, $2 to, $3 from, $4 now (and the currency where used).
        let insert = format!(
            "{with} INSERT INTO invoices (member_id, period, kind, plan, amount_minor, currency, created_at) \
             SELECT m.id, $2, 'renewal', p.id, p.price, ${cur}, $4 FROM members m \
             JOIN plans p ON p.id = COALESCE(m.pending_plan, m.plan) \
             WHERE m.program_id = $1 AND m.period = $3 AND {renewing} \
             ON CONFLICT (member_id, period) WHERE kind IN ('first', 'renewal') DO NOTHING",
            cur = 5 + 3 * plans.len(),
        );
        let invoiced = bind_plans(
            plans,
            sqlx::query(&insert)
                .bind(program_id)
                .bind(to)
                .bind(from)
                .bind(now),
        )
        .bind(currency)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let renew = format!(
            "{with} UPDATE members SET \
             visits_rolled = CASE WHEN status = 'paused' OR visits_included IS NULL THEN 0 \
                 WHEN visits_included > visits_used THEN visits_included - visits_used ELSE 0 END, \
             visits_included = (SELECT CASE WHEN p.visits < 0 THEN NULL ELSE p.visits END \
                 FROM plans p WHERE p.id = COALESCE(members.pending_plan, members.plan)), \
             visits_used = 0, visits_rolled_used = 0, \
             plan = COALESCE(pending_plan, plan), pending_plan = NULL, \
             status = CASE WHEN status = 'paused' THEN 'active' ELSE status END, \
             paused_until = NULL, period = $2, updated_at = $4 \
             WHERE program_id = $1 AND period = $3 AND {} \
             AND COALESCE(pending_plan, plan) IN (SELECT id FROM plans)",
            renewing.replace("m.", "")
        );
        let renewed = bind_plans(
            plans,
            sqlx::query(&renew)
                .bind(program_id)
                .bind(to)
                .bind(from)
                .bind(now),
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let paused = sqlx::query(
            "UPDATE members SET status = 'paused', period = $2, visits_included = 0, \
             visits_used = 0, visits_rolled = 0, visits_rolled_used = 0, updated_at = $4 \
             WHERE program_id = $1 AND period = $3 AND paused_until > $2 \
             AND status IN ('active', 'past_due', 'paused') AND cancel_at_period_end = 0",
        )
        .bind(program_id)
        .bind(to)
        .bind(from)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let cancelled = sqlx::query(
            "UPDATE members SET status = 'cancelled', status_reason = 'cancelled', updated_at = $3 \
             WHERE program_id = $1 AND period = $2 AND status IN ('active', 'past_due', 'paused') \
             AND cancel_at_period_end = 1",
        )
        .bind(program_id)
        .bind(from)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(RenewalPass {
            invoiced,
            advanced: renewed + paused,
            cancelled,
        })
    }
}

impl Store {
    /// Applies a plan change to a member still on `from_plan` in `period` and billed
    /// (active or past due): `plan`, `pending_plan` and `visits_included` as given, and,
    /// for an upgrade, its prorated invoice, in one transaction. `None` when the member
    /// changed meanwhile (read it again).
    #[allow(clippy::too_many_arguments)]
    pub async fn change_member_plan(
        &self,
        id: i64,
        from_plan: &str,
        period: &str,
        plan: &str,
        pending_plan: Option<&str>,
        visits_included: Option<i64>,
        upgrade: Option<(i64, &str)>,
        now: i64,
    ) -> Result<Option<(Member, Option<Invoice>)>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "UPDATE members SET plan = $4, pending_plan = $5, visits_included = $6, updated_at = $7 \
             WHERE id = $1 AND plan = $2 AND period = $3 AND status IN ('active', 'past_due') \
             RETURNING {MEMBER_COLS}"
        ))
        .bind(id)
        .bind(from_plan)
        .bind(period)
        .bind(plan)
        .bind(pending_plan)
        .bind(visits_included)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let m = member(&row)?;
        let invoice = match upgrade {
            Some((amount, currency)) => {
                let r = sqlx::query(&format!(
                    "INSERT INTO invoices (member_id, period, kind, plan, amount_minor, currency, created_at) \
                     VALUES ($1, $2, 'upgrade', $3, $4, $5, $6) RETURNING {INVOICE_COLS}"
                ))
                .bind(id)
                .bind(period)
                .bind(plan)
                .bind(amount)
                .bind(currency)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                Some(invoice(&r)?)
            }
            None => None,
        };
        tx.commit().await?;
        Ok(Some((m, invoice)))
    }

    /// Asks for a pause of a billed member, from the next period until `until`
    /// (exclusive). `None` unless the member is active or past due, not cancelling and
    /// not already pausing.
    pub async fn pause_member(
        &self,
        id: i64,
        until: &str,
        now: i64,
    ) -> Result<Option<Member>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE members SET paused_until = $2, updated_at = $3 WHERE id = $1 \
             AND status IN ('active', 'past_due') AND cancel_at_period_end = 0 \
             AND paused_until IS NULL RETURNING {MEMBER_COLS}"
        ))
        .bind(id)
        .bind(until)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(member).transpose()?)
    }

    /// Cancels a live member at the end of its period (a paused one at the end of the
    /// current period too). `None` unless the member is live.
    pub async fn cancel_member(&self, id: i64, now: i64) -> Result<Option<Member>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE members SET cancel_at_period_end = 1, updated_at = $2 WHERE id = $1 \
             AND status IN ('active', 'past_due', 'paused') RETURNING {MEMBER_COLS}"
        ))
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(member).transpose()?)
    }
}

impl Store {
    /// The program's members, newest first (at most `limit`).
    pub async fn members(&self, program_id: i64, limit: i64) -> Result<Vec<Member>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {MEMBER_COLS} FROM members WHERE program_id = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(program_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(member).collect::<Result<Vec<_>, _>>()?)
    }

    /// The program's open invoices, oldest first (at most `limit`).
    pub async fn open_invoices(
        &self,
        program_id: i64,
        limit: i64,
    ) -> Result<Vec<Invoice>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM invoices i JOIN members m ON m.id = i.member_id \
             WHERE m.program_id = $1 AND i.status = 'open' ORDER BY i.id LIMIT $2",
            INVOICE_COLS
                .split(", ")
                .map(|c| format!("i.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(program_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(invoice).collect::<Result<Vec<_>, _>>()?)
    }
}

impl Store {
    /// Who was billed for which plan in each period up to `to` (first, renewal and
    /// upgrade invoices that are not void), in invoice order: what MRR is computed from.
    pub async fn billed_until(
        &self,
        program_id: i64,
        to: &str,
    ) -> Result<Vec<(i64, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.member_id, i.period, i.plan FROM invoices i JOIN members m ON m.id = i.member_id \
             WHERE m.program_id = $1 AND i.period <= $2 AND i.status <> 'void' ORDER BY i.id",
        )
        .bind(program_id)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(Into::into)
    }
}

impl Store {
    /// The members a partner brought, oldest first: their plan, status and when they
    /// joined, nothing that identifies the customer (the partner portal shows it).
    pub async fn members_brought(
        &self,
        affiliate_id: i64,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT plan, status, created_at FROM members WHERE affiliate_id = $1 ORDER BY id",
        )
        .bind(affiliate_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(Into::into)
    }
}

//! Members' money: an invoice paid or refunded, into the double-entry ledger, with the
//! commission the partner who brought the member earns on it (rules with
//! `on = "membership"`, [`crate::money::rules`]) and its clawback on a refund.
//!
//! Each call is one money transaction ([`crate::store::money::MoneyTx`]: one at a time
//! per program, across replicas too) that reads the invoice and moves it only from the
//! status it read. A retried call, or the same call on a second replica, finds the
//! invoice paid (or refunded) already and writes nothing, so a payment is booked once,
//! and a commission is earned once per invoice and unit (also a unique index).
//!
//! Ledger entries (amounts positive for a debit, in the invoice's currency):
//! - paid: a `settlement`, `cash` +amount, `membership_revenue` −amount;
//! - refunded: a `reversal`, `membership_revenue` +amount, `cash` −amount;
//! - a commission: an `accrual` from `commission_expense` (or the credit or voucher
//!   pool) to the partner's `partner_payable`, so the month close pays it out with the
//!   booking commissions; its clawback a `reversal` of the same.
//!
//! An entry dated in a closed month lands in the first open one, as for bookings.

use super::service::MemberError;
use crate::money::posting::{accrual, period_for};
use crate::money::rules::{Commission, Conversion, On};
use crate::store::Store;
use crate::store::ledger::{NewTransaction, Posting};
use crate::store::member_money::{MemberCommission, NewMemberCommission};
use crate::store::members::{Invoice, Member};
use crate::store::money::MoneyTx;
use crate::store::vocab::{Account, TransactionKind};

/// What a settlement or refund did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The invoice afterwards.
    pub invoice: Invoice,
    /// Its member afterwards.
    pub member: Member,
    /// Whether this call changed anything (`false`: it was paid / refunded already).
    pub changed: bool,
    /// The invoice's commission lines afterwards.
    pub commissions: Vec<MemberCommission>,
}

/// The longest payment reference kept.
pub const MAX_REFERENCE: usize = 200;

pub(crate) fn check_reference(reference: Option<&str>) -> Result<(), MemberError> {
    match reference {
        Some(r) if r.is_empty() || r.chars().count() > MAX_REFERENCE => Err(MemberError::Invalid {
            field: "reference",
            reason: format!(
                "reference must be 1 to {MAX_REFERENCE} characters (the payment's id in your payment system), or left out"
            ),
        }),
        Some(r) if r.chars().any(char::is_control) => Err(MemberError::Invalid {
            field: "reference",
            reason: "reference must not contain control characters".to_owned(),
        }),
        _ => Ok(()),
    }
}

async fn open_tx(
    store: &Store,
    program_id: i64,
    invoice_id: i64,
) -> Result<(MoneyTx, Invoice, Member), MemberError> {
    let mut tx = store.begin_money(program_id).await?;
    let (inv, m) = tx
        .invoice_with_member(invoice_id)
        .await?
        .ok_or(MemberError::InvoiceNotFound)?;
    Ok((tx, inv, m))
}

async fn finish(mut tx: MoneyTx, invoice_id: i64, changed: bool) -> Result<Outcome, MemberError> {
    let (invoice, member) = tx
        .invoice_with_member(invoice_id)
        .await?
        .ok_or(MemberError::InvoiceNotFound)?;
    let commissions = tx.invoice_commissions(invoice_id).await?;
    tx.commit().await?;
    Ok(Outcome {
        invoice,
        member,
        changed,
        commissions,
    })
}

async fn ledger_period(tx: &mut MoneyTx, now: i64) -> Result<String, MemberError> {
    let month = tapkit_core::date::month_of_ms(now);
    let closed = tx.last_closed().await?;
    Ok(period_for(&month, closed.as_deref()))
}

/// Books the invoice's money on the ledger: `amount` into `cash` from
/// `membership_revenue` (negative: back out, for a refund). Nothing for a zero invoice.
async fn book_cash(
    tx: &mut MoneyTx,
    period: &str,
    kind: TransactionKind,
    inv: &Invoice,
    amount: i64,
    memo: String,
    now: i64,
) -> Result<(), MemberError> {
    if amount == 0 {
        return Ok(());
    }
    let leg = |account, amount_minor| Posting {
        account,
        affiliate_id: None,
        unit: inv.currency.clone(),
        amount_minor,
    };
    tx.post(
        &NewTransaction {
            period,
            kind,
            affiliate_id: None,
            booking_ref: None,
            invoice_ref: Some(inv.id),
            memo,
            postings: vec![
                leg(Account::Cash, amount),
                leg(Account::MembershipRevenue, -amount),
            ],
        },
        now,
    )
    .await?;
    Ok(())
}

/// Marks an invoice paid on `now` (`reference`: the payment's id in the brand's payment
/// system), books it, restores a past-due member, and pays the membership commission.
/// Paying a paid invoice again changes nothing; a refunded or void one is refused.
pub async fn settle(
    store: &Store,
    rules: &Commission,
    program_id: i64,
    invoice_id: i64,
    reference: Option<&str>,
    now: i64,
) -> Result<Outcome, MemberError> {
    check_reference(reference)?;
    let (mut tx, inv, m) = open_tx(store, program_id, invoice_id).await?;
    match inv.status.as_str() {
        "paid" => return finish(tx, invoice_id, false).await,
        "open" | "failed" => {}
        other => {
            return Err(MemberError::Conflict(format!(
                "invoice {invoice_id} is {other}: only an open or failed invoice can be paid"
            )));
        }
    }
    if !tx
        .move_invoice(invoice_id, &["open", "failed"], "paid", reference, now)
        .await?
    {
        return finish(tx, invoice_id, false).await;
    }
    let period = ledger_period(&mut tx, now).await?;
    let memo = format!(
        "membership invoice {} paid ({} {}, member {})",
        inv.id, inv.kind, inv.period, m.id
    );
    book_cash(
        &mut tx,
        &period,
        TransactionKind::Settlement,
        &inv,
        inv.amount_minor,
        memo,
        now,
    )
    .await?;
    tx.restore_member(m.id, now).await?;
    if let Some(aff) = m.affiliate_id
        && !matches!(m.status.as_str(), "cancelled" | "lapsed")
        && inv.amount_minor > 0
    {
        earn(store, &mut tx, rules, &inv, &m, aff, &period, now).await?;
    }
    finish(tx, invoice_id, true).await
}

/// The membership commission of a paid invoice, when a rule pays one.
#[allow(clippy::too_many_arguments)]
async fn earn(
    store: &Store,
    tx: &mut MoneyTx,
    rules: &Commission,
    inv: &Invoice,
    m: &Member,
    aff: i64,
    period: &str,
    now: i64,
) -> Result<(), MemberError> {
    let a = store.affiliate(aff).await?;
    if a.status != "active" {
        return Ok(());
    }
    let conv = Conversion {
        on: On::Membership,
        action: None,
        affiliate_kind: &a.kind,
        tier: None,
        amount_minor: Some(inv.amount_minor),
        first_for_customer: false,
    };
    let Some(rule) = rules.matching_rule(&conv) else {
        return Ok(());
    };
    if let Some(months) = rule.months {
        let periods = tx.commissioned_periods(m.id).await?;
        let counted = usize::try_from(months).unwrap_or(usize::MAX);
        if !periods.contains(&inv.period) && periods.len() >= counted {
            return Ok(());
        }
    }
    let Some(priced) = rules.price(&conv)? else {
        return Ok(());
    };
    for amount in &priced.amounts {
        let id = tx
            .post(
                &NewTransaction {
                    period,
                    kind: TransactionKind::Accrual,
                    affiliate_id: Some(aff),
                    booking_ref: None,
                    invoice_ref: Some(inv.id),
                    memo: format!(
                        "membership commission on invoice {} ({}, member {})",
                        inv.id, inv.period, m.id
                    ),
                    postings: accrual(aff, &amount.unit, amount.amount_minor).to_vec(),
                },
                now,
            )
            .await?;
        tx.add_member_commission(
            &NewMemberCommission {
                member_id: m.id,
                invoice_id: inv.id,
                affiliate_id: aff,
                status: "earned",
                unit: &amount.unit,
                amount_minor: amount.amount_minor,
                basis_minor: inv.amount_minor,
                rule: &priced.rule,
                month: period,
                transaction_id: id,
            },
            now,
        )
        .await?;
    }
    Ok(())
}

/// Refunds a paid invoice on `now`: the payment is reversed on the ledger and the
/// commission it earned is clawed back. Refunding it again changes nothing; an invoice
/// that was never paid is refused.
pub async fn refund(
    store: &Store,
    program_id: i64,
    invoice_id: i64,
    now: i64,
) -> Result<Outcome, MemberError> {
    let (mut tx, inv, m) = open_tx(store, program_id, invoice_id).await?;
    match inv.status.as_str() {
        "refunded" => return finish(tx, invoice_id, false).await,
        "paid" => {}
        other => {
            return Err(MemberError::Conflict(format!(
                "invoice {invoice_id} is {other}: only a paid invoice can be refunded"
            )));
        }
    }
    if !tx
        .move_invoice(invoice_id, &["paid"], "refunded", None, now)
        .await?
    {
        return finish(tx, invoice_id, false).await;
    }
    let period = ledger_period(&mut tx, now).await?;
    let memo = format!("membership invoice {} refunded (member {})", inv.id, m.id);
    book_cash(
        &mut tx,
        &period,
        TransactionKind::Reversal,
        &inv,
        -inv.amount_minor,
        memo,
        now,
    )
    .await?;
    let lines = tx.invoice_commissions(invoice_id).await?;
    for earned in lines.iter().filter(|l| l.status == "earned") {
        if lines
            .iter()
            .any(|l| l.status == "reversed" && l.unit == earned.unit)
        {
            continue;
        }
        let id = tx
            .post(
                &NewTransaction {
                    period: &period,
                    kind: TransactionKind::Reversal,
                    affiliate_id: Some(earned.affiliate_id),
                    booking_ref: None,
                    invoice_ref: Some(inv.id),
                    memo: format!(
                        "membership commission clawed back: invoice {} refunded",
                        inv.id
                    ),
                    postings: accrual(earned.affiliate_id, &earned.unit, -earned.amount_minor)
                        .to_vec(),
                },
                now,
            )
            .await?;
        tx.add_member_commission(
            &NewMemberCommission {
                member_id: m.id,
                invoice_id: inv.id,
                affiliate_id: earned.affiliate_id,
                status: "reversed",
                unit: &earned.unit,
                amount_minor: -earned.amount_minor,
                basis_minor: earned.basis_minor,
                rule: &earned.rule,
                month: &period,
                transaction_id: id,
            },
            now,
        )
        .await?;
    }
    finish(tx, invoice_id, true).await
}

//! Ledger writes: the one writer of a [`Decision`], for a webhook and for a review
//! verdict alike, and the accounts a commission moves between.
//!
//! Conventions: a posting's amount is positive for a debit and negative for a credit,
//! and a transaction's postings sum to zero per unit (the database refuses anything
//! else, migration 0005). A commission debits the program's source account (expense,
//! credit pool or voucher pool, by unit) and credits the partner's `partner_payable`;
//! what the program owes a partner is minus that account's balance. Corrections never
//! reopen a closed month: they land in the first open one.

use crate::money::policy::{Decision, FIRST_DECISIONS, Lines, Write};
use crate::rewards::catalogue::RewardsConfig;
use crate::store::StoreError;
use crate::store::ledger::{NewTransaction, Posting};
use crate::store::money::{Booking, CommissionLine, MoneyTx, NewCommission};
use crate::store::vocab::{Account, CommissionStatus, TransactionKind};

/// The account a reward unit is drawn from.
pub fn source_account(unit: &str) -> Account {
    if unit.starts_with("credit:") {
        Account::CreditPool
    } else if unit.starts_with("voucher:") {
        Account::VoucherPool
    } else {
        Account::CommissionExpense
    }
}

/// The account a paid payout leaves through.
pub fn settlement_account(unit: &str) -> Account {
    if unit.starts_with("credit:") {
        Account::CreditIssued
    } else if unit.starts_with("voucher:") {
        Account::VouchersIssued
    } else {
        Account::Cash
    }
}

/// The month after `YYYY-MM`.
pub fn next_month(period: &str) -> String {
    match tapkit_core::date::parse_month(period) {
        Some((_, next)) => tapkit_core::date::month_of_ms(next),
        None => period.to_owned(),
    }
}

/// The period a transaction dated in `month` lands in, given the last closed one: that
/// month, or the first month after the last closed one.
pub fn period_for(month: &str, last_closed: Option<&str>) -> String {
    match last_closed {
        Some(closed) if closed >= month => next_month(closed),
        _ => month.to_owned(),
    }
}

/// The two postings of a commission of `amount` (negative: its reversal).
pub fn accrual(affiliate_id: i64, unit: &str, amount: i64) -> [Posting; 2] {
    [
        Posting {
            account: source_account(unit),
            affiliate_id: None,
            unit: unit.to_owned(),
            amount_minor: amount,
        },
        Posting {
            account: Account::PartnerPayable,
            affiliate_id: Some(affiliate_id),
            unit: unit.to_owned(),
            amount_minor: -amount,
        },
    ]
}

/// Writes a decision about booking `b`, inside the money transaction that loaded its
/// facts. `event_ref` is the event that caused it (none for a review verdict). Returns
/// the codes of the rewards it issued (with `rewards` configured).
pub async fn apply(
    tx: &mut MoneyTx,
    b: &Booking,
    d: &Decision,
    event_ref: Option<i64>,
    rewards: Option<&RewardsConfig>,
    occurred_at: i64,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let Some(aff) = b.affiliate_id else {
        return Ok(Vec::new());
    };
    if let Some(ip) = &d.remember_ip {
        tx.add_affiliate_ip(aff, ip, now).await?;
    }
    if d.takes_sequence {
        tx.next_in_sequence(FIRST_DECISIONS).await?;
    }
    match &d.write {
        Write::Nothing => Ok(Vec::new()),
        Write::Lines(l) => {
            let earned = write_lines(tx, b, aff, l, event_ref, now).await?;
            // With rewards configured, credit and vouchers go to the referrer at once.
            match (rewards, &l.accrual) {
                (Some(cfg), Some((_, month))) if !earned.is_empty() => {
                    crate::rewards::ledger::issue(tx, cfg, b, aff, &earned, month, now).await
                }
                _ => Ok(Vec::new()),
            }
        }
        Write::Reverse(state) => {
            reverse(tx, b, aff, state, event_ref, occurred_at, now).await?;
            let month = tapkit_core::date::month_of_ms(occurred_at);
            crate::rewards::ledger::take_back(tx, b, &month, now).await?;
            Ok(Vec::new())
        }
    }
}

async fn write_lines(
    tx: &mut MoneyTx,
    b: &Booking,
    aff: i64,
    l: &Lines,
    event_ref: Option<i64>,
    now: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    if let Some(reason) = l.review {
        tx.add_review(b.id, reason, now).await?;
    }
    let blank = |status, unit, month, reason| NewCommission {
        booking_ref: b.id,
        event_ref,
        affiliate_id: aff,
        status,
        unit,
        amount_minor: 0,
        basis_minor: None,
        tier: None,
        rule: None,
        month,
        payable_at: None,
        transaction_id: None,
        reason,
    };
    let month = l.lines.first().map_or("", |x| x.month.as_str());
    for unit in &l.close_pending {
        let closed = blank(
            CommissionStatus::Reversed,
            unit,
            month,
            Some("repriced when earned"),
        );
        tx.add_commission(&closed, now).await?;
    }
    let txn = match &l.accrual {
        Some((rule, month)) => {
            let period = period_for(month, tx.last_closed().await?.as_deref());
            let postings = l
                .lines
                .iter()
                .flat_map(|x| accrual(aff, &x.unit, x.amount_minor))
                .collect();
            let t = NewTransaction {
                period: &period,
                kind: TransactionKind::Accrual,
                affiliate_id: Some(aff),
                booking_ref: Some(b.id),
                invoice_ref: None,
                memo: format!("commission ({rule}) on booking {}", b.booking_id),
                postings,
            };
            Some(tx.post(&t, now).await?)
        }
        None => None,
    };
    for x in &l.lines {
        let line = NewCommission {
            amount_minor: x.amount_minor,
            basis_minor: x.basis_minor,
            tier: x.tier.as_deref(),
            rule: x.rule.as_deref(),
            payable_at: l.payable_at,
            transaction_id: txn,
            ..blank(l.status, &x.unit, &x.month, l.reason.as_deref())
        };
        tx.add_commission(&line, now).await?;
    }
    // What went on the ledger as earned: the units a reward may be issued in.
    Ok(match (l.status, txn) {
        (CommissionStatus::Earned, Some(_)) => l
            .lines
            .iter()
            .map(|x| (x.unit.clone(), x.amount_minor))
            .collect(),
        _ => Vec::new(),
    })
}

async fn reverse(
    tx: &mut MoneyTx,
    b: &Booking,
    aff: i64,
    state: &[CommissionLine],
    event_ref: Option<i64>,
    occurred_at: i64,
    now: i64,
) -> Result<(), StoreError> {
    let month = tapkit_core::date::month_of_ms(occurred_at);
    let earned = |l: &CommissionLine| l.status == CommissionStatus::Earned;
    let txn = if state.iter().any(earned) {
        let period = period_for(&month, tx.last_closed().await?.as_deref());
        let postings = state
            .iter()
            .filter(|l| earned(l))
            .flat_map(|l| accrual(aff, &l.unit, -l.amount_minor))
            .collect();
        let t = NewTransaction {
            period: &period,
            kind: TransactionKind::Reversal,
            affiliate_id: Some(aff),
            booking_ref: Some(b.id),
            invoice_ref: None,
            memo: format!("refund of booking {}: commission reversed", b.booking_id),
            postings,
        };
        Some(tx.post(&t, now).await?)
    } else {
        None
    };
    for l in state {
        let line = NewCommission {
            booking_ref: b.id,
            event_ref,
            affiliate_id: aff,
            status: CommissionStatus::Reversed,
            unit: &l.unit,
            amount_minor: if earned(l) { -l.amount_minor } else { 0 },
            basis_minor: None,
            tier: None,
            rule: None,
            month: &month,
            payable_at: None,
            transaction_id: if earned(l) { txn } else { None },
            reason: Some(if earned(l) {
                "refunded after it was earned"
            } else {
                "refunded before it was earned"
            }),
        };
        tx.add_commission(&line, now).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_periods() {
        assert_eq!(next_month("2026-11"), "2026-12");
        assert_eq!(next_month("2026-12"), "2027-01");
        assert_eq!(source_account("USD"), Account::CommissionExpense);
        assert_eq!(source_account("credit:USD"), Account::CreditPool);
        assert_eq!(settlement_account("voucher:x"), Account::VouchersIssued);
        assert_eq!(period_for("2026-10", None), "2026-10");
        assert_eq!(period_for("2026-10", Some("2026-09")), "2026-10");
        assert_eq!(period_for("2026-10", Some("2026-10")), "2026-11");
        assert_eq!(period_for("2026-08", Some("2026-10")), "2026-11");
    }

    #[test]
    fn an_accrual_balances_and_its_reversal_undoes_it() {
        let [a, b] = accrual(7, "credit:USD", 500);
        assert_eq!((a.account, a.amount_minor), (Account::CreditPool, 500));
        assert_eq!(
            (b.account, b.affiliate_id, b.amount_minor),
            (Account::PartnerPayable, Some(7), -500)
        );
        let [c, d] = accrual(7, "credit:USD", -500);
        assert_eq!(a.amount_minor + c.amount_minor, 0);
        assert_eq!(b.amount_minor + d.amount_minor, 0);
    }
}

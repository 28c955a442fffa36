//! Every movement of a reward, on the ledger and on its row, inside the money
//! transaction of the event that causes it:
//!
//! | movement | when | postings (debit +, credit −) |
//! |---|---|---|
//! | issue | a credit or voucher commission is earned | `partner_payable` + / `rewards_outstanding` − |
//! | take back | the booking it was earned on is refunded | `rewards_outstanding` + / `partner_payable` − (what is left) |
//! | redeem | the checkout uses it | `rewards_outstanding` (friend: `friend_offers`) + / `rewards_redeemed` − |
//! | reverse | the booking it was used on is refunded | `rewards_redeemed` + / back where it came from − |
//! | expire | its day passes unused | `rewards_outstanding` + / `rewards_expired` − |
//!
//! The row's balance and the ledger move together or not at all, and the balance only
//! moves from the value just read (the money lock makes that value current).

use crate::money::posting::period_for;
use crate::rewards::catalogue::{FRIEND_OFFER_UNIT, RewardsConfig, Terms};
use crate::store::StoreError;
use crate::store::ledger::{NewTransaction, Posting};
use crate::store::money::{Booking, MoneyTx};
use crate::store::rewards::{NewReward, Redemption, Reward};
use crate::store::vocab::{Account, TransactionKind};

const DAY_MS: i64 = 86_400_000;

/// A new reward code: `RW-` and 13 characters of Crockford base32 (65 random bits),
/// easy to read aloud and to type at a till.
pub fn new_code() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut b = [0u8; 9];
    // getrandom only fails when the OS has no entropy source at all; the code is then
    // still unique (checked before it is written), only guessable.
    let _ = getrandom::fill(&mut b);
    let mut n = u128::from_le_bytes({
        let mut w = [0u8; 16];
        w[..9].copy_from_slice(&b);
        w
    });
    let mut s = String::from("RW-");
    for _ in 0..13 {
        s.push(char::from(ALPHABET[(n % 32) as usize]));
        n /= 32;
    }
    s
}

/// How a code a person typed is stored: trimmed, upper case, `O`/`I`/`L` read as the
/// digits they are mistaken for.
pub fn normalise_code(raw: &str) -> String {
    raw.trim()
        .chars()
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect()
}

fn pair(
    debit: Account,
    debit_aff: Option<i64>,
    credit: Account,
    credit_aff: Option<i64>,
    unit: &str,
    amount: i64,
) -> Vec<Posting> {
    vec![
        Posting {
            account: debit,
            affiliate_id: debit_aff,
            unit: unit.to_owned(),
            amount_minor: amount,
        },
        Posting {
            account: credit,
            affiliate_id: credit_aff,
            unit: unit.to_owned(),
            amount_minor: -amount,
        },
    ]
}

/// Writes a transaction dated in `month` (or the first open month after it).
async fn post(
    tx: &mut MoneyTx,
    month: &str,
    kind: TransactionKind,
    (affiliate_id, booking_ref): (Option<i64>, Option<i64>),
    memo: String,
    postings: Vec<Posting>,
    now: i64,
) -> Result<i64, StoreError> {
    let period = period_for(month, tx.last_closed().await?.as_deref());
    let t = NewTransaction {
        period: &period,
        kind,
        affiliate_id,
        booking_ref,
        invoice_ref: None,
        memo,
        postings,
    };
    tx.post(&t, now).await
}

async fn unique_code(tx: &mut MoneyTx) -> Result<String, StoreError> {
    for _ in 0..16 {
        let code = new_code();
        if !tx.reward_code_taken(&code).await? {
            return Ok(code);
        }
    }
    Err(StoreError::CodeSpace)
}

/// Issues the rewards of an earned commission at once: one credit balance per credit
/// line, one voucher per voucher counted. Cash lines are left to month close.
pub async fn issue(
    tx: &mut MoneyTx,
    cfg: &RewardsConfig,
    b: &Booking,
    aff: i64,
    lines: &[(String, i64)],
    month: &str,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let mut codes = Vec::new();
    let expires_at = now.saturating_add(i64::from(cfg.expires_days) * DAY_MS);
    for (unit, amount) in lines {
        let Some(terms) = cfg.terms(unit, *amount) else {
            continue;
        };
        if *amount <= 0 {
            continue;
        }
        // A credit is one balance; vouchers are one reward each.
        let (count, each) = if unit.starts_with("credit:") {
            (1, *amount)
        } else {
            (*amount, 1)
        };
        // In the accrual's month, so month close sees it earned and issued together.
        let txn = post(
            tx,
            month,
            TransactionKind::Settlement,
            (Some(aff), Some(b.id)),
            format!("reward issued for booking {}", b.booking_id),
            pair(
                Account::PartnerPayable,
                Some(aff),
                Account::RewardsOutstanding,
                Some(aff),
                unit,
                *amount,
            ),
            now,
        )
        .await?;
        for _ in 0..count {
            let code = unique_code(tx).await?;
            tx.add_reward(
                &NewReward {
                    code: &code,
                    affiliate_id: Some(aff),
                    click_id: None,
                    booking_ref: Some(b.id),
                    unit,
                    terms: &terms,
                    issued_minor: each,
                    expires_at,
                    transaction_id: Some(txn),
                },
                now,
            )
            .await?;
            codes.push(code);
        }
    }
    Ok(codes)
}

/// Takes back what is left of the rewards issued on a refunded booking (what was already
/// redeemed stays redeemed: the partner's balance then owes it, as with cash paid out).
pub async fn take_back(
    tx: &mut MoneyTx,
    b: &Booking,
    month: &str,
    now: i64,
) -> Result<(), StoreError> {
    for r in tx.open_rewards_of_booking(b.id).await? {
        let left = r.balance;
        if !tx.close_reward(r.id, "refunded", now).await? || left == 0 {
            continue;
        }
        post(
            tx,
            month,
            TransactionKind::Settlement,
            (r.affiliate_id, Some(b.id)),
            format!(
                "reward {} taken back: booking {} refunded",
                r.code, b.booking_id
            ),
            pair(
                Account::RewardsOutstanding,
                r.affiliate_id,
                Account::PartnerPayable,
                r.affiliate_id,
                &r.unit,
                left,
            ),
            now,
        )
        .await?;
    }
    Ok(())
}

/// The friend's offer on a click, written the first time the checkout redeems it.
pub async fn friend_offer(
    tx: &mut MoneyTx,
    click_id: i64,
    terms: &Terms,
    expires_at: i64,
    now: i64,
) -> Result<Reward, StoreError> {
    if let Some(r) = tx.reward_of_click(click_id).await? {
        return Ok(r);
    }
    let code = unique_code(tx).await?;
    tx.add_reward(
        &NewReward {
            code: &code,
            affiliate_id: None,
            click_id: Some(click_id),
            booking_ref: None,
            unit: FRIEND_OFFER_UNIT,
            terms,
            issued_minor: 1,
            expires_at,
            transaction_id: None,
        },
        now,
    )
    .await?;
    tx.reward_of_click(click_id)
        .await?
        .ok_or(StoreError::NotFound("reward"))
}

/// Where a reward's units come from and go back to.
fn source(r: &Reward) -> (Account, Option<i64>) {
    match r.affiliate_id {
        Some(a) => (Account::RewardsOutstanding, Some(a)),
        None => (Account::FriendOffers, None),
    }
}

/// Uses `units` of a reward read with `r.balance` on a booking. False if its balance
/// moved since it was read (nothing written).
pub async fn redeem(
    tx: &mut MoneyTx,
    r: &Reward,
    use_: &Redemption,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    if !tx.move_reward_balance(r.id, r.balance, -use_.units).await? {
        return Ok(None);
    }
    let (from, aff) = source(r);
    let txn = post(
        tx,
        &tapkit_core::date::month_of_ms(now),
        TransactionKind::Settlement,
        (r.affiliate_id, None),
        format!("reward {} redeemed on booking {}", r.code, use_.booking_id),
        pair(
            from,
            aff,
            Account::RewardsRedeemed,
            None,
            &r.unit,
            use_.units,
        ),
        now,
    )
    .await?;
    Ok(Some(tx.add_redemption(use_, txn).await?))
}

/// Reverses every use of a reward on a refunded booking of the brand's: the units go
/// back to the reward's balance (or, if it has closed since, to where it closed to).
pub async fn reverse_uses(
    tx: &mut MoneyTx,
    booking_id: &str,
    now: i64,
) -> Result<usize, StoreError> {
    let uses = tx.live_redemptions_on(booking_id).await?;
    for (d, r) in &uses {
        // Back to the balance; or, if the reward closed since, to where it closed to.
        let (back, aff) = match (r.closed_reason.as_deref(), r.affiliate_id) {
            (_, None) => (Account::FriendOffers, None),
            (None, aff) => (Account::RewardsOutstanding, aff),
            (Some("expired"), _) => (Account::RewardsExpired, None),
            (Some(_), aff) => (Account::PartnerPayable, aff),
        };
        let txn = post(
            tx,
            &tapkit_core::date::month_of_ms(now),
            TransactionKind::Reversal,
            (r.affiliate_id, None),
            format!("refund of booking {booking_id}: reward {} restored", r.code),
            pair(Account::RewardsRedeemed, None, back, aff, &r.unit, d.units),
            now,
        )
        .await?;
        if r.closed_at.is_none() {
            let now_balance = tx.reward_by_code(&r.code).await?.map_or(0, |x| x.balance);
            tx.move_reward_balance(r.id, now_balance, d.units).await?;
        }
        tx.reverse_redemption(d.id, txn, now).await?;
    }
    Ok(uses.len())
}

/// Closes a reward past its expiry, moving what is left to `rewards_expired`. False if
/// it was already closed.
pub async fn expire(tx: &mut MoneyTx, r: &Reward, now: i64) -> Result<bool, StoreError> {
    if !tx.close_reward(r.id, "expired", now).await? {
        return Ok(false);
    }
    if r.balance > 0 && r.affiliate_id.is_some() {
        let (from, aff) = source(r);
        post(
            tx,
            &tapkit_core::date::month_of_ms(now),
            TransactionKind::Settlement,
            (r.affiliate_id, None),
            format!("reward {} expired unused", r.code),
            pair(from, aff, Account::RewardsExpired, None, &r.unit, r.balance),
            now,
        )
        .await?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_readable_and_typed_codes_normalise() {
        let c = new_code();
        assert_eq!(c.len(), 16, "{c}");
        assert!(c.starts_with("RW-"));
        assert!(
            c[3..]
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        );
        assert!(!c[3..].contains(['I', 'L', 'O', 'U']), "{c}");
        assert_ne!(new_code(), new_code());
        assert_eq!(normalise_code(" rw-abc0io1l "), "RW-ABC01011");
    }
}

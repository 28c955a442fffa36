//! The commission decision, pure: an event and the facts loaded about its booking go in,
//! a [`Decision`] comes out; [`crate::money::posting`] writes it. Nothing here reads the
//! store or the clock, so every rule is a row of a table test below.
//!
//! The order of the checks is the policy:
//! 1. an unattributed booking earns nothing;
//! 2. a refused or reversed commission stays so; a refund reverses what there is;
//! 3. an earned booking earns once (each lead action is its own step), a held one waits
//!    for its review;
//! 4. self-referral, a suspended affiliate, a killed channel and a first event too soon
//!    after the click are refused;
//! 5. a booking earns when paid **and** serviced (paid alone is pending; serviced alone
//!    waits for the payment), a lead or purchase when it arrives; the program's rules
//!    price it at the affiliate's tier;
//! 6. a booking's first decision may be held for review by the fraud rules.

use serde::Serialize;
use tapkit_core::date::month_of_ms;

use crate::config::ProgramConfig;
use crate::money::rules::{Conversion, On};
use crate::money::wire::{Event, Kind};
use crate::store::money::{AffiliateMoney, Booking, CommissionLine};
use crate::store::vocab::{CommissionStatus, ConversionOutcome, HoldReason, RefusalReason};

/// Name of the sequence that numbers first decisions (the every-Nth review sample).
pub const FIRST_DECISIONS: &str = "first_decisions";

/// What is known about an attributed booking when one of its events arrives, loaded
/// once before deciding ([`crate::money::conversions`]).
#[derive(Debug, Clone)]
pub struct Facts {
    /// The booking's current commission lines: the latest line of each unit.
    pub state: Vec<CommissionLine>,
    /// The kinds of event the booking took before this one.
    pub kinds: Vec<Kind>,
    /// The affiliate it is attributed to.
    pub affiliate: AffiliateMoney,
    /// Whether the click's channel is switched off for the affiliate or the program.
    pub channel_killed: bool,
    /// The amount of the booking's `booking_paid` event, if it had one.
    pub paid_amount: Option<i64>,
    /// Distinct bookings the affiliate earned on before this one, in the program's tier
    /// window (the event's month, or ever).
    pub referrals_in_month: u32,
    /// Whether the customer converted before (on another booking of the same kind).
    pub converted_before: bool,
    /// What the fraud rules look at.
    pub fraud: FraudFacts,
}

/// What the fraud rules look at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FraudFacts {
    /// The click's hashed IP is one the affiliate itself used.
    pub ip_is_affiliates: bool,
    /// Attributed bookings from the click's hashed IP in the last day.
    pub bookings_from_ip: i64,
    /// Bookings of the affiliate from the customer's email domain in the last day.
    pub events_from_domain: i64,
    /// The number this booking's first decision takes in [`FIRST_DECISIONS`].
    pub sequence_number: i64,
    /// The affiliate signed up at `/refer` and has neither a booking of its own (by its
    /// customer id) nor an earned referral yet.
    pub unproven_referrer: bool,
}

/// A commission line to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLine {
    /// Unit.
    pub unit: String,
    /// Amount (0 for refused lines).
    pub amount_minor: i64,
    /// The conversion amount it was computed from.
    pub basis_minor: Option<i64>,
    /// Tier at the time.
    pub tier: Option<String>,
    /// Rule name.
    pub rule: Option<String>,
    /// Month it counts in.
    pub month: String,
}

/// Commission lines of one status, written together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lines {
    /// Their status.
    pub status: CommissionStatus,
    /// One per unit.
    pub lines: Vec<NewLine>,
    /// When earned: the rule and month of the ledger accrual (its postings are the
    /// lines' amounts).
    pub accrual: Option<(String, String)>,
    /// When earned: when the lines may be paid out.
    pub payable_at: Option<i64>,
    /// Why (hold reason, review verdict …).
    pub reason: Option<String>,
    /// Opens a review with this reason.
    pub review: Option<HoldReason>,
    /// Pending units that the earned price no longer has: closed at zero first.
    pub close_pending: Vec<String>,
}

/// What to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Nothing changes in the commission log.
    Nothing,
    /// New lines (pending, held, earned or refused).
    Lines(Lines),
    /// A refund: reverse what was earned (on the ledger) and close what was not.
    Reverse(Vec<CommissionLine>),
}

/// An amount in the webhook's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AmountOut {
    /// Unit.
    pub unit: String,
    /// Minor units.
    pub amount_minor: i64,
}

/// What an event does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The event's outcome.
    pub outcome: ConversionOutcome,
    /// Why.
    pub reason: Option<String>,
    /// The commission lines to write.
    pub write: Write,
    /// The amounts the answer reports (earned, pending, held, reversed).
    pub amounts: Vec<AmountOut>,
    /// Remember this hashed IP as the affiliate's own (a self-referral's click).
    pub remember_ip: Option<String>,
    /// This decision takes its number in [`FIRST_DECISIONS`].
    pub takes_sequence: bool,
}

impl Decision {
    fn record(outcome: ConversionOutcome, reason: Option<String>) -> Self {
        Self {
            outcome,
            reason,
            write: Write::Nothing,
            amounts: Vec::new(),
            remember_ip: None,
            takes_sequence: false,
        }
    }

    fn recorded(reason: impl Into<String>) -> Self {
        Self::record(ConversionOutcome::Recorded, Some(reason.into()))
    }

    /// Refused: one line at zero per unit the booking has (or the program's currency).
    fn refuse(reason: String, state: &[CommissionLine], currency: &str, month: &str) -> Self {
        let units: Vec<String> = if state.is_empty() {
            vec![currency.to_owned()]
        } else {
            state.iter().map(|l| l.unit.clone()).collect()
        };
        Self {
            write: Write::Lines(Lines {
                status: CommissionStatus::Refused,
                lines: units
                    .into_iter()
                    .map(|unit| NewLine {
                        unit,
                        amount_minor: 0,
                        basis_minor: None,
                        tier: None,
                        rule: None,
                        month: month.to_owned(),
                    })
                    .collect(),
                accrual: None,
                payable_at: None,
                reason: Some(reason.clone()),
                review: None,
                close_pending: Vec::new(),
            }),
            ..Self::record(ConversionOutcome::Refused, Some(reason))
        }
    }
}

/// Decides what an event does to its booking's commission. `facts` is `None` exactly
/// when the booking is attributed to nobody.
pub fn decide(ev: &Event, b: &Booking, facts: Option<&Facts>, p: &ProgramConfig) -> Decision {
    let (Some(f), Some(click_at)) = (facts, b.click_at) else {
        return Decision::record(
            ConversionOutcome::Unattributed,
            b.reason.map(|r| r.as_str().to_owned()),
        );
    };
    let month = month_of_ms(ev.occurred_at);
    let currency = &p.commission.currency;
    let current = f.state.last().map(|l| l.status);
    if let Some(st @ (CommissionStatus::Refused | CommissionStatus::Reversed)) = current {
        return Decision::recorded(format!("the booking's commission is already {st}"));
    }
    if ev.kind == Kind::BookingRefunded {
        if current.is_none() {
            return Decision::recorded("nothing to reverse");
        }
        let amounts = f
            .state
            .iter()
            .filter(|l| l.status == CommissionStatus::Earned && l.amount_minor != 0)
            .map(|l| AmountOut {
                unit: l.unit.clone(),
                amount_minor: -l.amount_minor,
            })
            .collect();
        return Decision {
            write: Write::Reverse(f.state.clone()),
            amounts,
            ..Decision::record(ConversionOutcome::Reversed, Some("refunded".into()))
        };
    }
    match current {
        // Each lead action (sign-up, quote request …) is its own step and earns on its own.
        Some(CommissionStatus::Earned) if ev.kind != Kind::Lead => {
            return Decision::recorded("already earned");
        }
        Some(CommissionStatus::Held) => {
            return Decision::record(
                ConversionOutcome::Held,
                Some("the booking awaits a review decision".into()),
            );
        }
        _ => {}
    }
    let a = &f.affiliate;
    // Self-referral: the paying customer is the affiliate.
    let same = |x: &Option<String>, y: &Option<String>| x.is_some() && x == y;
    if same(&ev.customer_id, &a.customer_id)
        || same(&b.customer_id, &a.customer_id)
        || same(&ev.email_sha256, &a.email_sha256)
        || same(&ev.phone_sha256, &a.phone_sha256)
    {
        return Decision {
            remember_ip: b.click_ip_hash.clone(),
            ..refused(RefusalReason::SelfReferral, f, currency, &month)
        };
    }
    if a.status != "active" {
        return refused(RefusalReason::AffiliateSuspended, f, currency, &month);
    }
    if b.channel.is_some() && f.channel_killed {
        return refused(RefusalReason::ChannelKilled, f, currency, &month);
    }
    if f.kinds.is_empty() && ev.occurred_at - click_at < p.fraud.min_seconds_after_click * 1000 {
        return refused(RefusalReason::TooFastAfterClick, f, currency, &month);
    }
    let has = |k: Kind| f.kinds.contains(&k);
    let (on, earn, basis) = match ev.kind {
        Kind::Lead => (On::Lead, true, ev.amount_minor),
        Kind::Purchase => (On::Purchase, true, ev.amount_minor),
        Kind::BookingPaid => (On::Booking, has(Kind::BookingServiced), ev.amount_minor),
        Kind::BookingServiced if !has(Kind::BookingPaid) => {
            return Decision::record(
                ConversionOutcome::AwaitingPayment,
                Some("earned once the booking is also paid".into()),
            );
        }
        Kind::BookingServiced => (On::Booking, true, f.paid_amount),
        Kind::BookingRefunded => unreachable!("refunds are decided above"),
    };
    let c = &p.commission;
    let tier = c
        .tier(a.tier.as_deref(), f.referrals_in_month.saturating_add(1))
        .map(str::to_owned);
    let first = !f.converted_before;
    let priced = match c.price(&Conversion {
        on,
        action: ev.action.as_deref(),
        affiliate_kind: &a.kind,
        tier: tier.as_deref(),
        amount_minor: basis,
        first_for_customer: first,
    }) {
        Ok(Some(p)) if !p.amounts.is_empty() => p,
        Ok(_) => {
            return Decision::record(
                ConversionOutcome::NoCommission,
                Some(if first {
                    "no rule of the program pays for this".into()
                } else {
                    "the program pays on a customer's first conversion only".into()
                }),
            );
        }
        Err(e) => {
            return Decision::refuse(format!("amount_required: {e}"), &f.state, currency, &month);
        }
    };
    // Only a booking's first decision may be held; every first decision takes a number
    // for the review sample, whichever rule holds it.
    let first_decision = current.is_none();
    let hold = first_decision.then(|| fraud_hold(ev, b, f, p)).flatten();
    let (outcome, status) = match (hold, earn) {
        (Some(_), _) => (ConversionOutcome::Held, CommissionStatus::Held),
        (None, true) => (ConversionOutcome::Earned, CommissionStatus::Earned),
        (None, false) => (ConversionOutcome::Pending, CommissionStatus::Pending),
    };
    let earned = status == CommissionStatus::Earned;
    let close_pending = if earned {
        // Earning re-prices a pending booking (the tier may have moved since it was
        // paid); a pending unit that no longer applies is closed at zero.
        f.state
            .iter()
            .filter(|old| {
                old.status == CommissionStatus::Pending
                    && !priced.amounts.iter().any(|a| a.unit == old.unit)
            })
            .map(|old| old.unit.clone())
            .collect()
    } else {
        Vec::new()
    };
    let holding_ms = i64::from(c.holding_days) * 86_400_000;
    Decision {
        outcome,
        reason: hold.map(|h| h.as_str().to_owned()),
        amounts: priced
            .amounts
            .iter()
            .map(|a| AmountOut {
                unit: a.unit.clone(),
                amount_minor: a.amount_minor,
            })
            .collect(),
        write: Write::Lines(Lines {
            status,
            lines: priced
                .amounts
                .iter()
                .map(|a| NewLine {
                    unit: a.unit.clone(),
                    amount_minor: a.amount_minor,
                    basis_minor: basis,
                    tier: tier.clone(),
                    rule: Some(priced.rule.clone()),
                    month: month.clone(),
                })
                .collect(),
            accrual: earned.then(|| (priced.rule.clone(), month.clone())),
            payable_at: earned.then_some(ev.occurred_at + holding_ms),
            reason: hold.map(|h| h.as_str().to_owned()),
            review: hold,
            close_pending,
        }),
        remember_ip: None,
        takes_sequence: first_decision,
    }
}

fn refused(r: RefusalReason, f: &Facts, currency: &str, month: &str) -> Decision {
    Decision::refuse(r.as_str().to_owned(), &f.state, currency, month)
}

/// The fraud rules that hold a booking's first commission for a review.
fn fraud_hold(ev: &Event, b: &Booking, f: &Facts, p: &ProgramConfig) -> Option<HoldReason> {
    let rules = &p.fraud;
    if f.fraud.unproven_referrer {
        return Some(HoldReason::ReferredBeforeBooking);
    }
    if b.click_ip_hash.is_some() {
        if f.fraud.ip_is_affiliates {
            return Some(HoldReason::SameIpAsAffiliate);
        }
        if rules.max_per_ip_per_day > 0
            && f.fraud.bookings_from_ip > i64::from(rules.max_per_ip_per_day)
        {
            return Some(HoldReason::IpBurst);
        }
    }
    if let Some(d) = &ev.email_domain
        && rules.max_per_email_domain_per_day > 0
        && !rules.webmail_domains.iter().any(|w| w == d)
        && f.fraud.events_from_domain >= i64::from(rules.max_per_email_domain_per_day)
    {
        return Some(HoldReason::EmailDomainBulk);
    }
    if rules.review_every > 0 && f.fraud.sequence_number % i64::from(rules.review_every) == 0 {
        return Some(HoldReason::ReviewSample);
    }
    None
}

/// What a conversion of this kind pays on, and the event kinds that count as the same
/// customer converting before.
pub fn converts_as(kind: Kind) -> &'static [Kind] {
    match kind {
        Kind::Lead => &[Kind::Lead],
        Kind::Purchase => &[Kind::Purchase],
        Kind::BookingPaid | Kind::BookingServiced | Kind::BookingRefunded => {
            &[Kind::BookingPaid, Kind::BookingServiced]
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::vocab::{BookingAttribution, UnattributedReason};

    const DAY: i64 = 86_400_000;
    const CLICK_AT: i64 = 1_800_000_000_000;

    /// A business program paying 10 % capped at 50.00 on bookings and 5.00 per lead,
    /// every 4th first decision sampled, at most 2 bookings per IP a day.
    fn program() -> ProgramConfig {
        let mut p = ProgramConfig {
            commission: toml::from_str(
                r#"
            currency = "USD"
            holding_days = 7
            [[rules]]
            name = "ten percent"
            on = "booking"
            rewards = [{ unit = "cash", percent_bp = 1000, cap_minor = 5000 }]
            [[rules]]
            name = "lead"
            on = "lead"
            rewards = [{ unit = "cash", fixed_minor = 500 }]
            "#,
            )
            .unwrap(),
            ..ProgramConfig::default()
        };
        p.fraud.min_seconds_after_click = 2;
        p.fraud.review_every = 4;
        p.fraud.max_per_ip_per_day = 2;
        p.fraud.max_per_email_domain_per_day = 3;
        p.fraud.webmail_domains = vec!["gmail.com".into()];
        p
    }

    fn event(kind: Kind, amount: Option<i64>) -> Event {
        Event {
            event_id: "e".into(),
            kind,
            action: None,
            booking_id: "b-1".into(),
            occurred_at: CLICK_AT + DAY,
            amount_minor: amount,
            currency: amount.map(|_| "USD".into()),
            customer_id: Some("cust-9".into()),
            email_sha256: None,
            phone_sha256: None,
            email_domain: None,
            attribution: None,
        }
    }

    fn booking() -> Booking {
        Booking {
            id: 11,
            booking_id: "b-1".into(),
            attribution: BookingAttribution::Attributed,
            reason: None,
            click_id: Some(5),
            affiliate_id: Some(3),
            channel: Some("nfc".into()),
            click_at: Some(CLICK_AT),
            click_ip_hash: Some("iphash".into()),
            customer_id: Some("cust-9".into()),
            stamped_at: CLICK_AT + DAY,
        }
    }

    fn line(status: CommissionStatus, unit: &str, amount: i64) -> CommissionLine {
        CommissionLine {
            id: 1,
            booking_ref: 11,
            affiliate_id: 3,
            status,
            unit: unit.into(),
            amount_minor: amount,
            basis_minor: Some(20_000),
            tier: None,
            rule: Some("ten percent".into()),
            month: "2027-01".into(),
            payable_at: None,
            transaction_id: None,
            reason: None,
            created_at: CLICK_AT,
        }
    }

    fn facts() -> Facts {
        Facts {
            state: Vec::new(),
            kinds: Vec::new(),
            affiliate: AffiliateMoney {
                kind: "business".into(),
                status: "active".into(),
                tier: None,
                customer_id: Some("owner-1".into()),
                email_sha256: None,
                phone_sha256: None,
            },
            channel_killed: false,
            paid_amount: None,
            referrals_in_month: 0,
            converted_before: false,
            fraud: FraudFacts {
                sequence_number: 1,
                ..FraudFacts::default()
            },
        }
    }

    /// What a decision comes to, in one comparable line.
    fn summary(d: &Decision) -> (ConversionOutcome, Option<String>, &'static str, Vec<i64>) {
        let write = match &d.write {
            Write::Nothing => "nothing",
            Write::Reverse(_) => "reverse",
            Write::Lines(l) => match (l.status, l.accrual.is_some()) {
                (CommissionStatus::Earned, true) => "earned+ledger",
                (CommissionStatus::Pending, false) => "pending",
                (CommissionStatus::Held, false) => "held",
                (CommissionStatus::Refused, false) => "refused",
                _ => "other",
            },
        };
        (
            d.outcome,
            d.reason.clone(),
            write,
            d.amounts.iter().map(|a| a.amount_minor).collect(),
        )
    }

    #[test]
    fn the_policy_table() {
        use CommissionStatus as S;
        use ConversionOutcome as O;
        let paid = |a| event(Kind::BookingPaid, Some(a));
        let serviced = event(Kind::BookingServiced, None);
        let refunded = event(Kind::BookingRefunded, None);
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            Event,
            Box<dyn Fn(&mut Facts)>,
            (O, Option<&str>, &str, Vec<i64>),
        )> = vec![
            (
                "paid alone is pending",
                paid(20_000),
                Box::new(|_| {}),
                (O::Pending, None, "pending", vec![2000]),
            ),
            (
                "paid after serviced earns",
                paid(20_000),
                Box::new(|f| f.kinds = vec![Kind::BookingServiced]),
                (O::Earned, None, "earned+ledger", vec![2000]),
            ),
            (
                "serviced after paid earns on the paid amount",
                serviced.clone(),
                Box::new(|f| {
                    f.kinds = vec![Kind::BookingPaid];
                    f.paid_amount = Some(90_000);
                    f.state = vec![line(S::Pending, "USD", 5000)];
                }),
                (O::Earned, None, "earned+ledger", vec![5000]),
            ),
            (
                "serviced alone waits for the payment",
                serviced.clone(),
                Box::new(|_| {}),
                (
                    O::AwaitingPayment,
                    Some("earned once the booking is also paid"),
                    "nothing",
                    vec![],
                ),
            ),
            (
                "a lead earns at once",
                event(Kind::Lead, None),
                Box::new(|_| {}),
                (O::Earned, None, "earned+ledger", vec![500]),
            ),
            (
                "self-referral by customer id",
                paid(20_000),
                Box::new(|f| f.affiliate.customer_id = Some("cust-9".into())),
                (O::Refused, Some("self_referral"), "refused", vec![]),
            ),
            (
                "suspended affiliate",
                paid(20_000),
                Box::new(|f| f.affiliate.status = "suspended".into()),
                (O::Refused, Some("affiliate_suspended"), "refused", vec![]),
            ),
            (
                "killed channel",
                paid(20_000),
                Box::new(|f| f.channel_killed = true),
                (O::Refused, Some("channel_killed"), "refused", vec![]),
            ),
            (
                "already earned",
                serviced.clone(),
                Box::new(|f| {
                    f.kinds = vec![Kind::BookingPaid];
                    f.state = vec![line(S::Earned, "USD", 2000)];
                }),
                (O::Recorded, Some("already earned"), "nothing", vec![]),
            ),
            (
                "held waits for its review",
                serviced.clone(),
                Box::new(|f| {
                    f.kinds = vec![Kind::BookingPaid];
                    f.state = vec![line(S::Held, "USD", 2000)];
                }),
                (
                    O::Held,
                    Some("the booking awaits a review decision"),
                    "nothing",
                    vec![],
                ),
            ),
            (
                "refused stays refused",
                paid(1),
                Box::new(|f| f.state = vec![line(S::Refused, "USD", 0)]),
                (
                    O::Recorded,
                    Some("the booking's commission is already refused"),
                    "nothing",
                    vec![],
                ),
            ),
            (
                "a refund reverses what was earned",
                refunded.clone(),
                Box::new(|f| f.state = vec![line(S::Earned, "USD", 2000)]),
                (O::Reversed, Some("refunded"), "reverse", vec![-2000]),
            ),
            (
                "a refund of a pending booking reverses nothing on the ledger",
                refunded.clone(),
                Box::new(|f| f.state = vec![line(S::Pending, "USD", 2000)]),
                (O::Reversed, Some("refunded"), "reverse", vec![]),
            ),
            (
                "a refund of nothing",
                refunded,
                Box::new(|_| {}),
                (O::Recorded, Some("nothing to reverse"), "nothing", vec![]),
            ),
            (
                "the cap holds",
                paid(900_000),
                Box::new(|_| {}),
                (O::Pending, None, "pending", vec![5000]),
            ),
            (
                "same IP as the affiliate is held",
                paid(20_000),
                Box::new(|f| f.fraud.ip_is_affiliates = true),
                (O::Held, Some("same_ip_as_affiliate"), "held", vec![2000]),
            ),
            (
                "an IP burst is held",
                paid(20_000),
                Box::new(|f| f.fraud.bookings_from_ip = 3),
                (O::Held, Some("ip_burst"), "held", vec![2000]),
            ),
            (
                "a referrer who signed up and never booked is held",
                paid(20_000),
                Box::new(|f| f.fraud.unproven_referrer = true),
                (O::Held, Some("referred_before_booking"), "held", vec![2000]),
            ),
            (
                "every 4th first decision is sampled",
                paid(20_000),
                Box::new(|f| f.fraud.sequence_number = 8),
                (O::Held, Some("review_sample"), "held", vec![2000]),
            ),
            (
                "only a first decision is held",
                paid(20_000),
                Box::new(|f| {
                    f.fraud.sequence_number = 8;
                    f.state = vec![line(S::Pending, "USD", 2000)];
                }),
                (O::Pending, None, "pending", vec![2000]),
            ),
        ];
        for (name, ev, tweak, want) in cases {
            let mut f = facts();
            tweak(&mut f);
            let d = decide(&ev, &booking(), Some(&f), &program());
            let got = summary(&d);
            let want = (want.0, want.1.map(str::to_owned), want.2, want.3);
            assert_eq!(got, want, "{name}");
            // Every first decision that is priced takes a number for the sample.
            let priced = matches!(&d.write, Write::Lines(l) if l.status != S::Refused);
            assert_eq!(d.takes_sequence, priced && f.state.is_empty(), "{name}");
        }
    }

    #[test]
    fn too_fast_and_unattributed() {
        let mut ev = event(Kind::BookingPaid, Some(100));
        ev.occurred_at = CLICK_AT + 1_999;
        let d = decide(&ev, &booking(), Some(&facts()), &program());
        assert_eq!(d.reason.as_deref(), Some("too_fast_after_click"));
        // A later event of the same booking is not "too fast".
        let mut f = facts();
        f.kinds = vec![Kind::BookingServiced];
        assert_eq!(
            decide(&ev, &booking(), Some(&f), &program()).outcome,
            ConversionOutcome::Earned
        );

        let mut b = booking();
        b.affiliate_id = None;
        b.click_at = None;
        b.attribution = BookingAttribution::None;
        b.reason = Some(UnattributedReason::AttributionExpired);
        let d = decide(&ev, &b, None, &program());
        assert_eq!(
            summary(&d),
            (
                ConversionOutcome::Unattributed,
                Some("attribution_expired".into()),
                "nothing",
                vec![]
            )
        );
    }

    #[test]
    fn a_self_referral_remembers_the_click_address_and_refuses_every_unit() {
        let mut f = facts();
        f.affiliate.customer_id = Some("cust-9".into());
        f.state = vec![
            line(CommissionStatus::Pending, "USD", 2000),
            line(CommissionStatus::Pending, "credit:USD", 100),
        ];
        let d = decide(
            &event(Kind::BookingServiced, None),
            &booking(),
            Some(&f),
            &program(),
        );
        assert_eq!(d.remember_ip.as_deref(), Some("iphash"));
        let Write::Lines(l) = d.write else {
            panic!("{d:?}")
        };
        let units: Vec<&str> = l.lines.iter().map(|x| x.unit.as_str()).collect();
        assert_eq!(units, ["USD", "credit:USD"]);
        assert!(l.lines.iter().all(|x| x.amount_minor == 0));
    }

    #[test]
    fn earning_closes_pending_units_the_price_no_longer_has() {
        let mut f = facts();
        f.kinds = vec![Kind::BookingPaid];
        f.paid_amount = Some(20_000);
        f.state = vec![line(CommissionStatus::Pending, "voucher:free-wash", 1)];
        let ev = event(Kind::BookingServiced, None);
        let d = decide(&ev, &booking(), Some(&f), &program());
        let Write::Lines(l) = d.write else {
            panic!("{d:?}")
        };
        assert_eq!(l.close_pending, ["voucher:free-wash"]);
        assert_eq!(l.payable_at, Some(ev.occurred_at + 7 * DAY));
        assert_eq!(l.accrual, Some(("ten percent".into(), "2027-01".into())));
    }
}

//! `POST /api/conversions`: signed webhooks from the brand's booking and payment system
//! turn attributed bookings into commissions.
//!
//! 1. Authenticity: `Tapkit-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
//!    with the program's webhook secret, compared in constant time, `t` within the
//!    tolerance window (replays of old deliveries fail).
//! 2. Idempotency: the event id, and the booking id with the event kind, are
//!    de-duplication keys; a duplicate changes nothing and answers 200.
//! 3. Attribution: the first event of a booking re-validates the token from the
//!    readable cookie (signature, click exists and was attributed, inside the attribution
//!    window) and stamps the booking once; later events use the stamp.
//! 4. Commission: earned when a booking is paid **and** serviced (paid alone is
//!    pending), or when a lead or purchase arrives; priced by the program's rules
//!    ([`crate::money::rules`]); posted to the double-entry ledger ([`crate::store::money`]).
//!    Refusals (self-referral, suspended affiliate or channel, too fast after the click)
//!    and fraud holds are recorded with their reason.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::Admin;
use crate::api::ApiError;
use crate::store::money::{
    Booking, CommissionLine, MoneyTx, NewCommission, NewEvent, NewTransaction, PARTNER, Posting,
    source_account,
};
use crate::money::rules::{Conversion, On, Priced};
use crate::money::wire::{Event, Kind, SIGNATURE_HEADER, parse_event, verify_signature};
use crate::store::{StoreError, now_ms};
use tapkit_core::date::month_of_ms;

/// What a delivery did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Processed {
    /// `processed` or `duplicate`.
    pub status: &'static str,
    /// The event id.
    pub event_id: String,
    /// The booking id.
    pub booking_id: String,
    /// `attributed` or `none` (the booking's stamp).
    pub attribution: Option<String>,
    /// The affiliate credited, if attributed.
    pub affiliate_id: Option<i64>,
    /// What happened: `pending`, `earned`, `held`, `refused`, `reversed`,
    /// `awaiting_payment`, `recorded`, `unattributed`, `no_commission`.
    pub outcome: String,
    /// Why (refusals, holds, no attribution).
    pub reason: Option<String>,
    /// Commission amounts this event wrote (earned, pending, held, reversed).
    pub amounts: Vec<AmountOut>,
}

/// An amount in a response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AmountOut {
    /// Unit.
    pub unit: String,
    /// Minor units.
    pub amount_minor: i64,
}

/// The webhook route.
pub async fn receive(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let Some(secret) = &s.config.webhook_secret else {
        return Err(ApiError::Unavailable(
            "conversion webhooks are not configured: set TAPKIT_WEBHOOK_SECRET (or TAPKIT_WEBHOOK_SECRET_FILE) and restart".into(),
        ));
    };
    let now = now_ms();
    verify_signature(
        headers
            .get(SIGNATURE_HEADER)
            .map(|v| v.to_str().unwrap_or("\u{0}")),
        &body,
        &secret.0,
        now.div_euclid(1000),
        s.config.program.webhook_tolerance_secs,
    )
    .map_err(|e| ApiError::Unauthenticated(e.to_string()))?;
    let ev = parse_event(&body, &s.config.program.commission.currency, now)?;
    let out = process(&s, &ev, now).await?;
    s.metrics.conversion(&out.outcome);
    tracing::info!(
        event_id = %out.event_id,
        booking_id = %out.booking_id,
        kind = ev.kind.as_str(),
        outcome = %out.outcome,
        reason = out.reason.as_deref().unwrap_or(""),
        "conversion"
    );
    Ok(Json(out))
}

enum Plan {
    /// Nothing changes in the commission log.
    Record(&'static str, Option<String>),
    /// Commission refused (lines with amount 0).
    Refuse(String),
    /// Pending (paid, not serviced) or earned, possibly held for review.
    Price {
        priced: Priced,
        tier: Option<String>,
        month: String,
        basis: Option<i64>,
        earn: bool,
        hold: Option<&'static str>,
    },
    /// A refund: reverse what was earned (ledger) or cancel what was pending / held.
    Reverse(Vec<CommissionLine>),
}

/// Processes one validated event (the whole of it in one money transaction).
pub async fn process(s: &AppState, ev: &Event, now: i64) -> Result<Processed, StoreError> {
    let pid = s.program.id;
    let duplicate = |b: Option<&Booking>, reason: &str| Processed {
        status: "duplicate",
        event_id: ev.event_id.clone(),
        booking_id: ev.booking_id.clone(),
        attribution: b.map(|b| b.attribution.clone()),
        affiliate_id: b.and_then(|b| b.affiliate_id),
        outcome: "duplicate".into(),
        reason: Some(reason.into()),
        amounts: Vec::new(),
    };
    // Fast path for redeliveries: no lock, no write.
    if s.store.event_seen(pid, &ev.event_id).await? {
        return Ok(duplicate(None, "event_id already processed"));
    }
    let mut tx = s.store.begin_money(pid).await?;
    if tx.event_seen(&ev.event_id).await? {
        return Ok(duplicate(None, "event_id already processed"));
    }
    let booking = match tx.booking(&ev.booking_id).await? {
        Some(b) => b,
        None => {
            let b = stamp(s, &mut tx, ev, now).await?;
            tx.stamp(&b).await?
        }
    };
    if tx
        .booking_event_seen(booking.id, ev.kind.as_str(), ev.action.as_deref())
        .await?
    {
        return Ok(duplicate(
            Some(&booking),
            "this booking already had an event of this kind",
        ));
    }
    let plan = plan(s, &mut tx, ev, &booking, now).await?;
    let (outcome, reason): (String, Option<String>) = match &plan {
        Plan::Record(o, r) => ((*o).into(), r.clone()),
        Plan::Refuse(r) => ("refused".into(), Some(r.clone())),
        Plan::Price { earn, hold, .. } => match hold {
            Some(h) => ("held".into(), Some((*h).into())),
            None if *earn => ("earned".into(), None),
            None => ("pending".into(), None),
        },
        Plan::Reverse(_) => ("reversed".into(), Some("refunded".into())),
    };
    let event_ref = tx
        .add_event(&NewEvent {
            event_id: &ev.event_id,
            kind: ev.kind.as_str(),
            action: ev.action.as_deref(),
            booking_ref: booking.id,
            occurred_at: ev.occurred_at,
            received_at: now,
            amount_minor: ev.amount_minor,
            currency: ev.currency.as_deref(),
            customer_id: ev.customer_id.as_deref(),
            email_domain: ev.email_domain.as_deref(),
            outcome: &outcome,
            reason: reason.as_deref(),
        })
        .await?;
    let amounts = apply(
        s,
        &mut tx,
        &booking,
        plan,
        Some(event_ref),
        ev.occurred_at,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Processed {
        status: "processed",
        event_id: ev.event_id.clone(),
        booking_id: ev.booking_id.clone(),
        attribution: Some(booking.attribution.clone()),
        affiliate_id: booking.affiliate_id,
        outcome,
        reason,
        amounts,
    })
}

/// Re-validates the token and builds the booking's stamp.
async fn stamp(
    s: &AppState,
    tx: &mut MoneyTx,
    ev: &Event,
    now: i64,
) -> Result<Booking, StoreError> {
    let mut b = Booking {
        id: 0,
        booking_id: ev.booking_id.clone(),
        attribution: "none".into(),
        reason: None,
        click_id: None,
        affiliate_id: None,
        channel: None,
        click_at: None,
        click_ip_hash: None,
        customer_id: ev.customer_id.clone(),
        stamped_at: now,
    };
    let reason = match &ev.attribution {
        None => "no_attribution_token",
        Some(t) => match s.keys.verify_attribution(t) {
            None => "forged_or_damaged_token",
            Some(a) => match tx.click(a.click_id).await? {
                None => "unknown_click",
                Some(c) if c.outcome != "attributed" || c.affiliate_id.is_none() => {
                    "click_not_attributed"
                }
                Some(c) if ev.occurred_at > c.at + s.program.cookie_days * 86_400_000 => {
                    "attribution_expired"
                }
                Some(c) => {
                    b.attribution = "attributed".into();
                    b.click_id = Some(a.click_id);
                    b.affiliate_id = c.affiliate_id;
                    b.channel = Some(c.channel);
                    b.click_at = Some(c.at);
                    b.click_ip_hash = Some(c.ip_hash);
                    return Ok(b);
                }
            },
        },
    };
    b.reason = Some(reason.into());
    Ok(b)
}

async fn plan(
    s: &AppState,
    tx: &mut MoneyTx,
    ev: &Event,
    b: &Booking,
    now: i64,
) -> Result<Plan, StoreError> {
    let (Some(aff_id), Some(click_at)) = (b.affiliate_id, b.click_at) else {
        return Ok(Plan::Record("unattributed", b.reason.clone()));
    };
    let state = tx.commission_state(b.id).await?;
    let status = state.last().map(|l| l.status.clone());
    if let Some(st @ ("refused" | "reversed")) = status.as_deref() {
        return Ok(Plan::Record(
            "recorded",
            Some(format!("the booking's commission is already {st}")),
        ));
    }
    let kinds = tx.booking_kinds(b.id).await?;
    let has = |k: &str| kinds.iter().any(|x| x == k);
    if ev.kind == Kind::BookingRefunded {
        return Ok(if status.is_some() {
            Plan::Reverse(state)
        } else {
            Plan::Record("recorded", Some("nothing to reverse".into()))
        });
    }
    match status.as_deref() {
        // Each lead action (sign-up, quote request …) is its own step and earns on its own.
        Some("earned") if ev.kind != Kind::Lead => {
            return Ok(Plan::Record("recorded", Some("already earned".into())));
        }
        Some("held") => {
            return Ok(Plan::Record(
                "held",
                Some("the booking awaits a review decision".into()),
            ));
        }
        _ => {}
    }
    let affiliate = tx.affiliate(aff_id).await?;
    // Self-referral: the paying customer is the affiliate.
    let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
    if same(&ev.customer_id, &affiliate.customer_id)
        || same(&b.customer_id, &affiliate.customer_id)
        || same(&ev.email_sha256, &affiliate.email_sha256)
        || same(&ev.phone_sha256, &affiliate.phone_sha256)
    {
        if let Some(ip) = &b.click_ip_hash {
            tx.add_affiliate_ip(aff_id, ip, now).await?;
        }
        return Ok(Plan::Refuse("self_referral".into()));
    }
    if affiliate.status != "active" {
        return Ok(Plan::Refuse("affiliate_suspended".into()));
    }
    if let Some(ch) = &b.channel
        && tx.channel_killed(aff_id, ch).await?
    {
        return Ok(Plan::Refuse("channel_killed".into()));
    }
    let min_gap = s.config.program.fraud.min_seconds_after_click * 1000;
    if kinds.is_empty() && ev.occurred_at - click_at < min_gap {
        return Ok(Plan::Refuse("too_fast_after_click".into()));
    }
    let (on, earn, basis) = match ev.kind {
        Kind::Lead => (On::Lead, true, ev.amount_minor),
        Kind::Purchase => (On::Purchase, true, ev.amount_minor),
        Kind::BookingPaid => (On::Booking, has("booking_serviced"), ev.amount_minor),
        Kind::BookingServiced => {
            if !has("booking_paid") {
                return Ok(Plan::Record(
                    "awaiting_payment",
                    Some("earned once the booking is also paid".into()),
                ));
            }
            (On::Booking, true, tx.paid_amount(b.id).await?)
        }
        Kind::BookingRefunded => unreachable!("handled above"),
    };
    let month = month_of_ms(ev.occurred_at);
    let commission = &s.config.program.commission;
    let referrals = tx
        .referrals_in_month(aff_id, &month)
        .await?
        .saturating_add(1);
    let tier = commission
        .tier(affiliate.tier.as_deref(), referrals)
        .map(str::to_owned);
    let customer = ev.customer_id.as_ref().or(b.customer_id.as_ref());
    let first = match customer {
        Some(c) => {
            let kinds: &[&str] = match on {
                On::Booking => &["booking_paid", "booking_serviced"],
                On::Lead => &["lead"],
                On::Purchase => &["purchase"],
            };
            !tx.customer_converted_before(c, b.id, kinds).await?
        }
        None => true,
    };
    let priced = commission.price(&Conversion {
        on,
        action: ev.action.as_deref(),
        affiliate_kind: &affiliate.kind,
        tier: tier.as_deref(),
        amount_minor: basis,
        first_for_customer: first,
    });
    let priced = match priced {
        Ok(Some(p)) if !p.amounts.is_empty() => p,
        Ok(_) => {
            return Ok(Plan::Record(
                "no_commission",
                Some(if first {
                    "no rule of the program pays for this".into()
                } else {
                    "the program pays on a customer's first conversion only".into()
                }),
            ));
        }
        Err(e) => return Ok(Plan::Refuse(format!("amount_required: {e}"))),
    };
    let hold = if status.is_none() {
        fraud_hold(s, tx, ev, b, aff_id, now).await?
    } else {
        None
    };
    Ok(Plan::Price {
        priced,
        tier,
        month,
        basis,
        earn,
        hold,
    })
}

/// The fraud rules that hold a booking's first commission for a review.
async fn fraud_hold(
    s: &AppState,
    tx: &mut MoneyTx,
    ev: &Event,
    b: &Booking,
    aff_id: i64,
    now: i64,
) -> Result<Option<&'static str>, StoreError> {
    let f = &s.config.program.fraud;
    let day_ago = now - 86_400_000;
    // Every first decision takes a number, whichever rule holds it.
    let seq = tx.next_in_sequence("first_decisions").await?;
    if let Some(ip) = &b.click_ip_hash {
        if tx.affiliate_ip_known(aff_id, ip).await? {
            return Ok(Some("same_ip_as_affiliate"));
        }
        if f.max_per_ip_per_day > 0
            && tx.bookings_from_ip(ip, day_ago).await? > i64::from(f.max_per_ip_per_day)
        {
            return Ok(Some("ip_burst"));
        }
    }
    if let Some(d) = &ev.email_domain
        && f.max_per_email_domain_per_day > 0
        && !f.webmail_domains.iter().any(|w| w == d)
        && tx.events_from_domain(aff_id, d, day_ago).await?
            >= i64::from(f.max_per_email_domain_per_day)
    {
        return Ok(Some("email_domain_bulk"));
    }
    if f.review_every > 0 && seq % i64::from(f.review_every) == 0 {
        return Ok(Some("review_sample"));
    }
    Ok(None)
}

/// Writes what the plan decided; returns the amounts written.
async fn apply(
    s: &AppState,
    tx: &mut MoneyTx,
    b: &Booking,
    plan: Plan,
    event_ref: Option<i64>,
    occurred_at: i64,
    now: i64,
) -> Result<Vec<AmountOut>, StoreError> {
    let Some(aff_id) = b.affiliate_id else {
        return Ok(Vec::new());
    };
    let currency = s.config.program.commission.currency.clone();
    let line = |status, unit, amount, reason| NewCommission {
        booking_ref: b.id,
        event_ref,
        affiliate_id: aff_id,
        status,
        unit,
        amount_minor: amount,
        basis_minor: None,
        tier: None,
        rule: None,
        month: "",
        payable_at: None,
        transaction_id: None,
        reason,
    };
    let month_now = month_of_ms(occurred_at);
    match plan {
        Plan::Record(..) => Ok(Vec::new()),
        Plan::Refuse(reason) => {
            let state = tx.commission_state(b.id).await?;
            let units: Vec<String> = if state.is_empty() {
                vec![currency]
            } else {
                state.into_iter().map(|l| l.unit).collect()
            };
            for u in &units {
                let mut l = line("refused", u, 0, Some(reason.as_str()));
                l.month = &month_now;
                tx.add_commission(&l, now).await?;
            }
            Ok(Vec::new())
        }
        Plan::Reverse(state) => {
            let earned: Vec<&CommissionLine> =
                state.iter().filter(|l| l.status == "earned").collect();
            let mut out = Vec::new();
            let txn = if earned.is_empty() {
                None
            } else {
                let period = tx.open_period(&month_now).await?;
                let postings = earned
                    .iter()
                    .flat_map(|l| accrual(aff_id, &l.unit, -l.amount_minor))
                    .collect();
                Some(
                    tx.post(
                        &NewTransaction {
                            period: &period,
                            kind: "reversal",
                            affiliate_id: Some(aff_id),
                            booking_ref: Some(b.id),
                            memo: format!(
                                "refund of booking {}: commission reversed",
                                b.booking_id
                            ),
                            postings,
                        },
                        now,
                    )
                    .await?,
                )
            };
            for l in &state {
                let amount = if l.status == "earned" {
                    -l.amount_minor
                } else {
                    0
                };
                let mut n = line(
                    "reversed",
                    &l.unit,
                    amount,
                    Some(if l.status == "earned" {
                        "refunded after it was earned"
                    } else {
                        "refunded before it was earned"
                    }),
                );
                n.month = &month_now;
                n.transaction_id = if l.status == "earned" { txn } else { None };
                tx.add_commission(&n, now).await?;
                if amount != 0 {
                    out.push(AmountOut {
                        unit: l.unit.clone(),
                        amount_minor: amount,
                    });
                }
            }
            Ok(out)
        }
        Plan::Price {
            priced,
            tier,
            month,
            basis,
            earn,
            hold,
        } => {
            if let Some(reason) = hold {
                tx.add_review(b.id, reason, now).await?;
            }
            let status = match (hold, earn) {
                (Some(_), _) => "held",
                (None, true) => "earned",
                (None, false) => "pending",
            };
            if status == "earned" {
                // Earning re-prices a pending booking (the tier may have moved since it
                // was paid); a pending unit that no longer applies is closed at zero.
                for old in tx.commission_state(b.id).await? {
                    if old.status == "pending" && !priced.amounts.iter().any(|a| a.unit == old.unit)
                    {
                        let l = NewCommission {
                            booking_ref: b.id,
                            event_ref,
                            affiliate_id: aff_id,
                            status: "reversed",
                            unit: &old.unit,
                            amount_minor: 0,
                            basis_minor: None,
                            tier: None,
                            rule: None,
                            month: &month,
                            payable_at: None,
                            transaction_id: None,
                            reason: Some("repriced when earned"),
                        };
                        tx.add_commission(&l, now).await?;
                    }
                }
            }
            let txn = if status == "earned" {
                Some(earn_on_ledger(tx, b, aff_id, &priced, &month, now).await?)
            } else {
                None
            };
            let payable_at =
                occurred_at + i64::from(s.config.program.commission.holding_days) * 86_400_000;
            let mut out = Vec::new();
            for a in &priced.amounts {
                tx.add_commission(
                    &NewCommission {
                        booking_ref: b.id,
                        event_ref,
                        affiliate_id: aff_id,
                        status,
                        unit: &a.unit,
                        amount_minor: a.amount_minor,
                        basis_minor: basis,
                        tier: tier.as_deref(),
                        rule: Some(&priced.rule),
                        month: &month,
                        payable_at: (status == "earned").then_some(payable_at),
                        transaction_id: txn,
                        reason: hold,
                    },
                    now,
                )
                .await?;
                out.push(AmountOut {
                    unit: a.unit.clone(),
                    amount_minor: a.amount_minor,
                });
            }
            Ok(out)
        }
    }
}

/// The two postings of a commission of `amount` (negative: its reversal): the program's
/// source account (expense, credit pool, voucher pool) is debited, the partner's payable
/// credited.
fn accrual(aff_id: i64, unit: &str, amount: i64) -> [Posting; 2] {
    [
        Posting {
            account: source_account(unit),
            affiliate_id: None,
            unit: unit.to_owned(),
            amount_minor: amount,
        },
        Posting {
            account: PARTNER,
            affiliate_id: Some(aff_id),
            unit: unit.to_owned(),
            amount_minor: -amount,
        },
    ]
}

async fn earn_on_ledger(
    tx: &mut MoneyTx,
    b: &Booking,
    aff_id: i64,
    priced: &Priced,
    month: &str,
    now: i64,
) -> Result<i64, StoreError> {
    let period = tx.open_period(month).await?;
    let postings = priced
        .amounts
        .iter()
        .flat_map(|a| accrual(aff_id, &a.unit, a.amount_minor))
        .collect();
    tx.post(
        &NewTransaction {
            period: &period,
            kind: "accrual",
            affiliate_id: Some(aff_id),
            booking_ref: Some(b.id),
            memo: format!("commission ({}) on booking {}", priced.rule, b.booking_id),
            postings,
        },
        now,
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Decision {
    note: Option<String>,
}

/// `POST /api/admin/reviews/{id}/approve` and `/reject`.
pub async fn decide(
    _: Admin,
    State(s): State<AppState>,
    Path((raw, verdict)): Path<(String, String)>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let id: i64 = raw
        .parse()
        .map_err(|_| ApiError::field("id", format!("review id {raw:?} is not a number")))?;
    let decision = match verdict.as_str() {
        "approve" => "approved",
        "reject" => "rejected",
        _ => return Err(ApiError::NotFound("route")),
    };
    let note = crate::api::optional_body::<Decision>(&body)?.and_then(|d| d.note);
    if note.as_ref().is_some_and(|n| n.len() > 500) {
        return Err(ApiError::field(
            "note",
            "note must be at most 500 characters",
        ));
    }
    let now = now_ms();
    let mut tx = s.store.begin_money(s.program.id).await?;
    let (booking_ref, done) = tx.review(id).await?;
    if let Some(d) = done {
        return Err(ApiError::Conflict(format!(
            "review {id} was already {d}; decisions are final"
        )));
    }
    tx.decide(id, decision, note.as_deref(), now).await?;
    let b = tx.booking_by_ref(booking_ref).await?;
    let state = tx.commission_state(booking_ref).await?;
    let still_held = state.last().is_some_and(|l| l.status == "held");
    let mut outcome = "recorded";
    if still_held {
        let aff_id = b.affiliate_id.unwrap_or_default();
        // Rejected: refused at zero. Approved: earned (on the ledger) when the booking is
        // already paid and serviced (or is a lead or purchase), else pending.
        let kinds = tx.booking_kinds(booking_ref).await?;
        let has = |k: &str| kinds.iter().any(|x| x == k);
        let earn = decision == "approved"
            && (has("lead") || has("purchase") || (has("booking_paid") && has("booking_serviced")));
        let txn = if earn {
            let priced = Priced {
                rule: state
                    .first()
                    .and_then(|l| l.rule.clone())
                    .unwrap_or_default(),
                amounts: state
                    .iter()
                    .map(|l| crate::money::rules::Amount {
                        unit: l.unit.clone(),
                        amount_minor: l.amount_minor,
                    })
                    .collect(),
            };
            let month = state.first().map(|l| l.month.clone()).unwrap_or_default();
            Some(earn_on_ledger(&mut tx, &b, aff_id, &priced, &month, now).await?)
        } else {
            None
        };
        outcome = match (decision, earn) {
            ("rejected", _) => "refused",
            (_, true) => "earned",
            (_, false) => "pending",
        };
        let payable_at = now + i64::from(s.config.program.commission.holding_days) * 86_400_000;
        for l in &state {
            tx.add_commission(
                &NewCommission {
                    booking_ref,
                    event_ref: None,
                    affiliate_id: aff_id,
                    status: outcome,
                    unit: &l.unit,
                    amount_minor: if outcome == "refused" {
                        0
                    } else {
                        l.amount_minor
                    },
                    basis_minor: l.basis_minor,
                    tier: l.tier.as_deref(),
                    rule: l.rule.as_deref(),
                    month: &l.month,
                    payable_at: earn.then_some(payable_at),
                    transaction_id: txn,
                    reason: Some(if outcome == "refused" {
                        "rejected in review"
                    } else {
                        "approved in review"
                    }),
                },
                now,
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(Json(serde_json::json!({
        "review_id": id,
        "decision": decision,
        "booking_id": b.booking_id,
        "outcome": outcome,
    })))
}

/// `GET /api/admin/reviews?status=open|all`.
pub async fn list_reviews(
    _: Admin,
    State(s): State<AppState>,
    q: Result<axum::extract::Query<ReviewFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let axum::extract::Query(q) = q.map_err(|e| ApiError::field("query", e.body_text()))?;
    let open = match q.status.as_deref() {
        None | Some("open") => true,
        Some("all") => false,
        Some(o) => {
            return Err(ApiError::field(
                "status",
                format!("status {o:?} is not open or all"),
            ));
        }
    };
    Ok(Json(s.store.reviews(s.program.id, open).await?))
}

/// Query of [`list_reviews`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewFilter {
    status: Option<String>,
}


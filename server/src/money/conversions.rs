//! `POST /api/conversions`: signed webhooks from the brand's booking and payment system
//! turn attributed bookings into commissions, in three steps inside one money
//! transaction:
//!
//! 1. **load**: de-duplicate (the event id, and the booking with the event kind), stamp
//!    the booking on its first event ([`crate::money::attribution`]), then read every
//!    fact the decision needs at once ([`load_facts`]);
//! 2. **decide**: [`crate::money::policy::decide`], pure;
//! 3. **write**: the event row, then [`crate::money::posting::apply`].
//!
//! Authenticity and the body's format are [`crate::money::wire`]'s.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::Serialize;
use tapkit_core::date::month_of_ms;

use crate::AppState;
use crate::api::ApiError;
use crate::config::ProgramConfig;
use crate::money::attribution::{self, Token};
use crate::money::policy::{self, AmountOut, Facts, FraudFacts};
use crate::money::posting;
use crate::money::rules::TierWindow;
use crate::money::wire::{Event, Kind, SIGNATURE_HEADER, parse_event, verify_signature};
use crate::store::money::{Booking, MoneyTx, NewEvent};
use crate::store::vocab::{BookingAttribution, ConversionOutcome};
use crate::store::{StoreError, now_ms};

/// What a delivery did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Processed {
    /// `processed` or `duplicate`.
    pub status: &'static str,
    /// The event id.
    pub event_id: String,
    /// The booking id.
    pub booking_id: String,
    /// The booking's stamp.
    pub attribution: Option<BookingAttribution>,
    /// The affiliate credited, if attributed.
    pub affiliate_id: Option<i64>,
    /// What happened.
    pub outcome: ConversionOutcome,
    /// Why (refusals, holds, no attribution).
    pub reason: Option<String>,
    /// Commission amounts this event wrote (earned, pending, held, reversed).
    pub amounts: Vec<AmountOut>,
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
    if crate::members::started::is_started(&body) {
        let out = crate::members::started::process(&s, &body, now).await?;
        tracing::info!(
            event_id = %out.event_id,
            member = out.member_id,
            status = out.status,
            attribution = out.attribution,
            "membership started"
        );
        return Ok(Json(serde_json::to_value(out).unwrap_or_default()));
    }
    if let Some(kind) = crate::members::payment_events::kind_of(&body) {
        let out = crate::members::payment_events::process(&s, &body, now).await?;
        tracing::info!(
            event_id = %out.event_id,
            kind,
            invoice = out.invoice_id,
            status = out.status,
            invoice_status = %out.invoice_status,
            member_status = %out.member_status,
            "membership payment"
        );
        return Ok(Json(serde_json::to_value(out).unwrap_or_default()));
    }
    let commission = &s.config.program.commission;
    let ev = parse_event(
        &body,
        &commission.currency,
        commission.max_amount_minor,
        now,
    )?;
    let out = process(&s, &ev, now).await?;
    s.metrics.conversion(out.outcome.as_str());
    tracing::info!(
        event_id = %out.event_id,
        booking_id = %out.booking_id,
        kind = ev.kind.as_str(),
        outcome = %out.outcome,
        reason = out.reason.as_deref().unwrap_or(""),
        "conversion"
    );
    Ok(Json(serde_json::to_value(&out).unwrap_or_default()))
}

/// Processes one validated event (the whole of it in one money transaction).
pub async fn process(s: &AppState, ev: &Event, now: i64) -> Result<Processed, StoreError> {
    let pid = s.program.id;
    let duplicate = |b: Option<&Booking>, reason: &str| Processed {
        status: "duplicate",
        event_id: ev.event_id.clone(),
        booking_id: ev.booking_id.clone(),
        attribution: b.map(|b| b.attribution),
        affiliate_id: b.and_then(|b| b.affiliate_id),
        outcome: ConversionOutcome::Duplicate,
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
            let token = Token::of(ev, &s.keys);
            let click = match token {
                Token::Valid(a) => tx.click(a.click_id).await?,
                _ => None,
            };
            let b = attribution::stamp(ev, token, click.as_ref(), s.program.cookie_days, now);
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
    let facts = match booking.affiliate_id {
        Some(aff) => Some(load_facts(&mut tx, &s.config.program, ev, &booking, aff, now).await?),
        None => None,
    };
    let d = policy::decide(ev, &booking, facts.as_ref(), &s.config.program);
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
            outcome: d.outcome,
            reason: d.reason.as_deref(),
        })
        .await?;
    let issued = posting::apply(
        &mut tx,
        &booking,
        &d,
        Some(event_ref),
        s.config.program.rewards.as_ref(),
        ev.occurred_at,
        now,
    )
    .await?;
    if ev.kind == Kind::BookingRefunded {
        // Rewards used on this booking at the checkout come back, whoever referred it.
        crate::rewards::ledger::reverse_uses(&mut tx, &ev.booking_id, now).await?;
    }
    tx.commit().await?;
    if let Some(aff) = booking.affiliate_id {
        // The booking's paid event, counted for the referrer: their friend booked.
        let booked = ev.kind == Kind::BookingPaid
            && matches!(
                d.outcome,
                ConversionOutcome::Pending | ConversionOutcome::Earned | ConversionOutcome::Held
            );
        crate::rewards::notify::after_commit(s, aff, booked, issued);
    }
    Ok(Processed {
        status: "processed",
        event_id: ev.event_id.clone(),
        booking_id: ev.booking_id.clone(),
        attribution: Some(booking.attribution),
        affiliate_id: booking.affiliate_id,
        outcome: d.outcome,
        reason: d.reason,
        amounts: d.amounts,
    })
}

/// Everything the decision may look at about an attributed booking, read once under
/// the money lock (so nothing changes between reading and writing).
pub async fn load_facts(
    tx: &mut MoneyTx,
    program: &ProgramConfig,
    ev: &Event,
    b: &Booking,
    aff: i64,
    now: i64,
) -> Result<Facts, StoreError> {
    let day_ago = now - 86_400_000;
    let kinds = tx.booking_kinds(b.id).await?;
    let channel_killed = match &b.channel {
        Some(ch) => tx.channel_killed(aff, ch).await?,
        None => false,
    };
    let converted_before = match ev.customer_id.as_ref().or(b.customer_id.as_ref()) {
        Some(c) => {
            let same: Vec<&str> = policy::converts_as(ev.kind)
                .iter()
                .map(|k| k.as_str())
                .collect();
            tx.customer_converted_before(c, b.id, &same).await?
        }
        None => false,
    };
    let ip = b.click_ip_hash.as_deref();
    let fraud = FraudFacts {
        ip_is_affiliates: match ip {
            Some(ip) => tx.affiliate_ip_known(aff, ip).await?,
            None => false,
        },
        bookings_from_ip: match ip {
            Some(ip) => tx.bookings_from_ip(ip, day_ago).await?,
            None => 0,
        },
        events_from_domain: match &ev.email_domain {
            Some(d) => tx.events_from_domain(aff, d, day_ago).await?,
            None => 0,
        },
        sequence_number: tx.sequence_value(policy::FIRST_DECISIONS).await? + 1,
        unproven_referrer: tx.unproven_referrer(aff).await?,
    };
    Ok(Facts {
        state: tx.commission_state(b.id).await?,
        kinds: Kind::parse_stored(&kinds)?,
        affiliate: tx.affiliate(aff).await?,
        channel_killed,
        paid_amount: tx.paid_amount(b.id).await?,
        referrals_in_month: match program.commission.tier_window {
            TierWindow::Month => {
                tx.referrals_in_month(aff, &month_of_ms(ev.occurred_at))
                    .await?
            }
            TierWindow::Lifetime => tx.referrals_ever(aff).await?,
        },
        converted_before,
        fraud,
    })
}

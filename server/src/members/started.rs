//! `membership_started` on `POST /api/conversions`: the brand's checkout tells Tapkit a
//! customer joined a plan, signed like every webhook (the signature is checked by
//! [`crate::money::conversions::receive`] before this reads the body). The member is
//! created with its prorated first invoice ([`super::service::join_by_event`]) and, when
//! the event carries the attribution token of a partner's tap or scan, credited to that
//! partner (its membership commissions follow from the paid invoices). The event id is
//! kept with the member, so a redelivery answers `duplicate` and creates nothing.

use serde::{Deserialize, Serialize};

use super::service::{Join, MemberError, join_by_event};
use crate::AppState;
use crate::api::ApiError;
use crate::store::StoreError;
use crate::store::vocab::UnattributedReason;

/// The wire name of the event.
pub const KIND: &str = "membership_started";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Started {
    event_id: String,
    #[allow(dead_code)] // read by the caller to route here
    kind: String,
    occurred_at: String,
    customer_id: String,
    email: String,
    plan: String,
    attribution: Option<String>,
    first_name: Option<String>,
}

/// What a `membership_started` delivery did.
#[derive(Debug, Clone, Serialize)]
pub struct StartedOut {
    /// `processed` or `duplicate`.
    pub status: &'static str,
    /// The event id.
    pub event_id: String,
    /// The member.
    pub member_id: i64,
    /// Its plan.
    pub plan: String,
    /// `attributed` or `none`.
    pub attribution: &'static str,
    /// Why not attributed.
    pub reason: Option<&'static str>,
    /// The partner credited.
    pub affiliate_id: Option<i64>,
    /// The prorated first invoice (`None` on a duplicate).
    pub first_invoice_id: Option<i64>,
    /// Its amount.
    pub first_invoice_minor: Option<i64>,
}

/// Whether a webhook body is a `membership_started` event (the body's `kind`).
pub fn is_started(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct K {
        kind: Option<serde_json::Value>,
    }
    serde_json::from_slice::<K>(body).is_ok_and(|k| k.kind.is_some_and(|v| v == KIND))
}

/// Processes a signed `membership_started` body.
pub async fn process(s: &AppState, body: &[u8], now: i64) -> Result<StartedOut, ApiError> {
    let w: Started = crate::api::json_object(body).map_err(|e| ApiError::Invalid {
        status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        field: None,
        message: format!("the body is not a valid membership_started event: {e}"),
    })?;
    let event_id = crate::money::wire::id_field("event_id", w.event_id)?;
    let occurred_at = crate::money::wire::occurred_at_field(&w.occurred_at, now)?;
    let attribution = crate::money::wire::attribution_field(w.attribution)?;
    let pid = s.program.id;
    let duplicate = |m: crate::store::members::Member| StartedOut {
        status: "duplicate",
        event_id: event_id.clone(),
        member_id: m.id,
        plan: m.plan,
        attribution: if m.affiliate_id.is_some() {
            "attributed"
        } else {
            "none"
        },
        reason: None,
        affiliate_id: m.affiliate_id,
        first_invoice_id: None,
        first_invoice_minor: None,
    };
    if let Some(m) = s.store.member_by_event(pid, &event_id).await? {
        return Ok(duplicate(m));
    }
    let (affiliate_id, reason) = match &attribution {
        None => (None, Some(UnattributedReason::NoAttributionToken.as_str())),
        Some(t) => match s.keys.verify_attribution(t) {
            None => (
                None,
                Some(UnattributedReason::ForgedOrDamagedToken.as_str()),
            ),
            Some(a) => match s.store.attribution_click(a.click_id).await? {
                None => (None, Some(UnattributedReason::UnknownClick.as_str())),
                Some(c) if c.outcome != "attributed" || c.affiliate_id.is_none() => {
                    (None, Some(UnattributedReason::ClickNotAttributed.as_str()))
                }
                Some(c) if occurred_at > c.at + s.program.cookie_days * 86_400_000 => {
                    (None, Some(UnattributedReason::AttributionExpired.as_str()))
                }
                Some(c) => (c.affiliate_id, None),
            },
        },
    };
    let joined = join_by_event(
        &s.store,
        &s.config.program.membership,
        pid,
        &s.config.program.commission.currency,
        &Join {
            customer_id: &w.customer_id,
            email: &w.email,
            plan: &w.plan,
            affiliate_id,
            first_name: w.first_name.as_deref(),
        },
        Some(&event_id),
        now,
    )
    .await;
    match joined {
        Ok((m, first)) => Ok(StartedOut {
            status: "processed",
            event_id,
            member_id: m.id,
            plan: m.plan,
            attribution: if affiliate_id.is_some() {
                "attributed"
            } else {
                "none"
            },
            reason,
            affiliate_id,
            first_invoice_id: Some(first.id),
            first_invoice_minor: Some(first.amount_minor),
        }),
        // The same event, delivered twice at once: the other delivery created it.
        Err(MemberError::Store(e @ StoreError::AlreadyMember { .. })) => {
            match s.store.member_by_event(pid, &event_id).await? {
                Some(m) => Ok(duplicate(m)),
                None => Err(ApiError::Conflict(e.to_string())),
            }
        }
        Err(e) => Err(e.into()),
    }
}

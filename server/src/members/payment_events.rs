//! `payment_succeeded` and `payment_failed` on `POST /api/conversions`: the brand's
//! payment system telling Tapkit, later, how a charge it answered `202` to turned out
//! ([`super::charges`]). Signed like every webhook (checked by
//! [`crate::money::conversions::receive`] before this reads the body).
//!
//! ```json
//! {"event_id": "evt_91", "kind": "payment_succeeded", "occurred_at": "2026-12-03T10:00:00Z",
//!  "invoice_id": 12, "idempotency_key": "tapkit-invoice-12-attempt-1", "reference": "pay_00031"}
//! {"event_id": "evt_92", "kind": "payment_failed", "occurred_at": "2026-12-03T10:00:00Z",
//!  "invoice_id": 12, "idempotency_key": "tapkit-invoice-12-attempt-1", "reason": "card_declined"}
//! ```
//!
//! The idempotency key is the one Tapkit sent with the charge, so it names the attempt.
//! That is what makes a redelivery safe without keeping event ids: a success settles the
//! invoice once ([`super::payments::settle`] moves it only from the status it read), and
//! a failure is booked only for the attempt still outstanding, once
//! ([`super::charges::book_failure`] compares and sets), whether the charge run's own
//! answer, this event, or a second replica gets there first.

use serde::{Deserialize, Serialize};

use super::service::MemberError;
use crate::AppState;
use crate::api::ApiError;

/// The wire name of a charge that went through.
pub const SUCCEEDED: &str = "payment_succeeded";
/// The wire name of a charge that was declined.
pub const FAILED: &str = "payment_failed";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    event_id: String,
    kind: String,
    occurred_at: String,
    #[serde(deserialize_with = "tapkit_core::json_int::whole")]
    invoice_id: i64,
    idempotency_key: String,
    reference: Option<String>,
    reason: Option<String>,
}

/// What a payment event did.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentOut {
    /// `processed`; `duplicate` (this attempt's outcome was booked already); or
    /// `ignored` (the invoice or member no longer takes it: `note` says why).
    pub status: &'static str,
    /// The event id.
    pub event_id: String,
    /// `payment_succeeded` or `payment_failed`.
    pub kind: &'static str,
    /// The invoice.
    pub invoice_id: i64,
    /// Its status afterwards.
    pub invoice_status: String,
    /// Its member.
    pub member_id: i64,
    /// The member's status afterwards.
    pub member_status: String,
    /// Why an event was ignored.
    pub note: Option<String>,
}

/// Which payment event a webhook body is, by its `kind`.
pub fn kind_of(body: &[u8]) -> Option<&'static str> {
    #[derive(Deserialize)]
    struct K {
        kind: Option<serde_json::Value>,
    }
    let k = serde_json::from_slice::<K>(body).ok()?.kind?;
    [SUCCEEDED, FAILED].into_iter().find(|n| k == *n)
}

/// The attempt an idempotency key of `invoice_id` names (see
/// [`super::charges::idempotency_key`]).
fn attempt_of(key: &str, invoice_id: i64) -> Result<i64, ApiError> {
    let prefix = format!("tapkit-invoice-{invoice_id}-attempt-");
    key.strip_prefix(&prefix)
        .filter(|n| !n.is_empty() && n.len() <= 6 && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            ApiError::field(
                "idempotency_key",
                format!(
                    "idempotency_key must be the key Tapkit sent with the charge, {prefix}<attempt> (for example {prefix}1)"
                ),
            )
        })
}

fn check_reason(v: Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        Some(r) if r.is_empty() || r.chars().count() > 200 || r.chars().any(char::is_control) => {
            Err(ApiError::field(
                "reason",
                "reason must be 1 to 200 characters on one line, or left out",
            ))
        }
        v => Ok(v),
    }
}

/// Processes a signed payment event body.
pub async fn process(s: &AppState, body: &[u8], now: i64) -> Result<PaymentOut, ApiError> {
    let w: Wire = crate::api::json_object(body).map_err(|e| ApiError::Invalid {
        status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        field: None,
        message: format!(
            "the body is not a valid payment event: {e}. Send event_id, kind, occurred_at, invoice_id and idempotency_key (and reference or reason)"
        ),
    })?;
    let kind = [SUCCEEDED, FAILED]
        .into_iter()
        .find(|k| *k == w.kind)
        .ok_or_else(|| {
            ApiError::field("kind", "kind must be payment_succeeded or payment_failed")
        })?;
    let event_id = crate::money::wire::id_field("event_id", w.event_id)?;
    crate::money::wire::occurred_at_field(&w.occurred_at, now)?;
    let attempt = attempt_of(&w.idempotency_key, w.invoice_id)?;
    let (reference, reason) = match kind {
        SUCCEEDED if w.reason.is_some() => {
            return Err(ApiError::field(
                "reason",
                "reason belongs to payment_failed; a payment_succeeded carries reference",
            ));
        }
        FAILED if w.reference.is_some() => {
            return Err(ApiError::field(
                "reference",
                "reference belongs to payment_succeeded; a payment_failed carries reason",
            ));
        }
        // A reference is checked where it is kept (settle).
        _ => (w.reference, check_reason(w.reason)?),
    };
    // An invoice of another program is as unknown here as one that does not exist.
    let not_ours = || ApiError::NotFound("invoice");
    let inv = s.store.invoice(w.invoice_id).await?.ok_or_else(not_ours)?;
    let m = s.store.member(inv.member_id).await?.ok_or_else(not_ours)?;
    if m.program_id != s.program.id {
        return Err(not_ours());
    }
    let mut out = PaymentOut {
        status: "processed",
        event_id,
        kind,
        invoice_id: inv.id,
        invoice_status: inv.status.clone(),
        member_id: m.id,
        member_status: m.status.clone(),
        note: None,
    };
    if attempt > inv.charge_failures + 1 {
        return Err(ApiError::field(
            "idempotency_key",
            format!(
                "invoice {} has had {} failed attempts, so attempt {attempt} was never asked for; the outstanding one is attempt {}",
                inv.id,
                inv.charge_failures,
                inv.charge_failures + 1
            ),
        ));
    }
    if kind == SUCCEEDED {
        let done = super::payments::settle(
            &s.store,
            &s.config.program.commission,
            s.program.id,
            inv.id,
            reference.as_deref(),
            now,
        )
        .await
        .map_err(|e| match e {
            MemberError::Conflict(msg) => ApiError::Conflict(format!(
                "{msg} The payment went through in your payment system: refund it there."
            )),
            e => e.into(),
        })?;
        if !done.changed {
            out.status = "duplicate";
        }
        out.invoice_status = done.invoice.status;
        out.member_status = done.member.status;
        return Ok(out);
    }
    if attempt <= inv.charge_failures {
        out.status = "duplicate";
        return Ok(out);
    }
    let takes = matches!(inv.status.as_str(), "open" | "failed")
        && matches!(m.status.as_str(), "active" | "past_due");
    if !takes {
        out.status = "ignored";
        out.note = Some(format!(
            "invoice {} is {} and its member {}; a failed payment changes nothing now",
            inv.id, inv.status, m.status
        ));
        return Ok(out);
    }
    let reason = reason.unwrap_or_else(|| "declined".to_owned());
    let booked = super::charges::book_failure(s, &inv, &m, &reason, now).await?;
    let (inv2, m2) = (
        s.store.invoice(inv.id).await?.ok_or_else(not_ours)?,
        s.store.member(m.id).await?.ok_or_else(not_ours)?,
    );
    if !booked.recorded {
        if inv2.charge_failures >= attempt {
            out.status = "duplicate";
        } else {
            return Err(ApiError::Conflict(format!(
                "invoice {} changed while this event was booked; deliver it again",
                inv.id
            )));
        }
    }
    out.invoice_status = inv2.status;
    out.member_status = m2.status;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_names_the_attempt_of_its_invoice() {
        assert_eq!(attempt_of("tapkit-invoice-12-attempt-1", 12).ok(), Some(1));
        assert_eq!(attempt_of("tapkit-invoice-12-attempt-3", 12).ok(), Some(3));
        for bad in [
            "tapkit-invoice-13-attempt-1",
            "tapkit-invoice-12-attempt-0",
            "tapkit-invoice-12-attempt-",
            "tapkit-invoice-12-attempt-+1",
            "tapkit-invoice-12-attempt-99999999999",
            "",
        ] {
            assert!(attempt_of(bad, 12).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_kind_is_read_from_the_body() {
        assert_eq!(kind_of(br#"{"kind":"payment_failed"}"#), Some(FAILED));
        assert_eq!(
            kind_of(br#"{"kind":"payment_succeeded","x":1}"#),
            Some(SUCCEEDED)
        );
        assert_eq!(kind_of(br#"{"kind":"booking_paid"}"#), None);
        assert_eq!(kind_of(b"not json"), None);
    }
}

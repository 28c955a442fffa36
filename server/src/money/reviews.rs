//! The review queue: bookings whose first commission a fraud rule held. An admin
//! approves (the commission goes ahead: earned when the booking is already paid and
//! serviced, or is a lead or purchase; else pending) or rejects (refused at zero).
//! Verdicts are final. The console and the API call the same [`verdict`] service, and
//! its decision is written by the same writer as a webhook's ([`crate::money::posting`]).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::{Admin, ApiError, RawBody, optional_body};
use crate::money::policy::{Decision, Lines, NewLine, Write};
use crate::money::posting;
use crate::money::wire::Kind;
use crate::store::money::CommissionLine;
use crate::store::now_ms;
use crate::store::vocab::{CommissionStatus, ConversionOutcome, Verdict};

/// What a verdict does to a booking still held: `state` is its current lines, `kinds`
/// the events it took. A booking no longer held is only recorded.
pub fn decide(
    verdict: Verdict,
    state: &[CommissionLine],
    kinds: &[Kind],
    now: i64,
    holding_days: u32,
) -> Decision {
    let mut d = Decision {
        outcome: ConversionOutcome::Recorded,
        reason: None,
        write: Write::Nothing,
        amounts: Vec::new(),
        remember_ip: None,
        takes_sequence: false,
    };
    if state
        .last()
        .is_none_or(|l| l.status != CommissionStatus::Held)
    {
        return d;
    }
    let has = |k: Kind| kinds.contains(&k);
    let earn = verdict == Verdict::Approved
        && (has(Kind::Lead)
            || has(Kind::Purchase)
            || (has(Kind::BookingPaid) && has(Kind::BookingServiced)));
    let (outcome, status, reason) = match (verdict, earn) {
        (Verdict::Rejected, _) => (
            ConversionOutcome::Refused,
            CommissionStatus::Refused,
            "rejected in review",
        ),
        (Verdict::Approved, true) => (
            ConversionOutcome::Earned,
            CommissionStatus::Earned,
            "approved in review",
        ),
        (Verdict::Approved, false) => (
            ConversionOutcome::Pending,
            CommissionStatus::Pending,
            "approved in review",
        ),
    };
    let first = state.first();
    d.outcome = outcome;
    d.write = Write::Lines(Lines {
        status,
        lines: state
            .iter()
            .map(|l| NewLine {
                unit: l.unit.clone(),
                amount_minor: if status == CommissionStatus::Refused {
                    0
                } else {
                    l.amount_minor
                },
                basis_minor: l.basis_minor,
                tier: l.tier.clone(),
                rule: l.rule.clone(),
                month: l.month.clone(),
            })
            .collect(),
        accrual: earn.then(|| {
            (
                first.and_then(|l| l.rule.clone()).unwrap_or_default(),
                first.map(|l| l.month.clone()).unwrap_or_default(),
            )
        }),
        payable_at: earn.then_some(now + i64::from(holding_days) * 86_400_000),
        reason: Some(reason.into()),
        review: None,
        close_pending: Vec::new(),
    });
    d
}

/// What a verdict did. The fields are in the order the answer has always had them
/// (it was built with `json!`, which sorts keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decided {
    /// The booking system's id of the booking.
    pub booking_id: String,
    /// The verdict.
    pub decision: Verdict,
    /// What happened to its commission.
    pub outcome: ConversionOutcome,
    /// The review.
    pub review_id: i64,
}

/// Decides a review (the console and the API).
pub async fn verdict(
    s: &AppState,
    review_id: i64,
    verdict: Verdict,
    note: Option<&str>,
) -> Result<Decided, ApiError> {
    if note.is_some_and(|n| n.chars().count() > 500) {
        return Err(ApiError::field(
            "note",
            "note must be at most 500 characters",
        ));
    }
    let now = now_ms();
    let mut tx = s.store.begin_money(s.program.id).await?;
    let review = tx.review(review_id).await?;
    if let Some(d) = review.decision {
        return Err(ApiError::Conflict(format!(
            "review {review_id} was already {d}; decisions are final"
        )));
    }
    tx.decide(review_id, verdict, note, now).await?;
    let b = tx.booking_by_ref(review.booking_ref).await?;
    let state = tx.commission_state(review.booking_ref).await?;
    let kinds = tx.booking_kinds(review.booking_ref).await?;
    let kinds = Kind::parse_stored(&kinds).map_err(crate::store::StoreError::from)?;
    let d = decide(
        verdict,
        &state,
        &kinds,
        now,
        s.config.program.commission.holding_days,
    );
    let issued = posting::apply(
        &mut tx,
        &b,
        &d,
        None,
        s.config.program.rewards.as_ref(),
        now,
        now,
    )
    .await?;
    tx.commit().await?;
    if let Some(aff) = b.affiliate_id {
        crate::rewards::notify::after_commit(s, aff, false, issued);
    }
    Ok(Decided {
        booking_id: b.booking_id,
        decision: verdict,
        outcome: d.outcome,
        review_id,
    })
}

/// The review id and verdict of a route `…/reviews/{id}/approve|reject`.
pub fn parse_route(raw_id: &str, route: &str) -> Result<(i64, Verdict), ApiError> {
    let id = crate::api::parse_id(raw_id)
        .ok_or_else(|| ApiError::field("id", format!("review id {raw_id:?} is not a number")))?;
    let verdict = match route {
        "approve" => Verdict::Approved,
        "reject" => Verdict::Rejected,
        _ => return Err(ApiError::NotFound("route")),
    };
    Ok((id, verdict))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Note {
    note: Option<String>,
}

/// `POST /api/admin/reviews/{id}/approve` and `/reject`.
pub async fn decide_route(
    _: Admin,
    State(s): State<AppState>,
    Path((raw, route)): Path<(String, String)>,
    RawBody(body): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    let (review_id, verdict_) = parse_route(&raw, &route)?;
    let note = optional_body::<Note>(&body)?.and_then(|d| d.note);
    Ok(Json(
        verdict(&s, review_id, verdict_, note.as_deref()).await?,
    ))
}

/// Query of [`list_route`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewFilter {
    status: Option<String>,
}

/// `GET /api/admin/reviews?status=open|all`.
pub async fn list_route(
    _: Admin,
    State(s): State<AppState>,
    q: Result<Query<ReviewFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::field("query", e.body_text()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_answer_keeps_its_bytes() {
        let d = Decided {
            booking_id: "b-1".into(),
            decision: Verdict::Approved,
            outcome: ConversionOutcome::Earned,
            review_id: 7,
        };
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"booking_id":"b-1","decision":"approved","outcome":"earned","review_id":7}"#
        );
    }

    #[test]
    fn routes_name_a_review_and_a_verdict() {
        assert_eq!(
            parse_route("12", "approve").unwrap(),
            (12, Verdict::Approved)
        );
        assert_eq!(
            parse_route("12", "reject").unwrap(),
            (12, Verdict::Rejected)
        );
        assert!(matches!(
            parse_route("12", "maybe"),
            Err(ApiError::NotFound(_))
        ));
        assert_eq!(
            parse_route("x", "approve").unwrap_err().message(),
            "review id \"x\" is not a number"
        );
    }
}

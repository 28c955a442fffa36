//! `GET /api/admin/analytics` (traffic per day, affiliate and card) and
//! `GET /api/admin/affiliates/{id}/earnings`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::api::{Admin, ApiError, id};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnalyticsQuery {
    from: Option<String>,
    to: Option<String>,
    affiliate_id: Option<i64>,
}

pub(crate) async fn analytics(
    _: Admin,
    State(s): State<AppState>,
    q: Result<Query<AnalyticsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    use tapkit_core::date::{format_date, parse_date};
    let Query(q) = q.map_err(|e| ApiError::field("query", e.body_text()))?;
    let day = |field: &'static str, v: &Option<String>, default: i64| match v {
        None => Ok(default),
        Some(t) => parse_date(t).ok_or_else(|| {
            ApiError::field(
                field,
                format!("{field} {t:?} is not a date like 2026-11-21"),
            )
        }),
    };
    let today = crate::store::now_ms() / 86_400_000;
    let to = day("to", &q.to, today)?;
    let from = day("from", &q.from, to - 29)?;
    if from > to {
        return Err(ApiError::field("from", "from is after to"));
    }
    if to - from > 366 {
        return Err(ApiError::field(
            "from",
            "at most 367 days per request; ask for a shorter range",
        ));
    }
    if let Some(a) = q.affiliate_id {
        s.store.affiliate(a).await?;
    }
    let (days, cards) = s.store.analytics(from, to, q.affiliate_id).await?;
    let days: Vec<_> = days
        .into_iter()
        .map(|d| {
            json!({
                "date": format_date(d.day),
                "affiliate_id": d.affiliate_id,
                "visitors": d.visitors,
                "clicks": d.clicks,
                "attributed": d.attributed,
                "by_channel": {
                    "nfc": d.by_channel[0], "qr": d.by_channel[1],
                    "kiosk": d.by_channel[2], "link": d.by_channel[3],
                },
                "flagged": d.flagged,
                "previews": d.previews,
            })
        })
        .collect();
    let cards: Vec<_> = cards
        .into_iter()
        .map(|c| {
            json!({
                "date": format_date(c.day),
                "card_id": c.card_id,
                "uid": c.uid,
                "affiliate_id": c.affiliate_id,
                "visitors": c.visitors,
                "taps": c.taps,
                "flagged": c.flagged,
                "key_version": c.key_version,
                "verified": c.verified,
            })
        })
        .collect();
    let campaigns = s.store.campaigns(from, to, q.affiliate_id).await?;
    Ok(Json(json!({
        "from": format_date(from),
        "to": format_date(to),
        "affiliates": days,
        "cards": cards,
        "campaigns": campaigns,
    })))
}

/// `GET /api/admin/affiliates/{id}/earnings`: owed (on the ledger), pending, held, and
/// the latest commission lines.
pub(crate) async fn earnings(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = id(&raw)?;
    s.store.affiliate(id).await?;
    let owed = s.store.owed(id).await?;
    let lines = s.store.affiliate_commissions(id, 100_000).await?;
    // Current state per booking and unit: the newest line.
    let mut seen: std::collections::HashSet<(i64, String)> = std::collections::HashSet::new();
    let mut sums: std::collections::BTreeMap<(String, String), i64> = Default::default();
    for l in &lines {
        if seen.insert((l.booking_ref, l.unit.clone())) {
            *sums
                .entry((l.status.as_str().to_owned(), l.unit.clone()))
                .or_default() += l.amount_minor;
        }
    }
    let by = |status: &str| -> Vec<serde_json::Value> {
        sums.iter()
            .filter(|((st, _), _)| st == status)
            .map(|((_, unit), v)| json!({"unit": unit, "amount_minor": v}))
            .collect()
    };
    Ok(Json(json!({
        "affiliate_id": id,
        "owed": owed.iter().map(|o| json!({"unit": o.unit, "amount_minor": o.amount_minor})).collect::<Vec<_>>(),
        "pending": by("pending"),
        "held_for_review": by("held"),
        "commissions": lines.iter().take(200).collect::<Vec<_>>(),
    })))
}

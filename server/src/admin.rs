//! The admin API (JSON, bearer-token auth): affiliates, their cards, kill-switches.

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;
use crate::keys::token_hash;
use crate::store::Affiliate;

/// JSON body extractor whose errors are [`ApiError`]s (field named, never a 500).
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(v) = Json::<T>::from_request(req, state).await?;
        Ok(Self(v))
    }
}

/// An optional JSON body: empty is `None`; anything else must parse (field named).
pub fn optional_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| ApiError::Invalid {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            field: None,
            message: format!("the body is not valid: {e}"),
        })
}

/// Proof that the request carries a known admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        if state.store.token_known(&token_hash(token.trim())).await? {
            Ok(Self)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

/// The admin routes, under `/api/admin`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/admin/affiliates",
            post(create_affiliate).get(list_affiliates),
        )
        .route(
            "/api/admin/affiliates/{id}",
            get(get_affiliate).patch(update_affiliate),
        )
        .route("/api/admin/affiliates/{id}/suspend", post(suspend))
        .route("/api/admin/affiliates/{id}/reactivate", post(reactivate))
        .route("/api/admin/cards", post(register_card).get(list_cards))
        .route("/api/admin/cards/{id}/retire", post(retire_card))
        .route("/api/admin/cards/{id}/lost", post(lose_card))
        .route("/api/admin/kill-switches", post(kill))
        .route("/api/admin/analytics", get(analytics))
        .route("/api/admin/affiliates/{id}/earnings", get(earnings))
        .route("/api/admin/reviews", get(crate::conversions::list_reviews))
        .route(
            "/api/admin/reviews/{id}/{verdict}",
            post(crate::conversions::decide),
        )
        .route("/api/admin/periods", get(crate::payouts::list_periods))
        .route(
            "/api/admin/periods/{period}/close",
            post(crate::payouts::close_route),
        )
        .route(
            "/api/admin/periods/{period}/payouts.csv",
            get(crate::payouts::csv_route),
        )
        .route(
            "/api/admin/periods/{period}/payouts.pdf",
            get(crate::payouts::pdf_route),
        )
        .route(
            "/api/admin/payouts/{id}/paid",
            post(crate::payouts::mark_paid),
        )
        .route("/api/openapi.json", get(openapi))
}

/// The OpenAPI document (`server/openapi.json`, checked against the routes by a test).
pub const OPENAPI: &str = include_str!("../openapi.json");

async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalyticsQuery {
    from: Option<String>,
    to: Option<String>,
    affiliate_id: Option<i64>,
}

async fn analytics(
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
            })
        })
        .collect();
    Ok(Json(json!({
        "from": format_date(from),
        "to": format_date(to),
        "affiliates": days,
        "cards": cards,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAffiliate {
    name: String,
    kind: String,
    #[serde(default)]
    contact: Option<String>,
}

#[derive(Serialize)]
struct AffiliateOut {
    #[serde(flatten)]
    affiliate: Affiliate,
    /// The plain link / card URL.
    url: String,
}

/// The affiliate's plain link (and card URL without the mirror).
pub(crate) fn link_of(state: &AppState, code: &str) -> String {
    format!("https://{}/r/{code}", state.config.program.domain)
}

fn out(state: &AppState, a: Affiliate) -> AffiliateOut {
    let url = link_of(state, &a.code);
    AffiliateOut { affiliate: a, url }
}

async fn create_affiliate(
    _: Admin,
    State(s): State<AppState>,
    Body(b): Body<NewAffiliate>,
) -> Result<impl IntoResponse, ApiError> {
    let a = new_affiliate(&s, &b.name, &b.kind, b.contact.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(out(&s, a))))
}

/// Checks and creates an affiliate (API and console).
pub(crate) async fn new_affiliate(
    s: &AppState,
    name: &str,
    kind: &str,
    contact: Option<&str>,
) -> Result<Affiliate, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::field("name", "name must be 1 to 200 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::field(
            "name",
            "name must not contain control characters",
        ));
    }
    if !matches!(kind, "business" | "influencer" | "customer") {
        return Err(ApiError::field(
            "kind",
            format!("kind {kind:?} is not business, influencer or customer"),
        ));
    }
    let contact = contact.map(str::trim).filter(|c| !c.is_empty());
    if contact.is_some_and(|c| c.len() > 200 || c.chars().any(char::is_control)) {
        return Err(ApiError::field(
            "contact",
            "contact must be at most 200 characters without control characters",
        ));
    }
    let a = s
        .store
        .create_affiliate(s.program.id, name, kind, contact)
        .await?;
    s.directory.reload().await?;
    Ok(a)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AffiliateFilter {
    #[serde(default)]
    needs_card: bool,
}

async fn list_affiliates(
    _: Admin,
    State(s): State<AppState>,
    q: Result<Query<AffiliateFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(f) = q.map_err(|e| ApiError::field("needs_card", e.body_text()))?;
    let list = s.store.affiliates(f.needs_card).await?;
    Ok(Json(
        list.into_iter().map(|a| out(&s, a)).collect::<Vec<_>>(),
    ))
}

/// A numeric id from a URL path, or a 422 naming it.
pub(crate) fn id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::field("id", format!("{raw:?} is not an id")))
}

async fn get_affiliate(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(out(&s, s.store.affiliate(id(&raw)?).await?)))
}

async fn suspend(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let a = set_status(&s, id(&raw)?, "suspended").await?;
    Ok(Json(out(&s, a)))
}

async fn reactivate(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let a = set_status(&s, id(&raw)?, "active").await?;
    Ok(Json(out(&s, a)))
}

/// Suspends or reactivates an affiliate of this program (API and console).
pub(crate) async fn set_status(s: &AppState, id: i64, status: &str) -> Result<Affiliate, ApiError> {
    if s.store.affiliate(id).await?.program_id != s.program.id {
        return Err(ApiError::NotFound("affiliate"));
    }
    let a = s.store.set_affiliate_status(id, status).await?;
    s.directory.reload().await?;
    Ok(a)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCard {
    affiliate_id: i64,
    uid: String,
}

/// A 7-byte NTAG UID as 14 hex digits, upper case.
fn normalise_uid(uid: &str) -> Result<String, ApiError> {
    let u: String = uid
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-'))
        .collect::<String>()
        .to_ascii_uppercase();
    if u.len() == 14 && u.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(u)
    } else {
        Err(ApiError::field(
            "uid",
            format!("uid {uid:?} is not a 7-byte NTAG UID (14 hex digits, like 04A1B2C3D4E5F6)"),
        ))
    }
}

async fn register_card(
    _: Admin,
    State(s): State<AppState>,
    Body(b): Body<NewCard>,
) -> Result<impl IntoResponse, ApiError> {
    let uid = normalise_uid(&b.uid)?;
    let (card, new) = s.store.register_card(b.affiliate_id, &uid).await?;
    Ok((
        if new {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(card),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CardFilter {
    affiliate_id: Option<i64>,
}

async fn list_cards(
    _: Admin,
    State(s): State<AppState>,
    q: Result<Query<CardFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(f) = q.map_err(|e| ApiError::field("affiliate_id", e.body_text()))?;
    Ok(Json(s.store.cards(f.affiliate_id).await?))
}

async fn retire_card(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.store.end_card(id(&raw)?, "retired").await?))
}

async fn lose_card(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.store.end_card(id(&raw)?, "lost").await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Kill {
    channel: String,
    #[serde(default)]
    affiliate_id: Option<i64>,
}

async fn kill(
    _: Admin,
    State(s): State<AppState>,
    Body(b): Body<Kill>,
) -> Result<impl IntoResponse, ApiError> {
    kill_channel(&s, b.affiliate_id, &b.channel).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "channel": b.channel, "affiliate_id": b.affiliate_id, "killed": true })),
    ))
}

/// Turns a channel off for the program or one affiliate (API and console).
pub(crate) async fn kill_channel(
    s: &AppState,
    affiliate_id: Option<i64>,
    channel: &str,
) -> Result<(), ApiError> {
    if !matches!(channel, "nfc" | "qr" | "kiosk" | "link") {
        return Err(ApiError::field(
            "channel",
            format!("channel {channel:?} is not nfc, qr, kiosk or link"),
        ));
    }
    if let Some(a) = affiliate_id {
        s.store.affiliate(a).await?;
    }
    s.store
        .kill_channel(s.program.id, affiliate_id, channel)
        .await?;
    s.directory.reload().await?;
    Ok(())
}

/// `PATCH /api/admin/affiliates/{id}`: an empty string clears a field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AffiliatePatch {
    tier: Option<String>,
    contact: Option<String>,
    customer_id: Option<String>,
    email: Option<String>,
    phone: Option<String>,
}

/// SHA-256 hex of an email as the booking system must hash it too: trimmed, lower case.
pub fn email_sha256(email: &str) -> String {
    use sha2::Digest;
    tapkit_core::hex::encode_lower(&sha2::Sha256::digest(
        email.trim().to_lowercase().as_bytes(),
    ))
}

/// SHA-256 hex of a phone number as the booking system must hash it too: `+` and the
/// digits only (`+1 (555) 010-0000` → `+15550100000`).
pub fn phone_sha256(phone: &str) -> String {
    use sha2::Digest;
    let norm: String = phone
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    tapkit_core::hex::encode_lower(&sha2::Sha256::digest(norm.as_bytes()))
}

async fn update_affiliate(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
    Body(b): Body<AffiliatePatch>,
) -> Result<impl IntoResponse, ApiError> {
    let id = id(&raw)?;
    let clean = |field: &'static str,
                 v: Option<String>|
     -> Result<Option<Option<String>>, ApiError> {
        match v {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(Some(None)),
            Some(v) if v.len() > 200 || v.chars().any(char::is_control) => Err(ApiError::field(
                field,
                format!("{field} must be at most 200 characters without control characters"),
            )),
            Some(v) => Ok(Some(Some(v.trim().to_owned()))),
        }
    };
    let tier = clean("tier", b.tier)?;
    if let Some(Some(t)) = &tier
        && !s
            .config
            .program
            .commission
            .tiers
            .iter()
            .any(|x| &x.name == t)
    {
        let names: Vec<&str> = s
            .config
            .program
            .commission
            .tiers
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        return Err(ApiError::field(
            "tier",
            format!(
                "tier {t:?} is not one of this program's tiers ({}); \"\" clears the override",
                if names.is_empty() {
                    "it has none".to_owned()
                } else {
                    names.join(", ")
                }
            ),
        ));
    }
    let email = clean("email", b.email)?;
    if let Some(Some(e)) = &email
        && (!e.contains('@') || e.starts_with('@') || e.ends_with('@'))
    {
        return Err(ApiError::field(
            "email",
            format!("email {e:?} is not an email address"),
        ));
    }
    let phone = clean("phone", b.phone)?;
    if let Some(Some(p)) = &phone
        && p.chars().filter(char::is_ascii_digit).count() < 6
    {
        return Err(ApiError::field(
            "phone",
            format!("phone {p:?} has too few digits"),
        ));
    }
    let patch = crate::store::AffiliateUpdate {
        tier,
        contact: clean("contact", b.contact)?,
        customer_id: clean("customer_id", b.customer_id)?,
        email_sha256: email.map(|e| e.map(|e| email_sha256(&e))),
        phone_sha256: phone.map(|p| p.map(|p| phone_sha256(&p))),
    };
    let a = s.store.update_affiliate(id, &patch).await?;
    Ok(Json(out(&s, a)))
}

/// `GET /api/admin/affiliates/{id}/earnings`: owed (on the ledger), pending, held, and
/// the latest commission lines.
async fn earnings(
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
            *sums.entry((l.status.clone(), l.unit.clone())).or_default() += l.amount_minor;
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
        "owed": owed.iter().map(|(u, v)| json!({"unit": u, "amount_minor": v})).collect::<Vec<_>>(),
        "pending": by("pending"),
        "held_for_review": by("held"),
        "commissions": lines.iter().take(200).collect::<Vec<_>>(),
    })))
}

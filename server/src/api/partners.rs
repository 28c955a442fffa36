//! Affiliates (partners), their cards and channel kill-switches: the admin API's
//! handlers and the service functions the console calls too.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::AppState;
use crate::api::{Admin, ApiError, Body, id};
use crate::store::Affiliate;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAffiliate {
    name: String,
    kind: String,
    #[serde(default)]
    contact: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct AffiliateOut {
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

pub(crate) async fn create_affiliate(
    _: Admin,
    State(s): State<AppState>,
    Body(b): Body<NewAffiliate>,
) -> Result<impl IntoResponse, ApiError> {
    let a = new_affiliate(&s, &b.name, &b.kind, b.contact.as_deref(), None).await?;
    Ok((StatusCode::CREATED, Json(out(&s, a))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewReferrer {
    email: String,
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "tapkit_core::json_int::whole_opt")]
    expires_at: Option<i64>,
}

/// The name a referrer's code is made from when none is given: the email's local part,
/// letters only, capitalised (`ada.l@example.com` → `Adal`), or `Friend`.
fn name_from_email(email: &str) -> String {
    let local: String = email
        .split('@')
        .next()
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_alphabetic)
        .take(20)
        .collect();
    let mut c = local.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
        None => "Friend".into(),
    }
}

/// `POST /api/admin/referrers` `{"email", "kind": "customer", "name"?, "expires_at"?}`: a
/// customer (or a partner's owner) who refers friends gets their own link on the same
/// `/r/{code}` route, kind `customer`. 201 with `code` and `url`; the same email again
/// answers its live link (200), so the self-service page and the brand's checkout can
/// ask as often as they like. `expires_at` (Unix ms): after it the link still redirects
/// but earns nothing.
pub(crate) async fn create_referrer(
    _: Admin,
    State(s): State<AppState>,
    Body(b): Body<NewReferrer>,
) -> Result<impl IntoResponse, ApiError> {
    if b.kind != "customer" {
        return Err(ApiError::field(
            "kind",
            format!(
                "kind {:?}: a referrer is kind \"customer\" (partners are created with POST /api/admin/affiliates)",
                b.kind
            ),
        ));
    }
    let email = b.email.as_str();
    if email.chars().count() > 200
        || email.chars().any(|c| c.is_control() || c.is_whitespace())
        || email.split('@').count() != 2
        || email.starts_with('@')
        || email.ends_with('@')
    {
        return Err(ApiError::field(
            "email",
            "email must be an address like ada@example.com: one @, no spaces, at most 200 characters",
        ));
    }
    let now = crate::store::now_ms();
    if let Some(at) = b.expires_at
        && at <= now
    {
        // A time already past is a conflict with the clock, not a malformed body.
        return Err(ApiError::Conflict(format!(
            "expires_at {at} is already past (Unix ms; now is {now}): give a time in the future, or none for a link that never expires"
        )));
    }
    if let Some(a) = s.store.live_referrer(s.program.id, email, now).await? {
        return Ok((StatusCode::OK, Json(out(&s, a))));
    }
    let name = b.name.clone().unwrap_or_else(|| name_from_email(email));
    let a = new_affiliate(&s, &name, "customer", Some(email), b.expires_at).await?;
    tracing::info!(affiliate = a.id, "referrer created");
    Ok((StatusCode::CREATED, Json(out(&s, a))))
}

/// Checks and creates an affiliate (API and console).
pub(crate) async fn new_affiliate(
    s: &AppState,
    name: &str,
    kind: &str,
    contact: Option<&str>,
    expires_at: Option<i64>,
) -> Result<Affiliate, ApiError> {
    // Lengths and characters are checked as sent (characters, as the OpenAPI
    // document's maxLength counts them), and only then is the value trimmed.
    if name.chars().count() > 200 {
        return Err(ApiError::field("name", "name must be 1 to 200 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::field(
            "name",
            "name must not contain control characters",
        ));
    }
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::field(
            "name",
            "name must not be blank: give the partner's name as printed on the card",
        ));
    }
    if !matches!(kind, "business" | "influencer" | "customer") {
        return Err(ApiError::field(
            "kind",
            format!("kind {kind:?} is not business, influencer or customer"),
        ));
    }
    if contact.is_some_and(|c| c.chars().count() > 200 || c.chars().any(char::is_control)) {
        return Err(ApiError::field(
            "contact",
            "contact must be at most 200 characters without control characters",
        ));
    }
    let contact = contact.map(str::trim).filter(|c| !c.is_empty());
    let a = s
        .store
        .create_affiliate_until(s.program.id, name, kind, contact, expires_at)
        .await?;
    s.directory.reload().await?;
    Ok(a)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AffiliateFilter {
    #[serde(default)]
    needs_card: bool,
}

pub(crate) async fn list_affiliates(
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

pub(crate) async fn get_affiliate(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(out(&s, s.store.affiliate(id(&raw)?).await?)))
}

pub(crate) async fn suspend(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let a = set_status(&s, id(&raw)?, "suspended").await?;
    Ok(Json(out(&s, a)))
}

pub(crate) async fn reactivate(
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
pub(crate) struct NewCard {
    #[serde(deserialize_with = "tapkit_core::json_int::whole")]
    affiliate_id: i64,
    uid: String,
    /// NTAG 424 DNA: the key version the card was keyed under.
    #[serde(default, deserialize_with = "tapkit_core::json_int::whole_opt")]
    key_version: Option<i64>,
}

/// A 7-byte NTAG UID as 14 hex digits, upper case (at most 64 characters as sent).
pub(crate) fn normalise_uid(uid: &str) -> Result<String, ApiError> {
    if uid.chars().count() > 64 {
        return Err(ApiError::field(
            "uid",
            "uid must be at most 64 characters: 14 hex digits, like 04A1B2C3D4E5F6",
        ));
    }
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

pub(crate) async fn register_card(
    _: Admin,
    State(s): State<AppState>,
    Body(b): Body<NewCard>,
) -> Result<impl IntoResponse, ApiError> {
    let uid = normalise_uid(&b.uid)?;
    if let Some(v) = b.key_version {
        if !(1..=255).contains(&v) {
            return Err(ApiError::field(
                "key_version",
                format!(
                    "key_version {v} is not 1 to 255: use the version `provisioner write --sun` keyed the card with"
                ),
            ));
        }
        // A key version the server has no key for would make every tap of the card
        // fail; it is a deployment setting, so the request is fine but refused (409).
        let known = s
            .config
            .sun_keys
            .as_deref()
            .is_some_and(|k| k.has_version(v));
        if !known {
            return Err(ApiError::Conflict(format!(
                "this server has no SUN key of version {v}: set TAPKIT_SUN_KEYS_FILE to the key file the card was keyed with (it lists version {v})"
            )));
        }
    }
    let (card, new) = s
        .store
        .register_card_keyed(b.affiliate_id, &uid, b.key_version)
        .await?;
    s.directory.reload().await?;
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
pub(crate) struct CardFilter {
    affiliate_id: Option<i64>,
}

pub(crate) async fn list_cards(
    _: Admin,
    State(s): State<AppState>,
    q: Result<Query<CardFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(f) = q.map_err(|e| ApiError::field("affiliate_id", e.body_text()))?;
    Ok(Json(s.store.cards(f.affiliate_id).await?))
}

pub(crate) async fn retire_card(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let card = s.store.end_card(id(&raw)?, "retired").await?;
    s.directory.reload().await?;
    Ok(Json(card))
}

pub(crate) async fn lose_card(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let card = s.store.end_card(id(&raw)?, "lost").await?;
    s.directory.reload().await?;
    Ok(Json(card))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Kill {
    channel: String,
    #[serde(default, deserialize_with = "tapkit_core::json_int::whole_opt")]
    affiliate_id: Option<i64>,
}

pub(crate) async fn kill(
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
pub(crate) struct AffiliatePatch {
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

pub(crate) async fn update_affiliate(
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
            Some(v) if v.chars().count() > 200 || v.chars().any(char::is_control) => {
                Err(ApiError::field(
                    field,
                    format!("{field} must be at most 200 characters without control characters"),
                ))
            }
            Some(v) if v.trim().is_empty() => Ok(Some(None)),
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

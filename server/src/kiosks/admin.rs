//! The admin's kiosks: create (with an enrolment code), list, show, change the display,
//! re-enrol and retire, under `/api/admin/kiosks`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::enrolment::{code_hash, new_enrollment_code, normalise_code};
use super::ms_time;
use super::settings::{Display, check_contrast, check_logo, check_text, parse_colour};
use crate::AppState;
use crate::api::{Admin, ApiError, Body, id};
use crate::store::kiosks::Kiosk;
use crate::store::{StoreError, now_ms};

/// The admin's view of a kiosk.
/// Whether a kiosk counts as online: active and heard from within `offline_after_secs`.
pub fn is_online(s: &AppState, k: &Kiosk, now: i64) -> bool {
    k.status == "active"
        && k.last_seen
            .is_some_and(|t| now - t <= s.config.program.kiosk.offline_after_secs * 1000)
}

/// The program's kiosks, optionally of one affiliate.
pub async fn kiosks_of(s: &AppState, affiliate_id: Option<i64>) -> Result<Vec<Kiosk>, StoreError> {
    s.store.kiosks(s.program.id, affiliate_id).await
}

fn admin_view(s: &AppState, k: &Kiosk, now: i64) -> Value {
    let online = is_online(s, k, now);
    let display: Value = serde_json::from_str(&k.display).unwrap_or_else(|_| json!({}));
    json!({
        "id": k.id,
        "affiliate_id": k.affiliate_id,
        "name": k.name,
        "state": k.status,
        "enrolled": k.enrolled_at.is_some(),
        "enrolled_at": ms_time(k.enrolled_at),
        "status": if online { "online" } else { "offline" },
        "last_seen": ms_time(k.last_seen),
        "version": k.last_version,
        "uptime_secs": k.last_uptime_secs,
        "config_version": k.last_config_version,
        "last_error": k.last_error,
        "clock_skew_ms": k.clock_skew_ms,
        "display": display,
        "created_at": ms_time(Some(k.created_at)),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKiosk {
    #[serde(deserialize_with = "tapkit_core::json_int::whole")]
    affiliate_id: i64,
    #[serde(default)]
    name: Option<String>,
}

pub(super) async fn create(
    _: Admin,
    State(s): State<AppState>,
    Body(b): Body<NewKiosk>,
) -> Result<impl IntoResponse, ApiError> {
    // Checked as sent, then trimmed.
    let name = b.name.as_deref().unwrap_or("Counter display");
    check_text("name", name, 200).map_err(|e| ApiError::field("name", e))?;
    let name = name.trim();
    let aff = match s.store.affiliate(b.affiliate_id).await {
        // A 404 like every other reference to an affiliate that does not exist, naming
        // the field.
        Err(StoreError::NotFound(_)) => {
            return Err(ApiError::Invalid {
                status: StatusCode::NOT_FOUND,
                field: Some("affiliate_id"),
                message: format!("there is no affiliate {}", b.affiliate_id),
            });
        }
        r => r?,
    };
    if aff.program_id != s.program.id {
        return Err(ApiError::field(
            "affiliate_id",
            "that affiliate belongs to another program",
        ));
    }
    let code = new_enrollment_code()?;
    let now = now_ms();
    let expires = now + s.config.program.kiosk.enrollment_hours * 3_600_000;
    let hash = code_hash(&normalise_code(&code).unwrap_or_default());
    let k = s
        .store
        .create_kiosk(s.program.id, aff.id, name, &hash, expires, now)
        .await?;
    s.directory.reload().await?;
    let mut v = admin_view(&s, &k, now);
    v["enrollment_code"] = json!(code);
    v["enrollment_expires_at"] = ms_time(Some(expires));
    v["enroll_command"] = json!(format!(
        "display-kiosk enroll --server <this server's URL> --code {code}"
    ));
    Ok((StatusCode::CREATED, Json(v)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    affiliate_id: Option<i64>,
}

pub(super) async fn list(
    _: Admin,
    State(s): State<AppState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::field("affiliate_id", e.body_text()))?;
    let now = now_ms();
    let kiosks: Vec<Value> = kiosks_of(&s, q.affiliate_id)
        .await?
        .iter()
        .map(|k| admin_view(&s, k, now))
        .collect();
    Ok(Json(json!({ "kiosks": kiosks })))
}

async fn found(s: &AppState, raw: &str) -> Result<Kiosk, ApiError> {
    s.store
        .kiosk(id(raw)?)
        .await?
        .ok_or(ApiError::NotFound("kiosk"))
}

pub(super) async fn one(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let k = found(&s, &raw).await?;
    Ok(Json(admin_view(&s, &k, now_ms())))
}

pub(super) async fn update(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
    Body(patch): Body<Display>,
) -> Result<impl IntoResponse, ApiError> {
    let k = found(&s, &raw).await?;
    let mut d: Display = serde_json::from_str(&k.display).unwrap_or_default();
    let set = |slot: &mut Option<String>, v: Option<String>| {
        if let Some(v) = v {
            *slot = (!v.is_empty()).then_some(v);
        }
    };
    set(&mut d.brand_name, patch.brand_name);
    set(&mut d.tagline, patch.tagline);
    set(&mut d.background, patch.background);
    set(&mut d.foreground, patch.foreground);
    set(&mut d.accent, patch.accent);
    set(&mut d.logo_png, patch.logo_png);
    if let Some(b) = &d.brand_name {
        check_text("brand_name", b, 40).map_err(|e| ApiError::field("brand_name", e))?;
    }
    if let Some(t) = &d.tagline {
        check_text("tagline", t, 80).map_err(|e| ApiError::field("tagline", e))?;
    }
    for (field, v) in [
        ("background", &d.background),
        ("foreground", &d.foreground),
        ("accent", &d.accent),
    ] {
        if let Some(v) = v {
            parse_colour(v).ok_or_else(|| {
                ApiError::field(field, format!("{v:?} is not a colour like \"#0b2545\""))
            })?;
        }
    }
    let cfg = &s.config.program.kiosk;
    let fg = d.foreground.as_deref().unwrap_or(&cfg.foreground);
    let bg = d.background.as_deref().unwrap_or(&cfg.background);
    check_contrast(fg, bg).map_err(|e| ApiError::field("foreground", e))?;
    if let Some(l) = &d.logo_png {
        check_logo(l).map_err(|e| ApiError::field("logo_png", e))?;
    }
    let text = serde_json::to_string(&d).map_err(|e| ApiError::Internal(e.to_string()))?;
    s.store.set_kiosk_display(k.id, &text).await?;
    let k = found(&s, &raw).await?;
    Ok(Json(admin_view(&s, &k, now_ms())))
}

pub(super) async fn reenroll(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let k = found(&s, &raw).await?;
    if k.status != "active" {
        return Err(ApiError::Conflict(format!(
            "kiosk {} is retired; create a new kiosk instead",
            k.id
        )));
    }
    let code = new_enrollment_code()?;
    let expires = now_ms() + s.config.program.kiosk.enrollment_hours * 3_600_000;
    let hash = code_hash(&normalise_code(&code).unwrap_or_default());
    s.store.set_kiosk_enrollment(k.id, &hash, expires).await?;
    Ok(Json(json!({
        "id": k.id,
        "enrollment_code": code,
        "enrollment_expires_at": ms_time(Some(expires)),
        "note": "the kiosk keeps working with its current secret until it enrols with this code",
    })))
}

pub(super) async fn retire(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let k = found(&s, &raw).await?;
    s.store.retire_kiosk(k.id).await?;
    s.directory.reload().await?;
    let k = found(&s, &raw).await?;
    Ok(Json(admin_view(&s, &k, now_ms())))
}

//! Counter displays (`display-kiosk`): enrolment, display config, heartbeats, and the
//! check of the rotating QR token on `/r/{code}?k=…`.
//!
//! - The admin creates a kiosk for an affiliate (`POST /api/admin/kiosks`) and gets a
//!   one-time enrolment code (10 Crockford base32 symbols, 24 h by default; only its
//!   SHA-256 is stored).
//! - `POST /api/kiosk/enroll` trades the code for the kiosk's id and secret. The secret is
//!   never stored: it is derived from the server secret, the kiosk id and a generation that
//!   every enrolment bumps, so re-enrolling a kiosk (or retiring it) kills the old secret.
//! - The kiosk authenticates with `Authorization: Bearer kiosk.<id>.<secret hex>`; it
//!   fetches `GET /api/kiosk/config` (with an ETag, so an unchanged config costs a 304)
//!   and sends `POST /api/kiosk/heartbeat`, whose answer carries the config version: a
//!   change made by the admin reaches the screen with the next heartbeat.
//! - A kiosk is online while its last heartbeat is younger than `offline_after_secs`.
//!
//! The bodies of the `/api/kiosk/…` calls are the types of `tapkit_core::kiosk_wire`,
//! shared with `display-kiosk`; the tests below hold them to the bytes the server sent
//! before they existed.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;
use tapkit_core::kiosk::{Freshness, KioskToken, step_at};
use tapkit_core::kiosk_wire::{
    Colors, DisplayConfig, EnrollRequest, EnrollResponse, Heartbeat, HeartbeatResponse,
};

use crate::AppState;
use crate::api::ApiError;
use crate::api::{Admin, Body, id};
use crate::store::{Store, StoreError, now_ms};

/// `[program.kiosk]`: what every kiosk of the program shows unless the admin overrides it
/// per kiosk, and the timing of tokens and heartbeats.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KioskConfig {
    /// Brand name on the screen (default: the program's name).
    pub brand_name: Option<String>,
    /// The line under the brand.
    pub tagline: String,
    /// Background colour, `#rrggbb`.
    pub background: String,
    /// Text colour, `#rrggbb` (must contrast with the background, WCAG 4.5:1).
    pub foreground: String,
    /// The pointer's colour, `#rrggbb`.
    pub accent: String,
    /// Seconds per QR token step (the code on screen changes this often).
    pub rotation_secs: i64,
    /// Steps either side of the server's clock a token is still accepted.
    pub token_window_steps: i64,
    /// Seconds between heartbeats the kiosk is told to use.
    pub heartbeat_secs: i64,
    /// Seconds of silence after which a kiosk counts as offline.
    pub offline_after_secs: i64,
    /// Hours an enrolment code stays valid.
    pub enrollment_hours: i64,
}

impl Default for KioskConfig {
    fn default() -> Self {
        Self {
            brand_name: None,
            tagline: "Tap your phone here to book".into(),
            background: "#0b2545".into(),
            foreground: "#ffffff".into(),
            accent: "#ffc857".into(),
            rotation_secs: tapkit_core::kiosk::DEFAULT_STEP_SECS,
            token_window_steps: 2,
            heartbeat_secs: 45,
            offline_after_secs: 150,
            enrollment_hours: 24,
        }
    }
}

impl KioskConfig {
    /// Checks the settings, naming the field at fault.
    pub fn validate(&self) -> Result<(), String> {
        for (field, v) in [
            ("background", &self.background),
            ("foreground", &self.foreground),
            ("accent", &self.accent),
        ] {
            parse_colour(v)
                .ok_or_else(|| format!("kiosk.{field} {v:?} is not a colour like \"#0b2545\""))?;
        }
        check_contrast(&self.foreground, &self.background).map_err(|e| format!("kiosk: {e}"))?;
        check_text("tagline", &self.tagline, 80).map_err(|e| format!("kiosk.{e}"))?;
        if let Some(b) = &self.brand_name {
            check_text("brand_name", b, 40).map_err(|e| format!("kiosk.{e}"))?;
        }
        let ranges = [
            ("rotation_secs", self.rotation_secs, 10, 3600),
            ("token_window_steps", self.token_window_steps, 1, 60),
            ("heartbeat_secs", self.heartbeat_secs, 5, 600),
            ("offline_after_secs", self.offline_after_secs, 10, 86_400),
            ("enrollment_hours", self.enrollment_hours, 1, 720),
        ];
        for (field, v, lo, hi) in ranges {
            if !(lo..=hi).contains(&v) {
                return Err(format!("kiosk.{field} is {v}; use {lo} to {hi}"));
            }
        }
        if self.offline_after_secs < 2 * self.heartbeat_secs {
            return Err(format!(
                "kiosk.offline_after_secs ({}) must be at least twice heartbeat_secs ({}), or one late heartbeat marks a kiosk offline",
                self.offline_after_secs, self.heartbeat_secs
            ));
        }
        Ok(())
    }
}

fn parse_colour(s: &str) -> Option<[u8; 3]> {
    tapkit_core::hex::parse_rgb(s)
}

/// WCAG 2 contrast ratio of two `#rrggbb` colours.
fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
    let lum = |c: [u8; 3]| {
        let ch = |v: u8| {
            let v = f64::from(v) / 255.0;
            if v <= 0.039_28 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * ch(c[0]) + 0.7152 * ch(c[1]) + 0.0722 * ch(c[2])
    };
    let (x, y) = (lum(a), lum(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

fn check_contrast(fg: &str, bg: &str) -> Result<(), String> {
    let (Some(f), Some(b)) = (parse_colour(fg), parse_colour(bg)) else {
        return Ok(()); // reported by the colour check itself
    };
    let r = contrast(f, b);
    if r < 4.5 {
        return Err(format!(
            "foreground {fg} on background {bg} has a contrast of {r:.1}:1; a counter display needs at least 4.5:1 to be read from 1.5 m"
        ));
    }
    Ok(())
}

fn check_text(field: &str, v: &str, max: usize) -> Result<(), String> {
    if v.trim().is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(format!(
            "{field} must be 1 to {max} characters without control characters"
        ));
    }
    Ok(())
}

/// A kiosk as stored.
#[derive(Debug, Clone)]
pub struct Kiosk {
    /// Id.
    pub id: i64,
    /// Its affiliate.
    pub affiliate_id: i64,
    /// Admin's label ("front counter").
    pub name: String,
    /// `active` or `retired`.
    pub status: String,
    /// Secret generation (bumped by every enrolment).
    pub generation: i64,
    /// When the pending enrolment code expires.
    pub enrollment_expires_at: Option<i64>,
    /// Whether the pending code was used.
    pub enrollment_used: bool,
    /// When the kiosk last enrolled.
    pub enrolled_at: Option<i64>,
    /// The admin's display overrides (JSON of [`Display`]).
    pub display: String,
    /// Last heartbeat.
    pub last_seen: Option<i64>,
    /// Version the kiosk reported.
    pub last_version: Option<String>,
    /// Uptime it reported.
    pub last_uptime_secs: Option<i64>,
    /// Config version it reported showing.
    pub last_config_version: Option<String>,
    /// Last error it reported.
    pub last_error: Option<String>,
    /// Its clock minus the server's at the last heartbeat.
    pub clock_skew_ms: Option<i64>,
    /// Created at.
    pub created_at: i64,
}

const COLS: &str = "id, affiliate_id, name, status, generation, enrollment_expires_at, \
    enrollment_used, enrolled_at, display, last_seen, last_version, last_uptime_secs, \
    last_config_version, last_error, clock_skew_ms, created_at";

fn kiosk(r: &AnyRow) -> Result<Kiosk, sqlx::Error> {
    Ok(Kiosk {
        id: r.try_get("id")?,
        affiliate_id: r.try_get("affiliate_id")?,
        name: r.try_get("name")?,
        status: r.try_get("status")?,
        generation: r.try_get("generation")?,
        enrollment_expires_at: r.try_get("enrollment_expires_at")?,
        enrollment_used: r.try_get::<i64, _>("enrollment_used")? != 0,
        enrolled_at: r.try_get("enrolled_at")?,
        display: r.try_get("display")?,
        last_seen: r.try_get("last_seen")?,
        last_version: r.try_get("last_version")?,
        last_uptime_secs: r.try_get("last_uptime_secs")?,
        last_config_version: r.try_get("last_config_version")?,
        last_error: r.try_get("last_error")?,
        clock_skew_ms: r.try_get("clock_skew_ms")?,
        created_at: r.try_get("created_at")?,
    })
}

/// The admin's per-kiosk display overrides; an empty string clears one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Display {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    brand_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tagline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    background: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    foreground: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    accent: Option<String>,
    /// A PNG logo, base64 (at most 48 KiB of PNG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    logo_png: Option<String>,
}

/// Largest logo accepted, in bytes of PNG.
const MAX_LOGO: usize = 48 * 1024;

fn check_logo(b64: &str) -> Result<(), String> {
    let png = tapkit_core::base64::decode(b64).ok_or("logo_png is not base64")?;
    if png.len() > MAX_LOGO {
        return Err(format!(
            "logo_png is {} bytes; at most {MAX_LOGO} (a 512 px PNG is plenty)",
            png.len()
        ));
    }
    // PNG signature, then the IHDR chunk with width and height.
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return Err("logo_png is not a PNG image".into());
    }
    let dim = |o: usize| u32::from_be_bytes([png[o], png[o + 1], png[o + 2], png[o + 3]]);
    let (w, h) = (dim(16), dim(20));
    if w == 0 || h == 0 || w > 2048 || h > 2048 {
        return Err(format!("logo_png is {w}×{h} px; use 1 to 2048 px each way"));
    }
    Ok(())
}

/// The kiosk's secret: derived, never stored.
fn secret(s: &AppState, k: &Kiosk) -> [u8; 32] {
    s.keys.kiosk_secret(k.id, k.generation)
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A fresh enrolment code: 10 Crockford symbols (50 bits), shown as `XXXXX-XXXXX`.
fn new_enrollment_code() -> Result<String, ApiError> {
    let mut b = [0u8; 10];
    getrandom::fill(&mut b).map_err(|e| ApiError::Internal(format!("no OS randomness: {e}")))?;
    let s: String = b
        .iter()
        .map(|v| CROCKFORD[usize::from(v % 32)] as char)
        .collect();
    Ok(format!("{}-{}", &s[..5], &s[5..]))
}

/// Reads a typed code the way a person types it: case, spaces and hyphens ignored,
/// `I`/`L` read as `1` and `O` as `0`.
fn normalise_code(raw: &str) -> Option<String> {
    let s: String = raw
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_uppercase() {
            'I' | 'L' => '1',
            'O' => '0',
            c => c,
        })
        .collect();
    (s.len() == 10 && s.bytes().all(|b| CROCKFORD.contains(&b))).then_some(s)
}

fn code_hash(normalised: &str) -> String {
    tapkit_core::hex::encode_lower(&Sha256::digest(normalised.as_bytes()))
}

async fn load(store: &Store, id: i64) -> Result<Option<Kiosk>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM kiosks WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    Ok(row.as_ref().map(kiosk).transpose()?)
}

/// The routes: admin (`/api/admin/kiosks…`) and kiosk (`/api/kiosk/…`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/kiosks", post(create).get(list))
        .route("/api/admin/kiosks/{id}", get(one).patch(update))
        .route("/api/admin/kiosks/{id}/enrollment", post(reenroll))
        .route("/api/admin/kiosks/{id}/retire", post(retire))
        .route("/api/kiosk/enroll", post(enroll))
        .route("/api/kiosk/config", get(config))
        .route("/api/kiosk/heartbeat", post(heartbeat))
}

fn ms_time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| {
        json!(tapkit_core::date::rfc3339(
            u64::try_from(ms / 1000).unwrap_or(0)
        ))
    })
}

/// The admin's view of a kiosk.
/// Whether a kiosk counts as online: active and heard from within `offline_after_secs`.
pub fn is_online(s: &AppState, k: &Kiosk, now: i64) -> bool {
    k.status == "active"
        && k.last_seen
            .is_some_and(|t| now - t <= s.config.program.kiosk.offline_after_secs * 1000)
}

/// The program's kiosks, optionally of one affiliate.
pub async fn kiosks_of(s: &AppState, affiliate_id: Option<i64>) -> Result<Vec<Kiosk>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM kiosks WHERE program_id = $1 AND ($2 = 0 OR affiliate_id = $3) ORDER BY id"
    ))
    .bind(s.program.id)
    .bind(i64::from(affiliate_id.is_some()))
    .bind(affiliate_id.unwrap_or(0))
    .fetch_all(s.store.pool())
    .await?;
    Ok(rows.iter().map(kiosk).collect::<Result<Vec<_>, _>>()?)
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
struct NewKiosk {
    affiliate_id: i64,
    #[serde(default)]
    name: Option<String>,
}

async fn create(
    _: Admin,
    State(s): State<AppState>,
    Body(b): Body<NewKiosk>,
) -> Result<impl IntoResponse, ApiError> {
    let name = b.name.as_deref().map_or("Counter display", str::trim);
    check_text("name", name, 200).map_err(|e| ApiError::field("name", e))?;
    let aff = match s.store.affiliate(b.affiliate_id).await {
        Err(StoreError::NotFound(_)) => {
            return Err(ApiError::field(
                "affiliate_id",
                format!("there is no affiliate {}", b.affiliate_id),
            ));
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
    let row = sqlx::query(&format!(
        "INSERT INTO kiosks (program_id, affiliate_id, name, enrollment_code_hash, \
         enrollment_expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLS}"
    ))
    .bind(s.program.id)
    .bind(aff.id)
    .bind(name)
    .bind(code_hash(&normalise_code(&code).unwrap_or_default()))
    .bind(expires)
    .bind(now)
    .fetch_one(s.store.pool())
    .await
    .map_err(StoreError::from)?;
    let k = kiosk(&row).map_err(StoreError::from)?;
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
struct ListQuery {
    affiliate_id: Option<i64>,
}

async fn list(
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
    load(&s.store, id(raw)?)
        .await?
        .ok_or(ApiError::NotFound("kiosk"))
}

async fn one(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let k = found(&s, &raw).await?;
    Ok(Json(admin_view(&s, &k, now_ms())))
}

async fn update(
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
    sqlx::query(
        "UPDATE kiosks SET display = $1, config_version = config_version + 1 WHERE id = $2",
    )
    .bind(&text)
    .bind(k.id)
    .execute(s.store.pool())
    .await
    .map_err(StoreError::from)?;
    let k = found(&s, &raw).await?;
    Ok(Json(admin_view(&s, &k, now_ms())))
}

async fn reenroll(
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
    sqlx::query(
        "UPDATE kiosks SET enrollment_code_hash = $1, enrollment_expires_at = $2, enrollment_used = 0 WHERE id = $3",
    )
    .bind(code_hash(&normalise_code(&code).unwrap_or_default()))
    .bind(expires)
    .bind(k.id)
    .execute(s.store.pool())
    .await
    .map_err(StoreError::from)?;
    Ok(Json(json!({
        "id": k.id,
        "enrollment_code": code,
        "enrollment_expires_at": ms_time(Some(expires)),
        "note": "the kiosk keeps working with its current secret until it enrols with this code",
    })))
}

async fn retire(
    _: Admin,
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let k = found(&s, &raw).await?;
    sqlx::query(
        "UPDATE kiosks SET status = 'retired', enrollment_code_hash = NULL, generation = generation + 1 WHERE id = $1",
    )
    .bind(k.id)
    .execute(s.store.pool())
    .await
    .map_err(StoreError::from)?;
    let k = found(&s, &raw).await?;
    Ok(Json(admin_view(&s, &k, now_ms())))
}

async fn enroll(
    State(s): State<AppState>,
    Body(b): Body<EnrollRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let Some(code) = normalise_code(&b.code) else {
        return Err(ApiError::field(
            "code",
            "an enrolment code is 10 letters and digits like 7KQ2M-9XD4P; check what the admin gave you",
        ));
    };
    let row = sqlx::query(&format!(
        "SELECT {COLS} FROM kiosks WHERE enrollment_code_hash = $1"
    ))
    .bind(code_hash(&code))
    .fetch_optional(s.store.pool())
    .await
    .map_err(StoreError::from)?;
    let Some(k) = row
        .as_ref()
        .map(kiosk)
        .transpose()
        .map_err(StoreError::from)?
    else {
        return Err(ApiError::Gone(
            "this enrolment code is not known: check it, or ask the admin for a new one".into(),
        ));
    };
    let now = now_ms();
    if k.enrollment_used {
        return Err(ApiError::Gone(format!(
            "this enrolment code was already used (kiosk {} enrolled {}); ask the admin for a new code",
            k.id,
            ms_time(k.enrolled_at).as_str().unwrap_or("earlier")
        )));
    }
    if k.enrollment_expires_at.is_some_and(|e| e < now) {
        return Err(ApiError::Gone(format!(
            "this enrolment code expired at {}; ask the admin for a new code",
            ms_time(k.enrollment_expires_at).as_str().unwrap_or("?")
        )));
    }
    // One use only, even when two kiosks race with the same code.
    let done = sqlx::query(
        "UPDATE kiosks SET enrollment_used = 1, enrolled_at = $1, generation = generation + 1 \
         WHERE id = $2 AND enrollment_used = 0 AND status = 'active' \
         AND enrollment_code_hash = $3 AND enrollment_expires_at >= $1",
    )
    .bind(now)
    .bind(k.id)
    .bind(code_hash(&code))
    .execute(s.store.pool())
    .await
    .map_err(StoreError::from)?;
    if done.rows_affected() != 1 {
        return Err(ApiError::Gone(
            "this enrolment code was just used or replaced; ask the admin for a new code".into(),
        ));
    }
    let k = load(&s.store, k.id)
        .await?
        .ok_or(ApiError::NotFound("kiosk"))?;
    let aff = s.store.affiliate(k.affiliate_id).await?;
    tracing::info!(kiosk = k.id, affiliate = aff.id, "kiosk enrolled");
    Ok(Json(EnrollResponse {
        affiliate_code: aff.code,
        kiosk_id: k.id,
        secret: tapkit_core::hex::encode_lower(&secret(&s, &k)),
        server_time_ms: Some(now),
    }))
}

/// Proof that the request comes from an enrolled, active kiosk.
pub struct KioskAuth(Kiosk);

const NOT_ENROLLED: &str = "this kiosk is not enrolled, or was re-enrolled or retired: run `display-kiosk enroll` with a new code from the admin";

impl FromRequestParts<AppState> for KioskAuth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer kiosk."))
            .ok_or_else(|| ApiError::Unauthenticated(NOT_ENROLLED.into()))?;
        let (id, given) = bearer
            .split_once('.')
            .ok_or_else(|| ApiError::Unauthenticated(NOT_ENROLLED.into()))?;
        let id: i64 = id
            .parse()
            .map_err(|_| ApiError::Unauthenticated(NOT_ENROLLED.into()))?;
        let given = tapkit_core::hex::decode(given.trim())
            .map_err(|_| ApiError::Unauthenticated(NOT_ENROLLED.into()))?;
        let Some(k) = load(&s.store, id).await? else {
            return Err(ApiError::Unauthenticated(NOT_ENROLLED.into()));
        };
        let expected = secret(s, &k);
        // Constant-time comparison of the secret.
        let same = given.len() == expected.len()
            && given
                .iter()
                .zip(expected.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same || k.status != "active" || k.enrolled_at.is_none() {
            return Err(ApiError::Unauthenticated(NOT_ENROLLED.into()));
        }
        Ok(Self(k))
    }
}

/// The display config a kiosk shows, with its version (a digest of the content, so any
/// change, from the admin API or the server's config file, gives a new version).
async fn display_config(s: &AppState, k: &Kiosk) -> Result<DisplayConfig, ApiError> {
    let aff = s.store.affiliate(k.affiliate_id).await?;
    let cfg = &s.config.program.kiosk;
    let d: Display = serde_json::from_str(&k.display).unwrap_or_default();
    let domain = &s.config.program.domain;
    versioned(DisplayConfig {
        brand_name: d
            .brand_name
            .or_else(|| cfg.brand_name.clone())
            .unwrap_or_else(|| s.program.name.clone()),
        tagline: d.tagline.unwrap_or_else(|| cfg.tagline.clone()),
        colors: Colors {
            background: d.background.unwrap_or_else(|| cfg.background.clone()),
            foreground: d.foreground.unwrap_or_else(|| cfg.foreground.clone()),
            accent: d.accent.unwrap_or_else(|| cfg.accent.clone()),
        },
        logo_png: d.logo_png,
        domain: domain.clone(),
        url: format!("https://{domain}/r/{}", aff.code),
        affiliate_code: aff.code,
        kiosk_id: k.id,
        rotation_secs: cfg.rotation_secs,
        heartbeat_secs: cfg.heartbeat_secs,
        version: String::new(),
    })
}

/// Sets the config's version: the first 8 bytes of the SHA-256 of its JSON without the
/// version (an empty version is left out), in hex.
fn versioned(mut c: DisplayConfig) -> Result<DisplayConfig, ApiError> {
    c.version.clear();
    let unversioned = serde_json::to_string(&c).map_err(|e| ApiError::Internal(e.to_string()))?;
    c.version = tapkit_core::hex::encode_lower(&Sha256::digest(unversioned.as_bytes())[..8]);
    Ok(c)
}

async fn config(
    KioskAuth(k): KioskAuth,
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = display_config(&s, &k).await?;
    let etag = format!("\"{}\"", c.version);
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.split(',').any(|t| t.trim() == etag));
    let mut r = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Json(c).into_response()
    };
    if let Ok(e) = HeaderValue::from_str(&etag) {
        r.headers_mut().insert(header::ETAG, e);
    }
    Ok(r)
}

async fn heartbeat(
    KioskAuth(k): KioskAuth,
    State(s): State<AppState>,
    Body(b): Body<Heartbeat>,
) -> Result<impl IntoResponse, ApiError> {
    if b.version.is_empty() || b.version.len() > 40 {
        return Err(ApiError::field(
            "version",
            "version must be 1 to 40 characters",
        ));
    }
    if b.uptime_secs < 0 {
        return Err(ApiError::field(
            "uptime_secs",
            "uptime_secs must not be negative",
        ));
    }
    if b.config_version.as_ref().is_some_and(|c| c.len() > 64) {
        return Err(ApiError::field(
            "config_version",
            "config_version must be at most 64 characters",
        ));
    }
    let last_error = b.last_error.filter(|e| !e.is_empty()).map(|e| {
        e.chars()
            .filter(|c| !c.is_control())
            .take(500)
            .collect::<String>()
    });
    let now = now_ms();
    sqlx::query(
        "UPDATE kiosks SET last_seen = $1, last_version = $2, last_uptime_secs = $3, \
         last_config_version = $4, last_error = $5, clock_skew_ms = $6 WHERE id = $7",
    )
    .bind(now)
    .bind(&b.version)
    .bind(b.uptime_secs)
    .bind(b.config_version.as_deref())
    .bind(last_error.as_deref())
    .bind(b.clock_ms.saturating_sub(now))
    .bind(k.id)
    .execute(s.store.pool())
    .await
    .map_err(StoreError::from)?;
    Ok(Json(HeartbeatResponse {
        config_version: display_config(&s, &k).await?.version,
        heartbeat_secs: s.config.program.kiosk.heartbeat_secs,
        server_time_ms: Some(now),
    }))
}

/// Checks a kiosk scan's `k` token for this affiliate. Returns the reason to withhold
/// attribution, if any, and whether the click is flagged (forged or misplaced tokens)
/// rather than merely unattributed (a stale photo of the screen).
pub async fn check_token(
    s: &AppState,
    affiliate_id: i64,
    raw: &str,
    now_ms: i64,
) -> Result<Option<(&'static str, bool)>, StoreError> {
    let Ok(t) = KioskToken::parse(raw) else {
        return Ok(Some(("bad_kiosk_token", true)));
    };
    let Some(k) = load(&s.store, t.kiosk_id).await? else {
        return Ok(Some(("unknown_kiosk", true)));
    };
    if k.affiliate_id != affiliate_id {
        return Ok(Some(("kiosk_of_another_affiliate", true)));
    }
    if !t.authentic(&secret(s, &k)) {
        // A genuine token of the previous secret (the box was re-enrolled or retired) is
        // an old photo, not a forgery; anything else is forged.
        let previous =
            k.generation > 0 && t.authentic(&s.keys.kiosk_secret(k.id, k.generation - 1));
        return Ok(Some(match (previous, k.status == "active") {
            (true, true) => ("kiosk_reenrolled", false),
            (true, false) => ("kiosk_retired", false),
            (false, _) => ("forged_kiosk_token", true),
        }));
    }
    if k.status != "active" {
        return Ok(Some(("kiosk_retired", false)));
    }
    let cfg = &s.config.program.kiosk;
    Ok(
        match t.freshness(step_at(now_ms, cfg.rotation_secs), cfg.token_window_steps) {
            Freshness::Fresh => None,
            Freshness::Stale => Some(("stale_kiosk_token", false)),
            Freshness::Ahead => Some(("kiosk_clock_ahead", false)),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A display config as the server built it before `kiosk_wire`, field by field in
    /// the order the code wrote them (`json!` sorts keys), versioned the same way.
    fn old_display_config(c: &DisplayConfig) -> Value {
        let mut v = json!({
            "kiosk_id": c.kiosk_id,
            "brand_name": c.brand_name,
            "tagline": c.tagline,
            "colors": {
                "background": c.colors.background,
                "foreground": c.colors.foreground,
                "accent": c.colors.accent,
            },
            "logo_png": c.logo_png,
            "domain": c.domain,
            "affiliate_code": c.affiliate_code,
            "url": c.url,
            "rotation_secs": c.rotation_secs,
            "heartbeat_secs": c.heartbeat_secs,
        });
        let digest = Sha256::digest(v.to_string().as_bytes());
        let version = tapkit_core::hex::encode_lower(&digest[..8]);
        v["version"] = json!(version);
        v
    }

    fn sample_config(brand: &str, tagline: &str, logo: Option<&str>) -> DisplayConfig {
        DisplayConfig {
            affiliate_code: "SHINE-7K2M9Q".into(),
            brand_name: brand.into(),
            colors: Colors {
                accent: "#ffc857".into(),
                background: "#0b2545".into(),
                foreground: "#ffffff".into(),
            },
            domain: "book.example.com".into(),
            heartbeat_secs: 45,
            kiosk_id: 7,
            logo_png: logo.map(str::to_owned),
            rotation_secs: 60,
            tagline: tagline.into(),
            url: "https://book.example.com/r/SHINE-7K2M9Q".into(),
            version: String::new(),
        }
    }

    /// The exact body `GET /api/kiosk/config` answered before `kiosk_wire` (its
    /// version is the digest of the same text without `,"version":…`).
    const GOLDEN_CONFIG: &str = concat!(
        r##"{"affiliate_code":"SHINE-7K2M9Q","brand_name":"Shine Detailing","##,
        r##""colors":{"accent":"#ffc857","background":"#0b2545","foreground":"#ffffff"},"##,
        r##""domain":"book.example.com","heartbeat_secs":45,"kiosk_id":7,"logo_png":null,"##,
        r##""rotation_secs":60,"tagline":"Tap your phone here to book","##,
        r##""url":"https://book.example.com/r/SHINE-7K2M9Q","version":""##,
    );

    #[test]
    fn the_display_config_is_byte_for_byte_what_json_built() {
        let c = versioned(sample_config(
            "Shine Detailing",
            "Tap your phone here to book",
            None,
        ))
        .unwrap();
        let text = serde_json::to_string(&c).unwrap();
        let unversioned = GOLDEN_CONFIG.strip_suffix(r#","version":""#).unwrap();
        let version =
            tapkit_core::hex::encode_lower(&Sha256::digest(format!("{unversioned}}}"))[..8]);
        assert_eq!(text, format!("{GOLDEN_CONFIG}{version}\"}}"));
        assert_eq!(c.version, version);
        assert_eq!(text, old_display_config(&c).to_string());
        // Text that needs escaping, a logo, and the version of each, the same both ways.
        for (brand, tagline, logo) in [
            (
                "Glöw \"Day\" Spa",
                "Tap → book\u{7f}\\ </script>",
                Some("iVBORw0KGgo="),
            ),
            ("", "", Some("")),
            ("x", "\u{1f600}\u{2028}", None),
        ] {
            let c = versioned(sample_config(brand, tagline, logo)).unwrap();
            let old = old_display_config(&c);
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                old.to_string(),
                "{brand}"
            );
            assert_eq!(old["version"], c.version.as_str(), "{brand}");
        }
        // Versioning twice gives the same version: the old one is not part of the digest.
        assert_eq!(versioned(c.clone()).unwrap(), c);
        // And what the kiosk reads back is what was sent.
        assert_eq!(serde_json::from_str::<DisplayConfig>(&text).unwrap(), c);
    }

    #[test]
    fn the_enrolment_and_heartbeat_answers_are_byte_for_byte_what_json_built() {
        let secret = "ab".repeat(32);
        let e = EnrollResponse {
            affiliate_code: "SHINE-7K2M9Q".into(),
            kiosk_id: 7,
            secret: secret.clone(),
            server_time_ms: Some(1_767_225_600_123),
        };
        let old = json!({
            "kiosk_id": 7,
            "secret": secret,
            "affiliate_code": "SHINE-7K2M9Q",
            "server_time_ms": 1_767_225_600_123_i64,
        });
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(text, old.to_string());
        assert_eq!(
            text,
            format!(
                r#"{{"affiliate_code":"SHINE-7K2M9Q","kiosk_id":7,"secret":"{secret}","server_time_ms":1767225600123}}"#
            )
        );
        assert_eq!(serde_json::from_str::<EnrollResponse>(&text).unwrap(), e);

        let h = HeartbeatResponse {
            config_version: "0123456789abcdef".into(),
            heartbeat_secs: 45,
            server_time_ms: Some(1_767_225_600_123),
        };
        let old = json!({
            "server_time_ms": 1_767_225_600_123_i64,
            "config_version": "0123456789abcdef",
            "heartbeat_secs": 45,
        });
        let text = serde_json::to_string(&h).unwrap();
        assert_eq!(text, old.to_string());
        assert_eq!(
            text,
            r#"{"config_version":"0123456789abcdef","heartbeat_secs":45,"server_time_ms":1767225600123}"#
        );
        assert_eq!(serde_json::from_str::<HeartbeatResponse>(&text).unwrap(), h);
    }

    #[test]
    fn the_server_reads_what_kiosks_send_and_refuses_unknown_fields() {
        // As display-kiosk has always sent them (its `json!`, keys sorted).
        let beat: Heartbeat = serde_json::from_str(
            r#"{"clock_ms":1767225600123,"config_version":null,"last_error":null,"uptime_secs":12,"version":"0.1.0"}"#,
        )
        .unwrap();
        assert_eq!(
            beat,
            Heartbeat {
                clock_ms: 1_767_225_600_123,
                config_version: None,
                last_error: None,
                uptime_secs: 12,
                version: "0.1.0".into(),
            }
        );
        let full = Heartbeat {
            config_version: Some("0123456789abcdef".into()),
            last_error: Some("disk full".into()),
            ..beat
        };
        let text = serde_json::to_string(&full).unwrap();
        assert_eq!(
            text,
            r#"{"clock_ms":1767225600123,"config_version":"0123456789abcdef","last_error":"disk full","uptime_secs":12,"version":"0.1.0"}"#
        );
        assert_eq!(serde_json::from_str::<Heartbeat>(&text).unwrap(), full);
        let e: EnrollRequest = serde_json::from_str(r#"{"code":"7KQ2M-9XD4P"}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":"7KQ2M-9XD4P"}"#
        );
        let e = serde_json::from_str::<EnrollRequest>(r#"{"code":"7KQ2M-9XD4P","kiosk_id":1}"#)
            .unwrap_err();
        assert!(e.to_string().contains("unknown field `kiosk_id`"), "{e}");
        let e = serde_json::from_str::<Heartbeat>(
            r#"{"clock_ms":1,"uptime_secs":1,"version":"0.1.0","battery":3}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `battery`"), "{e}");
    }

    #[test]
    fn enrolment_codes_read_like_people_type_them() {
        let c = new_enrollment_code().unwrap();
        assert_eq!(c.len(), 11);
        let n = normalise_code(&c).unwrap();
        assert_eq!(normalise_code(&c.to_lowercase()), Some(n.clone()));
        assert_eq!(normalise_code(" 7kq2m 9xd4p "), Some("7KQ2M9XD4P".into()));
        assert_eq!(
            normalise_code("OIL00-11111"),
            Some("01100-11111".replace('-', ""))
        );
        for bad in ["", "7KQ2M", "7KQ2M-9XD4PP", "7KQ2M-9XD4U", "7KQ2M-9XD4!"] {
            assert_eq!(normalise_code(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn contrast_follows_wcag() {
        assert!((contrast([0, 0, 0], [255, 255, 255]) - 21.0).abs() < 0.01);
        assert!((contrast([1, 2, 3], [1, 2, 3]) - 1.0).abs() < 1e-9);
        assert!(check_contrast("#ffffff", "#0b2545").is_ok());
        assert!(check_contrast("#777777", "#888888").is_err());
    }

    #[test]
    fn the_default_settings_are_valid_and_bad_ones_are_named() {
        KioskConfig::default().validate().unwrap();
        let bad = KioskConfig {
            rotation_secs: 1,
            ..KioskConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("rotation_secs"));
        let bad = KioskConfig {
            accent: "yellow".into(),
            ..KioskConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("kiosk.accent"));
        let bad = KioskConfig {
            heartbeat_secs: 100,
            offline_after_secs: 150,
            ..KioskConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("twice"));
    }

    #[test]
    fn logos_must_be_small_pngs() {
        let png = |w: u32, h: u32| {
            let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
            b.extend(w.to_be_bytes());
            b.extend(h.to_be_bytes());
            b.extend([8, 6, 0, 0, 0]);
            tapkit_core::base64::encode(&b)
        };
        assert!(check_logo(&png(256, 128)).is_ok());
        assert!(check_logo(&png(0, 128)).is_err());
        assert!(check_logo(&png(4096, 128)).is_err());
        assert!(check_logo("not base64!").is_err());
        assert!(
            check_logo(&tapkit_core::base64::encode(
                b"GIF89a and more bytes here...."
            ))
            .is_err()
        );
    }
}

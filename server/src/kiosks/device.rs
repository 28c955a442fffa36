//! What an enrolled kiosk calls: `GET /api/kiosk/config` (with an ETag, so an unchanged
//! config costs a 304) and `POST /api/kiosk/heartbeat`, authenticated by
//! `Authorization: Bearer kiosk.<id>.<secret hex>`.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tapkit_core::kiosk_wire::{Colors, DisplayConfig, Heartbeat, HeartbeatResponse};

use super::enrolment::secret;
use super::settings::Display;
use crate::AppState;
use crate::api::{ApiError, Body};
use crate::store::kiosks::{HeartbeatRow, Kiosk};
use crate::store::now_ms;

/// Proof that the request comes from an enrolled, active kiosk.
pub struct KioskAuth(pub Kiosk);

const NOT_ENROLLED: &str = "this kiosk is not enrolled, or was re-enrolled or retired: run `display-kiosk enroll` with a new code from the admin";

/// The kiosk id and the secret an `Authorization: Bearer kiosk.<id>.<secret hex>`
/// header names, if it reads as one.
fn bearer(parts: &Parts) -> Option<(i64, Vec<u8>)> {
    let (id, given) = parts
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer kiosk.")?
        .split_once('.')?;
    Some((
        id.parse().ok()?,
        tapkit_core::hex::decode(given.trim()).ok()?,
    ))
}

impl FromRequestParts<AppState> for KioskAuth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let refused = || ApiError::Unauthenticated(NOT_ENROLLED.into());
        let (id, given) = bearer(parts).ok_or_else(refused)?;
        let Some(k) = s.store.kiosk(id).await? else {
            return Err(refused());
        };
        let same = crate::keys::constant_eq(&given, &secret(s, &k));
        if !same || k.status != "active" || k.enrolled_at.is_none() {
            return Err(refused());
        }
        Ok(Self(k))
    }
}

/// An enrolled, active kiosk calling, as its hot paths (check-ins, the roster) need it:
/// checked against the in-memory directory, with no database read, when the secret is
/// of the directory's generation; otherwise on the kiosk's row (a re-enrolment on
/// another replica a moment ago), as [`KioskAuth`] does.
#[derive(Debug, Clone, Copy)]
pub struct KioskCaller {
    /// The kiosk's id.
    pub id: i64,
    /// Its secret's generation.
    pub generation: i64,
}

impl FromRequestParts<AppState> for KioskCaller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let fast = bearer(parts).and_then(|(id, given)| {
            let k = s.directory.kiosk(id).filter(|k| k.active)?;
            crate::keys::constant_eq(&given, &s.keys.kiosk_secret(id, k.generation)).then_some(
                Self {
                    id,
                    generation: k.generation,
                },
            )
        });
        if let Some(c) = fast {
            return Ok(c);
        }
        let KioskAuth(k) = KioskAuth::from_request_parts(parts, s).await?;
        Ok(Self {
            id: k.id,
            generation: k.generation,
        })
    }
}

/// The display config a kiosk shows, with its version (a digest of the content, so any
/// change, from the admin API or the server's config file, gives a new version).
pub(super) async fn display_config(s: &AppState, k: &Kiosk) -> Result<DisplayConfig, ApiError> {
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
pub(super) fn versioned(mut c: DisplayConfig) -> Result<DisplayConfig, ApiError> {
    c.version.clear();
    let unversioned = serde_json::to_string(&c).map_err(|e| ApiError::Internal(e.to_string()))?;
    c.version = tapkit_core::hex::encode_lower(&Sha256::digest(unversioned.as_bytes())[..8]);
    Ok(c)
}

pub(super) async fn config(
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

pub(super) async fn heartbeat(
    KioskAuth(k): KioskAuth,
    State(s): State<AppState>,
    Body(b): Body<Heartbeat>,
) -> Result<impl IntoResponse, ApiError> {
    if b.version.is_empty() || b.version.chars().count() > 40 {
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
    if b.config_version
        .as_ref()
        .is_some_and(|c| c.chars().count() > 64)
    {
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
    let row = HeartbeatRow {
        at: now,
        version: &b.version,
        uptime_secs: b.uptime_secs,
        config_version: b.config_version.as_deref(),
        last_error: last_error.as_deref(),
        clock_skew_ms: b.clock_ms.saturating_sub(now),
    };
    s.store.record_heartbeat(k.id, &row).await?;
    Ok(Json(HeartbeatResponse {
        config_version: display_config(&s, &k).await?.version,
        heartbeat_secs: s.config.program.kiosk.heartbeat_secs,
        server_time_ms: Some(now),
    }))
}

/// `POST /api/kiosk/check-in` `{"url": "<the member card's URL with its mirror>"}`, with
/// an optional `Idempotency-Key` header per read of the card (a retry of the same read
/// gets the same answer; another read of the same counter is a copy): checks the member
/// in (see [`crate::members::checkin`]). A refusal is a 200 with `accepted: false` and
/// the reason, for the screen.
pub(super) async fn check_in(
    k: KioskCaller,
    State(s): State<AppState>,
    headers: HeaderMap,
    Body(b): Body<tapkit_core::kiosk_wire::CheckInRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::field("Idempotency-Key", "Idempotency-Key must be visible ASCII")
        })?),
    };
    let key = crate::members::checkin::check_key(key)?;
    let answer = crate::members::checkin::check_in(&s, k.id, &b, key, now_ms()).await?;
    tracing::info!(
        kiosk = k.id,
        accepted = answer.accepted,
        reason = answer.reason.as_deref().unwrap_or(""),
        overdraft = answer.overdraft.as_deref().unwrap_or(""),
        offline = b.offline_at_ms.is_some(),
        replayed = answer.replayed,
        "check-in"
    );
    Ok(axum::Json(answer))
}

/// `GET /api/kiosk/roster`: the signed roster of member cards the kiosk checks members
/// in from while the server cannot be reached (see
/// [`crate::members::checkin::roster`]). The kiosk fetches it with its config.
pub(super) async fn roster(
    k: KioskCaller,
    State(s): State<AppState>,
) -> Result<impl IntoResponse, ApiError> {
    let secret = s.keys.kiosk_secret(k.id, k.generation);
    let r = crate::members::checkin::roster(&s, k.id, &secret, now_ms()).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], axum::Json(r)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use tapkit_core::kiosk_wire::{EnrollRequest, EnrollResponse};

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
    fn whole_numbers_written_as_floats_parse_exactly() {
        // A schemathesis find: without serde_json's float_roundtrip this read as
        // -2251799813685247.2, not a whole number, and the heartbeat was refused.
        let h: Heartbeat = serde_json::from_str(
            r#"{"clock_ms": -2251799813685247.0, "uptime_secs": 1.0, "last_error": null, "config_version": "x", "version": "v"}"#,
        )
        .unwrap();
        assert_eq!((h.clock_ms, h.uptime_secs), (-2_251_799_813_685_247, 1));
    }
}

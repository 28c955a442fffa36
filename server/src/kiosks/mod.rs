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

pub mod admin;
pub mod device;
pub mod enrolment;
pub mod settings;
pub mod token;

use axum::Router;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::AppState;
pub use settings::KioskConfig;
pub use token::check_token;

/// The routes: admin (`/api/admin/kiosks…`) and kiosk (`/api/kiosk/…`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/kiosks", post(admin::create).get(admin::list))
        .route(
            "/api/admin/kiosks/{id}",
            get(admin::one).patch(admin::update),
        )
        .route("/api/admin/kiosks/{id}/enrollment", post(admin::reenroll))
        .route("/api/admin/kiosks/{id}/retire", post(admin::retire))
        .route("/api/kiosk/enroll", post(enrolment::enroll))
        .route("/api/kiosk/config", get(device::config))
        .route("/api/kiosk/heartbeat", post(device::heartbeat))
        .route("/api/kiosk/check-in", post(device::check_in))
        .route("/api/kiosk/roster", get(device::roster))
}

/// A Unix ms time as RFC 3339, or null.
fn ms_time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| {
        json!(tapkit_core::date::rfc3339(
            u64::try_from(ms / 1000).unwrap_or(0)
        ))
    })
}

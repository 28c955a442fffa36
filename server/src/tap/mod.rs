//! The tap: `GET /r/{code}` turns a card tap, a QR scan or a link into a logged click, a
//! first-party cookie pair and a 302 to the booking site.
//!
//! [`redirect`] is the handler; [`directory`] the in-memory code → affiliate cache and
//! kill-switches; [`writer`] group-commits clicks (on SQLite through the store's own
//! click connection, on PostgreSQL through the pool); [`client_ip`] finds the customer's
//! address behind trusted proxies; [`ip_keys`] hashes it with the day's key, so no raw
//! IP is ever stored.

pub mod client_ip;
pub mod directory;
pub mod ip_keys;
pub mod redirect;
pub mod sun;
pub mod writer;

use axum::Router;
use axum::routing::get;

use crate::AppState;

/// The tap's route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/r/{code}", get(redirect::tap))
}

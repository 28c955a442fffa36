//! The money side: signed conversion webhooks turn attributed bookings into commissions
//! on a double-entry ledger, closed monthly into payouts.
//!
//! A webhook goes [`wire`] (signature and body) → [`conversions`] (load the booking's
//! facts once) → [`attribution`] (stamp its first event) → [`policy`] (the pure
//! decision, priced by [`rules`]) → [`posting`] (the one writer, to the commission log
//! and the double-entry ledger). A held booking waits in [`reviews`], whose verdict is
//! written by the same writer.

pub mod attribution;
pub mod conversions;
pub mod payout_report;
pub mod payouts;
pub mod policy;
pub mod posting;
pub mod reviews;
pub mod rules;
pub mod wire;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

/// The money routes: the webhook, the review queue and the month close.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/conversions", post(conversions::receive))
        .route("/api/admin/reviews", get(reviews::list_route))
        .route(
            "/api/admin/reviews/{id}/{verdict}",
            post(reviews::decide_route),
        )
        .route("/api/admin/periods", get(payouts::list_periods))
        .route(
            "/api/admin/periods/{period}/close",
            post(payouts::close_route),
        )
        .route(
            "/api/admin/periods/{period}/payouts.csv",
            get(payouts::csv_route),
        )
        .route(
            "/api/admin/periods/{period}/payouts.pdf",
            get(payouts::pdf_route),
        )
        .route("/api/admin/payouts/{id}/paid", post(payouts::mark_paid))
}

//! The money side: signed conversion webhooks turn attributed bookings into commissions
//! on a double-entry ledger, closed monthly into payouts.
//!
//! [`conversions`] receives the webhooks; [`rules`] prices a conversion from the
//! program's configuration.

pub mod conversions;
pub mod rules;
pub mod wire;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

/// The money routes: the webhook, the review queue and the month close.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/conversions", post(conversions::receive))
        .route("/api/admin/reviews", get(conversions::list_reviews))
        .route(
            "/api/admin/reviews/{id}/{verdict}",
            post(conversions::decide),
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
}

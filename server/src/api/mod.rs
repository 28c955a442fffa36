//! The JSON API under `/api/admin` (bearer-token auth): affiliates, their cards,
//! kill-switches, analytics and earnings; its extractors, its error type and the OpenAPI
//! document. Money routes (conversions, reviews, periods) live in [`crate::money`], kiosk
//! routes in [`crate::kiosks`].

pub mod analytics;
pub mod error;
pub mod extract;
pub mod members;
pub mod partners;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::AppState;
pub use error::ApiError;
pub use extract::{Admin, Body, RawBody, id, json_object, optional_body, parse_id};

/// The admin API's routes (affiliates, cards, kill-switches, analytics, OpenAPI).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/admin/affiliates",
            post(partners::create_affiliate).get(partners::list_affiliates),
        )
        .route(
            "/api/admin/affiliates/{id}",
            get(partners::get_affiliate).patch(partners::update_affiliate),
        )
        .route(
            "/api/admin/affiliates/{id}/suspend",
            post(partners::suspend),
        )
        .route(
            "/api/admin/affiliates/{id}/reactivate",
            post(partners::reactivate),
        )
        .route(
            "/api/admin/cards",
            post(partners::register_card).get(partners::list_cards),
        )
        .route("/api/admin/cards/{id}/retire", post(partners::retire_card))
        .route("/api/admin/cards/{id}/lost", post(partners::lose_card))
        .route("/api/admin/kill-switches", post(partners::kill))
        .route("/api/admin/analytics", get(analytics::analytics))
        .route(
            "/api/admin/affiliates/{id}/earnings",
            get(analytics::earnings),
        )
        .route("/api/admin/referrers", post(partners::create_referrer))
        .route(
            "/api/admin/members",
            post(members::create_member).get(members::list_members),
        )
        .route("/api/admin/members/{id}", get(members::get_member))
        .route("/api/admin/members/{id}/plan", post(members::change_plan))
        .route("/api/admin/members/{id}/pause", post(members::pause))
        .route("/api/admin/members/{id}/cancel", post(members::cancel))
        .route("/api/admin/members/{id}/cards", post(members::bind_card))
        .route(
            "/api/admin/member-cards/{id}/revoke",
            post(members::revoke_card),
        )
        .route("/api/admin/memberships/mrr", get(members::mrr))
        .route("/api/admin/invoices/{id}/paid", post(members::invoice_paid))
        .route(
            "/api/admin/invoices/{id}/refund",
            post(members::invoice_refund),
        )
        .route("/api/openapi.json", get(openapi))
}

/// The OpenAPI document (`server/openapi.json`, checked against the routes by a test).
pub const OPENAPI: &str = include_str!("../../openapi.json");

async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

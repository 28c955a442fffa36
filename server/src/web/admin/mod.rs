//! The admin console: overview and click analytics, affiliates (search, create,
//! suspend, kill a channel, cards, kiosks, sign-in links), members and open invoices,
//! provisioning status and print
//! PDFs, the review queue, month close and payouts, CSV exports, and the program's
//! configuration.

pub mod exports;
mod members;
mod overview;
mod partners;
mod payouts;
mod prelude;
mod program;
pub mod provisioning;
mod review_queue;
mod sign_in;

use axum::Router;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};

use crate::AppState;
use crate::api::ApiError;
use crate::web::auth::Session;
use crate::web::{Fields, signin};
use exports::*;
use members::*;
use overview::*;
use partners::*;
use payouts::*;
use program::*;
use provisioning::*;
use review_queue::*;
use sign_in::*;

/// The console's navigation.
pub const NAV: crate::web::Nav = &[
    ("Overview", "/admin"),
    ("Affiliates", "/admin/affiliates"),
    ("Members", "/admin/members"),
    ("Provisioning", "/admin/provisioning"),
    ("Reviews", "/admin/reviews"),
    ("Payouts", "/admin/payouts"),
    ("Exports", "/admin/exports"),
    ("Program", "/admin/program"),
];

/// The console's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview))
        .route("/admin/", get(|| async { Redirect::permanent("/admin") }))
        .route("/admin/sign-in", get(sign_in_form).post(sign_in))
        .route("/admin/affiliates", get(affiliates).post(create))
        .route("/admin/affiliates/{id}", get(affiliate))
        .route("/admin/affiliates/{id}/{action}", post(affiliate_action))
        .route("/admin/members", get(members))
        .route("/admin/members/mrr.csv", get(members::mrr_csv))
        .route("/admin/provisioning", get(provisioning))
        .route("/admin/provisioning/cards.pdf", get(cards_pdf))
        .route("/admin/reviews", get(reviews))
        .route("/admin/reviews/{id}/{verdict}", post(decide))
        .route("/admin/payouts", get(payouts))
        .route("/admin/payouts/close", post(close))
        .route("/admin/payouts/{id}/paid", post(paid))
        .route("/admin/periods/{file}", get(period_file))
        .route("/admin/exports", get(exports))
        .route("/admin/exports/{file}", get(export))
        .route("/admin/program", get(program))
        .merge(signin::routes(super::auth::Role::Admin))
}

pub(super) fn csrf_field(sess: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(sess.csrf); }
}

/// A small POST form with one button.
pub(super) fn button_form(sess: &Session, action: &str, label: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(sess))
            button type="submit" class=(class) { (label) }
        }
    }
}

pub(super) fn done_notice(q: &Fields) -> Markup {
    let text = match q.get("done") {
        Some("created") => "Affiliate created.",
        Some("suspended") => {
            "Suspended: its taps and scans still reach the booking site but earn nothing."
        }
        Some("reactivated") => "Reactivated.",
        Some("killed") => "Channel turned off.",
        Some("approved") => "Approved.",
        Some("rejected") => "Rejected.",
        Some("closed") => "Month closed; the payout report is below.",
        Some("paid") => "Marked paid.",
        _ => return html! {},
    };
    html! { p.notice.ok role="status" { (text) } }
}

pub(super) fn error_notice(text: &str) -> Markup {
    html! { p.notice.bad role="alert" { (text) } }
}

/// Back to `path` with the error's message; the message travels signed so that a
/// crafted link cannot put words of its own into the console.
pub(super) fn error_redirect(s: &AppState, path: &str, e: &ApiError) -> Response {
    let msg = e.message();
    let enc = |t: &str| -> String {
        t.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let sig = s.keys.web_mac("console error", &msg);
    Redirect::to(&format!("{path}?error={}&sig={sig}", enc(&msg))).into_response()
}

/// The error a redirect carried, if its signature is good.
pub(super) fn flash_error(s: &AppState, q: &Fields) -> Markup {
    match (q.get("error"), q.get("sig")) {
        (Some(e), Some(sig)) if s.keys.web_verify("console error", e, sig) => error_notice(e),
        _ => html! {},
    }
}

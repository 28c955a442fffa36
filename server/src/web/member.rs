//! The member's own page, `/m/{code}`: where a phone lands that taps a member card or
//! scans its printed QR (issue 20). Signed out, it says what the card is and offers a
//! one-time sign-in link by email, as the partner portal does; nothing about the member
//! shows to whoever holds the card. Signed in as that member, it shows the plan, the
//! visits left this period (the rolled-over ones apart), the next renewal, the add-on
//! discount and the latest check-ins. The tap's `?m=` mirror is ignored here: only a
//! kiosk's check-in uses a visit.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};

use super::auth::{Role, Session};
use super::{date, page, respond, respond_setting, signin, when};
use crate::AppState;
use crate::members::billing::Period;
use crate::store::members::Member;
use crate::web::WebError;

/// The member page's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/m", get(home))
        .route("/m/{code}", get(card_page))
        .merge(signin::routes(Role::Member))
        .merge(signin::link_sign_in_routes(Role::Member, sign_in_page))
}

fn code_ok(code: &str) -> bool {
    !code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// What a member is told a sign-in link was sent to `to`.
fn sent_text(s: &AppState, to: &str) -> Markup {
    html! {
        "If " strong { (to) } " is the email of a " (s.program.name) " membership, a sign-in link is on its way. It works once, for 30 minutes. No email? Check the spam folder, or ask at the front desk."
    }
}

fn sign_in_box(csrf: &str) -> Markup {
    html! {
        p { "Enter the email address of your membership; we send you a one-time sign-in link. No password needed." }
        (signin::email_form(Role::Member, csrf))
    }
}

fn sign_in_page(
    s: &AppState,
    csrf: &str,
    sent_to: Option<&str>,
    error: Option<&str>,
    note: Option<&str>,
) -> Markup {
    let body = html! {
        div.signin {
            h1 { "Your membership" }
            (signin::notices(note, error, sent_to.map(|to| sent_text(s, to))))
            (sign_in_box(csrf))
        }
    };
    page(s, Role::Member, "Sign in", "", None, body)
}

/// `GET /m`: the signed-in member's page, or the sign-in form.
async fn home(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    let session = Session::from_headers(&s, &headers, Role::Member)
        .await
        .map_err(WebError::internal)?;
    let member = match &session {
        Some(sess) => s
            .store
            .member(sess.subject_id)
            .await
            .map_err(WebError::internal)?,
        None => None,
    };
    Ok(match member.and_then(|m| m.code) {
        Some(code) => Redirect::to(&format!("/m/{code}")).into_response(),
        None => Redirect::to("/m/sign-in").into_response(),
    })
}

fn unknown_card(s: &AppState) -> Response {
    let body = html! {
        div.signin {
            h1 { "This card is not known" }
            p role="alert" { "This is not a current " (s.program.name) " membership card. If it is yours, ask at the front desk: they can bind a new one." }
        }
    };
    respond(
        StatusCode::NOT_FOUND,
        &page(s, Role::Member, "Membership card", "", None, body),
    )
}

/// `GET /m/{code}`: the card's page (the tap's `?m=` mirror is ignored).
async fn card_page(
    State(s): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    if !code_ok(&code) {
        return Ok(unknown_card(&s));
    }
    let Some(m) = s
        .store
        .member_by_code(s.program.id, &code)
        .await
        .map_err(WebError::internal)?
    else {
        return Ok(unknown_card(&s));
    };
    let session = Session::from_headers(&s, &headers, Role::Member)
        .await
        .map_err(WebError::internal)?;
    match session {
        Some(sess) if sess.subject_id == m.id => {
            let checkins = s
                .store
                .member_checkins(m.id, 10)
                .await
                .map_err(WebError::internal)?;
            // A member who also refers friends (a referral link with the same email).
            let rewards = match s
                .store
                .live_referrer(s.program.id, &m.email, crate::store::now_ms())
                .await
                .map_err(WebError::internal)?
            {
                Some(a) => s
                    .store
                    .rewards_of(a.id, 100)
                    .await
                    .map_err(WebError::internal)?,
                None => Vec::new(),
            };
            Ok(respond(
                StatusCode::OK,
                &member_page(&s, &m, &checkins, &rewards, &sess.csrf),
            ))
        }
        _ => {
            let (set, csrf) = super::auth::pre_session(&s, &headers);
            let body = html! {
                div.signin {
                    h1 { "A " (s.program.name) " membership card" }
                    p { "Show this card at the front desk to check in: tap it on the reader by the screen." }
                    h2 { "Is it yours?" }
                    p { "Sign in to see your plan, the visits you have left and your next renewal." }
                    (sign_in_box(&csrf))
                }
            };
            Ok(respond_setting(
                StatusCode::OK,
                &page(&s, Role::Member, "Membership card", "", None, body),
                set,
            ))
        }
    }
}

fn visits_line(m: &Member) -> String {
    let Some(included) = m.visits_included else {
        return "Unlimited visits this month".into();
    };
    let own = (included - m.visits_used).max(0);
    let rolled = (m.visits_rolled - m.visits_rolled_used).max(0);
    let plural = |n: i64| if n == 1 { "visit" } else { "visits" };
    if rolled > 0 {
        format!(
            "{own} {} left this month, plus {rolled} rolled over from last month (used first, they expire at the month's end)",
            plural(own)
        )
    } else {
        format!("{own} {} left this month", plural(own))
    }
}

fn status_line(m: &Member, renews: &str) -> String {
    match m.status.as_str() {
        "active" if m.cancel_at_period_end => {
            format!("Active until {renews}, then it ends (you cancelled)")
        }
        "active" => format!("Active; renews on {renews}"),
        "past_due" => {
            "Payment overdue: please update the card on file; you can still check in for a few days"
                .into()
        }
        "paused" => match &m.paused_until {
            Some(until) => format!("Paused until {until}"),
            None => "Paused".into(),
        },
        "lapsed" => {
            "Lapsed: the payment did not go through. Ask at the front desk to restart.".into()
        }
        _ => "Cancelled".into(),
    }
}

fn member_page(
    s: &AppState,
    m: &Member,
    checkins: &[crate::store::checkins::CheckIn],
    rewards: &[(
        crate::store::rewards::Reward,
        Vec<crate::store::rewards::Redemption>,
    )],
    csrf: &str,
) -> Markup {
    let cfg = &s.config.program.membership;
    let plan = cfg.plan(&m.plan);
    let plan_name = plan.map_or(m.plan.as_str(), |p| p.name.as_str());
    let discount = plan.map_or(0, |p| p.add_on_discount_bp);
    let renews = Period::parse(&m.period).map_or_else(
        || "the 1st of next month".to_owned(),
        |p| tapkit_core::date::format_date(p.next().first_day()),
    );
    let body = html! {
        h1 {
            @if let Some(n) = &m.first_name { "Hello, " (n) } @else { "Your membership" }
        }
        dl.facts {
            dt { "Plan" } dd { (plan_name) }
            dt { "Status" } dd { (status_line(m, &renews)) }
            dt { "Visits" } dd { (visits_line(m)) }
            dt { "Add-on discount" } dd {
                @if discount > 0 { (format!("{}", discount as f64 / 100.0)) "% off add-ons" } @else { "None on this plan" }
            }
        }
        h2 { "Latest check-ins" }
        @if checkins.is_empty() {
            p.muted { "None yet. Tap your card on the reader at the front desk." }
        } @else {
            table {
                thead { tr { th { "When" } th { "Result" } } }
                tbody {
                    @for c in checkins {
                        tr {
                            td { (when(c.offline_at.unwrap_or(c.at))) }
                            td {
                                @if c.accepted {
                                    @if c.visit.as_deref() == Some("rolled") { "Checked in (a rolled-over visit)" }
                                    @else { "Checked in" }
                                } @else {
                                    "Not checked in (" (c.reason.as_deref().unwrap_or("refused").replace('_', " ")) ")"
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !rewards.is_empty() { (super::portal::rewards_table(s, rewards)) }
        @if s.config.program.referrer_signups_per_day > 0 {
            p { a href="/refer" { "Refer a friend" } ": get your own link, and a reward when they book." }
        }
        p.muted { "Member since " (date(m.created_at)) "." }
    };
    page(s, Role::Member, "Your membership", "", Some(csrf), body)
}

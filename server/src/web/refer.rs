//! `/refer`: a customer (or a partner's owner) gets their own referral link without an
//! admin. They give their email; a one-time sign-in link arrives by email and opens the
//! partner portal, which shows their link with share buttons (SMS, WhatsApp, email), a
//! copy button and a QR to show on the phone. The referrer is an affiliate of kind
//! `customer` on the same `/r/{code}` route.
//!
//! One device (the same IP address and user agent, kept only as a keyed hash) signs up
//! at most `program.referrer_signups_per_day` new referrers a day. The answer is the same
//! whether or not the address already has a link, so the form tells no one who refers.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};

use super::auth::Role;
use super::{Fields, page, respond_setting, signin};
use crate::AppState;
use crate::store::{StoreError, now_ms};

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/refer", get(form).post(sign_up))
        .route(
            "/refer/unsubscribe/{token}",
            get(unsubscribe_page).post(unsubscribe),
        )
}

/// `GET /refer/unsubscribe/{token}`: asks to confirm (a link checker opening the link
/// changes nothing).
async fn unsubscribe_page(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    let known = crate::rewards::notify::unsubscribe_token(&s, &token).is_some();
    let body = html! {
        div.signin {
            h1 { "Referral emails" }
            @if known {
                p { "Stop the emails about your referrals (a friend's booking, a reward ready)? Your link and your rewards stay as they are." }
                form method="post" action={"/refer/unsubscribe/" (token)} {
                    p { button type="submit" { "Turn referral emails off" } }
                }
            } @else {
                p.notice.bad role="alert" { "This link is not complete. Open it from the email again, or copy the whole address." }
            }
        }
    };
    let status = if known {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    respond_setting(
        status,
        &page(&s, Role::Partner, "Referral emails", "", None, body),
        None,
    )
}

/// `POST /refer/unsubscribe/{token}`: the one-click unsubscribe (RFC 8058: mail
/// clients post `List-Unsubscribe=One-Click` here; the token is the credential).
async fn unsubscribe(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    let Some(id) = crate::rewards::notify::unsubscribe_token(&s, &token) else {
        return unsubscribe_page(State(s), Path(token)).await;
    };
    let done = s.store.turn_emails_off(id, now_ms()).await;
    let (status, text) = match done {
        Ok(()) => {
            tracing::info!(affiliate = id, "referral emails turned off");
            (
                StatusCode::OK,
                "Done: you will get no more emails about your referrals.",
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "referral emails could not be turned off");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Something went wrong on our side; try the link again in a minute.",
            )
        }
    };
    let body = html! { div.signin { h1 { "Referral emails" } p role="status" { (text) } } };
    respond_setting(
        status,
        &page(&s, Role::Partner, "Referral emails", "", None, body),
        None,
    )
}

/// What the referrer and their friend get, in words, from the program's rules.
pub(crate) fn offer_text(s: &AppState) -> Option<String> {
    let offer = s.config.program.rewards.as_ref()?.friend_offer.as_ref()?;
    let currency = &s.config.program.commission.currency;
    let worth = match (offer.percent_bp, offer.fixed_minor) {
        (Some(bp), _) => format!("{} off", crate::rewards::notify::percent_text(bp)),
        (None, Some(v)) => format!("{} off", super::money(v, currency)),
        (None, None) => return None,
    };
    Some(format!("{worth} {}", offer.applies_to))
}

fn refer_page(
    s: &AppState,
    csrf: &str,
    sent_to: Option<&str>,
    error: Option<&str>,
    note: Option<&str>,
) -> Markup {
    let sent = sent_to.map(|to| html! {
        "A sign-in link is on its way to " strong { (to) } ". It works once, for 30 minutes, and opens your referral link, ready to share. No email? Check the spam folder."
    });
    let body = html! {
        div.signin {
            h1 { "Refer a friend to " (s.program.name) }
            (signin::notices(note, error, sent))
            p { "Get your own link to share by text message, WhatsApp or email. When a friend books through it and their visit is done, you get a reward at once." }
            @if let Some(o) = offer_text(s) { p { "Your friends get " strong { (o) } "." } }
            form method="post" action="/refer" {
                input type="hidden" name="csrf" value=(csrf);
                label for="name" { "Your first name" }
                input id="name" name="name" autocomplete="given-name" maxlength="60" required;
                label for="email" { "Your email" }
                input id="email" name="email" type="email" autocomplete="email" maxlength="200" required;
                p { button type="submit" { "Email me my link" } }
            }
            p.muted { "Already have a link? The same form sends you a new sign-in link." }
        }
    };
    page(s, Role::Partner, "Refer a friend", "", None, body)
}

async fn form(State(s): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    signin::form(&s, Role::Partner, &headers, q, |csrf, note| {
        refer_page(&s, csrf, None, None, note)
    })
    .await
}

/// The keyed hash of the device that signs up: the client address (behind the trusted
/// proxies) and its user agent. The address itself is never stored.
fn device_key(s: &AppState, peer: std::net::SocketAddr, headers: &HeaderMap) -> String {
    let ip = s.config.trusted_proxies.client_ip(peer.ip(), headers);
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    s.keys.web_mac("referrer sign-up", &format!("{ip}\0{ua}"))
}

async fn sign_up(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = Fields::parse(&body);
    let (set, csrf) = match signin::posted_form(&s, &headers, &f, |csrf, error| {
        refer_page(&s, csrf, None, Some(error), None)
    }) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let refuse = |status, error: &str| {
        respond_setting(
            status,
            &refer_page(&s, &csrf, None, Some(error), None),
            set.clone(),
        )
    };
    let limit = s.config.program.referrer_signups_per_day;
    if limit == 0 {
        return refuse(
            StatusCode::FORBIDDEN,
            "This program does not take referrers here; ask the business for a referral link.",
        );
    }
    let email = f.get("email").unwrap_or("").trim().to_owned();
    if email.len() > 200
        || email.chars().any(|c| c.is_control() || c.is_whitespace())
        || !email.contains('@')
        || email.starts_with('@')
        || email.ends_with('@')
    {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "That is not an email address; check it and try again.",
        );
    }
    let name = f.get("name").unwrap_or("").trim().to_owned();
    if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Give your first name (up to 60 characters): your friends see it with your link.",
        );
    }
    let key = device_key(&s, peer, &headers);
    let since = now_ms() - 86_400_000;
    match s
        .store
        .referrer_signups_since(s.program.id, &key, since)
        .await
    {
        Ok(n) if n >= i64::from(limit) => {
            tracing::warn!(
                signups = n,
                "referrer sign-up refused: this device's daily limit is reached"
            );
            return refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-ups from this device today. Try again tomorrow.",
            );
        }
        Ok(_) => {}
        Err(e) => {
            tracing::error!(error = %e, "referrer sign-up could not be checked");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "Something went wrong on our side; try again in a minute.",
            );
        }
    }
    let state = s.clone();
    let to = email.clone();
    tokio::spawn(async move {
        if let Err(e) = link_referrer(&state, &name, &to, &key).await {
            tracing::error!(error = %e, "referrer sign-up failed");
        }
    });
    respond_setting(
        StatusCode::OK,
        &refer_page(&s, &csrf, Some(&email), None, None),
        set,
    )
}

/// Finds the address's live referral link, or makes one, and emails a sign-in link to
/// it (the portal's own sending, at most 3 an hour).
async fn link_referrer(s: &AppState, name: &str, email: &str, key: &str) -> Result<(), StoreError> {
    let now = now_ms();
    let a = match s.store.live_referrer(s.program.id, email, now).await? {
        Some(a) => a,
        None => {
            let hash = crate::api::partners::email_sha256(email);
            let a = s
                .store
                .create_referrer(s.program.id, name, email, &hash, key)
                .await?;
            tracing::info!(affiliate = a.id, "referrer signed up at /refer");
            a
        }
    };
    signin::send_sign_in_link(s, Role::Partner, a.id, &a.name, email).await
}

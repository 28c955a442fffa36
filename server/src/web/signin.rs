//! The sign-in pages both areas share: one-time links (open → confirm → signed in) and
//! sign-out.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::auth::{
    EMAILED_LINK_MS, Role, Session, make_link, pre_session, pre_session_ok, send_link,
};
use super::{Fields, csrf_failed, page, respond, respond_setting};
use crate::AppState;
use crate::keys::token_hash;
use crate::store::{StoreError, now_ms};
use crate::web::WebError;

fn link_ok(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

fn dead_link(s: &AppState, role: Role, why: &str) -> Response {
    let how = match role {
        Role::Admin => {
            "Ask another admin for a new link, or run `tapkit-server admin link --email YOU` on the server."
        }
        Role::Partner => "Ask for a new one on the sign-in page, or ask the program's admin.",
        Role::Member => "Ask for a new one on the sign-in page, or ask at the front desk.",
    };
    let body = html! {
        div.signin {
            h1 { "This sign-in link cannot be used" }
            p role="alert" { (why) " " (how) }
            p { a.button href={(role.base()) "/sign-in"} { "Go to the sign-in page" } }
        }
    };
    respond(
        StatusCode::GONE,
        &page(s, role, "Sign-in link", "", None, body),
    )
}

/// `GET …/link/{token}`: says whose link it is and offers one button (mail scanners that
/// open links do not use them up).
pub async fn open(
    s: &AppState,
    role: Role,
    token: &str,
    headers: &HeaderMap,
) -> Result<Response, WebError> {
    if !link_ok(token) {
        return Ok(dead_link(
            s,
            role,
            "The link is incomplete: copy the whole link from the message.",
        ));
    }
    let row = s.store.link(&token_hash(token)).await?;
    let Some(row) = row.filter(|r| r.subject == role.as_str()) else {
        return Ok(dead_link(
            s,
            role,
            "The link is not known here: copy the whole link from the message.",
        ));
    };
    if row.used_at.is_some() {
        return Ok(dead_link(
            s,
            role,
            "The link has already been used (each link works once).",
        ));
    }
    if row.expires_at <= now_ms() {
        return Ok(dead_link(s, role, "The link has expired."));
    }
    let who = match role {
        Role::Admin => s.store.admin_email(row.subject_id).await.ok().flatten(),
        Role::Partner => s.store.affiliate(row.subject_id).await.ok().map(|a| a.name),
        Role::Member => s
            .store
            .member(row.subject_id)
            .await
            .ok()
            .flatten()
            .map(|m| m.first_name.unwrap_or(m.email)),
    }
    .unwrap_or_default();
    let (set, csrf) = pre_session(s, headers);
    let body = html! {
        div.signin {
            h1 { "Sign in" }
            p { "This link signs you in as " strong { (who) } "." }
            form method="post" {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Sign in as " (who) }
            }
            p.muted { "The link works once. Not you? Close this page." }
        }
    };
    Ok(respond_setting(
        StatusCode::OK,
        &page(s, role, "Sign in", "", None, body),
        set,
    ))
}

/// `POST …/link/{token}`: uses the link up and starts a session.
pub async fn use_link(
    s: &AppState,
    role: Role,
    token: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, WebError> {
    let f = Fields::parse(body);
    if !pre_session_ok(s, headers, f.get("csrf").unwrap_or("")) {
        return Ok(csrf_failed(s, role));
    }
    if !link_ok(token) {
        return Ok(dead_link(s, role, "The link is incomplete."));
    }
    let hash = token_hash(token);
    let row = match s.store.link(&hash).await {
        Ok(Some(r)) if r.subject == role.as_str() => r,
        Ok(_) => return Ok(dead_link(s, role, "The link is not known here.")),
        Err(e) => return Err(WebError::internal(e)),
    };
    match s.store.use_link(&hash, now_ms()).await {
        Ok(true) => {}
        Ok(false) => {
            return Ok(dead_link(
                s,
                role,
                "The link has already been used or has expired.",
            ));
        }
        Err(e) => return Err(WebError::internal(e)),
    }
    match Session::start(s, role, row.subject_id).await {
        Ok(cookie) => {
            tracing::info!(
                role = role.as_str(),
                subject = row.subject_id,
                "signed in with a one-time link"
            );
            let mut r = Redirect::to(role.base()).into_response();
            r.headers_mut().append(header::SET_COOKIE, cookie);
            Ok(r)
        }
        Err(e) => Err(WebError::internal(e)),
    }
}

/// `GET …/sign-in`: the area's sign-in form (`render` gets the CSRF token and the
/// signed-out note), or straight in when already signed in.
pub async fn form(
    s: &AppState,
    role: Role,
    headers: &HeaderMap,
    query: Option<String>,
    render: impl FnOnce(&str, Option<&str>) -> maud::Markup,
) -> Response {
    if let Ok(Some(_)) = Session::from_headers(s, headers, role).await {
        return Redirect::to(role.base()).into_response();
    }
    let q = Fields::parse(query.unwrap_or_default().as_bytes());
    let note = q.get("signed_out").map(|_| "You are signed out.");
    let (set, csrf) = pre_session(s, headers);
    respond_setting(StatusCode::OK, &render(&csrf, note), set)
}

/// A posted sign-in form: the pre-session cookie to set (if a new one is needed) and the
/// CSRF token for the form when it is shown again — the old cookie may have expired — or,
/// when the form's token does not match the browser's cookie, the 403 answer with the
/// form rendered by `render(csrf, error)`.
pub fn posted_form(
    s: &AppState,
    headers: &HeaderMap,
    f: &Fields,
    render: impl FnOnce(&str, &str) -> maud::Markup,
) -> Result<(Option<axum::http::HeaderValue>, String), Box<Response>> {
    let (set, csrf) = pre_session(s, headers);
    if pre_session_ok(s, headers, f.get("csrf").unwrap_or("")) {
        return Ok((set, csrf));
    }
    let error =
        "This form has expired or your browser blocked its cookie. Reload the page and try again.";
    Err(Box::new(respond_setting(
        StatusCode::FORBIDDEN,
        &render(&csrf, error),
        set,
    )))
}

/// Emailed links per subject per hour.
const LINKS_PER_HOUR: i64 = 3;

/// A sign-in page of an area that signs in by emailed link: `(state, csrf, sent_to,
/// error, note)`.
pub type LinkForm = fn(&AppState, &str, Option<&str>, Option<&str>, Option<&str>) -> maud::Markup;

/// The notices above a sign-in form: the signed-out `note`, the `error`, and what was
/// `sent` (in the area's own words).
pub fn notices(
    note: Option<&str>,
    error: Option<&str>,
    sent: Option<maud::Markup>,
) -> maud::Markup {
    html! {
        @if let Some(n) = note { p.notice.ok role="status" { (n) } }
        @if let Some(e) = error { p.notice.bad role="alert" { (e) } }
        @if let Some(m) = sent { p.notice.ok role="status" { (m) } }
    }
}

/// The email-me-a-link form of an area, posting to its `…/sign-in`.
pub fn email_form(role: Role, csrf: &str) -> maud::Markup {
    html! {
        form method="post" action={(role.base()) "/sign-in"} {
            input type="hidden" name="csrf" value=(csrf);
            label for="email" { "Email" }
            input id="email" name="email" type="email" autocomplete="email" required;
            p { button type="submit" { "Email me a sign-in link" } }
        }
    }
}

/// `GET|POST {base}/sign-in` of an area that signs in by emailed link, its page drawn by
/// `render`.
pub fn link_sign_in_routes(role: Role, render: LinkForm) -> axum::Router<AppState> {
    let show = move |State(s): State<AppState>,
                     headers: HeaderMap,
                     axum::extract::RawQuery(q): axum::extract::RawQuery| async move {
        form(&s, role, &headers, q, |csrf, note| {
            render(&s, csrf, None, None, note)
        })
        .await
    };
    let post = move |State(s): State<AppState>, headers: HeaderMap, body: Bytes| async move {
        request_link(&s, role, &headers, &body, render).await
    };
    axum::Router::new().route(
        &format!("{}/sign-in", role.base()),
        axum::routing::get(show).post(post),
    )
}

/// `POST …/sign-in` of an area that signs in by emailed link (the portal, the member's
/// page): checks the form and the address, and answers at once, the same way whether or
/// not the address is known; the lookup, the link and the email happen after the answer
/// ([`email_link`]), so no one learns from the form who the partners or members are.
pub async fn request_link(
    s: &AppState,
    role: Role,
    headers: &HeaderMap,
    body: &Bytes,
    render: LinkForm,
) -> Response {
    let f = Fields::parse(body);
    let (set, csrf) = match posted_form(s, headers, &f, |csrf, error| {
        render(s, csrf, None, Some(error), None)
    }) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let email = f.get("email").unwrap_or("").trim().to_owned();
    if email.len() > 200 || !email.contains('@') || email.starts_with('@') || email.ends_with('@') {
        let error = "That is not an email address; check it and try again.";
        return respond_setting(
            StatusCode::UNPROCESSABLE_ENTITY,
            &render(s, &csrf, None, Some(error), None),
            set,
        );
    }
    let state = s.clone();
    let to = email.clone();
    tokio::spawn(async move {
        if let Err(e) = email_link(&state, role, &to).await {
            tracing::error!(role = role.as_str(), error = %e, "sign-in link request failed");
        }
    });
    respond_setting(
        StatusCode::OK,
        &render(s, &csrf, Some(&email), None, None),
        set,
    )
}

/// Emails a sign-in link to whoever of `role` has the address `email` (a partner by its
/// contact, a member by its email), at most [`LINKS_PER_HOUR`] an hour each.
async fn email_link(s: &AppState, role: Role, email: &str) -> Result<(), StoreError> {
    let who = match role {
        Role::Partner => s
            .store
            .affiliate_by_email(s.program.id, email)
            .await?
            .map(|a| (a.id, a.name)),
        Role::Member => s
            .store
            .member_by_email(s.program.id, email)
            .await?
            .map(|m| (m.id, m.first_name.unwrap_or_else(|| "there".into()))),
        // Admins sign in with a password, or a link another admin makes.
        Role::Admin => None,
    };
    let role_name = role.as_str();
    let Some((id, name)) = who else {
        tracing::info!(
            role = role_name,
            "sign-in link asked for an address nobody has"
        );
        return Ok(());
    };
    send_sign_in_link(s, role, id, &name, email).await
}

/// Emails `id` of `role` (called `name`, at `email`) a one-time sign-in link, at most
/// [`LINKS_PER_HOUR`] an hour; what happened is logged, never shown.
pub async fn send_sign_in_link(
    s: &AppState,
    role: Role,
    id: i64,
    name: &str,
    email: &str,
) -> Result<(), StoreError> {
    let role_name = role.as_str();
    if s.store
        .links_since(role_name, id, now_ms() - 3_600_000)
        .await?
        >= LINKS_PER_HOUR
    {
        tracing::warn!(
            role = role_name,
            subject = id,
            "sign-in link not sent: {LINKS_PER_HOUR} already sent this hour"
        );
        return Ok(());
    }
    let url = make_link(s, role, id, EMAILED_LINK_MS).await?;
    match send_link(s, role, email, name, &url).await {
        Ok(true) => tracing::info!(role = role_name, subject = id, "sign-in link emailed"),
        Ok(false) => {
            tracing::info!(role = role_name, subject = id, link = %url, "sign-in link requested; no mail server configured (TAPKIT_SMTP_URL), so it is only in this log");
        }
        Err(e) => {
            tracing::error!(role = role_name, subject = id, error = %e, "sign-in link could not be emailed");
        }
    }
    Ok(())
}

/// `POST …/sign-out`.
pub async fn sign_out(
    s: &AppState,
    role: Role,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, WebError> {
    let f = Fields::parse(body);
    let session = match Session::from_headers(s, headers, role).await {
        Ok(Some(session)) => session,
        Ok(None) => return Ok(Redirect::to(&format!("{}/sign-in", role.base())).into_response()),
        Err(e) => return Err(WebError::internal(e)),
    };
    if !session.csrf_ok(f.get("csrf").unwrap_or("")) {
        return Ok(csrf_failed(s, role));
    }
    match session.end(s).await {
        Ok(clear) => {
            let mut r =
                Redirect::to(&format!("{}/sign-in?signed_out=1", role.base())).into_response();
            r.headers_mut().append(header::SET_COOKIE, clear);
            Ok(r)
        }
        Err(e) => Err(WebError::internal(e)),
    }
}

/// The routes every area that signs in shares, under its base: `GET|POST …/link/{token}`
/// (open an emailed link, then use it) and `POST …/sign-out`.
pub fn routes(role: Role) -> axum::Router<AppState> {
    use axum::routing::{get, post};
    let base = role.base();
    let open_link = move |State(s): State<AppState>,
                          Path(token): Path<String>,
                          headers: HeaderMap| async move {
        open(&s, role, &token, &headers).await
    };
    let use_it =
        move |State(s): State<AppState>,
              Path(token): Path<String>,
              headers: HeaderMap,
              body: Bytes| async move { use_link(&s, role, &token, &headers, &body).await };
    let out = move |State(s): State<AppState>, headers: HeaderMap, body: Bytes| async move {
        sign_out(&s, role, &headers, &body).await
    };
    axum::Router::new()
        .route(
            &format!("{base}/link/{{token}}"),
            get(open_link).post(use_it),
        )
        .route(&format!("{base}/sign-out"), post(out))
}

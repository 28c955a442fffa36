//! The console's sign-in form: password (argon2id, lock-out after repeated failures) or a one-time link.

use super::prelude::*;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};

use crate::web::auth::{Role, Session, verify_password};
use crate::web::{Fields, page, respond_setting, signin};

pub(super) fn sign_in_page(
    s: &AppState,
    csrf: &str,
    error: Option<&str>,
    email: &str,
    note: Option<&str>,
) -> Markup {
    let body = html! {
        div.signin {
            h1 { "Admin sign-in" }
            @if let Some(n) = note { p.notice.ok role="status" { (n) } }
            @if let Some(e) = error { (error_notice(e)) }
            form method="post" action="/admin/sign-in" {
                input type="hidden" name="csrf" value=(csrf);
                label for="email" { "Email" }
                input id="email" name="email" type="email" autocomplete="username" required value=(email);
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                p { button type="submit" { "Sign in" } }
            }
            p.muted {
                "No password yet, or forgotten? On the server, "
                code { "tapkit-server admin link --email YOU" }
                " prints a one-time sign-in link."
            }
        }
    };
    page(s, Role::Admin, "Sign in", "", None, body)
}

pub(super) async fn sign_in_form(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    signin::form(&s, Role::Admin, &headers, q, |csrf, note| {
        sign_in_page(&s, csrf, None, "", note)
    })
    .await
}

pub(super) async fn sign_in(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let f = Fields::parse(&body);
    let (set, csrf) = match signin::posted_form(&s, &headers, &f, |csrf, error| {
        sign_in_page(&s, csrf, Some(error), "", None)
    }) {
        Ok(v) => v,
        Err(r) => return Ok(*r),
    };
    let email = f.get("email").unwrap_or("").trim().to_lowercase();
    let password = f.get("password").unwrap_or("").to_owned();
    if email.len() > 200 || !email.contains('@') || password.len() > 1024 {
        return Ok(respond_setting(
            StatusCode::UNPROCESSABLE_ENTITY,
            &sign_in_page(
                &s,
                &csrf,
                Some("Enter your email address and password."),
                "",
                None,
            ),
            set,
        ));
    }
    if !s.web.begin_attempt(&email, now_ms()) {
        return Ok(respond_setting(
            StatusCode::TOO_MANY_REQUESTS,
            &sign_in_page(
                &s,
                &csrf,
                Some(
                    "Too many wrong passwords for this email: wait 15 minutes, or use a one-time link.",
                ),
                &email,
                None,
            ),
            set,
        ));
    }
    // At most a few argon2 checks at once (each holds 19 MiB); a flood waits its turn.
    let Ok(_permit) = s.web.hashing.acquire().await else {
        return Err(WebError::internal("the password check queue is closed"));
    };
    let admin = s.store.admin_by_email(&email).await?;
    let stored = admin.as_ref().and_then(|(_, h)| h.clone());
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, stored.as_deref()))
        .await
        .unwrap_or(false);
    match (ok, admin) {
        (true, Some((id, _))) => {
            s.web.succeeded(&email);
            match Session::start(&s, Role::Admin, id).await {
                Ok(cookie) => {
                    tracing::info!(admin = id, "admin signed in with a password");
                    let mut r = Redirect::to("/admin").into_response();
                    r.headers_mut().append(header::SET_COOKIE, cookie);
                    Ok(r)
                }
                Err(e) => Err(WebError::internal(e)),
            }
        }
        _ => Ok(respond_setting(
            StatusCode::UNAUTHORIZED,
            &sign_in_page(
                &s,
                &csrf,
                Some("That email and password do not match an admin. Check both and try again."),
                &email,
                None,
            ),
            set,
        )),
    }
}

//! Sign-in for the console and the portal.
//!
//! - **Sessions**: the cookie (`tapkit_admin` on `/admin`, `tapkit_portal` on `/portal`)
//!   is `<random id>.<HMAC>`: HttpOnly, Secure, SameSite=Strict. Only the SHA-256 of the
//!   id is stored, so sign-out (deleting the row) ends it and a database copy signs
//!   nobody in; the MAC lets junk cookies be refused without a database read.
//! - **CSRF**: every form carries a token: for a session, an HMAC of its id; for the
//!   sign-in forms (no session yet), an HMAC of a random pre-session cookie
//!   (`tapkit_pre`, SameSite=Strict), so a foreign site can neither post into a session
//!   nor sign a browser into someone else's account.
//! - **Passwords** (admins): argon2id PHC strings; unknown emails cost the same time;
//!   5 failures for one email in 15 minutes lock it for the rest of the window.
//! - **One-time links**: 32 random bytes; only the SHA-256 is stored; opening one shows
//!   a button (mail scanners that fetch links do not use them up), pressing it uses it.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::AppState;
use crate::keys::{random_hex, token_hash};
use crate::store::{Affiliate, StoreError, now_ms};

/// Who a page is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The console.
    Admin,
    /// The portal.
    Partner,
    /// A member's own page (`/m/{code}`).
    Member,
}

impl Role {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Partner => "partner",
            Self::Member => "member",
        }
    }
    fn cookie(self) -> &'static str {
        match self {
            Self::Admin => "tapkit_admin",
            Self::Partner => "tapkit_portal",
            Self::Member => "tapkit_member",
        }
    }
    /// Where its pages live.
    pub fn base(self) -> &'static str {
        match self {
            Self::Admin => "/admin",
            Self::Partner => "/portal",
            Self::Member => "/m",
        }
    }
    fn lifetime_ms(self) -> i64 {
        match self {
            Self::Admin => 12 * 3_600_000,
            Self::Partner | Self::Member => 30 * 86_400_000,
        }
    }
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// Console or portal.
    pub role: Role,
    /// admins.id or affiliates.id.
    pub subject_id: i64,
    /// The token every form of this session carries.
    pub csrf: String,
    id_hash: String,
}

/// The console's and portal's in-process state.
pub struct WebState {
    failures: Mutex<HashMap<String, (u32, i64)>>,
    /// Password checks at once (each argon2 check holds 19 MiB).
    pub hashing: tokio::sync::Semaphore,
}

impl Default for WebState {
    fn default() -> Self {
        Self {
            failures: Mutex::default(),
            hashing: tokio::sync::Semaphore::new(4),
        }
    }
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebState(..)")
    }
}

const LOCK_FAILURES: u32 = 5;
const LOCK_WINDOW_MS: i64 = 15 * 60_000;
/// Emails tracked at once; past it, new emails wait for the window to pass.
const TRACKED_EMAILS: usize = 10_000;

impl WebState {
    /// Counts a password attempt for `email` before it is checked; false when the email
    /// has used its attempts in the window (15 minutes from its first failure), so a
    /// burst of parallel guesses gets no more tries than a sequence.
    pub fn begin_attempt(&self, email: &str, now: i64) -> bool {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= TRACKED_EMAILS {
            map.retain(|_, (_, since)| now - *since < LOCK_WINDOW_MS);
        }
        if map.len() >= TRACKED_EMAILS && !map.contains_key(email) {
            return false;
        }
        let e = map.entry(email.to_owned()).or_insert((0, now));
        if now - e.1 >= LOCK_WINDOW_MS {
            *e = (0, now);
        }
        if e.0 >= LOCK_FAILURES {
            return false;
        }
        e.0 += 1;
        true
    }

    /// Forgets the attempts after a good password.
    pub fn succeeded(&self, email: &str) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(email);
    }
}

/// A cookie's value from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(name: &str, value: &str, path: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("tapkit_invalid=; Max-Age=0"))
}

impl Session {
    /// Reads and checks the role's session cookie.
    pub async fn from_headers(
        s: &AppState,
        headers: &HeaderMap,
        role: Role,
    ) -> Result<Option<Self>, StoreError> {
        let Some(raw) = cookie(headers, role.cookie()) else {
            return Ok(None);
        };
        let Some((id, mac)) = raw.split_once('.') else {
            return Ok(None);
        };
        if id.len() != 64 || !s.keys.web_verify(role.as_str(), id, mac) {
            return Ok(None);
        }
        let id_hash = token_hash(id);
        let Some(row) = s.store.session(&id_hash).await? else {
            return Ok(None);
        };
        if row.subject != role.as_str() || row.expires_at <= now_ms() {
            return Ok(None);
        }
        Ok(Some(Self {
            role,
            subject_id: row.subject_id,
            csrf: s.keys.web_mac("csrf", id),
            id_hash,
        }))
    }

    /// Starts a session; returns the Set-Cookie header.
    pub async fn start(
        s: &AppState,
        role: Role,
        subject_id: i64,
    ) -> Result<HeaderValue, StoreError> {
        let id = random_hex();
        let now = now_ms();
        s.store
            .add_session(
                &token_hash(&id),
                role.as_str(),
                subject_id,
                now,
                now + role.lifetime_ms(),
            )
            .await?;
        Ok(set_cookie(
            role.cookie(),
            &format!("{id}.{}", s.keys.web_mac(role.as_str(), &id)),
            role.base(),
            role.lifetime_ms() / 1000,
        ))
    }

    /// Ends the session; returns the Set-Cookie header that clears the cookie.
    pub async fn end(&self, s: &AppState) -> Result<HeaderValue, StoreError> {
        s.store.delete_session(&self.id_hash).await?;
        Ok(set_cookie(self.role.cookie(), "", self.role.base(), 0))
    }

    /// Whether a posted form token belongs to this session.
    pub fn csrf_ok(&self, token: &str) -> bool {
        crate::keys::constant_eq(token.as_bytes(), self.csrf.as_bytes())
    }
}

/// The pre-session of the sign-in forms: its cookie value (new or the browser's), the
/// Set-Cookie header when new, and the form token.
pub fn pre_session(s: &AppState, headers: &HeaderMap) -> (Option<HeaderValue>, String) {
    let existing = cookie(headers, "tapkit_pre").filter(|v| v.len() == 64);
    let (value, set) = match existing {
        Some(v) => (v.to_owned(), None),
        None => {
            let v = random_hex();
            let h = set_cookie("tapkit_pre", &v, "/", 3600);
            (v, Some(h))
        }
    };
    let token = s.keys.web_mac("pre", &value);
    (set, token)
}

/// Whether a sign-in form's token matches the browser's pre-session cookie.
pub fn pre_session_ok(s: &AppState, headers: &HeaderMap, token: &str) -> bool {
    cookie(headers, "tapkit_pre")
        .is_some_and(|v| v.len() == 64 && s.keys.web_verify("pre", v, token))
}

/// A signed-in admin (else a redirect to the sign-in form).
#[derive(Debug, Clone)]
pub struct AdminSession(pub Session);

/// A signed-in partner and its affiliate (else a redirect to the sign-in form).
#[derive(Debug, Clone)]
pub struct PartnerSession(pub Session, pub Affiliate);

fn to_sign_in(role: Role) -> Response {
    Redirect::to(&format!("{}/sign-in", role.base())).into_response()
}

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        match Session::from_headers(s, &parts.headers, Role::Admin).await {
            Ok(Some(session)) => Ok(Self(session)),
            Ok(None) => Err(to_sign_in(Role::Admin)),
            Err(e) => Err(super::WebError::internal(e).into_response()),
        }
    }
}

impl FromRequestParts<AppState> for PartnerSession {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        match Session::from_headers(s, &parts.headers, Role::Partner).await {
            Ok(Some(session)) => match s.store.affiliate(session.subject_id).await {
                Ok(a) if a.program_id == s.program.id => Ok(Self(session, a)),
                Ok(_) | Err(StoreError::NotFound(_)) => Err(to_sign_in(Role::Partner)),
                Err(e) => Err(super::WebError::internal(e).into_response()),
            },
            Ok(None) => Err(to_sign_in(Role::Partner)),
            Err(e) => Err(super::WebError::internal(e).into_response()),
        }
    }
}

/// A signed-in admin's posted form whose CSRF token matches the session (else the
/// sign-in redirect, or the "form has expired" page).
#[derive(Debug)]
pub struct AdminForm(pub Session, pub super::Fields);

impl axum::extract::FromRequest<AppState> for AdminForm {
    type Rejection = Response;
    async fn from_request(req: axum::extract::Request, s: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let AdminSession(session) = AdminSession::from_request_parts(&mut parts, s).await?;
        let bytes = axum::body::to_bytes(body, 64 * 1024)
            .await
            .map_err(|_| super::csrf_failed(s, Role::Admin))?;
        let fields = super::Fields::parse(&bytes);
        if !session.csrf_ok(fields.get("csrf").unwrap_or("")) {
            return Err(super::csrf_failed(s, Role::Admin));
        }
        Ok(Self(session, fields))
    }
}

/// An argon2id hash (PHC string) of a password.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::PasswordHasher;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no OS randomness: {e}"))?;
    let salt =
        argon2::password_hash::SaltString::encode_b64(&salt).map_err(|e| format!("salt: {e}"))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Checks a password against a stored hash; a missing hash still costs one hash's time.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    use argon2::PasswordVerifier;
    // A fixed hash of a random password for unknown emails: same work, never matches.
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$Y7QlZcHKGn5zt5c3kL5oY4mSPhJ9aOtEt3Fv3r0Q2y4";
    let phc = stored.unwrap_or(DUMMY);
    let Ok(parsed) = argon2::password_hash::PasswordHash::new(phc) else {
        return false;
    };
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
        && stored.is_some()
}

/// How long links last.
pub const ADMIN_MADE_LINK_MS: i64 = 7 * 86_400_000;
/// Emailed links (asked for on the sign-in page) last 30 minutes.
pub const EMAILED_LINK_MS: i64 = 30 * 60_000;

/// Makes a one-time sign-in link for `subject`; returns the full URL.
pub async fn make_link(
    s: &AppState,
    role: Role,
    subject_id: i64,
    lifetime_ms: i64,
) -> Result<String, StoreError> {
    let secret = random_hex();
    let now = now_ms();
    s.store
        .add_link(
            &token_hash(&secret),
            role.as_str(),
            subject_id,
            now,
            now + lifetime_ms,
        )
        .await?;
    Ok(format!(
        "{}{}/link/{secret}",
        s.config.public_url,
        role.base()
    ))
}

/// Sends a sign-in link to `role`'s pages by email (when SMTP is configured);
/// `Ok(false)` when it is not.
pub async fn send_link(
    s: &AppState,
    role: Role,
    to: &str,
    name: &str,
    url: &str,
) -> Result<bool, String> {
    let program = &s.program.name;
    let (place, subject) = match role {
        Role::Admin => (
            format!("the {program} admin console"),
            format!("Your {program} sign-in link"),
        ),
        Role::Partner => (
            format!("the {program} partner portal"),
            format!("Your {program} sign-in link"),
        ),
        Role::Member => (
            format!(
                "your {program} membership page, where you see your plan and the visits you have left"
            ),
            format!("Your {program} membership sign-in link"),
        ),
    };
    let body = format!(
        "Hello {name},\n\nHere is your sign-in link for {place}:\n\n{url}\n\nIt works once. If you did not ask for it, ignore this email.\n"
    );
    send_mail(s, to, &subject, body).await
}

/// Sends a plain-text email through the server's SMTP path (`TAPKIT_SMTP_URL`);
/// `Ok(false)` when none is configured. The error says what to fix.
pub async fn send_mail(
    s: &AppState,
    to: &str,
    subject: &str,
    body: String,
) -> Result<bool, String> {
    send_mail_with(s, to, subject, body, None).await
}

/// [`send_mail`] with a one-click unsubscribe URL (RFC 8058: `List-Unsubscribe` and
/// `List-Unsubscribe-Post`), for emails a person can turn off.
pub async fn send_mail_with(
    s: &AppState,
    to: &str,
    subject: &str,
    body: String,
    unsubscribe: Option<&str>,
) -> Result<bool, String> {
    use lettre::AsyncTransport;
    use lettre::message::header::{HeaderName, HeaderValue};
    let Some(smtp) = &s.config.smtp_url else {
        return Ok(false);
    };
    let smtp = String::from_utf8_lossy(&smtp.0).into_owned();
    let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(&smtp)
        .map_err(|e| format!("TAPKIT_SMTP_URL is not usable: {e}"))?
        .timeout(Some(std::time::Duration::from_secs(20)))
        .build();
    let from = s
        .config
        .mail_from
        .parse::<lettre::message::Mailbox>()
        .map_err(|e| {
            format!(
                "the From address {:?} is not valid: {e}",
                s.config.mail_from
            )
        })?;
    let to_box = to
        .parse::<lettre::message::Mailbox>()
        .map_err(|e| format!("{to:?} is not an email address: {e}"))?;
    let mut msg = lettre::Message::builder()
        .from(from)
        .to(to_box)
        .subject(subject)
        .header(lettre::message::header::ContentType::TEXT_PLAIN);
    if let Some(url) = unsubscribe {
        msg = msg
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{url}>"),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ));
    }
    let msg = msg
        .body(body)
        .map_err(|e| format!("cannot build the email: {e}"))?;
    transport
        .send(msg)
        .await
        .map_err(|e| format!("the mail server refused or could not be reached: {e}"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery staple").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery staple", Some(&h)));
        assert!(!verify_password("wrong", Some(&h)));
        assert!(!verify_password("anything", None));
        assert!(!verify_password("x", Some("not a phc string")));
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a_tapkit_pre=no; tapkit_pre=yes"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("tapkit_admin=x.y"));
        assert_eq!(cookie(&h, "tapkit_pre"), Some("yes"));
        assert_eq!(cookie(&h, "tapkit_admin"), Some("x.y"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn five_attempts_per_window() {
        let w = WebState::default();
        for _ in 0..5 {
            assert!(w.begin_attempt("a@example.com", 1000));
        }
        assert!(!w.begin_attempt("a@example.com", 2000));
        assert!(w.begin_attempt("b@example.com", 2000), "per email");
        assert!(w.begin_attempt("a@example.com", 1000 + LOCK_WINDOW_MS));
        w.succeeded("a@example.com");
        assert!(w.begin_attempt("a@example.com", 2000));
    }

    #[test]
    fn dummy_hash_is_well_formed() {
        // Unknown emails must cost a real verification, so the decoy has to parse.
        let t = std::time::Instant::now();
        assert!(!verify_password("x", None));
        let decoy = t.elapsed();
        let h = hash_password("x").unwrap();
        let t = std::time::Instant::now();
        assert!(verify_password("x", Some(&h)));
        assert!(
            decoy * 4 > t.elapsed(),
            "decoy {decoy:?} vs real {:?}",
            t.elapsed()
        );
    }
}

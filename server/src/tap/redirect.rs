//! `GET /r/{code}`: check the code, find the affiliate, detect the channel (NFC card with
//! its UID/counter mirror, printed QR, plain link), log the click (with a keyed hash of
//! the IP), set the first-party cookie pair, and redirect to the booking site. Every
//! refusal still redirects, without attribution, with the reason recorded.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tapkit_core::code::ReferralCode;
use tapkit_core::ntag::parse_mirror_text;

use crate::AppState;
use crate::api::ApiError;
use crate::store::{NewClick, Utm, now_ms};
use crate::tap::directory::{Listed, ListedCard, Miss};

/// The HttpOnly attribution cookie.
pub const COOKIE: &str = "tapkit_ref";
/// Its copy readable by the checkout's JavaScript.
pub const COOKIE_JS: &str = "tapkit_ref_js";

/// The parts of every redirect that never change while the server runs, built once at
/// start: the `Location` header and the cookies' attributes.
#[derive(Debug, Clone)]
pub struct Answer {
    location: HeaderValue,
    /// `; Max-Age=…; Path=/; Secure; SameSite=Lax[; Domain=…]`.
    cookie_attrs: String,
}

impl Answer {
    /// Builds them from the program and the configured cookie domain (checked by the
    /// config loader: both fit in a header).
    pub fn new(
        program: &crate::store::Program,
        cookie_domain: Option<&str>,
    ) -> Result<Self, String> {
        let location = HeaderValue::from_str(&program.booking_url).map_err(|_| {
            format!(
                "the booking URL {:?} cannot be sent as a Location header",
                program.booking_url
            )
        })?;
        let mut cookie_attrs = format!(
            "; Max-Age={}; Path=/; Secure; SameSite=Lax",
            program.cookie_days * 86_400
        );
        // An empty Domain attribute is ignored by browsers (RFC 6265 §5.2.3): none.
        if let Some(d) = cookie_domain.filter(|d| !d.is_empty()) {
            cookie_attrs.push_str("; Domain=");
            cookie_attrs.push_str(d);
        }
        HeaderValue::from_str(&cookie_attrs)
            .map_err(|_| format!("the cookie domain {cookie_domain:?} cannot go into a cookie"))?;
        Ok(Self {
            location,
            cookie_attrs,
        })
    }

    /// The pair of `Set-Cookie` values carrying `token`.
    fn cookies(&self, token: &str) -> [Option<HeaderValue>; 2] {
        let one = |name: &str, http_only: bool| {
            let mut c =
                String::with_capacity(name.len() + token.len() + self.cookie_attrs.len() + 12);
            c.push_str(name);
            c.push('=');
            c.push_str(token);
            c.push_str(&self.cookie_attrs);
            if http_only {
                c.push_str("; HttpOnly");
            }
            HeaderValue::from_str(&c).ok()
        };
        [one(COOKIE, true), one(COOKIE_JS, false)]
    }
}

/// Query parameters a tap or scan may carry.
#[derive(Debug, Default)]
pub struct Params {
    /// UID/counter mirror from the NTAG chip: `04A1B2C3D4E5F6x00002A`.
    m: Option<String>,
    /// Source: `qr` for printed QR codes.
    s: Option<String>,
    /// Kiosk token (the counter display's rotating QR).
    k: Option<String>,
    /// NTAG 424 DNA SUN: the encrypted PICCData (32 hex digits).
    e: Option<String>,
    /// NTAG 424 DNA SUN: the read's MAC (16 hex digits).
    c: Option<String>,
    /// `utm_source`, `utm_medium`, `utm_campaign`, when the link carried any.
    utm: Option<Box<Utm>>,
}

impl Params {
    /// Lenient parsing: any query string is accepted (first value of a repeated key
    /// wins, unknown keys are ignored), so a customer always gets the redirect, never an
    /// error page.
    fn parse(q: Option<&str>) -> Self {
        let mut p = Self::default();
        for pair in q.unwrap_or("").split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let short = || v.chars().take(64).collect::<String>();
            match k {
                "m" if p.m.is_none() => p.m = Some(short()),
                "s" if p.s.is_none() => p.s = Some(short()),
                "k" if p.k.is_none() => p.k = Some(short()),
                "e" if p.e.is_none() => p.e = Some(short()),
                "c" if p.c.is_none() => p.c = Some(short()),
                "utm_source" | "utm_medium" | "utm_campaign" => {
                    let utm = p.utm.get_or_insert_with(Box::default);
                    let slot = match k {
                        "utm_source" => &mut utm.source,
                        "utm_medium" => &mut utm.medium,
                        _ => &mut utm.campaign,
                    };
                    if slot.is_none() {
                        *slot = utm_value(v);
                    }
                }
                _ => {}
            }
        }
        p
    }
}

/// A `utm_*` value as stored: percent-decoded (`+` is a space), invalid UTF-8 replaced,
/// control characters dropped, trimmed, at most [`Utm::MAX_CHARS`] characters; `None`
/// when nothing is left.
fn utm_value(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let mut bytes = Vec::with_capacity(b.len().min(4 * Utm::MAX_CHARS));
    let mut i = 0;
    // Enough input for MAX_CHARS characters of up to 4 bytes, each up to 3 bytes encoded.
    while i < b.len() && bytes.len() < 4 * Utm::MAX_CHARS {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    bytes.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                    i += 3;
                }
                _ => {
                    bytes.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                bytes.push(b' ');
                i += 1;
            }
            c => {
                bytes.push(c);
                i += 1;
            }
        }
    }
    let text: String = String::from_utf8_lossy(&bytes)
        .chars()
        .filter(|c| !c.is_control())
        .take(Utm::MAX_CHARS)
        .collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Link-preview fetchers and crawlers: they get the redirect but no cookie and count
/// as previews, not clicks.
const PREVIEW_AGENTS: [&str; 16] = [
    "facebookexternalhit",
    "facebot",
    "twitterbot",
    "slackbot",
    "whatsapp",
    "telegrambot",
    "discordbot",
    "linkedinbot",
    "skypeuripreview",
    "googlebot",
    "bingbot",
    "applebot",
    "redditbot",
    "embedly",
    "pinterest",
    "viber",
];

fn is_preview(method: &Method, ua: &str) -> bool {
    if method == Method::HEAD {
        return true;
    }
    let ua = ua.to_ascii_lowercase();
    ua.is_empty()
        || PREVIEW_AGENTS.iter().any(|p| ua.contains(p))
        || ua.contains("bot/")
        || ua.contains("crawler")
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
}

/// The tapped path segment as the click records it: its first 40 characters, each
/// control character (a `%00` in the URL, say) as U+FFFD. PostgreSQL cannot store a NUL
/// in text: one such tap used to fail its whole batch of clicks with it, 500 for every
/// customer whose click was in it.
fn stored_code(raw: &str) -> String {
    raw.chars()
        .take(40)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

fn truncated(h: &HeaderMap, name: header::HeaderName) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(400).collect())
}

/// The tap / scan / link handler.
pub async fn tap(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut params = Params::parse(query.as_deref());
    let program = &s.program;
    let now = now_ms();
    let mut click = NewClick {
        at: now,
        code: stored_code(&raw),
        affiliate_id: None,
        channel: if params.m.is_some() || params.e.is_some() || params.c.is_some() {
            "nfc"
        } else if params.k.is_some() {
            "kiosk"
        } else if params.s.as_deref() == Some("qr") {
            "qr"
        } else {
            "link"
        },
        card_id: None,
        counter: None,
        utm: params.utm.take(),
        user_agent: truncated(&headers, header::USER_AGENT).filter(|u| !u.is_empty()),
        referer: truncated(&headers, header::REFERER),
        ip_hash: s
            .ip_keys
            .hash(
                &s.store,
                now,
                s.config.trusted_proxies.client_ip(peer.ip(), &headers),
            )
            .await?,
        outcome: "unattributed",
        reason: None,
        rate_limit: false,
        check_counter: false,
    };
    let redirect = |cookies: [Option<HeaderValue>; 2]| {
        let mut r = StatusCode::FOUND.into_response();
        let h = r.headers_mut();
        h.insert(header::LOCATION, s.answer.location.clone());
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for c in cookies.into_iter().flatten() {
            h.append(header::SET_COOKIE, c);
        }
        r
    };
    let none = || [None, None];

    // The check symbol catches typos before any database lookup.
    let Ok(code) = ReferralCode::parse(&raw) else {
        click.reason = Some("invalid_code");
        s.clicks.record(click).await?;
        return Ok(redirect(none()));
    };
    click.code = code.to_string();
    // The in-memory directory first; the database for a code created elsewhere just now.
    let aff = match s.directory.lookup(code.as_str()) {
        Some(a) => Some(a),
        None if s.directory.known_missing(Miss::Code, code.as_str()) => None,
        None => {
            let epoch = s.directory.epoch();
            s.directory.looked_up();
            let found = s
                .store
                .affiliate_by_code(code.as_str())
                .await?
                .filter(|a| a.program_id == program.id)
                .map(|a| Listed {
                    id: a.id,
                    active: a.status == "active",
                    expires_at: a.expires_at,
                });
            if found.is_none() {
                s.directory.note_missing(Miss::Code, code.as_str(), epoch);
            }
            found
        }
    };
    let Some(aff) = aff else {
        click.reason = Some("unknown_code");
        s.clicks.record(click).await?;
        return Ok(redirect(none()));
    };
    click.affiliate_id = Some(aff.id);

    let preview = is_preview(&method, click.user_agent.as_deref().unwrap_or(""));
    let reason = if preview {
        click.outcome = "preview";
        Some("link_preview")
    } else if !aff.active {
        Some("affiliate_suspended")
    } else if aff.expires_at.is_some_and(|e| now >= e) {
        Some("link_expired")
    } else if s.directory.killed(aff.id, click.channel) {
        Some("channel_killed")
    } else if params.e.is_some() || params.c.is_some() {
        let (e, c) = (params.e.as_deref(), params.c.as_deref());
        sun_check(&s, &mut click, aff.id, e.unwrap_or(""), c.unwrap_or("")).await?
    } else if let Some(m) = &params.m {
        nfc_check(&s, &mut click, aff.id, m).await?
    } else if let Some(k) = &params.k {
        match crate::kiosks::check_token(&s, aff.id, k, now).await? {
            Some((r, true)) => {
                click.outcome = "flagged";
                Some(r)
            }
            Some((r, false)) => Some(r),
            None => None,
        }
    } else {
        None
    };
    if let Some(r) = reason {
        click.reason = Some(r);
        if matches!(
            r,
            "replayed_counter"
                | "card_not_registered"
                | "card_of_another_affiliate"
                | "bad_sun_mac"
                | "bad_sun_data"
                | "card_needs_sun"
        ) {
            click.outcome = "flagged";
        }
        s.clicks.record(click).await?;
        return Ok(redirect(none()));
    }
    // From here the click would count: the per-IP limit applies (decided by the writer,
    // inside the transaction that stores the click).
    click.rate_limit = true;
    // First-touch keeps a valid existing attribution; last-touch replaces it.
    let existing = cookie_value(&headers, COOKIE).and_then(|v| s.keys.verify_attribution(&v));
    if existing.is_some() && !program.last_touch {
        click.reason = Some("earlier_attribution_kept");
        s.clicks.record(click).await?;
        return Ok(redirect(none()));
    }
    click.outcome = "attributed";
    // Committed before the 302 leaves.
    let written = s.clicks.record(click).await?;
    if written.outcome != "attributed" {
        return Ok(redirect(none()));
    }
    let token = s.keys.sign_attribution(written.id, now);
    Ok(redirect(s.answer.cookies(&token)))
}

/// Checks an NFC tap's mirror: the card must be registered to this affiliate and its
/// counter must rise. Returns the reason to withhold attribution, if any.
async fn nfc_check(
    s: &AppState,
    click: &mut NewClick,
    affiliate_id: i64,
    m: &str,
) -> Result<Option<&'static str>, ApiError> {
    let Some((uid, counter)) = parse_mirror_text(m) else {
        return Ok(Some("bad_mirror"));
    };
    let uid_hex = tapkit_core::hex::encode(&uid);
    click.counter = Some(i64::from(counter));
    let card = find_card(s, &uid_hex).await?;
    let Some(card) = card else {
        return Ok(Some("card_not_registered"));
    };
    click.card_id = Some(card.id);
    if card.affiliate_id != affiliate_id {
        return Ok(Some("card_of_another_affiliate"));
    }
    if !card.active {
        return Ok(Some("card_revoked"));
    }
    if card.key_version.is_some() {
        // A 424 card signs its taps; a plain mirror naming its UID was made up.
        return Ok(Some("card_needs_sun"));
    }
    // The counter is checked and advanced by the click writer, in the transaction that
    // stores this click (exact across batches and replicas).
    click.check_counter = true;
    Ok(None)
}

/// A card binding by UID: the directory first, the database for a card registered
/// elsewhere just now.
async fn find_card(s: &AppState, uid_hex: &str) -> Result<Option<ListedCard>, ApiError> {
    if let Some(c) = s.directory.card(uid_hex) {
        return Ok(Some(c));
    }
    if s.directory.known_missing(Miss::Card, uid_hex) {
        return Ok(None);
    }
    let epoch = s.directory.epoch();
    s.directory.looked_up();
    let found = s
        .store
        .latest_card(uid_hex)
        .await?
        .map(|c| ListedCard::new(c.id, c.affiliate_id, &c.status, c.key_version));
    if found.is_none() {
        s.directory.note_missing(Miss::Card, uid_hex, epoch);
    }
    Ok(found)
}

/// Checks an NTAG 424 DNA tap's SUN (`e`, `c`: [`crate::tap::sun`]): a card registered
/// to this affiliate under the key version `e` decrypts with, a MAC that verifies, and
/// (in the writer) a counter that rises. Returns the reason to withhold attribution.
async fn sun_check(
    s: &AppState,
    click: &mut NewClick,
    affiliate_id: i64,
    e: &str,
    c: &str,
) -> Result<Option<&'static str>, ApiError> {
    let Some(keys) = s.config.sun_keys.as_deref() else {
        // No keys: the tap cannot be checked, so it earns nothing (and says why).
        return Ok(Some("sun_keys_missing"));
    };
    let Ok(found) = keys.decrypt(e) else {
        return Ok(Some("bad_sun_data"));
    };
    if found.is_empty() {
        // Not this brand's keys: another deployment's card, or a forged URL.
        return Ok(Some("bad_sun_data"));
    }
    for (version, picc) in found {
        let uid_hex = tapkit_core::hex::encode(&picc.uid);
        let Some(card) = find_card(s, &uid_hex).await? else {
            continue;
        };
        if card.key_version != Some(version) {
            continue;
        }
        click.card_id = Some(card.id);
        click.counter = Some(i64::from(picc.counter));
        if !keys.mac_ok(version, &picc, c) {
            return Ok(Some("bad_sun_mac"));
        }
        if card.affiliate_id != affiliate_id {
            return Ok(Some("card_of_another_affiliate"));
        }
        if !card.active {
            return Ok(Some("card_revoked"));
        }
        click.check_counter = true;
        return Ok(None);
    }
    Ok(Some("card_not_registered"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utm_tags_are_decoded_cleaned_and_bounded() {
        let p = Params::parse(Some(
            "utm_source=WhatsApp&utm_medium=share%20sheet&utm_campaign=spring+%E2%82%AC10&utm_source=second",
        ));
        let u = p.utm.unwrap();
        assert_eq!(
            u.source.as_deref(),
            Some("WhatsApp"),
            "the first value wins"
        );
        assert_eq!(u.medium.as_deref(), Some("share sheet"));
        assert_eq!(u.campaign.as_deref(), Some("spring €10"));
        assert!(Params::parse(Some("m=04A1B2C3D4E5F6x000001")).utm.is_none());
        for (raw, want) in [
            ("%0Aevil%0D%1B[31m", Some("evil[31m")),
            ("%", Some("%")),
            ("%zz", Some("%zz")),
            ("%E2%82", Some("\u{fffd}")),
            ("+++", None),
            ("", None),
        ] {
            assert_eq!(utm_value(raw).as_deref(), want, "{raw:?}");
        }
        let long = "x".repeat(5000);
        assert_eq!(utm_value(&long).unwrap().chars().count(), Utm::MAX_CHARS);
        let long = "%E2%82%AC".repeat(500);
        assert_eq!(utm_value(&long).unwrap(), "€".repeat(Utm::MAX_CHARS));
    }
}

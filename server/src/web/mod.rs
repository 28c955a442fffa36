//! The admin console (`/admin`) and the partner portal (`/portal`): server-rendered
//! HTML (maud escapes every value), one round trip per page (the stylesheet is inline,
//! charts are inline SVG, the only script is a progressive "copy link" button), usable
//! at phone and desktop width.
//!
//! [`auth`] signs people in; [`admin`] and [`portal`] are the pages; [`chart`] draws the
//! SVG charts; their queries live in [`crate::store::web`].

pub mod admin;
pub mod auth;
pub mod chart;
pub mod error;
pub mod member;
pub mod portal;
pub mod refer;
pub mod signin;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::AppState;
use auth::Role;
pub use error::WebError;

/// The console's and portal's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(admin::routes())
        .merge(portal::routes())
        .merge(member::routes())
        .merge(refer::routes())
}

/// `2026-11-21 14:03 UTC` for a Unix ms time.
pub fn when(ms: i64) -> String {
    let day = ms.div_euclid(86_400_000);
    let mins = ms.rem_euclid(86_400_000) / 60_000;
    format!(
        "{} {:02}:{:02} UTC",
        tapkit_core::date::format_date(day),
        mins / 60,
        mins % 60
    )
}

/// `2026-11-21T14:03:05Z` for exports.
pub fn iso_time(ms: i64) -> String {
    let day = ms.div_euclid(86_400_000);
    let secs = ms.rem_euclid(86_400_000) / 1000;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        tapkit_core::date::format_date(day),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The date part of a Unix ms time.
pub fn date(ms: i64) -> String {
    tapkit_core::date::format_date(ms.div_euclid(86_400_000))
}

const CSS: &str = r#"
:root{--fg:#1b1f24;--muted:#4a5560;--line:#d0d7de;--bg:#f6f8fa;--brand:#0a58a8;--brand-dark:#084482;--ok-fg:#0f5b28;--ok-bg:#e3f4e8;--bad-fg:#8a1c1c;--bad-bg:#fde8e8;--warn-fg:#6b4a00;--warn-bg:#fff4d6}
*{box-sizing:border-box}
html{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",Arial,sans-serif;font-size:16px;line-height:1.5;color:var(--fg);background:#fff}
body{margin:0}
a{color:var(--brand)}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,summary:focus-visible{outline:3px solid #f0a500;outline-offset:2px}
.skip{position:absolute;left:-999px;top:0;background:#fff;padding:.5rem 1rem;z-index:10}
.skip:focus{left:.5rem}
header.top{background:var(--brand-dark);color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center}
header.top .brand{font-weight:700;font-size:1.1rem;color:#fff;text-decoration:none}
header.top nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.25rem .75rem}
header.top nav a{color:#fff;text-decoration:none;padding:.35rem .25rem;display:inline-block;border-bottom:2px solid transparent}
header.top nav a[aria-current=page]{border-bottom-color:#fff;font-weight:600}
header.top form{margin-left:auto}
header.top button{background:transparent;color:#fff;border:1px solid #fff;min-height:2.25rem}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.6rem;margin:.5rem 0 1rem}
h2{font-size:1.25rem;margin:1.75rem 0 .75rem}
h3{font-size:1.05rem;margin:1.25rem 0 .5rem}
p.lead{color:var(--muted);margin-top:-.5rem}
.muted{color:var(--muted)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(10rem,1fr));gap:.75rem}
.stat{border:1px solid var(--line);border-radius:.5rem;padding:.75rem;background:var(--bg)}
.stat .v{font-size:1.5rem;font-weight:700;display:block}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:.95rem}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--bg);font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
form.inline{display:inline}
.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end}
label{display:block;font-weight:600;margin:.5rem 0 .2rem}
.row label{margin-top:0}
input,select{font:inherit;padding:.45rem .55rem;border:1px solid #6e7781;border-radius:.35rem;min-height:2.75rem;max-width:100%;background:#fff;color:var(--fg)}
input[type=checkbox]{min-height:auto;width:1.25rem;height:1.25rem}
button,.button{font:inherit;display:inline-block;padding:.5rem 1rem;min-height:2.75rem;border-radius:.35rem;border:1px solid var(--brand);background:var(--brand);color:#fff;cursor:pointer;text-decoration:none;line-height:1.6}
button.secondary,.button.secondary{background:#fff;color:var(--brand)}
button.danger{background:#a61b1b;border-color:#a61b1b}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:1rem;font-size:.85rem;font-weight:600}
.ok{background:var(--ok-bg);color:var(--ok-fg)}
.bad{background:var(--bad-bg);color:var(--bad-fg)}
.warn{background:var(--warn-bg);color:var(--warn-fg)}
.notice{padding:.75rem 1rem;border-radius:.5rem;margin:0 0 1rem;border:1px solid currentColor}
.panel{border:1px solid var(--line);border-radius:.5rem;padding:1rem;margin:0 0 1rem}
.linkbox{display:flex;flex-wrap:wrap;gap:.5rem}
.linkbox input{flex:1 1 16rem;font-family:ui-monospace,Menlo,Consolas,monospace}
.qr{width:12rem;height:12rem;border:1px solid var(--line);background:#fff}
.legend{display:flex;flex-wrap:wrap;gap:.25rem 1rem;margin:.25rem 0;font-size:.9rem;padding:0;list-style:none}
.legend i{display:inline-block;width:.9rem;height:.9rem;margin-right:.3rem;vertical-align:-.1rem;border-radius:.15rem}
svg.chart{width:100%;height:auto;max-height:16rem;display:block}
.signin{max-width:26rem;margin:2rem auto}
.signin input{width:100%}
.progress{height:.75rem;background:var(--line);border-radius:1rem;overflow:hidden;max-width:24rem}
.progress span{display:block;height:100%;background:var(--ok-fg)}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}
dl.kv dt{font-weight:600}
dl.kv dd{margin:0;overflow-wrap:anywhere}
@media (max-width:40rem){header.top form{margin-left:0}h1{font-size:1.35rem}main{padding:.75rem}dl.kv{grid-template-columns:1fr}dl.kv dd{margin-bottom:.5rem}}
"#;

/// A navigation entry: label and path.
pub type Nav = &'static [(&'static str, &'static str)];

/// The page shell: header with navigation (and sign-out when signed in), the content.
pub fn page(
    s: &AppState,
    role: Role,
    title: &str,
    current: &str,
    csrf: Option<&str>,
    body: Markup,
) -> Markup {
    let (area, nav): (&str, Nav) = match role {
        Role::Admin => ("Admin", admin::NAV),
        Role::Partner => ("Partner portal", portal::NAV),
        Role::Member => ("Membership", &[]),
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                // No favicon request: the page is the one round trip.
                link rel="icon" href="data:,";
                title { (title) " · " (s.program.name) " " (area) }
                style { (PreEscaped(CSS)) }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href=(role.base()) { (s.program.name) " · " (area) }
                    @if let Some(csrf) = csrf {
                        nav aria-label="Main" {
                            ul {
                                @for (label, path) in nav {
                                    li {
                                        @if *path == current {
                                            a href=(path) aria-current="page" { (label) }
                                        } @else {
                                            a href=(path) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        form method="post" action={(role.base()) "/sign-out"} {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    (body)
                }
            }
        }
    }
}

/// A signed-in page of the session's area.
pub fn shell(
    s: &AppState,
    sess: &auth::Session,
    title: &str,
    current: &str,
    body: Markup,
) -> Response {
    respond(
        StatusCode::OK,
        &page(s, sess.role, title, current, Some(&sess.csrf), body),
    )
}

/// An HTML response with the security headers every page gets.
pub fn respond(status: StatusCode, markup: &Markup) -> Response {
    let mut r = (status, markup.clone().into_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(h);
    r
}

/// [`respond`], also setting a cookie when one is given (the sign-in forms'
/// pre-session).
pub fn respond_setting(
    status: StatusCode,
    markup: &Markup,
    cookie: Option<HeaderValue>,
) -> Response {
    let mut r = respond(status, markup);
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// The one script of the console and the portal: it shows the portal's "Copy link"
/// button and copies the link. It is inline, so a page still loads in one round trip,
/// and the CSP allows it by its SHA-256 ([`CSP`]): no other inline script can run, an
/// injected one included, without `'unsafe-inline'`.
pub const COPY_SCRIPT: &str = "document.querySelectorAll('[data-copy]').forEach(function(b){b.hidden=false;b.addEventListener('click',function(){var i=document.getElementById(b.getAttribute('data-copy'));var done=function(){b.textContent='Copied';setTimeout(function(){b.textContent='Copy link'},2000)};if(navigator.clipboard){navigator.clipboard.writeText(i.value).then(done,function(){i.select()})}else{i.select()}})})";

/// The pages' Content-Security-Policy: nothing from elsewhere, and of scripts only
/// [`COPY_SCRIPT`], named by its hash.
pub static CSP: std::sync::LazyLock<HeaderValue> = std::sync::LazyLock::new(|| {
    use sha2::Digest;
    let hash = tapkit_core::base64::encode(&sha2::Sha256::digest(COPY_SCRIPT.as_bytes()));
    HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; script-src 'sha256-{hash}'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ))
    .expect("a policy of ASCII text is a header value")
});

/// No caching of personal pages, no framing, no foreign scripts.
pub fn secure_headers(h: &mut axum::http::HeaderMap) {
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, private"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CONTENT_SECURITY_POLICY, CSP.clone());
}

/// A page-sized message (errors of forms that cannot be shown in place).
pub fn message_page(
    s: &AppState,
    role: Role,
    status: StatusCode,
    title: &str,
    text: &str,
    back: &str,
) -> Response {
    let body = html! {
        h1 { (title) }
        p role="alert" { (text) }
        p { a href=(back) { "Go back" } }
    };
    respond(status, &page(s, role, title, "", None, body))
}

/// The answer to a form whose CSRF token is missing or wrong.
pub fn csrf_failed(s: &AppState, role: Role) -> Response {
    message_page(
        s,
        role,
        StatusCode::FORBIDDEN,
        "This form has expired",
        "The form did not carry this session's security token (it is older than your sign-in, or it came from another site). Go back, reload the page and try again.",
        role.base(),
    )
}

/// A downloadable file.
pub fn download(content_type: &'static str, filename: &str, body: Vec<u8>) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, private"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// A channel's display name.
pub fn channel_name(c: &str) -> &str {
    match c {
        "nfc" => "NFC card",
        "qr" => "Printed QR",
        "kiosk" => "Counter display",
        "link" => "Link",
        other => other,
    }
}

/// Money as people read it (`12.50 USD`, `2 x free-wash`).
pub fn money(amount: i64, unit: &str) -> String {
    crate::money::payouts::money(amount, unit)
}

/// Date range of a page's query (`from`/`to` as `YYYY-MM-DD`; default the last 30
/// days), as day numbers, or what is wrong with it.
pub fn day_range(from: Option<&str>, to: Option<&str>) -> Result<(i64, i64), String> {
    use tapkit_core::date::parse_date;
    let today = crate::store::now_ms() / 86_400_000;
    let parse = |name: &str, v: Option<&str>, default: i64| match v.map(str::trim) {
        None | Some("") => Ok(default),
        Some(t) => {
            parse_date(t).ok_or_else(|| format!("{name} {t:?} is not a date like 2026-11-21"))
        }
    };
    let to = parse("to", to, today)?;
    let from = parse("from", from, to - 29)?;
    if from > to {
        return Err("the start date is after the end date".into());
    }
    if to - from > 366 {
        return Err("choose at most 367 days at a time".into());
    }
    Ok((from, to))
}

/// A form's fields (url-encoded body), tolerant of repeats (the last wins, except
/// through [`Fields::all`]).
#[derive(Debug, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Parses an url-encoded body or query.
    pub fn parse(raw: &[u8]) -> Self {
        Self(
            form_urlencoded_pairs(raw)
                .into_iter()
                .collect::<Vec<(String, String)>>(),
        )
    }
    /// A field's last value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// Every value of a repeated field.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A page's query string as [`Fields`] (`?from=…&to=…`), empty when there is none.
#[derive(Debug, Default)]
pub struct QueryFields(pub Fields);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for QueryFields {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(Fields::parse(
            parts.uri.query().unwrap_or_default().as_bytes(),
        )))
    }
}

fn form_urlencoded_pairs(raw: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &[u8]) -> String {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => {
                    let hex = |c: u8| (c as char).to_digit(16);
                    match (hex(s[i + 1]), hex(s[i + 2])) {
                        (Some(h), Some(l)) => {
                            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                            i += 2;
                        }
                        _ => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    raw.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = match p.iter().position(|b| *b == b'=') {
                Some(i) => (&p[..i], &p[i + 1..]),
                None => (p, &p[..0]),
            };
            (decode(k), decode(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_leniently_and_never_panic() {
        let f = Fields::parse(b"a=1&b=x+y%21&id=3&id=4&c=%zz&d=%4&e");
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.get("b"), Some("x y!"));
        assert_eq!(f.all("id"), vec!["3", "4"]);
        assert_eq!(f.get("c"), Some("%zz"));
        assert_eq!(f.get("d"), Some("%4"));
        assert_eq!(f.get("e"), Some(""));
        assert_eq!(Fields::parse(b"%").get("%"), Some(""));
        assert_eq!(Fields::parse("k=%C3%A9".as_bytes()).get("k"), Some("é"));
    }

    #[test]
    fn times_read_in_utc() {
        assert_eq!(when(0), "1970-01-01 00:00 UTC");
        assert_eq!(iso_time(86_400_000 + 3_661_000), "1970-01-02T01:01:01Z");
        assert_eq!(date(-1), "1969-12-31");
    }

    #[test]
    fn date_ranges_are_checked() {
        assert!(day_range(Some("2026-11-01"), Some("2026-11-30")).is_ok());
        assert!(day_range(Some("2026-12-01"), Some("2026-11-30")).is_err());
        assert!(day_range(Some("yesterday"), None).is_err());
        assert!(day_range(Some("2024-01-01"), Some("2026-01-01")).is_err());
    }
}

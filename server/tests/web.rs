//! The console and the portal through the real router on SQLite and PostgreSQL: who may
//! open what (anonymous, the wrong partner, a partner on admin URLs), CSRF on every
//! form, passwords and lockout, one-time links, sign-out, email sign-in requests through
//! a real SMTP conversation, and the pages' content and downloads.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{Backend, Server, server, server_with};
use tapkit_server::config::ProgramConfig;
use tapkit_server::store::now_ms;
use tapkit_server::web::auth::{ADMIN_MADE_LINK_MS, Role, hash_password, make_link};

/// A browser over the in-process router: keeps cookies by name and path, sends a cookie
/// only under its path, follows nothing.
#[derive(Default, Clone)]
struct Browser {
    cookies: HashMap<String, (String, String)>,
}

struct Page {
    status: StatusCode,
    location: String,
    body: String,
    bytes: Vec<u8>,
    content_type: String,
    /// The Content-Security-Policy header, if any.
    csp: String,
}

impl Browser {
    async fn send(&mut self, s: &Server, method: Method, path: &str, form: Option<&str>) -> Page {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .filter(|(_, (_, p))| path.starts_with(p.as_str()))
            .map(|(k, (v, _))| format!("{k}={v}"))
            .collect();
        let mut req = Request::builder().method(method).uri(path);
        if !cookie.is_empty() {
            req = req.header(header::COOKIE, cookie.join("; "));
        }
        if form.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let r = s
            .call(req.body(Body::from(form.unwrap_or("").to_owned())).unwrap())
            .await;
        for c in r.headers().get_all(header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            assert!(
                !c.starts_with("tapkit_admin")
                    && !c.starts_with("tapkit_portal")
                    && !c.starts_with("tapkit_pre")
                    || (c.contains("HttpOnly")
                        && c.contains("Secure")
                        && c.contains("SameSite=Strict")),
                "session cookies are HttpOnly, Secure, SameSite=Strict: {c}"
            );
            let (kv, rest) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            let path = rest
                .split(';')
                .find_map(|a| a.trim().strip_prefix("Path="))
                .unwrap_or("/")
                .to_owned();
            if rest.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), (v.to_owned(), path));
            }
        }
        let status = r.status();
        let location = r
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let header_text = |name: header::HeaderName| {
            r.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let content_type = header_text(header::CONTENT_TYPE);
        let csp = header_text(header::CONTENT_SECURITY_POLICY);
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 26)
            .await
            .unwrap()
            .to_vec();
        Page {
            status,
            location,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
            content_type,
            csp,
        }
    }

    async fn get(&mut self, s: &Server, path: &str) -> Page {
        self.send(s, Method::GET, path, None).await
    }

    async fn post(&mut self, s: &Server, path: &str, form: &str) -> Page {
        self.send(s, Method::POST, path, Some(form)).await
    }
}

fn csrf_of(html: &str) -> String {
    let i = html
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF token in the form:\n{html}"));
    let rest = &html[i + 19..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn admin_signed_in(s: &Server) -> Browser {
    let hash = hash_password("correct horse battery").unwrap();
    s.state
        .store
        .upsert_admin("admin@example.com", Some(&hash), now_ms())
        .await
        .unwrap();
    let mut b = Browser::default();
    let form = b.get(s, "/admin/sign-in").await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = csrf_of(&form.body);
    let r = b
        .post(
            s,
            "/admin/sign-in",
            &format!("csrf={csrf}&email=Admin%40Example.com&password=correct+horse+battery"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location, "/admin");
    b
}

async fn partner_signed_in(s: &Server, affiliate_id: i64) -> Browser {
    let url = make_link(&s.state, Role::Partner, affiliate_id, ADMIN_MADE_LINK_MS)
        .await
        .unwrap();
    let path = url.strip_prefix("http://127.0.0.1").unwrap().to_owned();
    let mut b = Browser::default();
    let open = b.get(s, &path).await;
    assert_eq!(open.status, StatusCode::OK, "{}", open.body);
    let r = b
        .post(s, &path, &format!("csrf={}", csrf_of(&open.body)))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location, "/portal");
    b
}

const ADMIN_GETS: &[&str] = &[
    "/admin",
    "/admin/affiliates",
    "/admin/affiliates/{A}",
    "/admin/members",
    "/admin/provisioning",
    "/admin/provisioning/cards.pdf?id={A}",
    "/admin/reviews",
    "/admin/payouts",
    "/admin/periods/2026-01.csv",
    "/admin/exports",
    "/admin/exports/clicks.csv",
    "/admin/program",
];
const ADMIN_POSTS: &[&str] = &[
    "/admin/affiliates",
    "/admin/affiliates/{A}/suspend",
    "/admin/affiliates/{A}/reactivate",
    "/admin/affiliates/{A}/kill",
    "/admin/affiliates/{A}/sign-in-link",
    "/admin/reviews/1/approve",
    "/admin/payouts/close",
    "/admin/payouts/1/paid",
];
const PORTAL_GETS: &[&str] = &[
    "/portal",
    "/portal/earnings",
    "/portal/qr.png",
    "/portal/qr.svg",
    "/portal/card.pdf",
];

async fn authorisation(backend: Backend) {
    let Some(s) = server(backend).await else {
        return;
    };
    let (a_id, a_code) = s.affiliate("Shine Auto Detailing", "business").await;
    let (b_id, b_code) = s.affiliate("Ironside Gym", "business").await;
    let fill = |p: &str| p.replace("{A}", &a_id.to_string());

    // Anonymous: every page sends to its sign-in form; every form post too, and nothing
    // changes.
    let mut anon = Browser::default();
    for p in ADMIN_GETS.iter().chain(ADMIN_POSTS) {
        let method = if ADMIN_POSTS.contains(p) {
            Method::POST
        } else {
            Method::GET
        };
        let r = anon
            .send(&s, method, &fill(p), Some("csrf=x&channel=nfc"))
            .await;
        assert_eq!(
            (r.status, r.location.as_str()),
            (StatusCode::SEE_OTHER, "/admin/sign-in"),
            "anonymous {p}"
        );
    }
    for p in PORTAL_GETS {
        let r = anon.get(&s, p).await;
        assert_eq!(
            (r.status, r.location.as_str()),
            (StatusCode::SEE_OTHER, "/portal/sign-in"),
            "anonymous {p}"
        );
    }
    let r = anon.post(&s, "/portal/sign-out", "csrf=x").await;
    assert_eq!(r.location, "/portal/sign-in");
    for (path, field) in [("/admin/sign-in", "password"), ("/portal/sign-in", "email")] {
        let r = anon.get(&s, path).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains(&format!("name=\"{field}\"")), "{path}");
        assert!(!csrf_of(&r.body).is_empty(), "{path} carries a CSRF token");
    }
    assert_eq!(
        s.state.store.affiliate(a_id).await.unwrap().status,
        "active"
    );
    // The JSON API wants its bearer token, session or not.
    let admin = admin_signed_in(&s).await;
    let mut with_session = admin.clone();
    let r = with_session.get(&s, "/api/admin/affiliates").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);

    // Partner A: its own data only, whatever ids or codes the URL adds.
    let mut pa = partner_signed_in(&s, a_id).await;
    for p in PORTAL_GETS {
        for q in [
            String::new(),
            format!("?affiliate_id={b_id}"),
            format!("?id={b_id}&code={b_code}"),
        ] {
            let r = pa.get(&s, &format!("{p}{q}")).await;
            assert_eq!(r.status, StatusCode::OK, "{p}{q}");
            assert!(
                !r.body.contains(&b_code) && !r.body.contains("Ironside"),
                "{p}{q} shows partner B"
            );
            if r.content_type.starts_with("text/html") {
                assert!(r.body.contains(&a_code), "{p}{q} shows A's own code");
            }
        }
    }
    for p in [
        format!("/portal/affiliates/{b_id}"),
        format!("/portal/{b_id}"),
        format!("/portal/earnings/{b_id}"),
    ] {
        let r = pa.get(&s, &p).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{p}");
    }
    // The PNG decodes to A's QR link, not B's.
    let png = pa.get(&s, "/portal/qr.png").await;
    assert_eq!(png.content_type, "image/png");
    let img = image::load_from_memory(&png.bytes).unwrap().to_luma8();
    assert_eq!(img.dimensions(), (1024, 1024));
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    let (_, text) = grids[0].decode().unwrap();
    assert_eq!(text, format!("https://book.example.com/r/{a_code}?s=qr"));
    let pdf = pa.get(&s, "/portal/card.pdf").await;
    assert!(pdf.bytes.starts_with(b"%PDF-"), "{}", pdf.content_type);

    // A partner on admin URLs: its cookie is not even sent there, and a copy of it under
    // the admin cookie's name is refused (the MAC binds it to the portal).
    for p in ADMIN_GETS {
        let r = pa.get(&s, &fill(p)).await;
        assert_eq!(
            (r.status, r.location.as_str()),
            (StatusCode::SEE_OTHER, "/admin/sign-in"),
            "partner on {p}"
        );
    }
    let (v, _) = pa.cookies["tapkit_portal"].clone();
    let mut forged = Browser::default();
    forged
        .cookies
        .insert("tapkit_admin".into(), (v.clone(), "/admin".into()));
    assert_eq!(forged.get(&s, "/admin").await.location, "/admin/sign-in");
    forged.cookies.insert(
        "tapkit_admin".into(),
        (format!("{}.{}", &v[..64], "0".repeat(64)), "/admin".into()),
    );
    assert_eq!(forged.get(&s, "/admin").await.location, "/admin/sign-in");

    // CSRF: an admin's form post without this session's token changes nothing.
    let mut admin = admin;
    for bad in [
        "",
        "csrf=",
        "csrf=0000",
        &format!("csrf={}", csrf_of(&pa.get(&s, "/portal").await.body)),
    ] {
        let r = admin
            .post(&s, &format!("/admin/affiliates/{a_id}/suspend"), bad)
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{bad:?}");
        assert!(r.body.contains("expired"), "{}", r.body);
    }
    assert_eq!(
        s.state.store.affiliate(a_id).await.unwrap().status,
        "active"
    );
    let csrf = csrf_of(&admin.get(&s, "/admin").await.body);
    let r = admin
        .post(
            &s,
            &format!("/admin/affiliates/{a_id}/suspend"),
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        s.state.store.affiliate(a_id).await.unwrap().status,
        "suspended"
    );
    let earnings = pa.get(&s, "/portal/earnings").await;
    assert!(
        earnings.body.contains("Your partner account is suspended"),
        "{}",
        earnings.body
    );

    // Sign-out ends the session on the server: a saved copy of the cookie is dead.
    let saved = pa.clone();
    let csrf = csrf_of(&pa.get(&s, "/portal").await.body);
    let r = pa
        .post(&s, "/portal/sign-out", &format!("csrf={csrf}"))
        .await;
    assert_eq!(r.location, "/portal/sign-in?signed_out=1");
    assert!(!pa.cookies.contains_key("tapkit_portal"));
    let mut saved = saved;
    assert_eq!(saved.get(&s, "/portal").await.location, "/portal/sign-in");
}

#[tokio::test]
async fn every_route_refuses_the_wrong_person_on_sqlite() {
    authorisation(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_route_refuses_the_wrong_person_on_postgres() {
    authorisation(Backend::Postgres).await;
}

#[tokio::test]
async fn passwords_lock_out_and_links_work_once_on_sqlite() {
    passwords_lock_out_and_links_work_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn passwords_lock_out_and_links_work_once_on_postgres() {
    passwords_lock_out_and_links_work_once(Backend::Postgres).await;
}

async fn passwords_lock_out_and_links_work_once(backend: Backend) {
    let Some(s) = server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let (a_id, _) = s.affiliate("Shine Auto Detailing", "business").await;
    let _ = admin_signed_in(&s).await;
    let mut b = Browser::default();
    // A sign-in post without the pre-session cookie (another site's form) is refused.
    let r = b
        .post(
            &s,
            "/admin/sign-in",
            "csrf=abc&email=admin%40example.com&password=correct+horse+battery",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let csrf = csrf_of(&b.get(&s, "/admin/sign-in").await.body);
    for _ in 0..5 {
        let r = b
            .post(
                &s,
                "/admin/sign-in",
                &format!("csrf={csrf}&email=admin%40example.com&password=nope"),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body.contains("do not match"));
    }
    let r = b
        .post(
            &s,
            "/admin/sign-in",
            &format!("csrf={csrf}&email=admin%40example.com&password=correct+horse+battery"),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "locked even with the right password"
    );
    assert!(r.body.contains("wait 15 minutes"));
    let r = b
        .post(
            &s,
            "/admin/sign-in",
            &format!("csrf={csrf}&email=nobody%40example.com&password=x"),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "unknown emails get the same answer"
    );

    // A one-time link: opening it uses nothing; the button uses it; a second use fails.
    let url = make_link(&s.state, Role::Partner, a_id, ADMIN_MADE_LINK_MS)
        .await
        .unwrap();
    let path = url.strip_prefix("http://127.0.0.1").unwrap();
    let mut p = Browser::default();
    let open = p.get(&s, path).await;
    let open_again = p.get(&s, path).await;
    assert_eq!(
        open_again.status,
        StatusCode::OK,
        "a mail scanner's fetch does not use it"
    );
    assert!(open.body.contains("Shine Auto Detailing"));
    let r = p
        .post(&s, path, &format!("csrf={}", csrf_of(&open.body)))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let mut q = Browser::default();
    let again = q.get(&s, path).await;
    assert_eq!(again.status, StatusCode::GONE);
    assert!(again.body.contains("already been used"));
    // A partner's link is no admin link; a truncated one says so; an expired one too.
    let url = make_link(&s.state, Role::Partner, a_id, ADMIN_MADE_LINK_MS)
        .await
        .unwrap();
    let token = url.rsplit('/').next().unwrap();
    assert_eq!(
        q.get(&s, &format!("/admin/link/{token}")).await.status,
        StatusCode::GONE
    );
    let r = q.get(&s, &format!("/portal/link/{}", &token[..40])).await;
    assert!(r.body.contains("incomplete"));
    let url = make_link(&s.state, Role::Partner, a_id, -1).await.unwrap();
    let r = q
        .get(&s, url.strip_prefix("http://127.0.0.1").unwrap())
        .await;
    assert!(r.body.contains("expired"), "{}", r.body);
}

/// A one-connection SMTP server that accepts one message and hands back its text.
async fn smtp_sink() -> (u16, tokio::task::JoinHandle<String>) {
    smtp_sink_of(1).await
}

/// An SMTP server taking `n` connections, one message each; their data, in order.
async fn smtp_sink_of(n: usize) -> (u16, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let h = tokio::spawn(async move {
        let mut all = String::new();
        for _ in 0..n {
            let (sock, _) = l.accept().await.unwrap();
            let (r, mut w) = sock.into_split();
            let mut r = BufReader::new(r);
            w.write_all(b"220 sink ESMTP\r\n").await.unwrap();
            let mut data = String::new();
            let mut in_data = false;
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await.unwrap() == 0 {
                    break;
                }
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        w.write_all(b"250 queued\r\n").await.unwrap();
                    } else {
                        data.push_str(&line);
                    }
                    continue;
                }
                let cmd = line.to_ascii_uppercase();
                let reply: &[u8] = if cmd.starts_with("EHLO") {
                    b"250-sink\r\n250 8BITMIME\r\n"
                } else if cmd.starts_with("DATA") {
                    in_data = true;
                    b"354 go on\r\n"
                } else if cmd.starts_with("QUIT") {
                    w.write_all(b"221 bye\r\n").await.unwrap();
                    break;
                } else {
                    b"250 ok\r\n"
                };
                w.write_all(reply).await.unwrap();
            }
            all.push_str(&data);
        }
        all
    });
    (port, h)
}

#[tokio::test]
async fn a_partner_asks_for_a_link_by_email_and_it_arrives_over_smtp() {
    let (port, sink) = smtp_sink().await;
    let s = common::server_with_mail(
        Backend::Sqlite,
        ProgramConfig::default(),
        Some(format!("smtp://127.0.0.1:{port}")),
    )
    .await
    .unwrap();
    let (a_id, _) = s.affiliate("Shine Auto Detailing", "business").await;
    s.admin(
        Method::PATCH,
        &format!("/api/admin/affiliates/{a_id}"),
        r#"{"contact": "Owner@Shine.example"}"#,
    )
    .await;
    let mut b = Browser::default();
    let csrf = csrf_of(&b.get(&s, "/portal/sign-in").await.body);
    let unknown = b
        .post(
            &s,
            "/portal/sign-in",
            &format!("csrf={csrf}&email=stranger%40example.com"),
        )
        .await;
    let known = b
        .post(
            &s,
            "/portal/sign-in",
            &format!("csrf={csrf}&email=owner%40shine.example"),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::OK);
    assert_eq!(
        unknown.body.replace("stranger@example.com", "X"),
        known.body.replace("owner@shine.example", "X"),
        "the page does not tell known from unknown addresses"
    );
    let mail = tokio::time::timeout(std::time::Duration::from_secs(10), sink)
        .await
        .unwrap()
        .unwrap();
    assert!(mail.contains("To: owner@shine.example"), "{mail}");
    // Undo quoted-printable soft breaks as a mail client does.
    let mail = mail.replace("=\r\n", "").replace("=3D", "=");
    let link = mail
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1/portal/link/"))
        .unwrap_or_else(|| panic!("no link in {mail}"));
    let path = link.strip_prefix("http://127.0.0.1").unwrap();
    let mut p = Browser::default();
    let open = p.get(&s, path).await;
    let r = p
        .post(&s, path, &format!("csrf={}", csrf_of(&open.body)))
        .await;
    assert_eq!(r.location, "/portal");
    assert!(
        p.get(&s, "/portal")
            .await
            .body
            .contains("Hello, Shine Auto Detailing")
    );
}

#[tokio::test]
async fn console_pages_act_and_export_on_sqlite() {
    console_pages(Backend::Sqlite).await;
}

#[tokio::test]
async fn console_pages_act_and_export_on_postgres() {
    console_pages(Backend::Postgres).await;
}

async fn console_pages(backend: Backend) {
    let Some(s) = server(backend).await else {
        return;
    };
    let mut admin = admin_signed_in(&s).await;
    let csrf = csrf_of(&admin.get(&s, "/admin").await.body);
    // Create through the form; a bad kind is named and the form keeps what was typed.
    let bad = admin
        .post(
            &s,
            "/admin/affiliates",
            &format!("csrf={csrf}&name=Shine+Auto&kind=robot"),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body.contains("is not business, influencer or customer")
            && bad.body.contains("value=\"Shine Auto\"")
    );
    let r = admin.post(&s, "/admin/affiliates", &format!("csrf={csrf}&name=Shine+%3Cb%3EAuto%3C%2Fb%3E&kind=business&contact=owner%40shine.example")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = admin.get(&s, &r.location).await;
    assert!(
        page.body.contains("Shine &lt;b&gt;Auto&lt;/b&gt;"),
        "names are escaped"
    );
    assert!(page.body.contains("Affiliate created."));
    let id: i64 = r
        .location
        .trim_start_matches("/admin/affiliates/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let code = s.state.store.affiliate(id).await.unwrap().code;
    // Kill a channel, search, provisioning and its PDF.
    let r = admin
        .post(
            &s,
            &format!("/admin/affiliates/{id}/kill"),
            &format!("csrf={csrf}&channel=qr"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(s.state.directory.killed(id, "qr"));
    let r = admin
        .post(
            &s,
            &format!("/admin/affiliates/{id}/kill"),
            &format!("csrf={csrf}&channel=fax"),
        )
        .await;
    assert!(r.body.contains("is not nfc, qr, kiosk or link"));
    assert!(
        admin
            .get(&s, "/admin/affiliates?q=shine")
            .await
            .body
            .contains(&code)
    );
    assert!(
        !admin
            .get(&s, "/admin/affiliates?q=zzz")
            .await
            .body
            .contains(&code)
    );
    assert!(
        admin
            .get(&s, "/admin/provisioning")
            .await
            .body
            .contains(&code)
    );
    let pdf = admin
        .get(
            &s,
            &format!("/admin/provisioning/cards.pdf?id={id}&layout=a4"),
        )
        .await;
    assert!(pdf.bytes.starts_with(b"%PDF-"));
    assert_eq!(
        admin
            .get(&s, "/admin/provisioning/cards.pdf?layout=a4")
            .await
            .location,
        "/admin/provisioning?error=none"
    );
    // A sign-in link made for the partner (no mail server: shown here).
    let r = admin
        .post(
            &s,
            &format!("/admin/affiliates/{id}/sign-in-link"),
            &format!("csrf={csrf}"),
        )
        .await;
    assert!(
        r.body.contains("http://127.0.0.1/portal/link/"),
        "{}",
        r.body
    );
    // Taps, then the clicks export for today holds them (no IP hash column).
    s.tap(&code, "").await;
    s.tap(&code, "").await;
    let today = tapkit_core::date::format_date(now_ms() / 86_400_000);
    let csv = admin
        .get(
            &s,
            &format!("/admin/exports/clicks.csv?from={today}&to={today}"),
        )
        .await;
    assert_eq!(csv.content_type, "text/csv; charset=utf-8");
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "click_id,at_utc,code,affiliate_id,channel,outcome,reason,card_uid,counter,referer,utm_source,utm_medium,utm_campaign"
    );
    assert_eq!(lines.len(), 3, "{}", csv.body);
    assert!(!csv.body.contains("ip_hash"));
    let bad = admin
        .get(&s, "/admin/exports/clicks.csv?from=tomorrow")
        .await;
    assert!(bad.location.starts_with("/admin/exports?error="));
    for which in ["conversions.csv", "commissions.csv"] {
        let r = admin.get(&s, &format!("/admin/exports/{which}")).await;
        assert_eq!(r.status, StatusCode::OK, "{which}");
    }
    // Overview shows the clicks; the other pages render.
    let o = admin.get(&s, "/admin").await;
    assert!(o.body.contains("<svg") && o.body.contains("Clicks per day by channel"));
    for p in [
        "/admin/reviews",
        "/admin/payouts",
        "/admin/program",
        "/admin/exports",
    ] {
        let r = admin.get(&s, p).await;
        assert_eq!(r.status, StatusCode::OK, "{p}");
        assert!(
            r.body.contains("aria-current=\"page\""),
            "{p} marks its navigation entry"
        );
    }
    // Closing a month that has not ended is refused with the reason.
    let month = tapkit_core::date::month_of_ms(now_ms());
    let r = admin
        .post(
            &s,
            "/admin/payouts/close",
            &format!("csrf={csrf}&period={month}"),
        )
        .await;
    assert!(
        r.location.starts_with("/admin/payouts?error="),
        "{}",
        r.location
    );
    let shown = admin.get(&s, &r.location).await;
    assert!(shown.body.contains("has not ended yet"), "{}", shown.body);
    // A crafted link cannot put its own words in the console.
    let forged = admin
        .get(
            &s,
            "/admin/payouts?error=Security+alert%3A+sign+in+at+evil.example&sig=00",
        )
        .await;
    assert!(!forged.body.contains("Security alert"));
}

async fn earnings(backend: Backend) {
    let Some(s) = server(backend).await else {
        return;
    };
    let (a, code) = s.affiliate("Shine Auto Detailing", "business").await;
    let now = now_ms();
    let t1 = s.click_at(a, &code, now - 60_000, "h1").await;
    let t2 = s.click_at(a, &code, now - 50_000, "h2").await;
    // bk-1 earns (paid + serviced) and is refunded; bk-2 is paid, not serviced: pending.
    s.deliver(common::event("booking_paid", "bk-1", now - 1000, Some(&t1)))
        .await;
    s.deliver(common::event("booking_serviced", "bk-1", now - 900, None))
        .await;
    s.deliver(common::event("booking_paid", "bk-2", now - 800, Some(&t2)))
        .await;
    s.deliver(common::event("booking_refunded", "bk-1", now - 700, None))
        .await;
    let mut p = partner_signed_in(&s, a).await;
    let page = p.get(&s, "/portal/earnings").await;
    let month = tapkit_core::date::month_of_ms(now);
    let row = page
        .body
        .split("<tr>")
        .find(|r| r.contains(&format!("<th scope=\"row\">{month}</th>")))
        .unwrap_or_else(|| panic!("no row for {month}: {}", page.body));
    let cells: Vec<&str> = row
        .split("<td class=\"n\">")
        .skip(1)
        .map(|c| c.split('<').next().unwrap())
        .collect();
    assert_eq!(
        cells,
        vec!["20.00 USD", "20.00 USD", "20.00 USD"],
        "pending, earned, refunded: {row}"
    );
    let history: Vec<&str> = ["waiting for the service", "refunded"]
        .into_iter()
        .filter(|t| page.body.contains(t))
        .collect();
    assert_eq!(history.len(), 2, "{}", page.body);
    assert!(
        !page.body.contains("cust-bk"),
        "no customer ids on the partner's pages"
    );
}

#[tokio::test]
async fn earnings_follow_the_ledger_on_sqlite() {
    earnings(Backend::Sqlite).await;
}

#[tokio::test]
async fn earnings_follow_the_ledger_on_postgres() {
    earnings(Backend::Postgres).await;
}

/// Issue 23's overflow case: a program without caps, 11 attributed bookings each paid
/// with `i64::MAX` and then serviced. Every such payment is refused at the webhook with
/// 422 naming `amount_minor` (nothing is stored for it), the bookings at the program's
/// largest amount earn, and the partner's earnings stay readable: the API, the console's
/// partner page and the portal's earnings page all answer 200, with sums that did not
/// overflow.
async fn a_huge_amount_is_refused_and_pages_stay_up(backend: Backend) {
    let program = ProgramConfig {
        fraud: common::quiet_fraud(),
        commission: toml::from_str(
            r#"
            [[rules]]
            on = "booking"
            rewards = [{ unit = "cash", percent_bp = 10000 }]
            "#,
        )
        .unwrap(),
        ..ProgramConfig::default()
    };
    let Some(s) = server_with(backend, program).await else {
        return;
    };
    let max = tapkit_server::money::rules::DEFAULT_MAX_AMOUNT_MINOR;
    let (a, code) = s.affiliate("Café Zürich & Co.", "business").await;
    let now = now_ms();
    let events_before = s.count("conversion_events").await;
    for i in 0..11 {
        let t = s
            .click_at(a, &code, now - 60_000 + i, &format!("h{i}"))
            .await;
        let mut e = common::event("booking_paid", &format!("big-{i}"), now - 1000, Some(&t));
        e["amount_minor"] = serde_json::json!(i64::MAX);
        let body = e.to_string();
        let sig =
            tapkit_server::money::wire::sign(body.as_bytes(), common::WEBHOOK, now_ms() / 1000);
        let (st, v) = s.deliver_raw(&body, Some(sig)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["field"], "amount_minor", "{v}");
        assert!(
            v["error"].as_str().unwrap().contains("max_amount_minor"),
            "the error names the setting: {v}"
        );
        // The same booking at the program's largest amount earns.
        e["amount_minor"] = serde_json::json!(max);
        s.deliver(e).await;
        s.deliver(common::event(
            "booking_serviced",
            &format!("big-{i}"),
            now - 900,
            None,
        ))
        .await;
    }
    assert_eq!(
        s.count("conversion_events").await - events_before,
        22,
        "only the accepted events are stored"
    );
    assert_eq!(s.owed(a).await, common::usd(11 * max));
    let (st, v) = s
        .admin(
            Method::GET,
            &format!("/api/admin/affiliates/{a}/earnings"),
            "",
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let mut admin = admin_signed_in(&s).await;
    let page = admin.get(&s, &format!("/admin/affiliates/{a}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let mut p = partner_signed_in(&s, a).await;
    let page = p.get(&s, "/portal/earnings").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("110,000,000.00 USD") || page.body.contains("110000000.00 USD"),
        "the month's total of 11 × {max}: {}",
        page.body
    );
}

/// Issue 23: a CSV export of hostile clicks opens as text. Codes tapped with a NUL, an
/// escape sequence and spreadsheet formulas all redirect and are recorded (control
/// characters as U+FFFD), and the export carries none of them raw: no control byte, and
/// no cell that a spreadsheet would run.
async fn a_csv_export_of_hostile_clicks_opens_as_text(backend: Backend) {
    let Some(s) = server(backend).await else {
        return;
    };
    for path in [
        "/r/%00%3D1%2B2",
        "/r/%3DHYPERLINK(%22http%3A%2F%2Fevil.example%22)",
        "/r/%1B%5B31m%2Bcmd",
        "/r/%40SUM(A1)",
        "/r/-2%2B3",
    ] {
        let r = s
            .call(
                axum::http::Request::builder()
                    .uri(path)
                    .header(header::USER_AGENT, common::UA)
                    .header(header::REFERER, "=cmd|'/C calc'!A0")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status(), StatusCode::FOUND, "{path}");
    }
    let mut admin = admin_signed_in(&s).await;
    let today = tapkit_core::date::format_date(now_ms() / 86_400_000);
    let csv = admin
        .get(
            &s,
            &format!("/admin/exports/clicks.csv?from={today}&to={today}"),
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        !csv.bytes
            .iter()
            .any(|b| b.is_ascii_control() && !matches!(b, b'\n' | b'\r')),
        "a control byte in the export: {:?}",
        csv.body
    );
    let mut reader = csv::Reader::from_reader(&csv.bytes[..]);
    let mut rows = 0;
    for rec in reader.records() {
        let rec = rec.unwrap();
        rows += 1;
        for c in rec.iter() {
            assert!(
                c.parse::<i64>().is_ok() || !c.starts_with(['=', '+', '-', '@']),
                "a cell a spreadsheet would run: {c:?} in {rec:?}"
            );
        }
        assert!(rec.iter().any(|c| c.starts_with('\'')), "{rec:?}");
    }
    assert_eq!(rows, 5, "{}", csv.body);
}

/// Issue 19: the console's members page lists the plans, who holds them and the
/// invoices still open, as the API created them.
async fn the_members_page_lists_plans_members_and_open_invoices(backend: Backend) {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tapkit.sample.toml");
    let membership = tapkit_server::config::load(Some(&sample))
        .unwrap()
        .program
        .membership;
    let Some(s) = server_with(
        backend,
        ProgramConfig {
            fraud: common::quiet_fraud(),
            membership,
            ..ProgramConfig::default()
        },
    )
    .await
    else {
        return; // no PostgreSQL here, and not required
    };
    let (a, _) = s.affiliate("Shine Auto Detailing", "business").await;
    let (st, m) = s
        .admin(
            Method::POST,
            "/api/admin/members",
            &format!(
                r#"{{"customer_id":"cus_page","email":"ana@example.com","plan":"plus","affiliate_id":{a}}}"#
            ),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    let amount = m["open_invoices"][0]["amount_minor"].as_i64().unwrap();
    let mut b = admin_signed_in(&s).await;
    let page = b.get(&s, "/admin/members").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for want in [
        "Premium",
        "79.00 USD",
        "unlimited",
        "1 member: 1 active",
        "cus_page",
        "Shine Auto Detailing",
        "Open invoices",
        "No charge has failed.",
        &tapkit_server::web::money(amount, "USD"),
    ] {
        assert!(page.body.contains(want), "{want:?} missing:\n{}", page.body);
    }
    assert!(
        page.body.contains("href=\"/admin/members\""),
        "in the navigation"
    );
    // A charge that failed once and was then paid: recovered.
    sqlx::query("UPDATE invoices SET charge_failures = 1, status = 'paid'")
        .execute(&s.pool().await)
        .await
        .unwrap();
    let page = b.get(&s, "/admin/members").await;
    assert!(
        page.body.contains(
            "<strong>1 of 1</strong> invoices whose charge failed were recovered (100 %)"
        ),
        "{}",
        page.body
    );
    // MRR: the member counts at Plus's full price in its first month, as new.
    assert!(
        page.body.contains("Monthly recurring revenue"),
        "{}",
        page.body
    );
    assert!(page.body.contains("MRR per month by plan"), "the chart");
    let month = tapkit_core::date::month_of_ms(tapkit_server::store::now_ms());
    let csv = b.get(&s, "/admin/members/mrr.csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "month,currency,mrr_minor,new_minor,reactivated_minor,expansion_minor,contraction_minor,churned_minor,members,churn_rate_bp,arpm_minor"
    );
    assert_eq!(lines.len(), 13, "twelve months: {}", csv.body);
    assert_eq!(lines[12], format!("{month},USD,4900,4900,0,0,0,0,1,0,4900"));

    // The partner who brought the member sees it on the portal, without the customer.
    let mut p = partner_signed_in(&s, a).await;
    let page = p.get(&s, "/portal/earnings").await;
    assert_eq!(page.status, StatusCode::OK);
    let section = &page.body[page.body.find("Members you brought").expect("the section")..];
    assert!(
        section.contains("Plus") && section.contains("active"),
        "{section}"
    );
    for private in ["cus_page", "ana@example.com"] {
        assert!(
            !page.body.contains(private),
            "{private} shown to the partner"
        );
    }
}

/// Issue 20: a phone that taps a member card lands on `/m/{code}`. Signed out it tells
/// nothing about the member; signed in by link it shows the plan, the visits left (the
/// rolled-over ones apart), the next renewal, the add-on discount and the check-ins.
async fn a_member_card_opens_the_members_page(backend: Backend) {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tapkit.sample.toml");
    let membership = tapkit_server::config::load(Some(&sample))
        .unwrap()
        .program
        .membership;
    let Some(s) = server_with(
        backend,
        ProgramConfig {
            fraud: common::quiet_fraud(),
            membership,
            domain: "book.example.com".into(),
            rewards: Some(tapkit_server::rewards::catalogue::RewardsConfig {
                expires_days: 30,
                vouchers: Default::default(),
                friend_offer: None,
            }),
            ..ProgramConfig::default()
        },
    )
    .await
    else {
        return; // no PostgreSQL here, and not required
    };
    let (st, m) = s
        .admin(
            Method::POST,
            "/api/admin/members",
            r#"{"customer_id":"cus_ada","email":"ada@example.com","plan":"plus","first_name":"Ada"}"#,
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    let id = m["id"].as_i64().unwrap();
    let (st, card) = s
        .admin(
            Method::POST,
            &format!("/api/admin/members/{id}/cards"),
            r#"{"uid":"04A1B2C3D4E5F6"}"#,
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{card}");
    let url = card["url"].as_str().unwrap();
    let path = url
        .strip_prefix("https://book.example.com")
        .unwrap()
        .to_owned();
    sqlx::query("UPDATE members SET visits_rolled = 2, visits_rolled_used = 1 WHERE id = $1")
        .bind(id)
        .execute(&s.pool().await)
        .await
        .unwrap();

    // Tapped by any phone (the mirror on the URL): what the card is, and a sign-in form.
    let mut stranger = Browser::default();
    let page = stranger
        .get(&s, &format!("{path}?m=04A1B2C3D4E5F6x000007"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("membership card"), "{}", page.body);
    assert!(page.body.contains("action=\"/m/sign-in\""), "{}", page.body);
    for private in ["Ada", "ada@example.com", "Plus", "visits left"] {
        assert!(!page.body.contains(private), "{private} shown signed out");
    }
    // The page's link form answers alike for known and unknown addresses.
    let csrf = csrf_of(&page.body);
    let known = stranger
        .post(
            &s,
            "/m/sign-in",
            &format!("csrf={csrf}&email=ada%40example.com"),
        )
        .await;
    let unknown = stranger
        .post(
            &s,
            "/m/sign-in",
            &format!("csrf={csrf}&email=bo%40example.com"),
        )
        .await;
    assert_eq!(known.status, StatusCode::OK);
    assert_eq!(
        known.body.replace("ada@example.com", "X"),
        unknown.body.replace("bo@example.com", "X")
    );
    let bad = stranger
        .post(&s, "/m/sign-in", &format!("csrf={csrf}&email=nope"))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("not an email address"), "{}", bad.body);
    // A code no member has.
    assert_eq!(
        stranger.get(&s, "/m/000000000000").await.status,
        StatusCode::NOT_FOUND
    );

    // Signed in by link: the member's own page.
    let link = make_link(&s.state, Role::Member, id, ADMIN_MADE_LINK_MS)
        .await
        .unwrap();
    let link = link.strip_prefix("http://127.0.0.1").unwrap().to_owned();
    let mut ada = Browser::default();
    let open = ada.get(&s, &link).await;
    assert_eq!(open.status, StatusCode::OK, "{}", open.body);
    assert!(
        open.body.contains("signs you in as <strong>Ada</strong>"),
        "{}",
        open.body
    );
    let r = ada
        .post(&s, &link, &format!("csrf={}", csrf_of(&open.body)))
        .await;
    assert_eq!(
        (r.status, r.location.as_str()),
        (StatusCode::SEE_OTHER, "/m")
    );
    let home = ada.get(&s, "/m").await;
    assert_eq!(
        home.location, path,
        "/m sends the member to their card's page"
    );
    let page = ada.get(&s, &path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let period = tapkit_server::members::billing::Period::of_day(
        tapkit_server::store::now_ms().div_euclid(86_400_000),
    );
    let renews = tapkit_core::date::format_date(period.next().first_day());
    for want in [
        "Hello, Ada",
        "Plus",
        "4 visits left this month, plus 1 rolled over from last month",
        &*format!("renews on {renews}"),
        "15% off add-ons",
        "None yet",
    ] {
        assert!(page.body.contains(want), "{want:?} missing:\n{}", page.body);
    }
    assert!(
        !page.body.contains("Your rewards"),
        "no rewards before she refers"
    );
    // Ada also refers friends (a referral link with her email): her rewards show here too.
    let (st, referrer) = s
        .admin(
            Method::POST,
            "/api/admin/referrers",
            r#"{"email":"ada@example.com","kind":"customer","name":"Ada"}"#,
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{referrer}");
    let (aff, code) = (
        referrer["id"].as_i64().unwrap(),
        referrer["code"].as_str().unwrap().to_owned(),
    );
    let now = now_ms();
    let t = s.click_at(aff, &code, now - 60_000, "h-ada").await;
    s.deliver(common::event(
        "booking_paid",
        "ada-friend",
        now - 1000,
        Some(&t),
    ))
    .await;
    s.deliver(common::event(
        "booking_serviced",
        "ada-friend",
        now - 900,
        None,
    ))
    .await;
    let page = ada.get(&s, &path).await;
    let rewards = page
        .body
        .split_once("Your rewards")
        .map(|(_, r)| r)
        .unwrap_or_else(|| panic!("no rewards on the member page: {}", page.body));
    assert!(
        rewards.contains("10.00 USD credit: any booking"),
        "{rewards}"
    );
    assert!(rewards.contains("ready to use"), "{rewards}");
    // Another member's page is not hers: the signed-out view.
    let (_, other) = s
        .admin(
            Method::POST,
            "/api/admin/members",
            r#"{"customer_id":"cus_bo","email":"bo@example.com","plan":"basic","first_name":"Bo"}"#,
        )
        .await;
    let (_, other_card) = s
        .admin(
            Method::POST,
            &format!("/api/admin/members/{}/cards", other["id"]),
            r#"{"uid":"04B0B0B0B0B0B0"}"#,
        )
        .await;
    let other_path = other_card["url"]
        .as_str()
        .unwrap()
        .strip_prefix("https://book.example.com")
        .unwrap()
        .to_owned();
    let page = ada.get(&s, &other_path).await;
    assert!(!page.body.contains("Bo"), "{}", page.body);
    assert!(page.body.contains("Is it yours?"));

    // Bo lapsed, but a kiosk offline let him in from its roster: the admin sees the
    // overdraft on the members page, and Ada's visits are untouched.
    sqlx::query("UPDATE members SET status = 'lapsed' WHERE customer_id = 'cus_bo'")
        .execute(&s.pool().await)
        .await
        .unwrap();
    let desk = s.kiosk_token("Iron Gym").await;
    let req = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/kiosk/check-in")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {desk}"))
        .header("idempotency-key", "offline-1")
        .body(axum::body::Body::from(
            serde_json::json!({
                "url": format!("{}?m=04B0B0B0B0B0B0x000002", other_card["url"].as_str().unwrap()),
                "offline_at_ms": tapkit_server::store::now_ms() - 60_000,
            })
            .to_string(),
        ))
        .unwrap();
    let (st, v) = common::json_of(s.call(req).await).await;
    assert_eq!(
        (st, &v["overdraft"]),
        (StatusCode::OK, &serde_json::json!("lapsed")),
        "{v}"
    );
    let mut admin = admin_signed_in(&s).await;
    let console = admin.get(&s, "/admin/members").await;
    let section = &console.body[console
        .body
        .find("Offline check-in overdrafts")
        .expect("the section")..];
    assert!(
        section.contains("cus_bo") && section.contains("lapsed"),
        "{section}"
    );
}

on_both_databases!(
    a_huge_amount_is_refused_and_pages_stay_up,
    a_csv_export_of_hostile_clicks_opens_as_text,
    the_members_page_lists_plans_members_and_open_invoices,
    a_member_card_opens_the_members_page,
);

/// Issue 23: the CSP allows no inline script but the portal's own, by its hash; the hash
/// is of the script the portal page carries, byte for byte (the browser test sees it
/// run under this policy).
#[tokio::test]
async fn the_csp_allows_only_the_portals_own_script() {
    use sha2::Digest;
    let s = server(Backend::Sqlite).await.unwrap();
    let (a, _) = s.affiliate("Shine Auto Detailing", "business").await;
    let mut p = partner_signed_in(&s, a).await;
    let page = p.get(&s, "/portal").await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = &page.csp;
    let script = page
        .body
        .split("<script>")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .expect("the portal home carries its copy-link script");
    let hash = tapkit_core::base64::encode(&sha2::Sha256::digest(script.as_bytes()));
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .unwrap();
    assert_eq!(script_src, format!("script-src 'sha256-{hash}'"), "{csp}");
    assert!(!script_src.contains("unsafe-inline"));
}

/// A customer referrer's rewards on the portal: the code, what it is worth, what is
/// left and each use, from the ledger the checkout's redemptions moved.
async fn a_referrers_rewards_show_on_the_portal(backend: Backend) {
    let program = ProgramConfig {
        fraud: common::quiet_fraud(),
        rewards: Some(tapkit_server::rewards::catalogue::RewardsConfig {
            expires_days: 30,
            vouchers: Default::default(),
            friend_offer: None,
        }),
        ..ProgramConfig::default()
    };
    let Some(s) = server_with(backend, program).await else {
        return;
    };
    let (a, code) = s.affiliate("Carla", "customer").await;
    let now = now_ms();
    let t = s.click_at(a, &code, now - 60_000, "h1").await;
    s.deliver(common::event("booking_paid", "bk-1", now - 1000, Some(&t)))
        .await;
    s.deliver(common::event("booking_serviced", "bk-1", now - 900, None))
        .await;
    let rewards = s.state.store.rewards_of(a, 10).await.unwrap();
    let reward = rewards[0].0.code.clone();
    let body = serde_json::json!({ "code": reward, "booking_id": "shop-1", "amount_minor": 250 })
        .to_string();
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/rewards/redeem")
        .header(
            "Tapkit-Signature",
            tapkit_server::money::wire::sign(body.as_bytes(), common::WEBHOOK, now / 1000),
        )
        .body(Body::from(body))
        .unwrap();
    assert_eq!(s.call(req).await.status(), StatusCode::OK);
    let mut p = partner_signed_in(&s, a).await;
    let page = p.get(&s, "/portal/earnings").await;
    assert_eq!(page.status, StatusCode::OK);
    let section = page
        .body
        .split_once("Your rewards")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no rewards section: {}", page.body));
    for want in [
        reward.as_str(),
        "10.00 USD credit: any booking",
        "7.50 USD credit",
        "ready to use",
        "2.50 USD off",
    ] {
        assert!(section.contains(want), "{want:?} missing: {section}");
    }
    // The console: the funnel (1 referrer, 1 tap, 1 booking, 1 reward, 1 use) and the
    // liability (7.50 USD of credit in 1 open reward).
    let mut admin = admin_signed_in(&s).await;
    let page = admin.get(&s, "/admin").await;
    let row = page
        .body
        .split("<tr>")
        .find(|r| r.contains("<th scope=\"row\">Customers</th>"))
        .unwrap_or_else(|| panic!("no customers' funnel row: {}", page.body));
    let cells: Vec<&str> = row
        .split("<td class=\"n\">")
        .skip(1)
        .map(|c| c.split('<').next().unwrap())
        .collect();
    assert_eq!(cells, ["1", "1", "1", "1", "1"], "{row}");
    let owed = page.body.split_once("Rewards outstanding").unwrap().1;
    assert!(owed.contains("7.50 USD credit"), "{owed}");
}

#[tokio::test]
async fn a_referrers_rewards_show_on_the_portal_on_sqlite() {
    a_referrers_rewards_show_on_the_portal(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_referrers_rewards_show_on_the_portal_on_postgres() {
    a_referrers_rewards_show_on_the_portal(Backend::Postgres).await;
}

/// `/refer`: a customer signs up with their email, the sign-in link arrives over SMTP,
/// and opens the portal with their own referral link (kind `customer`) and share
/// buttons carrying the friend's offer. One device signs up at most 3 referrers a day.
#[tokio::test]
async fn a_customer_gets_a_referral_link_at_refer() {
    let (port, sink) = smtp_sink().await;
    let program = ProgramConfig {
        rewards: Some(tapkit_server::rewards::catalogue::RewardsConfig {
            expires_days: 30,
            vouchers: Default::default(),
            friend_offer: Some(tapkit_server::rewards::catalogue::FriendOffer {
                percent_bp: Some(1500),
                fixed_minor: None,
                cap_minor: None,
                applies_to: "your first visit".into(),
                days: 30,
                for_kinds: vec!["customer".into()],
            }),
        }),
        ..ProgramConfig::default()
    };
    let s = common::server_with_mail(
        Backend::Sqlite,
        program,
        Some(format!("smtp://127.0.0.1:{port}")),
    )
    .await
    .unwrap();
    let mut b = Browser::default();
    let form = b.get(&s, "/refer").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body.contains("15 % off your first visit"),
        "{}",
        form.body
    );
    let csrf = csrf_of(&form.body);
    let bad = b
        .post(
            &s,
            "/refer",
            &format!("csrf={csrf}&name=Carla&email=not-an-address"),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let sent = b
        .post(
            &s,
            "/refer",
            &format!("csrf={csrf}&name=Carla&email=carla%40example.com"),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    assert!(sent.body.contains("A sign-in link is on its way"));
    let mail = tokio::time::timeout(std::time::Duration::from_secs(10), sink)
        .await
        .unwrap()
        .unwrap();
    assert!(mail.contains("To: carla@example.com"), "{mail}");
    let mail = mail.replace("=\r\n", "").replace("=3D", "=");
    let link = mail
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1/portal/link/"))
        .unwrap_or_else(|| panic!("no link in {mail}"));
    let path = link.strip_prefix("http://127.0.0.1").unwrap();
    let mut p = Browser::default();
    let open = p.get(&s, path).await;
    let r = p
        .post(&s, path, &format!("csrf={}", csrf_of(&open.body)))
        .await;
    assert_eq!(r.location, "/portal");
    let home = p.get(&s, "/portal").await.body;
    assert!(home.contains("Hello, Carla"), "{home}");
    assert!(
        home.contains("get%2015%20%25%20off%20your%20first%20visit"),
        "{home}"
    );
    let referrer = s
        .state
        .store
        .live_referrer(s.state.program.id, "carla@example.com", now_ms())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(referrer.kind, "customer");
    assert!(home.contains(&format!("/r/{}", referrer.code)), "{home}");
    // Two more from this device are fine; the fourth of the day is refused.
    for n in 2..=3 {
        let r = b
            .post(
                &s,
                "/refer",
                &format!("csrf={csrf}&name=F{n}&email=f{n}%40example.com"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    // The sign-ups happen after the answer: wait for them to land.
    for _ in 0..100 {
        if s.count("affiliates").await == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let r = b
        .post(
            &s,
            "/refer",
            &format!("csrf={csrf}&name=F4&email=f4%40example.com"),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{} affiliates",
        s.count("affiliates").await
    );
    assert!(r.body.contains("Too many sign-ups from this device today"));
    // No raw address is stored: the key is a 64-digit keyed hash.
    let key: String = sqlx::query_scalar("SELECT signup_key FROM affiliates WHERE id = $1")
        .bind(referrer.id)
        .fetch_one(&s.pool().await)
        .await
        .unwrap();
    assert_eq!(key.len(), 64);
    assert!(!key.contains("127.0.0.1"));
}

/// The referrer's emails: "your friend booked" on the paid event, "your reward is
/// ready" with the code once serviced, each with a one-click unsubscribe (RFC 8058)
/// that turns them off.
#[tokio::test]
async fn a_referrer_is_told_of_the_booking_and_the_reward_and_can_unsubscribe() {
    let (port, sink) = smtp_sink_of(2).await;
    let program = ProgramConfig {
        fraud: common::quiet_fraud(),
        rewards: Some(tapkit_server::rewards::catalogue::RewardsConfig {
            expires_days: 30,
            vouchers: Default::default(),
            friend_offer: None,
        }),
        ..ProgramConfig::default()
    };
    let s = common::server_with_mail(
        Backend::Sqlite,
        program,
        Some(format!("smtp://127.0.0.1:{port}")),
    )
    .await
    .unwrap();
    let (a, code) = s.affiliate("Carla", "customer").await;
    s.admin(
        Method::PATCH,
        &format!("/api/admin/affiliates/{a}"),
        r#"{"contact": "carla@example.com"}"#,
    )
    .await;
    let now = now_ms();
    let t = s.click_at(a, &code, now - 60_000, "h1").await;
    s.deliver(common::event("booking_paid", "bk-1", now - 1000, Some(&t)))
        .await;
    // One at a time, so the two emails arrive in order.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    s.deliver(common::event("booking_serviced", "bk-1", now - 900, None))
        .await;
    let mail = tokio::time::timeout(std::time::Duration::from_secs(10), sink)
        .await
        .unwrap()
        .unwrap();
    let mail = mail.replace("=\r\n", "").replace("=3D", "=");
    let booked = mail
        .find("Subject: Your friend booked")
        .unwrap_or_else(|| panic!("{mail}"));
    let ready = mail
        .find("Subject: Your Tapkit demo program reward is ready")
        .unwrap_or_else(|| panic!("{mail}"));
    assert!(booked < ready, "{mail}");
    let reward = s.state.store.rewards_of(a, 10).await.unwrap().remove(0).0;
    assert!(mail[ready..].contains(&reward.code), "{mail}");
    assert!(
        mail[ready..].contains("10.00 USD credit: any booking"),
        "{mail}"
    );
    assert_eq!(
        mail.matches("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
            .count(),
        2,
        "{mail}"
    );
    let url = mail
        .split("List-Unsubscribe: <")
        .nth(1)
        .and_then(|r| r.split('>').next())
        .unwrap()
        .to_owned();
    let path = url.strip_prefix("http://127.0.0.1").unwrap().to_owned();
    // Opening the link changes nothing; a forged token is refused.
    let mut b = Browser::default();
    assert_eq!(b.get(&s, &path).await.status, StatusCode::OK);
    assert!(!s.state.store.emails_off(a).await.unwrap());
    let forged = format!("/refer/unsubscribe/{a}.{}", "0".repeat(64));
    assert_eq!(
        b.post(&s, &forged, "List-Unsubscribe=One-Click")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // The mail client's one-click POST turns them off.
    let off = b.post(&s, &path, "List-Unsubscribe=One-Click").await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    assert!(s.state.store.emails_off(a).await.unwrap());
}

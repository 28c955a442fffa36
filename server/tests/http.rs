//! HTTP tests through the real router and a real SQLite store: admin API validation and
//! auth, and every outcome of `/r/{code}`.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::Response;
use tapkit_server::config::{Config, ProgramConfig};
use tapkit_server::keys::{new_api_token, token_hash};
use tapkit_server::{AppState, app};
use tower::ServiceExt;

mod common;
use common::Backend;

const SECRET: &[u8] = b"test secret test secret test secret!";
const BOOKING: &str = "https://book.example.com/booking";

struct Server {
    state: AppState,
    token: String,
    dir: std::path::PathBuf,
    /// Its database, removed with it.
    _db: common::Db,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn server(backend: Backend, rate_limit: u32, last_touch: bool) -> Option<Server> {
    server_behind(backend, rate_limit, last_touch, "").await
}

/// A server trusting `X-Forwarded-For` from `proxies` (comma-separated blocks).
async fn server_behind(
    backend: Backend,
    rate_limit: u32,
    last_touch: bool,
    proxies: &str,
) -> Option<Server> {
    let dir = std::env::temp_dir().join(format!(
        "tapkit-http-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (database_url, db) = common::database(backend).await?;
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url,
        data_dir: dir.clone(),
        rate_limit_per_hour: rate_limit,
        sqlite_synchronous: Default::default(),
        program: ProgramConfig {
            booking_url: BOOKING.into(),
            last_touch,
            ..ProgramConfig::default()
        },
        webhook_secret: None,
        sun_keys: None,
        public_url: "http://127.0.0.1".into(),
        smtp_url: None,
        mail_from: "Tapkit <no-reply@example.com>".into(),
        trusted_proxies: tapkit_server::tap::client_ip::TrustedProxies::parse_list(proxies)
            .unwrap(),
    };
    let state = AppState::new(config, SECRET).await.unwrap();
    let token = new_api_token();
    state
        .store
        .add_token("test", &token_hash(&token))
        .await
        .unwrap();
    Some(Server {
        state,
        token,
        dir,
        _db: db,
    })
}

impl Server {
    async fn call(&self, req: Request<Body>) -> Response {
        let mut req = req;
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([203, 0, 113, 9], 5555))));
        app(self.state.clone()).oneshot(req).await.unwrap()
    }

    async fn admin(
        &self,
        method: Method,
        path: &str,
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        json(self.call(req).await).await
    }

    async fn tap(&self, path: &str, ua: &str, cookie: Option<&str>) -> Response {
        let mut b = Request::builder().uri(path).header(header::USER_AGENT, ua);
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        self.call(b.body(Body::empty()).unwrap()).await
    }

    async fn affiliate(&self, name: &str) -> (i64, String) {
        let (st, v) = self
            .admin(
                Method::POST,
                "/api/admin/affiliates",
                &format!(r#"{{"name":"{name}","kind":"business"}}"#),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        (
            v["id"].as_i64().unwrap(),
            v["code"].as_str().unwrap().to_owned(),
        )
    }

    async fn last_click(&self) -> (String, Option<String>) {
        let n = self.state.store.click_count().await.unwrap();
        let (_, _, outcome) = self.state.store.click(n).await.unwrap().unwrap();
        let reason: Option<String> = sqlx_reason(&self.state.config.database_url, n).await;
        (outcome, reason)
    }
}

async fn sqlx_reason(url: &str, id: i64) -> Option<String> {
    use sqlx::Row;
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    sqlx::query("SELECT reason FROM clicks WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap()
        .try_get("reason")
        .unwrap()
}

async fn json(r: Response) -> (StatusCode, serde_json::Value) {
    let status = r.status();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

const UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1";
const WA: &str = "WhatsApp/2.23.20.0 A";

fn set_cookies(r: &Response) -> Vec<String> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn assert_redirect(r: &Response) {
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(r.headers()[header::LOCATION], BOOKING);
}

async fn the_admin_api_needs_a_token_and_validates_every_field(backend: Backend) {
    let Some(s) = server(backend, 50, false).await else {
        return; // no PostgreSQL here, and not required
    };
    let anon = s
        .call(
            Request::builder()
                .uri("/api/admin/affiliates")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    assert!(
        json(anon).await.1["error"]
            .as_str()
            .unwrap()
            .contains("Bearer")
    );
    let forged = s
        .call(
            Request::builder()
                .uri("/api/admin/affiliates")
                .header(header::AUTHORIZATION, "Bearer tk_nope")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    let (st, v) = s
        .admin(
            Method::POST,
            "/api/admin/affiliates",
            r#"{"name":"Iron Gym","kind":"business"}"#,
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let code = v["code"].as_str().unwrap();
    assert!(code.starts_with("IRONGYM-"));
    assert_eq!(v["url"], format!("https://book.example.com/r/{code}"));
    assert!(v["id"].is_i64());

    for (body, field_or_text) in [
        (r#"{"name":"X","kind":"robot"}"#, "kind"),
        (r#"{"name":"  ","kind":"business"}"#, "name"),
        (
            r#"{"name":"X","kind":"business","colour":"red"}"#,
            "unknown field `colour`",
        ),
        (r#"{"kind":"business"}"#, "missing field `name`"),
        (r#"{"name":"X","kind":"business""#, "EOF"),
    ] {
        let (st, v) = s.admin(Method::POST, "/api/admin/affiliates", body).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        let named =
            v["field"] == field_or_text || v["error"].as_str().unwrap().contains(field_or_text);
        assert!(named, "{body}: {v}");
    }
    // Lengths are of the value as sent, in characters (the document's maxLength), and
    // it is trimmed only after: 199 characters with a space on each side is 201, too
    // long; 200 accented characters (400 bytes) is not.
    for (field, value, ok) in [
        ("contact", format!(" {} ", "a".repeat(199)), false),
        ("contact", "é".repeat(200), true),
        ("name", format!(" {} ", "N".repeat(199)), false),
        ("name", "Ł".repeat(200), true),
    ] {
        let mut body = serde_json::json!({"name": "Len Gym", "kind": "business"});
        body[field] = serde_json::json!(value);
        let (st, v) = s
            .admin(Method::POST, "/api/admin/affiliates", &body.to_string())
            .await;
        if ok {
            assert_eq!(st, StatusCode::CREATED, "{field}: {v}");
        } else {
            assert_eq!(
                (st, v["field"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
                "{v}"
            );
        }
    }
    let big = format!(r#"{{"name":"{}","kind":"business"}}"#, "x".repeat(20_000));
    let (st, _) = s.admin(Method::POST, "/api/admin/affiliates", &big).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    let (st, v) = s
        .admin(Method::POST, "/api/admin/affiliates/abc/suspend", "")
        .await;
    assert_eq!(
        (st, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("id"))
    );
    let (st, _) = s
        .admin(Method::POST, "/api/admin/affiliates/999/suspend", "")
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

async fn cards_bind_to_one_affiliate_at_a_time(backend: Backend) {
    let Some(s) = server(backend, 50, false).await else {
        return; // no PostgreSQL here, and not required
    };
    let (a, _) = s.affiliate("Iron Gym").await;
    let (b, _) = s.affiliate("Glow Spa").await;
    let card = format!(r#"{{"affiliate_id":{a},"uid":"04:a1:b2:c3:d4:e5:f6"}}"#);
    let (st, v) = s.admin(Method::POST, "/api/admin/cards", &card).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["uid"], "04A1B2C3D4E5F6");
    let (st, _) = s.admin(Method::POST, "/api/admin/cards", &card).await;
    assert_eq!(
        st,
        StatusCode::OK,
        "registering the same binding again is fine"
    );
    let (st, v) = s
        .admin(
            Method::POST,
            "/api/admin/cards",
            &format!(r#"{{"affiliate_id":{b},"uid":"04A1B2C3D4E5F6"}}"#),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(
        v["error"].as_str().unwrap().contains("retire it first"),
        "{v}"
    );
    let (st, v) = s
        .admin(
            Method::POST,
            "/api/admin/cards",
            &format!(r#"{{"affiliate_id":{a},"uid":"xyz"}}"#),
        )
        .await;
    assert_eq!(
        (st, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("uid"))
    );
    let (st, _) = s
        .admin(
            Method::POST,
            "/api/admin/cards",
            r#"{"affiliate_id":999,"uid":"04A1B2C3D4E5F7"}"#,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, list) = s
        .admin(
            Method::GET,
            &format!("/api/admin/cards?affiliate_id={a}"),
            "",
        )
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, needs) = s
        .admin(Method::GET, "/api/admin/affiliates?needs_card=true", "")
        .await;
    let names: Vec<&str> = needs
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Glow Spa"]);
}

async fn a_valid_tap_logs_the_click_and_sets_the_cookie_pair(backend: Backend) {
    let Some(s) = server(backend, 50, false).await else {
        return; // no PostgreSQL here, and not required
    };
    let (_, code) = s.affiliate("Iron Gym").await;
    let r = s
        .tap(&format!("/r/{}", code.to_lowercase()), UA, None)
        .await;
    assert_redirect(&r);
    let cookies = set_cookies(&r);
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    let http_only = cookies
        .iter()
        .find(|c| c.starts_with("tapkit_ref="))
        .unwrap();
    let readable = cookies
        .iter()
        .find(|c| c.starts_with("tapkit_ref_js="))
        .unwrap();
    for c in [http_only, readable] {
        assert!(
            c.contains("Max-Age=2592000")
                && c.contains("Path=/")
                && c.contains("Secure")
                && c.contains("SameSite=Lax"),
            "{c}"
        );
    }
    assert!(http_only.contains("HttpOnly") && !readable.contains("HttpOnly"));
    let token = http_only
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("tapkit_ref=");
    let att = s.state.keys.verify_attribution(token).unwrap();
    assert_eq!(
        s.state.store.click(att.click_id).await.unwrap().unwrap().2,
        "attributed"
    );
}

async fn refusals_redirect_without_attribution_and_record_why(backend: Backend) {
    let Some(s) = server(backend, 50, false).await else {
        return; // no PostgreSQL here, and not required
    };
    let (a, code) = s.affiliate("Iron Gym").await;

    let r = s.tap("/r/IRONGYM-7K2M9X", UA, None).await;
    assert_redirect(&r);
    assert!(set_cookies(&r).is_empty());
    assert_eq!(
        s.last_click().await,
        ("unattributed".into(), Some("invalid_code".into()))
    );

    let unknown = tapkit_core::code::ReferralCode::generate("Nobody Here", 7);
    let r = s.tap(&format!("/r/{unknown}"), UA, None).await;
    assert!(set_cookies(&r).is_empty());
    assert_eq!(s.last_click().await.1.as_deref(), Some("unknown_code"));

    let r = s.tap(&format!("/r/{code}"), WA, None).await;
    assert_redirect(&r);
    assert!(set_cookies(&r).is_empty(), "previews get no cookie");
    assert_eq!(
        s.last_click().await,
        ("preview".into(), Some("link_preview".into()))
    );
    let head = s
        .call(
            Request::builder()
                .method(Method::HEAD)
                .uri(format!("/r/{code}"))
                .header(header::USER_AGENT, UA)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(set_cookies(&head).is_empty());

    s.admin(
        Method::POST,
        "/api/admin/kill-switches",
        &format!(r#"{{"channel":"qr","affiliate_id":{a}}}"#),
    )
    .await;
    let r = s.tap(&format!("/r/{code}?s=qr"), UA, None).await;
    assert!(set_cookies(&r).is_empty());
    assert_eq!(s.last_click().await.1.as_deref(), Some("channel_killed"));
    let r = s
        .tap(&format!("/r/{code}?utm_source=x&s=link"), UA, None)
        .await;
    assert_eq!(set_cookies(&r).len(), 2, "the link channel is still on");

    s.admin(
        Method::POST,
        &format!("/api/admin/affiliates/{a}/suspend"),
        "",
    )
    .await;
    let r = s.tap(&format!("/r/{code}"), UA, None).await;
    assert!(set_cookies(&r).is_empty());
    assert_eq!(
        s.last_click().await.1.as_deref(),
        Some("affiliate_suspended")
    );
}

async fn nfc_taps_check_the_card_and_its_counter(backend: Backend) {
    let Some(s) = server(backend, 50, false).await else {
        return; // no PostgreSQL here, and not required
    };
    let (a, code) = s.affiliate("Iron Gym").await;
    let (b, _) = s.affiliate("Glow Spa").await;
    let (_, card) = s
        .admin(
            Method::POST,
            "/api/admin/cards",
            &format!(r#"{{"affiliate_id":{a},"uid":"04A1B2C3D4E5F6"}}"#),
        )
        .await;
    let tap = |n: u32| format!("/r/{code}?m=04A1B2C3D4E5F6x{n:06X}");

    assert_eq!(set_cookies(&s.tap(&tap(5), UA, None).await).len(), 2);
    assert_eq!(s.last_click().await, ("attributed".into(), None));
    let r = s.tap(&tap(5), UA, None).await;
    assert_redirect(&r);
    assert!(set_cookies(&r).is_empty());
    assert_eq!(
        s.last_click().await,
        ("flagged".into(), Some("replayed_counter".into()))
    );
    assert_eq!(
        set_cookies(&s.tap(&tap(6), UA, None).await).len(),
        2,
        "a higher counter is a new tap"
    );

    let r = s
        .tap(&format!("/r/{code}?m=04FFFFFFFFFFFFx000001"), UA, None)
        .await;
    assert!(set_cookies(&r).is_empty());
    assert_eq!(
        s.last_click().await,
        ("flagged".into(), Some("card_not_registered".into()))
    );

    s.admin(
        Method::POST,
        &format!("/api/admin/cards/{}/retire", card["id"]),
        "",
    )
    .await;
    let r = s.tap(&tap(9), UA, None).await;
    assert!(set_cookies(&r).is_empty());
    assert_eq!(s.last_click().await.1.as_deref(), Some("card_revoked"));
    s.admin(
        Method::POST,
        "/api/admin/cards",
        &format!(r#"{{"affiliate_id":{b},"uid":"04A1B2C3D4E5F6"}}"#),
    )
    .await;
    let r = s.tap(&tap(10), UA, None).await;
    assert!(set_cookies(&r).is_empty());
    assert_eq!(
        s.last_click().await.1.as_deref(),
        Some("card_of_another_affiliate")
    );
}

async fn the_rate_limit_stops_attribution_but_not_the_redirect(backend: Backend) {
    let Some(s) = server(backend, 3, false).await else {
        return; // no PostgreSQL here, and not required
    };
    let (_, code) = s.affiliate("Iron Gym").await;
    let path = format!("/r/{code}");
    for _ in 0..3 {
        assert_eq!(set_cookies(&s.tap(&path, UA, None).await).len(), 2);
    }
    let r = s.tap(&path, UA, None).await;
    assert_redirect(&r);
    assert!(set_cookies(&r).is_empty());
    assert_eq!(
        s.last_click().await,
        ("flagged".into(), Some("rate_limited".into()))
    );
}

/// A tap through the proxy of these tests (every request arrives from 203.0.113.9)
/// for the customer `xff`; the number of cookies set.
async fn tap_from(s: &Server, path: String, xff: &str) -> usize {
    let req = Request::builder()
        .uri(path)
        .header(header::USER_AGENT, UA)
        .header("x-forwarded-for", xff)
        .body(Body::empty())
        .unwrap();
    set_cookies(&s.call(req).await).len()
}

async fn behind_a_trusted_proxy_each_customer_has_their_own_rate_limit(backend: Backend) {
    let Some(s) = server_behind(backend, 2, false, "203.0.113.9").await else {
        return; // no PostgreSQL here, and not required
    };
    let (_, code) = s.affiliate("Iron Gym").await;
    let path = format!("/r/{code}");
    assert_eq!(tap_from(&s, path.clone(), "198.51.100.1").await, 2);
    // A phone claiming another address is still counted under its own.
    assert_eq!(
        tap_from(&s, path.clone(), "192.0.2.77, 198.51.100.1").await,
        2
    );
    assert_eq!(tap_from(&s, path.clone(), "198.51.100.1").await, 0);
    assert_eq!(
        s.last_click().await,
        ("flagged".into(), Some("rate_limited".into()))
    );
    // Another customer through the same proxy is not held back.
    assert_eq!(tap_from(&s, path.clone(), "198.51.100.2").await, 2);

    // Without trusted proxies the header means nothing: one address, one limit.
    let Some(s) = server(backend, 2, false).await else {
        return; // no PostgreSQL here, and not required
    };
    let (_, code) = s.affiliate("Iron Gym").await;
    let path = format!("/r/{code}");
    for (xff, cookies) in [
        ("198.51.100.1", 2),
        ("198.51.100.2", 2),
        ("198.51.100.3", 0),
    ] {
        assert_eq!(tap_from(&s, path.clone(), xff).await, cookies, "{xff}");
    }
}

async fn forged_cookies_count_for_nothing_and_first_touch_keeps_a_real_one(backend: Backend) {
    let Some(s) = server(backend, 50, false).await else {
        return; // no PostgreSQL here, and not required
    };
    let (_, code) = s.affiliate("Iron Gym").await;
    let path = format!("/r/{code}");
    let first = set_cookies(&s.tap(&path, UA, None).await);
    let token = first[0]
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    // A valid earlier attribution is kept (first-touch).
    let r = s.tap(&path, UA, Some(&format!("tapkit_ref={token}"))).await;
    assert!(set_cookies(&r).is_empty());
    assert_eq!(
        s.last_click().await.1.as_deref(),
        Some("earlier_attribution_kept")
    );
    // A forged one is ignored: a real attribution replaces it.
    let forged = token.replacen("v1.1.", "v1.2.", 1);
    let r = s
        .tap(&path, UA, Some(&format!("tapkit_ref={forged}")))
        .await;
    assert_eq!(set_cookies(&r).len(), 2);
    assert_eq!(s.state.keys.verify_attribution(&forged), None);

    let Some(last) = server(backend, 50, true).await else {
        return; // no PostgreSQL here, and not required
    };
    let (_, code) = last.affiliate("Glow Spa").await;
    let path = format!("/r/{code}");
    let first = set_cookies(&last.tap(&path, UA, None).await);
    let token = first[0]
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let r = last
        .tap(&path, UA, Some(&format!("tapkit_ref={token}")))
        .await;
    assert_eq!(
        set_cookies(&r).len(),
        2,
        "last-touch replaces the attribution"
    );
}

#[tokio::test]
async fn healthz_reports_the_database() {
    let Some(s) = server(Backend::Sqlite, 50, false).await else {
        return; // no PostgreSQL here, and not required
    };
    let (st, v) = json(
        s.call(
            Request::builder()
                .uri("/healthz")
                .body(Body::empty())
                .unwrap(),
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, v["status"].as_str(), v["database"].as_str()),
        (StatusCode::OK, Some("ok"), Some("sqlite"))
    );
}

#[test]
fn the_sample_config_loads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tapkit.sample.toml");
    let c = tapkit_server::config::load(Some(&path)).unwrap();
    assert_eq!(c.program.cookie_days, 30);
    assert_eq!(c.rate_limit_per_hour, 50);
}

/// A booking URL that cannot go into a header (every tap would be a 500) or a cookie
/// domain that is not a domain (a `;` would add cookie attributes) is refused at
/// start-up with the fix named.
#[test]
fn header_breaking_program_settings_are_refused_at_start() {
    let dir = std::env::temp_dir().join(format!("tapkit-http-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sample = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tapkit.sample.toml"),
    )
    .unwrap();
    for (from, to, expect) in [
        (
            "booking_url = \"https://book.example.com/\"",
            "booking_url = \"https://book.example.com/\\n\"",
            "control character",
        ),
        (
            "cookie_days = 30",
            "cookie_days = 30\ncookie_domain = \"example.com; Secure=no\"",
            "program.cookie_domain",
        ),
    ] {
        assert!(sample.contains(from), "{from}");
        let path = dir.join("bad.toml");
        std::fs::write(&path, sample.replacen(from, to, 1)).unwrap();
        let e = tapkit_server::config::load(Some(&path)).unwrap_err();
        assert!(e.contains(expect), "{e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clicks_are_group_committed_and_none_is_lost_on_sqlite() {
    concurrent_clicks_are_group_committed_and_none_is_lost(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clicks_are_group_committed_and_none_is_lost_on_postgres() {
    concurrent_clicks_are_group_committed_and_none_is_lost(Backend::Postgres).await;
}

async fn concurrent_clicks_are_group_committed_and_none_is_lost(backend: Backend) {
    use std::sync::atomic::Ordering;
    let Some(s) = server(backend, 0, false).await else {
        return; // no PostgreSQL here, and not required
    };
    let (_, code) = s.affiliate("Iron Gym").await;
    let mut tasks = Vec::new();
    for i in 0..400u32 {
        let app = app(s.state.clone());
        let path = format!("/r/{code}");
        tasks.push(tokio::spawn(async move {
            let mut req = Request::builder()
                .uri(path)
                .header(header::USER_AGENT, UA)
                .body(Body::empty())
                .unwrap();
            req.extensions_mut().insert(ConnectInfo(SocketAddr::from((
                [198, 51, 100, (i % 250) as u8],
                4000,
            ))));
            app.oneshot(req).await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::FOUND);
    }
    // Every 302 that left has its click in the database.
    assert_eq!(s.state.store.click_count().await.unwrap(), 400);
    let st = s.state.clicks.stats();
    let (batches, written, max) = (
        st.batches.load(Ordering::Relaxed),
        st.clicks.load(Ordering::Relaxed),
        st.max_batch.load(Ordering::Relaxed),
    );
    assert_eq!(written, 400);
    assert!(
        max > 1 && batches < 400,
        "clicks were batched: {batches} commits for {written} clicks (largest {max})"
    );
}

async fn metrics_count_requests_clicks_and_batches(backend: Backend) {
    let Some(s) = server(backend, 50, false).await else {
        return; // no PostgreSQL here, and not required
    };
    let (_, code) = s.affiliate("Iron Gym").await;
    assert_redirect(&s.tap(&format!("/r/{code}?s=qr"), "Mozilla/5.0", None).await);
    assert_redirect(&s.tap(&format!("/r/{code}"), "WhatsApp/2.23", None).await);
    assert_redirect(&s.tap("/r/NOPE-00000", "Mozilla/5.0", None).await);
    let r = s
        .call(
            Request::builder()
                .uri("/metrics")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = String::from_utf8(
        axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    for line in [
        r#"tapkit_http_requests_total{route="/r/{code}",status="302"} 3"#,
        r#"tapkit_clicks_total{channel="qr",outcome="attributed"} 1"#,
        r#"tapkit_clicks_total{channel="link",outcome="preview"} 1"#,
        r#"tapkit_clicks_total{channel="link",outcome="unattributed"} 1"#,
        "tapkit_click_batch_size_sum 3",
        r#"tapkit_http_request_duration_seconds_count{route="/r/{code}"} 3"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
    }
    // The raw code never becomes a label.
    assert!(!text.contains(&code));
}

async fn a_suspension_made_by_another_replica_reaches_this_one(backend: Backend) {
    let Some(s) = server(backend, 50, false).await else {
        return; // no PostgreSQL here, and not required
    };
    let (id, code) = s.affiliate("Iron Gym").await;
    assert_redirect(&s.tap(&format!("/r/{code}"), "Mozilla/5.0", None).await);
    assert_eq!(s.last_click().await.0, "attributed");
    // Another replica: the same database, its own process state.
    let other = tapkit_server::store::Store::connect(&s.state.config.database_url)
        .await
        .unwrap();
    other.set_affiliate_status(id, "suspended").await.unwrap();
    // Within the poll period (1 s), without any call on this replica's admin API.
    let mut seen = false;
    for _ in 0..30 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_redirect(&s.tap(&format!("/r/{code}"), "Mozilla/5.0", None).await);
        if s.last_click().await.1.as_deref() == Some("affiliate_suspended") {
            seen = true;
            break;
        }
    }
    assert!(
        seen,
        "the suspension never reached this replica's directory"
    );
}

async fn analytics_count_visitors_channels_and_flagged_traffic_and_split_rebound_cards(
    backend: Backend,
) {
    let Some(s) = server(backend, 0, false).await else {
        return; // no PostgreSQL here, and not required
    };
    let (a, code_a) = s.affiliate("Iron Gym").await;
    let (b, code_b) = s.affiliate("Glow Spa").await;
    let (_, card) = s
        .admin(
            Method::POST,
            "/api/admin/cards",
            &format!(r#"{{"affiliate_id":{a},"uid":"04A1B2C3D4E5F6"}}"#),
        )
        .await;
    // Iron Gym: two link clicks by one visitor, a QR scan by another, a preview, an NFC
    // tap and its replay.
    s.tap(&format!("/r/{code_a}"), "Mozilla/5.0 phone-1", None)
        .await;
    s.tap(&format!("/r/{code_a}"), "Mozilla/5.0 phone-1", None)
        .await;
    s.tap(&format!("/r/{code_a}?s=qr"), "Mozilla/5.0 phone-2", None)
        .await;
    s.tap(&format!("/r/{code_a}"), "WhatsApp/2.23", None).await;
    s.tap(
        &format!("/r/{code_a}?m=04A1B2C3D4E5F6x000005"),
        "Mozilla/5.0 phone-3",
        None,
    )
    .await;
    s.tap(
        &format!("/r/{code_a}?m=04A1B2C3D4E5F6x000005"),
        "Mozilla/5.0 phone-4",
        None,
    )
    .await;
    // The card is retired and re-bound to Glow Spa, then tapped there.
    s.admin(
        Method::POST,
        &format!("/api/admin/cards/{}/retire", card["id"]),
        "",
    )
    .await;
    let (_, card2) = s
        .admin(
            Method::POST,
            "/api/admin/cards",
            &format!(r#"{{"affiliate_id":{b},"uid":"04A1B2C3D4E5F6"}}"#),
        )
        .await;
    s.tap(
        &format!("/r/{code_b}?m=04A1B2C3D4E5F6x000009"),
        "Mozilla/5.0 phone-5",
        None,
    )
    .await;

    let (st, v) = s.admin(Method::GET, "/api/admin/analytics", "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let today = tapkit_core::date::format_date(tapkit_server::store::now_ms() / 86_400_000);
    assert_eq!(v["to"], today);
    let day_a = v["affiliates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["affiliate_id"] == a)
        .unwrap();
    assert_eq!(day_a["date"], today);
    assert_eq!(day_a["clicks"], 4, "{day_a}");
    assert_eq!(
        day_a["visitors"], 3,
        "phone-1 twice is one visitor: {day_a}"
    );
    assert_eq!(day_a["attributed"], 4, "{day_a}");
    assert_eq!(day_a["previews"], 1);
    assert_eq!(day_a["flagged"], 1, "the replayed counter");
    assert_eq!(
        day_a["by_channel"],
        serde_json::json!({ "nfc": 1, "qr": 1, "kiosk": 0, "link": 2 })
    );
    let cards = v["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 2, "one row per binding: {cards:?}");
    let first = cards.iter().find(|c| c["card_id"] == card["id"]).unwrap();
    let second = cards.iter().find(|c| c["card_id"] == card2["id"]).unwrap();
    assert_eq!(
        (
            first["affiliate_id"].as_i64(),
            first["taps"].as_i64(),
            first["flagged"].as_i64()
        ),
        (Some(a), Some(1), Some(1))
    );
    assert_eq!(
        (second["affiliate_id"].as_i64(), second["taps"].as_i64()),
        (Some(b), Some(1))
    );
    assert_eq!(first["uid"], second["uid"]);

    // One affiliate; bad input named.
    let (_, only_b) = s
        .admin(
            Method::GET,
            &format!("/api/admin/analytics?affiliate_id={b}"),
            "",
        )
        .await;
    assert_eq!(only_b["affiliates"].as_array().unwrap().len(), 1);
    for (q, field) in [
        ("from=2026-02-30", "from"),
        ("to=yesterday", "to"),
        ("from=2020-01-01&to=2026-01-01", "from"),
        ("from=2026-11-21&to=2026-11-01", "from"),
        ("bogus=1", "query"),
    ] {
        let (st, e) = s
            .admin(Method::GET, &format!("/api/admin/analytics?{q}"), "")
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{q}: {e}");
        assert_eq!(e["field"], field, "{q}: {e}");
    }
    let (st, _) = s
        .admin(Method::GET, "/api/admin/analytics?affiliate_id=999", "")
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

async fn the_openapi_document_describes_every_route(backend: Backend) {
    let Some(s) = server(backend, 50, false).await else {
        return; // no PostgreSQL here, and not required
    };
    let r = s
        .call(
            Request::builder()
                .uri("/api/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let (st, doc) = json(r).await;
    assert_eq!(st, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let routes = [
        ("get", "/r/{code}"),
        ("head", "/r/{code}"),
        ("get", "/healthz"),
        ("get", "/metrics"),
        ("get", "/api/openapi.json"),
        ("post", "/api/admin/affiliates"),
        ("get", "/api/admin/affiliates"),
        ("get", "/api/admin/affiliates/{id}"),
        ("post", "/api/admin/affiliates/{id}/suspend"),
        ("post", "/api/admin/affiliates/{id}/reactivate"),
        ("post", "/api/admin/cards"),
        ("get", "/api/admin/cards"),
        ("post", "/api/admin/cards/{id}/retire"),
        ("post", "/api/admin/cards/{id}/lost"),
        ("post", "/api/admin/kill-switches"),
        ("get", "/api/admin/analytics"),
        ("post", "/api/conversions"),
        ("post", "/api/rewards/lookup"),
        ("post", "/api/rewards/redeem"),
        ("patch", "/api/admin/affiliates/{id}"),
        ("get", "/api/admin/affiliates/{id}/earnings"),
        ("get", "/api/admin/reviews"),
        ("post", "/api/admin/reviews/{id}/approve"),
        ("post", "/api/admin/reviews/{id}/reject"),
        ("get", "/api/admin/periods"),
        ("post", "/api/admin/periods/{period}/close"),
        ("get", "/api/admin/periods/{period}/payouts.csv"),
        ("get", "/api/admin/periods/{period}/payouts.pdf"),
        ("post", "/api/admin/payouts/{id}/paid"),
        ("post", "/api/admin/kiosks"),
        ("get", "/api/admin/kiosks"),
        ("get", "/api/admin/kiosks/{id}"),
        ("patch", "/api/admin/kiosks/{id}"),
        ("post", "/api/admin/kiosks/{id}/enrollment"),
        ("post", "/api/admin/kiosks/{id}/retire"),
        ("post", "/api/kiosk/enroll"),
        ("get", "/api/kiosk/config"),
        ("post", "/api/kiosk/heartbeat"),
        ("post", "/api/admin/referrers"),
        ("post", "/api/admin/members"),
        ("get", "/api/admin/members"),
        ("get", "/api/admin/members/{id}"),
        ("post", "/api/admin/members/{id}/plan"),
        ("post", "/api/admin/members/{id}/pause"),
        ("post", "/api/admin/members/{id}/cancel"),
        ("post", "/api/admin/members/{id}/cards"),
        ("post", "/api/admin/member-cards/{id}/revoke"),
        ("post", "/api/kiosk/check-in"),
        ("get", "/api/kiosk/roster"),
        ("get", "/api/admin/memberships/mrr"),
        ("post", "/api/admin/invoices/{id}/paid"),
        ("post", "/api/admin/invoices/{id}/refund"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(documented, routes.len(), "documented operations vs routes");
    for (method, path) in routes {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not in the OpenAPI document"
        );
        // And the server really answers it (not 404/405).
        let uri = path
            .replace("{code}", "NOPE-00000")
            .replace("{id}", "1")
            .replace("{period}", "2020-01");
        let r = s
            .call(
                Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(uri)
                    .header(header::USER_AGENT, UA)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert!(
            r.status() != StatusCode::NOT_FOUND && r.status() != StatusCode::METHOD_NOT_ALLOWED
                || r.status() == StatusCode::NOT_FOUND && path.contains("{id}"),
            "{method} {path}: {}",
            r.status()
        );
        // A path id that is not a number is the 422 the document states, naming `id`.
        if path.contains("{id}") {
            assert!(
                paths[path][method]["responses"].get("422").is_some(),
                "{method} {path}: 422 is not documented"
            );
            let (st, v) = s
                .admin(
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    &path.replace("{id}", "abc"),
                    "{}",
                )
                .await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{method} {path}: {v}");
            assert_eq!(v["field"], "id", "{method} {path}: {v}");
        }
    }
    // Every operation with a body: what an oversized body and one without a Content-Type
    // get is a documented status.
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            if op.get("requestBody").is_none() {
                continue;
            }
            let uri = path.replace("{id}", "1").replace("{period}", "2020-01");
            for (content_type, body) in [
                (
                    Some("application/json"),
                    format!("{{\"x\":\"{}\"}}", "x".repeat(20_000)),
                ),
                (None, "{}".to_owned()),
            ] {
                let mut b = Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(&uri)
                    .header(header::AUTHORIZATION, format!("Bearer {}", s.token));
                if let Some(c) = content_type {
                    b = b.header(header::CONTENT_TYPE, c);
                }
                let r = s.call(b.body(Body::from(body)).unwrap()).await;
                let st = r.status().as_u16().to_string();
                assert!(
                    op["responses"].get(&st).is_some(),
                    "{method} {path} (Content-Type {content_type:?}) answered {st}, which the document does not list"
                );
                // (The kiosk's own routes answer an admin token 401 before the body.)
                if content_type.is_some()
                    && !matches!(
                        path.as_str(),
                        "/api/kiosk/heartbeat" | "/api/kiosk/check-in"
                    )
                {
                    assert_eq!(st, "413", "{method} {path}: a 20 KB body");
                }
            }
        }
    }
    let field = &doc["components"]["schemas"]["Error"]["properties"]["field"]["type"];
    assert_eq!(
        field,
        &serde_json::json!(["string", "null"]),
        "a body error sends field: null"
    );
}

/// The restructuring of the server (issue 17) promised no change a client can see: the
/// OpenAPI document, the cookie pair of an attributed tap and the payout CSV are pinned
/// here byte for byte, as the server sent them before.
async fn the_openapi_document_cookie_bytes_and_csv_bytes_are_pinned(backend: Backend) {
    use sha2::Digest;
    let Some(s) = server(backend, 50, false).await else {
        return; // no PostgreSQL here, and not required
    };
    // The OpenAPI document: served as the file is, and the file as it was.
    let r = s
        .call(
            Request::builder()
                .uri("/api/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    let served = axum::body::to_bytes(r.into_body(), 1 << 22).await.unwrap();
    assert_eq!(&served[..], include_bytes!("../openapi.json"));
    assert_eq!(
        tapkit_core::hex::encode_lower(&sha2::Sha256::digest(&served)),
        "74a8a6a749a8bb9511412948bfa2166502b795733c47bf2d565c0f15234fe3b1",
        "the OpenAPI document changed: update this digest only with a deliberate API change"
    );

    // The cookie pair: only the token differs from tap to tap.
    let (_, code) = s.affiliate("Pinned Gym").await;
    let r = s.tap(&format!("/r/{code}?s=qr"), UA, None).await;
    assert_redirect(&r);
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    let cookies = set_cookies(&r);
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    let token = cookies[0]
        .strip_prefix("tapkit_ref=")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 4, "{token}");
    assert_eq!(parts[0], "v1");
    assert!(parts[1].parse::<i64>().is_ok() && parts[2].parse::<i64>().is_ok());
    assert!(parts[3].len() == 64 && parts[3].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        cookies,
        [
            format!("tapkit_ref={token}; Max-Age=2592000; Path=/; Secure; SameSite=Lax; HttpOnly"),
            format!("tapkit_ref_js={token}; Max-Age=2592000; Path=/; Secure; SameSite=Lax"),
        ]
    );

    // The payout CSV of a fixed report.
    let line = |id: i64, name: &str, unit: &str, payout: i64, carried: i64| {
        tapkit_server::store::ledger::PayoutLine {
            id,
            period: "2026-03".into(),
            affiliate_id: id,
            code: format!("C{id}"),
            name: name.into(),
            unit: unit.into(),
            opening_minor: 100,
            earned_minor: payout + carried - 100 + 25,
            reversed_minor: 25,
            issued_minor: 0,
            held_minor: 0,
            payout_minor: payout,
            carried_minor: carried,
            paid_at: None,
            paid_reference: None,
        }
    };
    let report = tapkit_server::money::payouts::Report {
        period: "2026-03".into(),
        closed_at: 1_775_001_600_000,
        lines: vec![
            line(1, "Café Zürich & Co.", "USD", 5000, 0),
            line(2, "=HYPERLINK(\"x\")", "credit:USD", 2500, -300),
            line(3, "Wash, \"Shine\"", "voucher:free-wash", 2, 0),
        ],
    };
    let csv = String::from_utf8(tapkit_server::money::payouts::csv(&report).unwrap()).unwrap();
    assert_eq!(
        csv,
        "period,affiliate_id,code,name,unit,opening_minor,earned_minor,reversed_minor,issued_minor,held_minor,payout_minor,carried_minor,payout\n\
         2026-03,1,C1,Café Zürich & Co.,USD,100,4925,25,0,0,5000,0,50.00 USD\n\
         2026-03,2,C2,\"'=HYPERLINK(\"\"x\"\")\",credit:USD,100,2125,25,0,0,2500,-300,25.00 USD credit\n\
         2026-03,3,C3,\"Wash, \"\"Shine\"\"\",voucher:free-wash,100,-73,25,0,0,2,0,2 x free-wash\n"
    );
}

/// A card re-bound on another replica while taps keep coming in on this one, before
/// this replica's directory has heard of it: no tap after the change is attributed to
/// the old partner (the click writer checks the binding with the counter), and once the
/// directory has reloaded the card counts for its new partner.
async fn a_card_rebound_on_another_replica_earns_nothing_for_the_old_partner(backend: Backend) {
    let Some(s) = server(backend, 0, false).await else {
        return; // no PostgreSQL here, and not required
    };
    let (a, code_a) = s.affiliate("Iron Gym").await;
    let (b, code_b) = s.affiliate("Glow Spa").await;
    let (st, card) = s
        .admin(
            Method::POST,
            "/api/admin/cards",
            &format!(r#"{{"affiliate_id":{a},"uid":"04A1B2C3D4E5F6"}}"#),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{card}");
    let tap = |code: &str, n: u32| format!("/r/{code}?m=04A1B2C3D4E5F6x{n:06X}");
    assert_eq!(
        set_cookies(&s.tap(&tap(&code_a, 1), UA, None).await).len(),
        2
    );
    // Another replica: the same database, its own process state.
    let other = tapkit_server::store::Store::connect(&s.state.config.database_url)
        .await
        .unwrap();
    other
        .end_card(card["id"].as_i64().unwrap(), "retired")
        .await
        .unwrap();
    other.register_card(b, "04A1B2C3D4E5F6").await.unwrap();
    // At once, on this replica: the card still carries Iron Gym's URL.
    let r = s.tap(&tap(&code_a, 2), UA, None).await;
    assert_redirect(&r);
    assert!(
        set_cookies(&r).is_empty(),
        "no attribution for the old partner"
    );
    let (outcome, reason) = s.last_click().await;
    assert_ne!(outcome, "attributed", "{reason:?}");
    // After the directory's poll: the new binding counts for Glow Spa, and Iron Gym's old
    // URL on it is another partner's card.
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    assert_eq!(
        set_cookies(&s.tap(&tap(&code_b, 3), UA, None).await).len(),
        2
    );
    assert_eq!(s.last_click().await, ("attributed".into(), None));
    assert!(set_cookies(&s.tap(&tap(&code_a, 4), UA, None).await).is_empty());
    assert_eq!(
        s.last_click().await,
        ("flagged".into(), Some("card_of_another_affiliate".into()))
    );
}

/// Two replicas (two servers on one database) receive the same card URL, one counter,
/// many times at once: exactly one tap is attributed, the others are replays. On
/// PostgreSQL the replicas' batches meet on the card's row; on SQLite they take turns
/// at the file.
async fn one_counter_earns_once_across_two_replicas(backend: Backend) {
    let Some(s) = server(backend, 0, false).await else {
        return; // no PostgreSQL here, and not required
    };
    let (a, code) = s.affiliate("Iron Gym").await;
    let (st, card) = s
        .admin(
            Method::POST,
            "/api/admin/cards",
            &format!(r#"{{"affiliate_id":{a},"uid":"04A1B2C3D4E5F6"}}"#),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{card}");
    let other = AppState::new(s.state.config.clone(), SECRET).await.unwrap();
    let url = format!("/r/{code}?m=04A1B2C3D4E5F6x00002A");
    let mut taps = Vec::new();
    for i in 0..24 {
        let state = if i % 2 == 0 {
            s.state.clone()
        } else {
            other.clone()
        };
        let url = url.clone();
        taps.push(tokio::spawn(async move {
            let mut req = Request::builder()
                .uri(&url)
                .header(header::USER_AGENT, UA)
                .body(Body::empty())
                .unwrap();
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(([203, 0, 113, 9], 5555))));
            let r = app(state).oneshot(req).await.unwrap();
            assert_redirect(&r);
            !set_cookies(&r).is_empty()
        }));
    }
    let mut attributed = 0;
    for t in taps {
        attributed += usize::from(t.await.unwrap());
    }
    assert_eq!(
        attributed, 1,
        "one tap of one counter earns, over two replicas"
    );
    let replays = sqlx::query(
        "SELECT COUNT(*) AS n FROM clicks WHERE reason = 'replayed_counter' AND channel = 'nfc'",
    )
    .fetch_one(
        &sqlx::AnyPool::connect(&s.state.config.database_url)
            .await
            .unwrap(),
    )
    .await
    .map(|r| sqlx::Row::get::<i64, _>(&r, "n"))
    .unwrap();
    assert_eq!(replays, 23);
}

/// One click the database refuses (here: a partner that does not exist, which no tap can
/// produce today; a `%00` code on PostgreSQL once did) fails only itself: the writer
/// writes the rest of its batch click by click, so every other customer still gets a
/// stored click and a redirect, and nothing is stored twice.
async fn one_bad_click_fails_only_itself(backend: Backend) {
    let Some(s) = server(backend, 0, false).await else {
        return; // no PostgreSQL here, and not required
    };
    let (aff, code) = s.affiliate("Iron Gym").await;
    let click = |affiliate_id: i64, n: i64| tapkit_server::store::NewClick {
        at: tapkit_server::store::now_ms(),
        code: code.clone(),
        affiliate_id: Some(affiliate_id),
        channel: "link",
        card_id: None,
        counter: None,
        user_agent: Some(format!("agent {n}")),
        referer: None,
        ip_hash: format!("h{n}"),
        outcome: "attributed",
        reason: None,
        rate_limit: false,
        check_counter: false,
        utm: None,
    };
    // Queued together, so they share batches.
    let tasks: Vec<_> = (0..40)
        .map(|n| {
            let c = click(if n == 17 { 987_654 } else { aff }, n);
            let w = s.state.clicks.clone();
            tokio::spawn(async move { w.record(c).await })
        })
        .collect();
    for (n, t) in tasks.into_iter().enumerate() {
        let r = t.await.unwrap();
        assert_eq!(r.is_ok(), n != 17, "click {n}: {r:?}");
    }
    let stored: i64 = sqlx::query("SELECT COUNT(*) AS n FROM clicks WHERE affiliate_id = $1")
        .bind(aff)
        .fetch_one(
            &sqlx::AnyPool::connect(&s.state.config.database_url)
                .await
                .unwrap(),
        )
        .await
        .map(|r| sqlx::Row::get::<i64, _>(&r, "n"))
        .unwrap();
    assert_eq!(stored, 39);
}

/// Every limit the OpenAPI document states is the one the server checks, on the value
/// as sent (issue 23): control characters are refused rather than trimmed away, ids are
/// 64-bit integers written without a sign, months and days are digits, lengths are
/// characters, and a body is a JSON object.
async fn what_the_document_states_is_checked_as_sent(backend: Backend) {
    let Some(s) = server(backend, 50, false).await else {
        return; // no PostgreSQL here, and not required
    };
    let (a, _) = s.affiliate("Iron Gym").await;
    let refused = |st: StatusCode, v: &serde_json::Value, field: &str, what: &str| {
        assert_eq!(
            (st, v["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{what}: {v}"
        );
    };
    // A control character at either end of a name is refused, not trimmed away.
    for name in ["Iron Gym\n", "\u{85}Iron Gym", "Iron\tGym"] {
        let body = serde_json::json!({"name": name, "kind": "business"}).to_string();
        let (st, v) = s.admin(Method::POST, "/api/admin/affiliates", &body).await;
        refused(st, &v, "name", &body);
    }
    // Card UIDs: 14 hex digits with separators, at most 64 characters in all; the
    // affiliate id may be spelled 1.0, as JSON Schema reads integers.
    for uid in ["", "  ", &format!("04A1B2C3D4E5F6{}", " ".repeat(51))] {
        let body = serde_json::json!({"affiliate_id": a, "uid": uid}).to_string();
        let (st, v) = s.admin(Method::POST, "/api/admin/cards", &body).await;
        refused(st, &v, "uid", &body);
    }
    let body = format!(r#"{{"affiliate_id":{a}.0,"uid":"04 A1 B2 C3 D4 E5 F6"}}"#);
    let (st, v) = s.admin(Method::POST, "/api/admin/cards", &body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    // A body is an object: serde alone would read an array of the fields in order.
    for (path, body) in [
        ("/api/admin/kill-switches", r#"["qr", null]"#),
        ("/api/admin/cards", r#"[1, "04A1B2C3D4E5F6"]"#),
        ("/api/admin/reviews/1/approve", r#"["ok"]"#),
        ("/api/admin/payouts/1/paid", r#"["ref"]"#),
    ] {
        let (st, v) = s.admin(Method::POST, path, body).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{path} {body}: {v}");
    }
    let (st, v) = s
        .admin(
            Method::POST,
            "/api/admin/kill-switches",
            r#"{"channel":"qr","affiliate_id":null}"#,
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "null is the same as absent: {v}");
    // Path ids: 64-bit signed integers, as stated; an id that names nothing is a 404.
    for (id, status) in [
        ("+1", StatusCode::UNPROCESSABLE_ENTITY),
        ("9223372036854775808", StatusCode::UNPROCESSABLE_ENTITY),
        ("1.0", StatusCode::UNPROCESSABLE_ENTITY),
        ("9223372036854775807", StatusCode::NOT_FOUND),
        ("-1", StatusCode::NOT_FOUND),
    ] {
        for path in [
            format!("/api/admin/affiliates/{id}"),
            format!("/api/admin/kiosks/{id}"),
        ] {
            let (st, _) = s.admin(Method::GET, &path, "").await;
            assert_eq!(st, status, "{path}");
        }
        for path in [
            format!("/api/admin/reviews/{id}/approve"),
            format!("/api/admin/payouts/{id}/paid"),
        ] {
            let (st, _) = s.admin(Method::POST, &path, "").await;
            assert_eq!(st, status, "{path}");
        }
    }
    // Months and days are digits: `+1` parses as a number but is not a month.
    for period in ["2026-+1", "0000-00", "1969-12", "2026-13", "2026-1"] {
        for (method, path) in [
            (Method::POST, format!("/api/admin/periods/{period}/close")),
            (
                Method::GET,
                format!("/api/admin/periods/{period}/payouts.csv"),
            ),
        ] {
            let (st, v) = s.admin(method, &path, "").await;
            refused(st, &v, "period", &path);
        }
    }
    for (query, field) in [
        ("from=2026-%2B1-01", "from"),
        ("to=2026-01-%2B1", "to"),
        ("from=1969-12-31&to=1970-01-01", "from"),
        ("from=2024-01-01&to=2025-01-02", "from"),
        ("from=2025-01-02&to=2025-01-01", "from"),
    ] {
        let path = format!("/api/admin/analytics?{query}");
        let (st, v) = s.admin(Method::GET, &path, "").await;
        refused(st, &v, field, &path);
    }
    let (st, v) = s
        .admin(
            Method::GET,
            "/api/admin/analytics?from=2024-01-01&to=2025-01-01",
            "",
        )
        .await;
    assert_eq!(st, StatusCode::OK, "367 days: {v}");
    // A body over 16 KiB is the JSON 413 the document states, where the body is optional
    // too.
    let big = serde_json::json!({ "note": "x".repeat(20_000) }).to_string();
    for path in ["/api/admin/reviews/1/approve", "/api/admin/payouts/1/paid"] {
        let (st, v) = s.admin(Method::POST, path, &big).await;
        assert_eq!(
            (st, v["field"].clone()),
            (StatusCode::PAYLOAD_TOO_LARGE, serde_json::Value::Null),
            "{path}: {v}"
        );
        assert!(v["error"].as_str().unwrap().contains("16 KiB"), "{v}");
    }
    // Lengths in characters, as maxLength counts them: at the limit the request goes on
    // to find there is no such review or payout; one past it names the field.
    for (path, field, max) in [
        ("/api/admin/reviews/999/approve", "note", 500),
        ("/api/admin/payouts/999/paid", "reference", 200),
    ] {
        let (st, v) = s
            .admin(
                Method::POST,
                path,
                &serde_json::json!({ field: "é".repeat(max) }).to_string(),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}: {v}");
        let (st, v) = s
            .admin(
                Method::POST,
                path,
                &serde_json::json!({ field: "é".repeat(max + 1) }).to_string(),
            )
            .await;
        refused(st, &v, field, path);
    }
}

on_both_databases!(
    one_counter_earns_once_across_two_replicas,
    one_bad_click_fails_only_itself,
    the_admin_api_needs_a_token_and_validates_every_field,
    cards_bind_to_one_affiliate_at_a_time,
    a_valid_tap_logs_the_click_and_sets_the_cookie_pair,
    refusals_redirect_without_attribution_and_record_why,
    nfc_taps_check_the_card_and_its_counter,
    the_rate_limit_stops_attribution_but_not_the_redirect,
    behind_a_trusted_proxy_each_customer_has_their_own_rate_limit,
    forged_cookies_count_for_nothing_and_first_touch_keeps_a_real_one,
    metrics_count_requests_clicks_and_batches,
    a_suspension_made_by_another_replica_reaches_this_one,
    analytics_count_visitors_channels_and_flagged_traffic_and_split_rebound_cards,
    the_openapi_document_describes_every_route,
    the_openapi_document_cookie_bytes_and_csv_bytes_are_pinned,
    a_card_rebound_on_another_replica_earns_nothing_for_the_old_partner,
    what_the_document_states_is_checked_as_sent,
);

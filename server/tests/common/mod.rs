//! Helpers shared by the money-side tests: a server on a fresh SQLite file or
//! PostgreSQL database, driven through the real router.
#![allow(clippy::unwrap_used, dead_code)] // test code; not every test file uses every helper

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use sqlx::Row;
use tapkit_core::date::{month_of_ms, parse_month};
use tapkit_server::config::{Config, Fraud, ProgramConfig, Secret};
use tapkit_server::keys::{new_api_token, token_hash};
use tapkit_server::money::wire::sign;
use tapkit_server::store::{NewClick, now_ms};
use tapkit_server::{AppState, app};
use tower::ServiceExt;

pub const SECRET: &[u8] = b"server secret server secret server!!";
pub const WEBHOOK: &[u8] = b"whsec_conversions_test_0123456789";
pub const UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1";

pub struct Server {
    pub state: AppState,
    pub token: String,
    _db: Db,
}

/// A fresh database, removed at the end.
pub enum Db {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Drop for Db {
    fn drop(&mut self) {
        match self {
            Db::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Db::Postgres(name) => {
                let name = name.clone();
                // Dropped from a plain thread: Drop may run inside a runtime.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        if let Ok(pool) = sqlx::AnyPool::connect(&pg_admin()).await {
                            let _ = sqlx::query(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .execute(&pool)
                            .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

pub fn pg_admin() -> String {
    std::env::var("TAPKIT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn unique() -> String {
    format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_007
    )
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database URL, or None when PostgreSQL is missing (a skip, or a failure under
/// TAPKIT_REQUIRE_PG=1 as scripts/test.sh sets).
pub async fn database(backend: Backend) -> Option<(String, Db)> {
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("tapkit-conv-{}", unique()));
            std::fs::create_dir_all(&dir).unwrap();
            Some((
                format!("sqlite://{}", dir.join("t.db").display()),
                Db::Sqlite(dir),
            ))
        }
        Backend::Postgres => {
            sqlx::any::install_default_drivers();
            let pool = match sqlx::AnyPool::connect(&pg_admin()).await {
                Ok(p) => p,
                Err(e) if std::env::var("TAPKIT_REQUIRE_PG").as_deref() == Ok("1") => {
                    panic!("TAPKIT_REQUIRE_PG=1 but PostgreSQL is not reachable: {e}")
                }
                Err(e) => {
                    eprintln!("skipped: no PostgreSQL ({e}); scripts/test.sh starts one");
                    return None;
                }
            };
            let name = format!("tapkit_conv_{}", unique());
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&pool)
                .await
                .unwrap();
            let base = pg_admin().rsplit_once('/').unwrap().0.to_owned();
            Some((format!("{base}/{name}"), Db::Postgres(name)))
        }
    }
}

pub fn quiet_fraud() -> Fraud {
    Fraud {
        review_every: 0,
        max_per_ip_per_day: 0,
        max_per_email_domain_per_day: 0,
        ..Fraud::default()
    }
}

pub async fn server_with(backend: Backend, program: ProgramConfig) -> Option<Server> {
    server_with_mail(backend, program, None).await
}

/// A server whose email goes to the SMTP server at `smtp_url`.
pub async fn server_with_mail(
    backend: Backend,
    program: ProgramConfig,
    smtp_url: Option<String>,
) -> Option<Server> {
    let (url, db) = database(backend).await?;
    let dir = std::env::temp_dir().join(format!("tapkit-conv-data-{}", unique()));
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: url,
        data_dir: dir,
        rate_limit_per_hour: 0,
        sqlite_synchronous: Default::default(),
        program,
        webhook_secret: Some(Secret(WEBHOOK.to_vec())),
        sun_keys: None,
        public_url: "http://127.0.0.1".into(),
        smtp_url: smtp_url.map(|u| Secret(u.into_bytes())),
        mail_from: "Tapkit <no-reply@example.com>".into(),
        trusted_proxies: Default::default(),
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
        _db: db,
    })
}

pub async fn server(backend: Backend) -> Option<Server> {
    server_with(
        backend,
        ProgramConfig {
            fraud: quiet_fraud(),
            ..ProgramConfig::default()
        },
    )
    .await
}

pub async fn json_of(r: Response) -> (StatusCode, Value) {
    let status = r.status();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 24).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

pub fn rfc3339_ms(ms: i64) -> String {
    let s = tapkit_core::date::rfc3339(u64::try_from(ms / 1000).unwrap());
    format!("{}.{:03}Z", s.trim_end_matches('Z'), ms % 1000)
}

impl Server {
    pub async fn call(&self, req: Request<Body>) -> Response {
        let mut req = req;
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([203, 0, 113, 9], 5555))));
        app(self.state.clone()).oneshot(req).await.unwrap()
    }

    pub async fn admin(&self, method: Method, path: &str, body: &str) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        json_of(self.call(req).await).await
    }

    pub async fn admin_bytes(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let req = Request::builder()
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Body::empty())
            .unwrap();
        let r = self.call(req).await;
        let st = r.status();
        (
            st,
            axum::body::to_bytes(r.into_body(), 1 << 26)
                .await
                .unwrap()
                .to_vec(),
        )
    }

    /// An enrolled kiosk of a new partner: its bearer token.
    pub async fn kiosk_token(&self, name: &str) -> String {
        let (aff, _) = self.affiliate(name, "business").await;
        let (st, k) = self
            .admin(
                Method::POST,
                "/api/admin/kiosks",
                &json!({"affiliate_id": aff, "name": "Front desk"}).to_string(),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{k}");
        self.enroll(&k["enrollment_code"]).await
    }

    /// Enrols a kiosk with an enrolment code (as the admin API gave it): its bearer token.
    pub async fn enroll(&self, code: &Value) -> String {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/kiosk/enroll")
            .header("content-type", "application/json")
            .body(Body::from(json!({ "code": code }).to_string()))
            .unwrap();
        let (st, e) = json_of(self.call(req).await).await;
        assert_eq!(st, StatusCode::OK, "{e}");
        format!("kiosk.{}.{}", e["kiosk_id"], e["secret"].as_str().unwrap())
    }

    pub async fn affiliate(&self, name: &str, kind: &str) -> (i64, String) {
        let (st, v) = self
            .admin(
                Method::POST,
                "/api/admin/affiliates",
                &json!({"name": name, "kind": kind}).to_string(),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        (
            v["id"].as_i64().unwrap(),
            v["code"].as_str().unwrap().to_owned(),
        )
    }

    /// A real tap: the token from the readable cookie.
    pub async fn tap(&self, code: &str, query: &str) -> String {
        let req = Request::builder()
            .uri(format!("/r/{code}{query}"))
            .header(header::USER_AGENT, UA)
            .body(Body::empty())
            .unwrap();
        let r = self.call(req).await;
        assert_eq!(r.status(), StatusCode::FOUND);
        r.headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .find_map(|c| c.strip_prefix("tapkit_ref_js="))
            .and_then(|c| c.split(';').next())
            .unwrap_or_else(|| panic!("no attribution cookie for {code}"))
            .to_owned()
    }

    /// A click stored at a chosen time (for months that have ended), with its token.
    pub async fn click_at(&self, affiliate_id: i64, code: &str, at: i64, ip_hash: &str) -> String {
        let id = self
            .state
            .store
            .insert_click(&NewClick {
                at,
                code: code.into(),
                affiliate_id: Some(affiliate_id),
                channel: "nfc",
                card_id: None,
                counter: None,
                user_agent: Some(UA.into()),
                referer: None,
                ip_hash: ip_hash.into(),
                outcome: "attributed",
                reason: None,
                rate_limit: false,
                check_counter: false,
                utm: None,
            })
            .await
            .unwrap();
        self.state.keys.sign_attribution(id, at)
    }

    pub async fn deliver_raw(&self, body: &str, signature: Option<String>) -> (StatusCode, Value) {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri("/api/conversions")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(sig) = signature {
            b = b.header("Tapkit-Signature", sig);
        }
        json_of(
            self.call(b.body(Body::from(body.to_owned())).unwrap())
                .await,
        )
        .await
    }

    pub async fn deliver(&self, event: Value) -> Value {
        let body = event.to_string();
        let sig = sign(body.as_bytes(), WEBHOOK, now_ms() / 1000);
        let (st, v) = self.deliver_raw(&body, Some(sig)).await;
        assert_eq!(st, StatusCode::OK, "{event} → {v}");
        v
    }

    pub async fn owed(&self, affiliate_id: i64) -> Vec<(String, i64)> {
        let owed = self.state.store.owed(affiliate_id).await.unwrap();
        owed.into_iter().map(|o| (o.unit, o.amount_minor)).collect()
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(&self.pool().await)
            .await
            .unwrap()
            .try_get("n")
            .unwrap()
    }

    pub async fn pool(&self) -> sqlx::AnyPool {
        sqlx::AnyPool::connect(&self.state.config.database_url)
            .await
            .unwrap()
    }
}

pub static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn event(kind: &str, booking: &str, at: i64, token: Option<&str>) -> Value {
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut e = json!({
        "event_id": format!("evt-{booking}-{kind}-{n}"),
        "kind": kind,
        "booking_id": booking,
        "occurred_at": rfc3339_ms(at),
        "customer_id": format!("cust-{booking}"),
    });
    if matches!(kind, "booking_paid" | "purchase") {
        e["amount_minor"] = json!(20_000);
        e["currency"] = json!("USD");
    }
    if let Some(t) = token {
        e["attribution"] = json!(t);
    }
    e
}

pub fn usd(v: i64) -> Vec<(String, i64)> {
    vec![("USD".into(), v)]
}

/// The previous month (ended) and the current one.
pub fn months() -> (String, i64, String) {
    let now = now_ms();
    let current = month_of_ms(now);
    let (start, _) = parse_month(&current).unwrap();
    let prev = month_of_ms(start - 1);
    let (prev_start, _) = parse_month(&prev).unwrap();
    (prev, prev_start, current)
}

pub fn pdftotext(pdf: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("tapkit-payouts-{}.pdf", unique()));
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout"])
        .arg(&path)
        .arg("-")
        .output()
        .unwrap_or_else(|e| {
            panic!("pdftotext (poppler-utils; scripts/install-deps.sh print) is needed: {e}")
        });
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "pdftotext failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A server running one of the example programs in `server/programs/`.
pub async fn program_server(file: &str) -> Server {
    program_server_on(Backend::Sqlite, file).await.unwrap()
}

/// A server running one of `server/programs/` on a backend (None: PostgreSQL is not
/// there and not required).
pub async fn program_server_on(backend: Backend, file: &str) -> Option<Server> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("programs")
        .join(file);
    let config = tapkit_server::config::load(Some(&path))
        .unwrap_or_else(|e| panic!("{file} does not load: {e}"));
    server_with(backend, config.program).await
}

/// Runs an async test body on SQLite and on PostgreSQL, as `NAME::on_sqlite` and
/// `NAME::on_postgres` (the store suite's pattern).
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn on_sqlite() {
                    super::$name(super::Backend::Sqlite).await;
                }
                #[tokio::test]
                async fn on_postgres() {
                    super::$name(super::Backend::Postgres).await;
                }
            }
        )+
    };
}

impl Server {
    /// A booking paid and serviced in the previous month (`day` days into it), for a
    /// customer; returns the serviced event's answer.
    pub async fn booking(
        &self,
        affiliate: (i64, &str),
        booking: &str,
        amount_minor: i64,
        day: i64,
        customer: &str,
    ) -> Value {
        let (_, start, _) = months();
        let at = start + day * 86_400_000;
        let t = self
            .click_at(affiliate.0, affiliate.1, at, &format!("ip-{booking}"))
            .await;
        let mut paid = event("booking_paid", booking, at + 60_000, Some(&t));
        paid["amount_minor"] = json!(amount_minor);
        paid["customer_id"] = json!(customer);
        self.deliver(paid).await;
        let mut serviced = event("booking_serviced", booking, at + 3_600_000, None);
        serviced["customer_id"] = json!(customer);
        self.deliver(serviced).await
    }
}

/// (unit, amount) pairs of a webhook answer.
pub fn amounts(v: &Value) -> Vec<(String, i64)> {
    v["amounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["unit"].as_str().unwrap().to_owned(),
                a["amount_minor"].as_i64().unwrap(),
            )
        })
        .collect()
}

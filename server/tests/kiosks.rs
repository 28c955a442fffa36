//! Counter displays through the real router and a real database (SQLite and PostgreSQL):
//! enrolment codes (single use, expiry, typos), kiosk authentication, the display config
//! with its ETag, heartbeats and online/offline, display overrides, and the rotating QR
//! token on `/r/{code}?k=…` — fresh, skewed, stale, forged, misplaced, re-enrolled, retired.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::*;
use serde_json::{Value, json};
use sqlx::Row;
use tapkit_core::kiosk::{sign, step_at};
use tapkit_server::config::ProgramConfig;
use tapkit_server::kiosks::KioskConfig;
use tapkit_server::store::now_ms;

impl Server {
    async fn kiosk_call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value, Option<String>) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let r = self.call(req).await;
        let etag = r
            .headers()
            .get(header::ETAG)
            .map(|v| v.to_str().unwrap().to_owned());
        let (st, v) = json_of(r).await;
        (st, v, etag)
    }

    /// A scan of `/r/{code}?k=token`: the attribution cookie, if any, and the click row.
    async fn scan(
        &self,
        code: &str,
        token: &str,
    ) -> (Option<String>, (String, String, Option<String>)) {
        let req = Request::builder()
            .uri(format!("/r/{code}?k={token}"))
            .header(header::USER_AGENT, UA)
            .body(Body::empty())
            .unwrap();
        let r = self.call(req).await;
        assert_eq!(r.status(), StatusCode::FOUND);
        let cookie = r
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .find_map(|c| {
                c.to_str()
                    .unwrap()
                    .strip_prefix("tapkit_ref=")
                    .map(str::to_owned)
            });
        let row =
            sqlx::query("SELECT channel, outcome, reason FROM clicks ORDER BY id DESC LIMIT 1")
                .fetch_one(&self.pool().await)
                .await
                .unwrap();
        (
            cookie,
            (
                row.get::<String, _>("channel"),
                row.get::<String, _>("outcome"),
                row.get::<Option<String>, _>("reason"),
            ),
        )
    }
}

fn bearer(id: i64, secret: &str) -> String {
    format!("Bearer kiosk.{id}.{secret}")
}

/// Hour-long token steps, so no step boundary falls inside the suite (waiting out the
/// last 30 s of an hour if need be): every step offset below is exact.
const STEP: i64 = 3600;

async fn kiosk_suite(backend: Backend) {
    let Some(s) = server_with(
        backend,
        ProgramConfig {
            fraud: quiet_fraud(),
            kiosk: KioskConfig {
                rotation_secs: STEP,
                ..KioskConfig::default()
            },
            ..ProgramConfig::default()
        },
    )
    .await
    else {
        return;
    };
    let to_boundary = STEP * 1000 - now_ms().rem_euclid(STEP * 1000);
    if to_boundary < 30_000 {
        tokio::time::sleep(std::time::Duration::from_millis(to_boundary as u64 + 100)).await;
    }
    let (aff, code) = s.affiliate("Shine Detailing", "business").await;
    let (other, other_code) = s.affiliate("Gym North", "business").await;

    // Creating: the affiliate must exist (a 404 naming it, like every reference to one).
    let (st, v) = s
        .admin(
            Method::POST,
            "/api/admin/kiosks",
            r#"{"affiliate_id": 999999}"#,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["field"], "affiliate_id");
    // A body is a JSON object: serde alone would read `[999999]` as the same kiosk.
    let (st, v) = s.admin(Method::POST, "/api/admin/kiosks", "[999999]").await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // The name is checked as sent (a control character at its end is not trimmed away,
    // 201 characters with the spaces around them are too many), then trimmed.
    for name in [
        "Front counter\n".to_owned(),
        format!(" {} ", "x".repeat(199)),
    ] {
        let (st, v) = s
            .admin(
                Method::POST,
                "/api/admin/kiosks",
                &json!({"affiliate_id": aff, "name": name}).to_string(),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}: {v}");
        assert_eq!(v["field"], "name", "{v}");
    }
    let (st, v) = s
        .admin(
            Method::POST,
            "/api/admin/kiosks",
            r#"{"affiliate_id": 1, "colour": "red"}"#,
        )
        .await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields refused: {v}"
    );
    let (st, k) = s
        .admin(
            Method::POST,
            "/api/admin/kiosks",
            &json!({"affiliate_id": aff, "name": "Front counter"}).to_string(),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{k}");
    let kid = k["id"].as_i64().unwrap();
    let enrol = k["enrollment_code"].as_str().unwrap().to_owned();
    assert_eq!(
        (k["status"].as_str(), k["enrolled"].as_bool()),
        (Some("offline"), Some(false))
    );
    assert!(k["enrollment_expires_at"].as_str().unwrap().ends_with('Z'));
    let (_, k2) = s
        .admin(
            Method::POST,
            "/api/admin/kiosks",
            &json!({"affiliate_id": other}).to_string(),
        )
        .await;
    let (st, list) = s.admin(Method::GET, "/api/admin/kiosks", "").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list["kiosks"].as_array().unwrap().len(), 2);
    assert!(
        list["kiosks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("enrollment_code").is_none()),
        "codes are shown once, when made"
    );
    let (_, mine) = s
        .admin(
            Method::GET,
            &format!("/api/admin/kiosks?affiliate_id={aff}"),
            "",
        )
        .await;
    assert_eq!(mine["kiosks"].as_array().unwrap().len(), 1);

    // Enrolment: typos are told apart from unknown codes; a code works once.
    let (st, v, _) = s
        .kiosk_call(
            Method::POST,
            "/api/kiosk/enroll",
            None,
            Some(json!({"code": "hello"})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("10 letters and digits")
    );
    let (st, v, _) = s
        .kiosk_call(
            Method::POST,
            "/api/kiosk/enroll",
            None,
            Some(json!({"code": "00000-00000"})),
        )
        .await;
    // A code no kiosk has is a 404; 410 is for one that was used up or expired.
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert!(v["error"].as_str().unwrap().contains("not known"));
    let typed = enrol.to_lowercase().replace('-', " ");
    let (st, e, _) = s
        .kiosk_call(
            Method::POST,
            "/api/kiosk/enroll",
            None,
            Some(json!({"code": typed})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert_eq!(
        (e["kiosk_id"].as_i64(), e["affiliate_code"].as_str()),
        (Some(kid), Some(code.as_str()))
    );
    let secret = e["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 64);
    let (st, v, _) = s
        .kiosk_call(
            Method::POST,
            "/api/kiosk/enroll",
            None,
            Some(json!({"code": enrol})),
        )
        .await;
    assert_eq!(st, StatusCode::GONE);
    assert!(v["error"].as_str().unwrap().contains("already used"), "{v}");
    let secret_row = sqlx::query("SELECT * FROM kiosks WHERE id = $1")
        .bind(kid)
        .fetch_one(&s.pool().await)
        .await
        .unwrap();
    for col in 0..secret_row.len() {
        if let Ok(Some(text)) = secret_row.try_get::<Option<String>, _>(col) {
            assert!(!text.contains(&secret), "the kiosk secret is never stored");
        }
    }

    // Authentication.
    let auth = bearer(kid, &secret);
    for bad in [
        None,
        Some("Bearer nonsense".to_owned()),
        Some(bearer(kid, &"00".repeat(32))),
        Some(bearer(kid + 1000, &secret)),
        Some(bearer(k2["id"].as_i64().unwrap(), &secret)),
    ] {
        let (st, v, _) = s
            .kiosk_call(Method::GET, "/api/kiosk/config", bad.as_deref(), None)
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{bad:?}: {v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains("display-kiosk enroll")
        );
    }

    // The display config and its ETag.
    let (st, cfg, etag) = s
        .kiosk_call(Method::GET, "/api/kiosk/config", Some(&auth), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{cfg}");
    assert_eq!(cfg["url"], format!("https://book.example.com/r/{code}"));
    assert_eq!(cfg["affiliate_code"], code.as_str());
    assert_eq!(cfg["tagline"], "Tap your phone here to book");
    assert_eq!(
        etag.as_deref(),
        Some(format!("\"{}\"", cfg["version"].as_str().unwrap()).as_str())
    );
    let req = Request::builder()
        .uri("/api/kiosk/config")
        .header(header::AUTHORIZATION, &auth)
        .header(header::IF_NONE_MATCH, etag.clone().unwrap())
        .body(Body::empty())
        .unwrap();
    assert_eq!(s.call(req).await.status(), StatusCode::NOT_MODIFIED);

    // Heartbeat: the answer names the config version; the admin sees the kiosk online.
    let hb = |cv: Value| {
        json!({"version": "0.1.0", "uptime_secs": 12, "config_version": cv,
               "last_error": "disk full", "clock_ms": now_ms() + 90_000})
    };
    let (st, beat, _) = s
        .kiosk_call(
            Method::POST,
            "/api/kiosk/heartbeat",
            Some(&auth),
            Some(hb(cfg["version"].clone())),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{beat}");
    assert_eq!(beat["config_version"], cfg["version"]);
    assert!((beat["server_time_ms"].as_i64().unwrap() - now_ms()).abs() < 5_000);
    let (st, v, _) = s
        .kiosk_call(
            Method::POST,
            "/api/kiosk/heartbeat",
            Some(&auth),
            Some(json!({"version": "", "uptime_secs": 1, "clock_ms": 0})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["field"], "version");
    let (_, one) = s
        .admin(Method::GET, &format!("/api/admin/kiosks/{kid}"), "")
        .await;
    assert_eq!(one["status"], "online", "{one}");
    assert_eq!(one["enrolled"], true);
    assert_eq!(one["last_error"], "disk full");
    assert_eq!(one["config_version"], cfg["version"]);
    let skew = one["clock_skew_ms"].as_i64().unwrap();
    assert!(
        (85_000..95_000).contains(&skew),
        "kiosk clock 90 s ahead: {skew}"
    );
    // Silence longer than offline_after_secs: offline.
    sqlx::query("UPDATE kiosks SET last_seen = $1 WHERE id = $2")
        .bind(now_ms() - 151_000)
        .bind(kid)
        .execute(&s.pool().await)
        .await
        .unwrap();
    let (_, one) = s
        .admin(Method::GET, &format!("/api/admin/kiosks/{kid}"), "")
        .await;
    assert_eq!(one["status"], "offline");
    assert!(one["last_seen"].as_str().unwrap().ends_with('Z'));
    // Lengths are characters, as the document's maxLength counts them, and a whole
    // number spelled with a fraction is the integer JSON Schema says it is.
    let version = "é".repeat(40);
    let (st, v, _) = s
        .kiosk_call(
            Method::POST,
            "/api/kiosk/heartbeat",
            Some(&auth),
            Some(json!({"version": version, "uptime_secs": 12.0, "clock_ms": 1_000.0})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, one) = s
        .admin(Method::GET, &format!("/api/admin/kiosks/{kid}"), "")
        .await;
    assert_eq!(
        (one["version"].as_str(), one["uptime_secs"].as_i64()),
        (Some(version.as_str()), Some(12))
    );
    for bad in [
        json!({"version": "é".repeat(41), "uptime_secs": 1, "clock_ms": 0}),
        json!({"version": "1", "uptime_secs": 1.5, "clock_ms": 0}),
    ] {
        let (st, v, _) = s
            .kiosk_call(Method::POST, "/api/kiosk/heartbeat", Some(&auth), Some(bad))
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    }

    // Display overrides: checked, and they change the config version.
    for (body, field) in [
        (json!({"background": "navy"}), "background"),
        (json!({"background": "#ff ff "}), "background"),
        (json!({"accent": "#ff:ff:"}), "accent"),
        (
            json!({"foreground": "#777777", "background": "#888888"}),
            "foreground",
        ),
        (json!({"tagline": ""}), ""),
        (json!({"logo_png": "R0lGODlh"}), "logo_png"),
        (json!({"brand_name": "x".repeat(41)}), "brand_name"),
        (json!({"brand_name": "Shine\u{7}"}), "brand_name"),
        (json!({"background": null, "accent": ""}), ""),
    ] {
        let (st, v) = s
            .admin(
                Method::PATCH,
                &format!("/api/admin/kiosks/{kid}"),
                &body.to_string(),
            )
            .await;
        if field.is_empty() {
            assert_eq!(st, StatusCode::OK, "an empty string clears: {v}");
        } else {
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
            assert_eq!(v["field"], field, "{body}: {v}");
        }
    }
    let (st, v) = s
        .admin(
            Method::PATCH,
            &format!("/api/admin/kiosks/{kid}"),
            "[null, null]",
        )
        .await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a body is an object: {v}"
    );
    let (st, v) = s
        .admin(
            Method::PATCH,
            &format!("/api/admin/kiosks/{kid}"),
            r##"{"tagline": "Tap here to book your detail", "accent": "#ff8800"}"##,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["display"]["tagline"], "Tap here to book your detail");
    let (_, beat, _) = s
        .kiosk_call(
            Method::POST,
            "/api/kiosk/heartbeat",
            Some(&auth),
            Some(hb(cfg["version"].clone())),
        )
        .await;
    assert_ne!(
        beat["config_version"], cfg["version"],
        "the change shows in the next heartbeat"
    );
    let (_, cfg2, _) = s
        .kiosk_call(Method::GET, "/api/kiosk/config", Some(&auth), None)
        .await;
    assert_eq!(cfg2["tagline"], "Tap here to book your detail");
    assert_eq!(cfg2["version"], beat["config_version"]);

    // The rotating token.
    let key = tapkit_core::hex::decode(&secret).unwrap();
    let step = step_at(now_ms(), STEP);
    let (cookie, row) = s.scan(&code, &sign(&key, kid, step)).await;
    assert!(cookie.is_some(), "a fresh token attributes: {row:?}");
    assert_eq!(row, ("kiosk".into(), "attributed".into(), None));
    let (cookie, row) = s.scan(&code, &sign(&key, kid, step + 2)).await;
    assert!(
        cookie.is_some(),
        "a kiosk clock 2 minutes ahead is tolerated: {row:?}"
    );
    let (cookie, row) = s.scan(&code, &sign(&key, kid, step - 2)).await;
    assert!(cookie.is_some(), "and 2 minutes behind: {row:?}");
    let cases = [
        (
            code.clone(),
            sign(&key, kid, step - 3),
            "unattributed",
            "stale_kiosk_token",
        ),
        (
            code.clone(),
            sign(&key, kid, step - 24 * 7),
            "unattributed",
            "stale_kiosk_token",
        ),
        (
            code.clone(),
            sign(&key, kid, step + 3),
            "unattributed",
            "kiosk_clock_ahead",
        ),
        (
            code.clone(),
            sign(b"a guessed secret", kid, step),
            "flagged",
            "forged_kiosk_token",
        ),
        (
            code.clone(),
            format!("{kid}.{step}.nothex"),
            "flagged",
            "bad_kiosk_token",
        ),
        (
            code.clone(),
            sign(&key, 424_242, step),
            "flagged",
            "unknown_kiosk",
        ),
        (
            other_code.clone(),
            sign(&key, kid, step),
            "flagged",
            "kiosk_of_another_affiliate",
        ),
    ];
    for (c, token, outcome, reason) in cases {
        let (cookie, row) = s.scan(&c, &token).await;
        assert!(cookie.is_none(), "{token}: no attribution");
        assert_eq!(
            row,
            ("kiosk".into(), outcome.into(), Some(reason.into())),
            "{token}"
        );
    }

    // Re-enrolment (a replaced box): the old secret dies, the new one works.
    let (st, re) = s
        .admin(
            Method::POST,
            &format!("/api/admin/kiosks/{kid}/enrollment"),
            "",
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{re}");
    let (st, v, _) = s
        .kiosk_call(Method::GET, "/api/kiosk/config", Some(&auth), None)
        .await;
    assert_eq!(
        st,
        StatusCode::OK,
        "the old secret works until the new code is used: {v}"
    );
    let (st, e2, _) = s
        .kiosk_call(
            Method::POST,
            "/api/kiosk/enroll",
            None,
            Some(json!({"code": re["enrollment_code"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{e2}");
    let new_secret = e2["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let (st, _, _) = s
        .kiosk_call(Method::GET, "/api/kiosk/config", Some(&auth), None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let new_auth = bearer(kid, new_secret);
    let (st, _, _) = s
        .kiosk_call(Method::GET, "/api/kiosk/config", Some(&new_auth), None)
        .await;
    assert_eq!(st, StatusCode::OK);

    // An expired code.
    let (_, re) = s
        .admin(
            Method::POST,
            &format!("/api/admin/kiosks/{kid}/enrollment"),
            "",
        )
        .await;
    sqlx::query("UPDATE kiosks SET enrollment_expires_at = $1 WHERE id = $2")
        .bind(now_ms() - 1)
        .bind(kid)
        .execute(&s.pool().await)
        .await
        .unwrap();
    let (st, v, _) = s
        .kiosk_call(
            Method::POST,
            "/api/kiosk/enroll",
            None,
            Some(json!({"code": re["enrollment_code"]})),
        )
        .await;
    assert_eq!(st, StatusCode::GONE);
    assert!(v["error"].as_str().unwrap().contains("expired"), "{v}");

    // Retired: no more heartbeats, its tokens earn nothing.
    let (st, v) = s
        .admin(Method::POST, &format!("/api/admin/kiosks/{kid}/retire"), "")
        .await;
    assert_eq!((st, v["state"].as_str()), (StatusCode::OK, Some("retired")));
    let (st, _, _) = s
        .kiosk_call(
            Method::POST,
            "/api/kiosk/heartbeat",
            Some(&new_auth),
            Some(hb(Value::Null)),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let new_key = tapkit_core::hex::decode(new_secret).unwrap();
    let (cookie, row) = s
        .scan(&code, &sign(&new_key, kid, step_at(now_ms(), STEP)))
        .await;
    assert!(cookie.is_none());
    assert_eq!(row.2.as_deref(), Some("kiosk_retired"));
    let (_, row) = s
        .scan(&code, &sign(b"made up", kid, step_at(now_ms(), STEP)))
        .await;
    assert_eq!(
        (row.1.as_str(), row.2.as_deref()),
        ("flagged", Some("forged_kiosk_token")),
        "naming a retired kiosk does not hide a forgery"
    );

    // The kill-switch for the kiosk channel applies to kiosk scans.
    let (_, k3) = s
        .admin(
            Method::POST,
            "/api/admin/kiosks",
            &json!({"affiliate_id": other}).to_string(),
        )
        .await;
    let (_, e3, _) = s
        .kiosk_call(
            Method::POST,
            "/api/kiosk/enroll",
            None,
            Some(json!({"code": k3["enrollment_code"]})),
        )
        .await;
    let key3 = tapkit_core::hex::decode(e3["secret"].as_str().unwrap()).unwrap();
    let k3id = k3["id"].as_i64().unwrap();
    let (cookie, _) = s
        .scan(&other_code, &sign(&key3, k3id, step_at(now_ms(), STEP)))
        .await;
    assert!(cookie.is_some());
    let (st, v) = s
        .admin(
            Method::POST,
            "/api/admin/kill-switches",
            &json!({"channel": "kiosk", "affiliate_id": other}).to_string(),
        )
        .await;
    assert!(st.is_success(), "{v}");
    s.state.directory.reload().await.unwrap();
    let (cookie, row) = s
        .scan(&other_code, &sign(&key3, k3id, step_at(now_ms(), STEP)))
        .await;
    assert!(cookie.is_none());
    assert_eq!(row.2.as_deref(), Some("channel_killed"));
}

#[tokio::test]
async fn kiosks_on_sqlite() {
    kiosk_suite(Backend::Sqlite).await;
}

#[tokio::test]
async fn kiosks_on_postgres() {
    kiosk_suite(Backend::Postgres).await;
}

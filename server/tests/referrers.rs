//! Self-service referral links (issue 21), through the real router and store on SQLite
//! and PostgreSQL: `POST /api/admin/referrers` gives a customer their own `/r/{code}`
//! link (the same email again answers it), and a link past its `expires_at` still
//! redirects but earns nothing, counted apart as `link_expired`.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::*;
use serde_json::{Value, json};
use sqlx::Row;

async fn referrer(s: &Server, body: Value) -> (StatusCode, Value) {
    s.admin(Method::POST, "/api/admin/referrers", &body.to_string())
        .await
}

/// The last click's (outcome, reason).
async fn last_click(s: &Server) -> (String, Option<String>) {
    let r = sqlx::query("SELECT outcome, reason FROM clicks ORDER BY id DESC LIMIT 1")
        .fetch_one(&s.pool().await)
        .await
        .unwrap();
    (r.try_get("outcome").unwrap(), r.try_get("reason").unwrap())
}

/// A tap of `/r/{code}`: the 302's attribution cookie, if any.
async fn tap_cookie(s: &Server, code: &str) -> Option<String> {
    let req = Request::builder()
        .uri(format!("/r/{code}"))
        .header(
            header::USER_AGENT,
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
        )
        .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [203, 0, 113, 9],
            9,
        ))))
        .body(Body::empty())
        .unwrap();
    let r = s.call(req).await;
    assert_eq!(
        r.status(),
        StatusCode::FOUND,
        "an expired link still redirects"
    );
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("tapkit_ref="))
        .map(|c| c.split(';').next().unwrap_or("").to_owned())
}

async fn a_customer_gets_one_link_and_it_can_expire(backend: Backend) {
    let Some(s) = server_with(
        backend,
        tapkit_server::config::ProgramConfig {
            fraud: quiet_fraud(),
            domain: "book.example.com".into(),
            ..tapkit_server::config::ProgramConfig::default()
        },
    )
    .await
    else {
        return; // no PostgreSQL here, and not required
    };
    let (st, ada) = referrer(
        &s,
        json!({"email": "Ada.L@Example.com", "kind": "customer"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{ada}");
    let code = ada["code"].as_str().unwrap().to_owned();
    assert!(code.starts_with("ADAL-"), "{code}");
    assert_eq!(ada["kind"], "customer");
    assert_eq!(ada["url"], format!("https://book.example.com/r/{code}"));
    assert_eq!(ada["expires_at"], Value::Null);
    // Asked again (the page reloaded, the checkout asked too): the same link.
    let (st, again) = referrer(
        &s,
        json!({"email": "ADA.L@example.COM", "kind": "customer"}),
    )
    .await;
    assert_eq!((st, &again["id"]), (StatusCode::OK, &ada["id"]), "{again}");
    assert!(
        tap_cookie(&s, &code).await.is_some(),
        "a live link attributes"
    );

    // What is refused, with the field named.
    for (body, field) in [
        (
            json!({"email": "bo@example.com", "kind": "business"}),
            "kind",
        ),
        (
            json!({"email": "not-an-email", "kind": "customer"}),
            "email",
        ),
        (
            json!({"email": "ada l@example.com", "kind": "customer"}),
            "email",
        ),
    ] {
        let (st, v) = referrer(&s, body.clone()).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["field"], field, "{v}");
    }

    let (st, v) = referrer(
        &s,
        json!({"email": "bo@example.com", "kind": "customer", "expires_at": 5}),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(v["error"].as_str().unwrap().contains("already past"), "{v}");

    let (st, v) = referrer(
        &s,
        json!({"email": "bo@example.com", "kind": "customer", "expires_at": 5}),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(v["error"].as_str().unwrap().contains("already past"), "{v}");

    // A link that expires: it attributes until then, and after it still redirects but
    // earns nothing, counted apart.
    let until = tapkit_server::store::now_ms() + 1_500;
    let (st, bo) = referrer(
        &s,
        json!({"email": "bo@example.com", "kind": "customer", "name": "Bo", "expires_at": until}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{bo}");
    assert_eq!(bo["expires_at"], until);
    let bo_code = bo["code"].as_str().unwrap().to_owned();
    assert!(tap_cookie(&s, &bo_code).await.is_some());
    assert_eq!(last_click(&s).await.0, "attributed");
    tokio::time::sleep(std::time::Duration::from_millis(
        u64::try_from(until - tapkit_server::store::now_ms() + 50).unwrap_or(0),
    ))
    .await;
    assert_eq!(
        tap_cookie(&s, &bo_code).await,
        None,
        "an expired link earns nothing"
    );
    assert_eq!(
        last_click(&s).await,
        ("unattributed".to_owned(), Some("link_expired".to_owned()))
    );
    // Bo asks again: a new link, since the old one expired.
    let (st, bo2) = referrer(&s, json!({"email": "bo@example.com", "kind": "customer"})).await;
    assert_eq!(st, StatusCode::CREATED, "{bo2}");
    assert_ne!(bo2["code"], bo["code"]);

    // Deactivated (suspended): still redirects, earns nothing.
    let (st, _) = s
        .admin(
            Method::POST,
            &format!("/api/admin/affiliates/{}/suspend", ada["id"]),
            "",
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(tap_cookie(&s, &code).await, None);
    assert_eq!(
        last_click(&s).await.1.as_deref(),
        Some("affiliate_suspended")
    );
}

/// The campaign a shared link carried is stored on its click, truncated, and shown in
/// analytics and the clicks export.
async fn utm_tags_reach_analytics_and_exports(backend: Backend) {
    let Some(s) = server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let (id, code) = s.affiliate("Ada", "customer").await;
    let long = "x".repeat(300);
    for (query, n) in [
        (
            "?utm_source=whatsapp&utm_medium=share&utm_campaign=spring%202026",
            2,
        ),
        (&*format!("?utm_source=newsletter&utm_campaign={long}"), 1),
        ("", 1),
    ] {
        for _ in 0..n {
            s.tap(&code, query).await;
        }
    }
    let (st, a) = s.admin(Method::GET, "/api/admin/analytics", "").await;
    assert_eq!(st, StatusCode::OK, "{a}");
    let campaigns = a["campaigns"].as_array().unwrap();
    assert_eq!(campaigns.len(), 2, "{a}");
    assert_eq!(
        campaigns[0],
        json!({"utm_source": "whatsapp", "utm_medium": "share", "utm_campaign": "spring 2026",
               "clicks": 2, "attributed": 2})
    );
    assert_eq!(campaigns[1]["utm_campaign"].as_str().unwrap().len(), 100);
    assert_eq!(campaigns[1]["utm_medium"], Value::Null);
    let (header, rows) = s
        .state
        .store
        .export_rows(
            tapkit_server::store::web::Export::Clicks,
            s.state.program.id,
            0,
            i64::MAX,
        )
        .await
        .unwrap();
    assert_eq!(
        &header[header.len() - 3..],
        ["utm_source", "utm_medium", "utm_campaign"]
    );
    let tagged: Vec<&Vec<String>> = rows.iter().filter(|r| r[3] == id.to_string()).collect();
    assert_eq!(tagged.len(), 4);
    assert_eq!(
        &tagged[0][tagged[0].len() - 3..],
        ["whatsapp", "share", "spring 2026"]
    );
    assert_eq!(&tagged[3][tagged[3].len() - 3..], ["", "", ""]);
}

on_both_databases!(
    a_customer_gets_one_link_and_it_can_expire,
    utm_tags_reach_analytics_and_exports,
);

//! The money side through the real router and a real database (SQLite and PostgreSQL):
//! signed conversion webhooks, attribution stamped once, every refusal, fraud holds and
//! reviews, the double-entry ledger (balanced and append-only, enforced by the database),
//! month close with its CSV fixture and PDF, and 500 concurrent duplicate deliveries.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use common::*;
use serde_json::{Value, json};
use tapkit_server::config::{Config, Fraud, ProgramConfig};
use tapkit_server::money::wire::sign;
use tapkit_server::store::now_ms;
use tapkit_server::{AppState, app};
use tower::ServiceExt;

/// The webhook and attribution suite, run on both databases.
async fn webhook_suite(backend: Backend) {
    let Some(s) = server(backend).await else {
        return;
    };
    let (a, code_a) = s.affiliate("Gym North", "business").await;
    let (b, code_b) = s.affiliate("Car Dealer", "business").await;
    let later = now_ms() + 10_000; // more than 2 s after the taps

    // Authenticity: missing, wrong, stale signatures and bad bodies, never a 500.
    let body = event("booking_paid", "bk-auth", later, None).to_string();
    let (st, v) = s.deliver_raw(&body, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(
        v["error"].as_str().unwrap().contains("Tapkit-Signature"),
        "{v}"
    );
    let (st, v) = s
        .deliver_raw(
            &body,
            Some(sign(
                body.as_bytes(),
                b"wrong secret wrong",
                now_ms() / 1000,
            )),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(
        v["error"].as_str().unwrap().contains("does not match"),
        "{v}"
    );
    let (st, v) = s
        .deliver_raw(
            &body,
            Some(sign(body.as_bytes(), WEBHOOK, now_ms() / 1000 - 3600)),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(v["error"].as_str().unwrap().contains("replayed"), "{v}");
    let bad = r#"{"event_id":"x","kind":"booking_paid","booking_id":"b","occurred_at":"2026-01-01T00:00:00Z"}"#;
    let (st, v) = s
        .deliver_raw(bad, Some(sign(bad.as_bytes(), WEBHOOK, now_ms() / 1000)))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["field"], "amount_minor");
    for junk in ["", "{", "[]", "null", "{\"event_id\":1}"] {
        let (st, _) = s
            .deliver_raw(junk, Some(sign(junk.as_bytes(), WEBHOOK, now_ms() / 1000)))
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{junk:?}");
    }
    assert_eq!(s.count("conversion_events").await, 0);

    // Paid alone is pending; serviced earns: 10 % of 200.00, on the ledger.
    let t = s.tap(&code_a, "").await;
    let v = s
        .deliver(event("booking_paid", "bk-1", later, Some(&t)))
        .await;
    assert_eq!(
        (v["outcome"].as_str(), v["affiliate_id"].as_i64()),
        (Some("pending"), Some(a)),
        "{v}"
    );
    assert_eq!(v["amounts"][0]["amount_minor"], 2000);
    assert!(s.owed(a).await.is_empty(), "pending is not owed yet");
    let v = s
        .deliver(event("booking_serviced", "bk-1", later + 1000, None))
        .await;
    assert_eq!(v["outcome"], "earned", "{v}");
    assert_eq!(s.owed(a).await, usd(2000));

    // Duplicates: the same event id, and the same booking + kind under a new id.
    let dup = event("booking_paid", "bk-2", later, Some(&t));
    let first = s.deliver(dup.clone()).await;
    assert_eq!(first["status"], "processed");
    let again = s.deliver(dup.clone()).await;
    assert_eq!(
        (again["status"].as_str(), again["outcome"].as_str()),
        (Some("duplicate"), Some("duplicate"))
    );
    let same_booking = s
        .deliver(event("booking_paid", "bk-2", later, Some(&t)))
        .await;
    assert_eq!(same_booking["status"], "duplicate");

    // Serviced before paid waits for the payment, then earns.
    let v = s
        .deliver(event("booking_serviced", "bk-3", later, Some(&t)))
        .await;
    assert_eq!(v["outcome"], "awaiting_payment", "{v}");
    let v = s
        .deliver(event("booking_paid", "bk-3", later + 1, None))
        .await;
    assert_eq!(v["outcome"], "earned", "{v}");
    assert_eq!(s.owed(a).await, usd(4000));

    // Stamped once: a later event carrying another affiliate's token changes nothing.
    let tb = s.tap(&code_b, "").await;
    let v = s
        .deliver(event("booking_serviced", "bk-2", later + 2, Some(&tb)))
        .await;
    assert_eq!(
        (v["outcome"].as_str(), v["affiliate_id"].as_i64()),
        (Some("earned"), Some(a)),
        "{v}"
    );
    assert!(s.owed(b).await.is_empty());
    // ... and the database itself refuses to change the stamp or the ledger.
    let pool = s.pool().await;
    for sql in [
        format!("UPDATE bookings SET affiliate_id = {b} WHERE booking_id = 'bk-2'"),
        "DELETE FROM bookings".into(),
        "UPDATE ledger_postings SET amount_minor = amount_minor * 2".into(),
        "DELETE FROM ledger_transactions".into(),
        "UPDATE commissions SET status = 'refused'".into(),
        "DELETE FROM conversion_events".into(),
    ] {
        let e = sqlx::query(&sql)
            .execute(&pool)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("append-only"), "{sql}: {e}");
    }
    // An unbalanced transaction, and postings added to a sealed one, are refused.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO ledger_postings (transaction_id, account, unit, amount_minor) VALUES (9999, 'cash', 'USD', 5)")
        .execute(&mut *tx).await.unwrap();
    sqlx::query("INSERT INTO ledger_postings (transaction_id, account, unit, amount_minor) VALUES (9999, 'commission_expense', 'USD', -4)")
        .execute(&mut *tx).await.unwrap();
    let e = sqlx::query("INSERT INTO ledger_transactions (id, program_id, period, kind, memo, created_at) VALUES (9999, 1, '2026-01', 'accrual', 'x', 0)")
        .execute(&mut *tx).await.unwrap_err().to_string();
    assert!(e.contains("unbalanced"), "{e}");
    drop(tx);
    let mut tx = pool.begin().await.unwrap();
    let e = sqlx::query("INSERT INTO ledger_postings (transaction_id, account, unit, amount_minor) VALUES (1, 'cash', 'USD', 5)")
        .execute(&mut *tx).await.unwrap_err().to_string();
    assert!(e.contains("sealed"), "{e}");
    drop(tx);
    // Postings without a header cannot be committed (deferred foreign key).
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO ledger_postings (transaction_id, account, unit, amount_minor) VALUES (8888, 'cash', 'USD', 5)")
        .execute(&mut *tx).await.unwrap();
    assert!(
        tx.commit().await.is_err(),
        "a headless posting was committed"
    );

    // No attribution: no token, forged token, unknown click, expired click.
    let v = s
        .deliver(event("booking_paid", "bk-none", later, None))
        .await;
    assert_eq!(
        (v["outcome"].as_str(), v["reason"].as_str()),
        (Some("unattributed"), Some("no_attribution_token"))
    );
    let forged = t.replacen(".", ".9", 1);
    let v = s
        .deliver(event("booking_paid", "bk-forged", later, Some(&forged)))
        .await;
    assert_eq!(v["reason"], "forged_or_damaged_token", "{v}");
    let ghost = s.state.keys.sign_attribution(987_654, now_ms());
    let v = s
        .deliver(event("booking_paid", "bk-ghost", later, Some(&ghost)))
        .await;
    assert_eq!(v["reason"], "unknown_click");
    let old = s
        .click_at(a, &code_a, now_ms() - 31 * 86_400_000, "aa")
        .await;
    let v = s
        .deliver(event("booking_paid", "bk-old", later, Some(&old)))
        .await;
    assert_eq!(v["reason"], "attribution_expired");

    // Refusals, each recorded with its reason.
    let v = s
        .deliver(event(
            "booking_paid",
            "bk-fast",
            now_ms(),
            Some(&s.tap(&code_a, "").await),
        ))
        .await;
    assert_eq!(
        (v["outcome"].as_str(), v["reason"].as_str()),
        (Some("refused"), Some("too_fast_after_click"))
    );
    let (st, _) = s
        .admin(
            Method::PATCH,
            &format!("/api/admin/affiliates/{a}"),
            r#"{"customer_id":"cust-owner","email":" Owner@Gym.example "}"#,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let mut self_ref = event("booking_paid", "bk-self", later, Some(&t));
    self_ref["customer_id"] = json!("cust-owner");
    let v = s.deliver(self_ref).await;
    assert_eq!(v["reason"], "self_referral", "{v}");
    let mut self_mail = event("booking_paid", "bk-self-mail", later, Some(&t));
    self_mail["customer_email_sha256"] = json!(tapkit_server::api::partners::email_sha256(
        "owner@gym.example"
    ));
    let v = s.deliver(self_mail).await;
    assert_eq!(v["reason"], "self_referral", "{v}");
    // Suspended between tap and payment.
    let tb2 = s.tap(&code_b, "").await;
    let (st, _) = s
        .admin(
            Method::POST,
            &format!("/api/admin/affiliates/{b}/suspend"),
            "",
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let v = s
        .deliver(event("booking_paid", "bk-susp", later, Some(&tb2)))
        .await;
    assert_eq!(
        (v["outcome"].as_str(), v["reason"].as_str()),
        (Some("refused"), Some("affiliate_suspended"))
    );
    // A later event of a refused booking earns nothing either.
    let v = s
        .deliver(event("booking_serviced", "bk-susp", later + 5, None))
        .await;
    assert_eq!(v["outcome"], "recorded");
    // Channel killed between scan and payment.
    let tq = s.tap(&code_a, "?s=qr").await;
    let (st, v) = s
        .admin(
            Method::POST,
            "/api/admin/kill-switches",
            &json!({"channel": "qr", "affiliate_id": a}).to_string(),
        )
        .await;
    assert!(st.is_success(), "{v}");
    let v = s
        .deliver(event("booking_paid", "bk-qr", later, Some(&tq)))
        .await;
    assert_eq!(v["reason"], "channel_killed", "{v}");

    // A refund before the payout reverses the commission on the ledger.
    let before = s.owed(a).await;
    let v = s
        .deliver(event("booking_refunded", "bk-1", later + 10, None))
        .await;
    assert_eq!(v["outcome"], "reversed", "{v}");
    assert_eq!(v["amounts"][0]["amount_minor"], -2000);
    assert_eq!(s.owed(a).await, usd(before[0].1 - 2000));
    let v = s
        .deliver(event("booking_refunded", "bk-1", later + 11, None))
        .await;
    assert_eq!(v["status"], "duplicate");

    // The earnings view agrees with the ledger.
    let (st, v) = s
        .admin(
            Method::GET,
            &format!("/api/admin/affiliates/{a}/earnings"),
            "",
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["owed"][0]["amount_minor"], 4000, "{v}");
    assert!(v["commissions"].as_array().unwrap().len() >= 4);

    // Every transaction balances.
    for t in s.state.store.ledger(1).await.unwrap() {
        let (id, postings) = (t.id, t.postings);
        let mut by_unit = std::collections::BTreeMap::<String, i64>::new();
        for p in postings {
            *by_unit.entry(p.unit).or_default() += p.amount_minor;
        }
        assert!(
            by_unit.values().all(|v| *v == 0),
            "transaction {id}: {by_unit:?}"
        );
    }
}

#[tokio::test]
async fn webhooks_attribute_once_refuse_precisely_and_keep_the_ledger_honest_on_sqlite() {
    webhook_suite(Backend::Sqlite).await;
}

#[tokio::test]
async fn webhooks_attribute_once_refuse_precisely_and_keep_the_ledger_honest_on_postgres() {
    webhook_suite(Backend::Postgres).await;
}

async fn concurrent_duplicates(backend: Backend) {
    let Some(s) = server(backend).await else {
        return;
    };
    let (_, code) = s.affiliate("Body Shop", "business").await;
    let t = s.tap(&code, "").await;
    let later = now_ms() + 10_000;
    s.deliver(event("booking_paid", "bk-dup", later, Some(&t)))
        .await;
    let serviced = event("booking_serviced", "bk-dup", later + 1, None).to_string();
    let sig = sign(serviced.as_bytes(), WEBHOOK, now_ms() / 1000);
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            let state = s.state.clone();
            let (body, sig) = (serviced.clone(), sig.clone());
            tokio::spawn(async move {
                let mut req = Request::builder()
                    .method(Method::POST)
                    .uri("/api/conversions")
                    .header(header::CONTENT_TYPE, "application/json")
                    .header("Tapkit-Signature", sig)
                    .body(Body::from(body))
                    .unwrap();
                req.extensions_mut()
                    .insert(ConnectInfo(SocketAddr::from(([203, 0, 113, 7], 1))));
                let r = app(state).oneshot(req).await.unwrap();
                json_of(r).await
            })
        })
        .collect();
    let mut processed = 0;
    for t in tasks {
        let (st, v) = t.await.unwrap();
        assert_eq!(st, StatusCode::OK, "{v}");
        if v["status"] == "processed" {
            processed += 1;
        } else {
            assert_eq!(v["status"], "duplicate", "{v}");
        }
    }
    assert_eq!(processed, 1);
    assert_eq!(
        s.count("ledger_transactions").await,
        1,
        "exactly one ledger transaction"
    );
    assert_eq!(s.count("conversion_events").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_concurrent_duplicate_deliveries_make_one_transaction_on_sqlite() {
    concurrent_duplicates(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_concurrent_duplicate_deliveries_make_one_transaction_on_postgres() {
    concurrent_duplicates(Backend::Postgres).await;
}

#[tokio::test]
async fn webhooks_without_a_configured_secret_say_how_to_turn_them_on() {
    let (url, _db) = database(Backend::Sqlite).await.unwrap();
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: url,
        data_dir: std::env::temp_dir(),
        rate_limit_per_hour: 0,
        sqlite_synchronous: Default::default(),
        program: ProgramConfig::default(),
        webhook_secret: None,
        sun_keys: None,
        public_url: "http://127.0.0.1".into(),
        smtp_url: None,
        mail_from: "Tapkit <no-reply@example.com>".into(),
        trusted_proxies: Default::default(),
    };
    let state = AppState::new(config, SECRET).await.unwrap();
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/conversions")
        .body(Body::from("{}"))
        .unwrap();
    let (st, v) = json_of(app(state).oneshot(req).await.unwrap()).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("TAPKIT_WEBHOOK_SECRET"),
        "{v}"
    );
}

async fn fraud_suite(backend: Backend) {
    let Some(s) = server_with(
        backend,
        ProgramConfig {
            fraud: Fraud {
                review_every: 4,
                max_per_ip_per_day: 2,
                max_per_email_domain_per_day: 2,
                ..Fraud::default()
            },
            ..ProgramConfig::default()
        },
    )
    .await
    else {
        return;
    };
    let (a, code) = s.affiliate("Salon", "business").await;
    let later = now_ms() + 10_000;
    let now = now_ms();
    let mut n = 0;
    let mut paid = |booking: &str, ip: &'static str, domain: Option<&str>| {
        n += 1;
        let s = &s;
        let code = code.clone();
        let (booking, domain) = (booking.to_owned(), domain.map(str::to_owned));
        async move {
            let t = s.click_at(a, &code, now - 60_000, ip).await;
            let mut e = event("booking_paid", &booking, later, Some(&t));
            if let Some(d) = domain {
                e["customer_email_domain"] = json!(d);
            }
            s.deliver(e).await
        }
    };
    let v = paid("f1", "ip-1", Some("gmail.com")).await;
    assert_eq!(v["outcome"], "pending", "{v}");
    let v = paid("f2", "ip-1", Some("gmail.com")).await;
    assert_eq!(v["outcome"], "pending", "{v}");
    // A third booking from the same hashed IP within a day: held.
    let v = paid("f3", "ip-1", Some("gmail.com")).await;
    assert_eq!(
        (v["outcome"].as_str(), v["reason"].as_str()),
        (Some("held"), Some("ip_burst")),
        "{v}"
    );
    // Every 4th conversion is sampled for review.
    let v = paid("f4", "ip-2", None).await;
    assert_eq!(v["reason"], "review_sample", "{v}");
    // Bulk referrals from one (non-webmail) email domain: held.
    paid("f5", "ip-3", Some("acme.example")).await;
    paid("f6", "ip-4", Some("acme.example")).await;
    let v = paid("f7", "ip-5", Some("acme.example")).await;
    assert_eq!(v["reason"], "email_domain_bulk", "{v}");
    // A self-referral teaches the affiliate's own IP; the next booking from it is held.
    s.admin(
        Method::PATCH,
        &format!("/api/admin/affiliates/{a}"),
        r#"{"customer_id":"owner"}"#,
    )
    .await;
    let t = s.click_at(a, &code, now - 60_000, "ip-owner").await;
    let mut e = event("booking_paid", "f8", later, Some(&t));
    e["customer_id"] = json!("owner");
    assert_eq!(s.deliver(e).await["reason"], "self_referral");
    let v = paid("f9", "ip-owner", None).await;
    assert_eq!(v["reason"], "same_ip_as_affiliate", "{v}");

    // The review queue: approve one (serviced → earned), reject another.
    let (st, queue) = s.admin(Method::GET, "/api/admin/reviews", "").await;
    assert_eq!(st, StatusCode::OK);
    let queue = queue.as_array().unwrap().clone();
    assert_eq!(queue.len(), 4, "{queue:?}");
    let id_of = |b: &str| {
        queue.iter().find(|r| r["booking_id"] == b).unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let v = s
        .deliver(event("booking_serviced", "f4", later + 1, None))
        .await;
    assert_eq!(v["outcome"], "held", "{v}");
    let (st, v) = s
        .admin(
            Method::POST,
            &format!("/api/admin/reviews/{}/approve", id_of("f4")),
            r#"{"note":"called the customer"}"#,
        )
        .await;
    assert_eq!(
        (st, v["outcome"].as_str()),
        (StatusCode::OK, Some("earned")),
        "{v}"
    );
    assert_eq!(s.owed(a).await, usd(2000));
    let (st, v) = s
        .admin(
            Method::POST,
            &format!("/api/admin/reviews/{}/reject", id_of("f3")),
            "",
        )
        .await;
    assert_eq!(
        (st, v["outcome"].as_str()),
        (StatusCode::OK, Some("refused")),
        "{v}"
    );
    let (st, _) = s
        .admin(
            Method::POST,
            &format!("/api/admin/reviews/{}/approve", id_of("f3")),
            "",
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "decisions are final");
    let v = s
        .deliver(event("booking_serviced", "f3", later + 1, None))
        .await;
    assert_eq!(v["outcome"], "recorded");
    let (_, open) = s
        .admin(Method::GET, "/api/admin/reviews?status=open", "")
        .await;
    assert_eq!(open.as_array().unwrap().len(), 2);
    let (st, _) = s
        .admin(Method::GET, "/api/admin/reviews?status=maybe", "")
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn fraud_rules_hold_conversions_for_review_on_sqlite() {
    fraud_suite(Backend::Sqlite).await;
}

#[tokio::test]
async fn fraud_rules_hold_conversions_for_review_on_postgres() {
    fraud_suite(Backend::Postgres).await;
}

async fn month_close_suite(backend: Backend) {
    let Some(s) = server_with(
        backend,
        ProgramConfig {
            fraud: quiet_fraud(),
            commission: tapkit_server::money::rules::Commission {
                minimum_payout_minor: 2000,
                ..Default::default()
            },
            ..ProgramConfig::default()
        },
    )
    .await
    else {
        return;
    };
    let (prev, start, current) = months();
    let (p1, c1) = s.affiliate("Gym North, Ltd", "business").await;
    let (p2, c2) = s.affiliate("Ines Influencer", "influencer").await;
    let (p3, c3) = s.affiliate("=Body Shop", "business").await;
    let (p4, c4) = s.affiliate("Carla Customer", "customer").await;
    let day = 86_400_000;
    let book = |aff: i64, code: String, booking: &'static str, amount: i64, d: i64| {
        let s = &s;
        async move {
            let t = s
                .click_at(aff, &code, start + d * day, &format!("ip-{booking}"))
                .await;
            let mut paid = event("booking_paid", booking, start + d * day + 60_000, Some(&t));
            paid["amount_minor"] = json!(amount);
            s.deliver(paid).await;
            let v = s
                .deliver(event(
                    "booking_serviced",
                    booking,
                    start + (d + 1) * day,
                    None,
                ))
                .await;
            assert_eq!(v["outcome"], "earned", "{booking}: {v}");
        }
    };
    // P1: 10 % of 100.00, 250.00, 800.00 (capped at 50.00) and 300.00 (refunded in the
    // month) → earned 115.00, reversed 30.00, payout 85.00.
    book(p1, c1.clone(), "m-1", 10_000, 1).await;
    book(p1, c1.clone(), "m-2", 25_000, 2).await;
    book(p1, c1.clone(), "m-3", 80_000, 3).await;
    book(p1, c1.clone(), "m-4", 30_000, 4).await;
    s.deliver(event("booking_refunded", "m-4", start + 10 * day, None))
        .await;
    // P2: flat 20.00 → payout 20.00 (exactly the minimum).
    book(p2, c2.clone(), "m-5", 99_900, 5).await;
    // P3: 15.00 is below the 20.00 minimum → carried.
    book(p3, c3.clone(), "m-6", 15_000, 6).await;
    // P4: a 10.00 credit (no minimum for credit).
    book(p4, c4.clone(), "m-7", 5_000, 7).await;

    // The current month has not ended; the previous one closes.
    let (st, v) = s
        .admin(
            Method::POST,
            &format!("/api/admin/periods/{current}/close"),
            "",
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("has not ended"),
        "{v}"
    );
    let (st, v) = s
        .admin(Method::POST, "/api/admin/periods/2026-13/close", "")
        .await;
    assert_eq!(
        (st, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("period"))
    );
    let (st, closed) = s
        .admin(
            Method::POST,
            &format!("/api/admin/periods/{prev}/close"),
            "",
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{closed}");

    let (st, csv) = s
        .admin_bytes(&format!("/api/admin/periods/{prev}/payouts.csv"))
        .await;
    assert_eq!(st, StatusCode::OK);
    let expected = include_str!("fixtures/payouts.csv")
        .replace("{period}", &prev)
        .replace("{P1}", &c1)
        .replace("{P2}", &c2)
        .replace("{P3}", &c3)
        .replace("{P4}", &c4)
        .replace("{id1}", &p1.to_string())
        .replace("{id2}", &p2.to_string())
        .replace("{id3}", &p3.to_string())
        .replace("{id4}", &p4.to_string());
    assert_eq!(String::from_utf8(csv.clone()).unwrap(), expected);

    // Closing again is idempotent: the same report, byte for byte.
    let (st, again) = s
        .admin(
            Method::POST,
            &format!("/api/admin/periods/{prev}/close"),
            "",
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(again["lines"], closed["lines"]);
    assert_eq!(
        s.admin_bytes(&format!("/api/admin/periods/{prev}/payouts.csv"))
            .await
            .1,
        csv
    );

    // The PDF parses and holds the totals and each partner's page.
    let (st, pdf) = s
        .admin_bytes(&format!("/api/admin/periods/{prev}/payouts.pdf"))
        .await;
    assert_eq!(st, StatusCode::OK);
    let text = pdftotext(&pdf);
    for want in [
        format!("Payout report {prev}"),
        "Total payout 105.00 USD".into(),
        "Total payout 10.00 USD credit".into(),
        "carried 15.00 USD".into(),
        "Gym North, Ltd".into(),
        format!("Referral code {c3}"),
        "m-3".into(),
    ] {
        assert!(
            text.contains(&want),
            "{want:?} not in the PDF text:\n{text}"
        );
    }
    assert_eq!(
        text.matches("Referral code").count(),
        4,
        "one page per partner"
    );

    // Late corrections land in the next open month, never in the closed one.
    let v = s
        .deliver(event("booking_refunded", "m-2", start + 20 * day, None))
        .await;
    assert_eq!(v["outcome"], "reversed", "{v}");
    let periods: Vec<String> = s
        .state
        .store
        .ledger(1)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.kind == "reversal")
        .map(|t| t.period)
        .collect();
    assert_eq!(periods, vec![prev.clone(), current.clone()]);
    // P1 now owes the clawback back: -25.00 carried into the current month.
    assert_eq!(s.owed(p1).await, usd(-2500));

    // Mark paid: once.
    let line = closed["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["affiliate_id"] == p2)
        .unwrap()
        .clone();
    let path = format!("/api/admin/payouts/{}/paid", line["id"]);
    let (st, v) = s
        .admin(Method::POST, &path, r#"{"reference":"SEPA-2026-0042"}"#)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, _) = s.admin(Method::POST, &path, "").await;
    assert_eq!(st, StatusCode::CONFLICT);
    let p3_line = closed["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["affiliate_id"] == p3)
        .unwrap()
        .clone();
    let (st, v) = s
        .admin(
            Method::POST,
            &format!("/api/admin/payouts/{}/paid", p3_line["id"]),
            "",
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let (_, periods) = s.admin(Method::GET, "/api/admin/periods", "").await;
    assert_eq!(periods[0]["period"], prev.as_str());
    let (st, _) = s
        .admin_bytes(&format!("/api/admin/periods/{current}/payouts.csv"))
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let _ = (c2, c4);
}

#[tokio::test]
async fn month_close_matches_the_hand_computed_report_on_sqlite() {
    month_close_suite(Backend::Sqlite).await;
}

#[tokio::test]
async fn month_close_matches_the_hand_computed_report_on_postgres() {
    month_close_suite(Backend::Postgres).await;
}

#[tokio::test]
async fn affiliate_updates_validate_tier_and_identity() {
    let s = server_with(
        Backend::Sqlite,
        ProgramConfig {
            commission: toml::from_str(
                "tiers = [{ name = \"bronze\", min_referrals = 1 }]\n[[rules]]\non = \"booking\"\nrewards = [{ unit = \"cash\", fixed_minor = 100 }]",
            )
            .unwrap(),
            ..ProgramConfig::default()
        },
    )
    .await
    .unwrap();
    let (a, _) = s.affiliate("Gym", "business").await;
    let path = format!("/api/admin/affiliates/{a}");
    let (st, v) = s.admin(Method::PATCH, &path, r#"{"tier":"gold"}"#).await;
    assert_eq!(
        (st, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("tier"))
    );
    assert!(v["error"].as_str().unwrap().contains("bronze"), "{v}");
    let (st, v) = s
        .admin(
            Method::PATCH,
            &path,
            r#"{"tier":"bronze","phone":"+1 (555) 010-0000"}"#,
        )
        .await;
    assert_eq!(
        (st, v["tier"].as_str()),
        (StatusCode::OK, Some("bronze")),
        "{v}"
    );
    let (st, v) = s.admin(Method::PATCH, &path, r#"{"tier":""}"#).await;
    assert_eq!((st, v["tier"].clone()), (StatusCode::OK, Value::Null));
    for (body, field) in [
        (r#"{"email":"nope"}"#, Some("email")),
        (r#"{"phone":"12"}"#, Some("phone")),
        (r#"{"colour":"red"}"#, None),
    ] {
        let (st, v) = s.admin(Method::PATCH, &path, body).await;
        assert_eq!(
            (st, v["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, field),
            "{body}: {v}"
        );
    }
    let (st, _) = s
        .admin(Method::PATCH, "/api/admin/affiliates/999", "{}")
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

/// What the OpenAPI document states of a webhook body is what the server checks, on the
/// body as sent: ids are not trimmed into shape before their checks, a domain is read as
/// sent, a body is a JSON object, and an amount spelled `12500.0` is the integer the
/// document's `"type": "integer"` says it is.
async fn webhook_fields_are_checked_as_sent_then_trimmed(backend: Backend) {
    use sqlx::Row;
    let Some(s) = server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let at = now_ms() - 60_000;
    let send = |e: Value| {
        let body = e.to_string();
        let sig = sign(body.as_bytes(), WEBHOOK, now_ms() / 1000);
        let s = &s;
        async move { s.deliver_raw(&body, Some(sig)).await }
    };
    // Accepted, and stored normalised: trimmed ids, the domain without its @, lower case.
    let mut e = event("booking_paid", " trimmed-1 ", at, None);
    e["event_id"] = json!(" evt-trimmed-1 ");
    e["amount_minor"] = json!(12_500.0);
    e["customer_email_domain"] = json!("@Example.COM");
    let (st, v) = send(e).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (v["event_id"].as_str(), v["booking_id"].as_str()),
        (Some("evt-trimmed-1"), Some("trimmed-1")),
        "{v}"
    );
    let row = sqlx::query(
        "SELECT amount_minor, email_domain FROM conversion_events WHERE event_id = 'evt-trimmed-1'",
    )
    .fetch_one(&s.pool().await)
    .await
    .unwrap();
    assert_eq!(
        (
            row.try_get::<i64, _>("amount_minor").unwrap(),
            row.try_get::<String, _>("email_domain").unwrap()
        ),
        (12_500, "example.com".to_owned())
    );
    // Refused, naming the field: what only trimming made valid before.
    let long = format!(" {} ", "x".repeat(199));
    for (field, value) in [
        ("event_id", json!(long)),
        ("event_id", json!("evt\n")),
        ("booking_id", json!("\tb-1")),
        ("customer_id", json!(format!("c{}", "\u{85}"))),
        ("customer_email_domain", json!(" example.com")),
        ("customer_email_domain", json!("example..com")),
        ("customer_email_domain", json!("localhost")),
        ("attribution", json!(" ".repeat(301))),
    ] {
        let mut e = event("booking_paid", "refused-1", at, None);
        e[field] = value.clone();
        let (st, v) = send(e).await;
        assert_eq!(
            (st, v["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{field} {value}: {v}"
        );
    }
    // Lengths are characters, as maxLength counts them: 200 accented ones are fine.
    let mut e = event("lead", &"é".repeat(200), at, None);
    e["event_id"] = json!("ü".repeat(200));
    e["customer_id"] = json!("ñ".repeat(200));
    let (st, v) = send(e).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Not a whole number: refused as the body's (serde names no field for a type).
    let mut e = event("booking_paid", "refused-2", at, None);
    e["amount_minor"] = json!(12_500.5);
    let (st, v) = send(e).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // A body is an object, not an array of the fields in order.
    let array = json!(["evt-array", "lead", "b-array", rfc3339_ms(at)]).to_string();
    let sig = sign(array.as_bytes(), WEBHOOK, now_ms() / 1000);
    let (st, v) = s.deliver_raw(&array, Some(sig)).await;
    assert_eq!(
        (st, v["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, Value::Null),
        "{v}"
    );
    assert_eq!(s.count("conversion_events").await, 2);
}

on_both_databases!(webhook_fields_are_checked_as_sent_then_trimmed);

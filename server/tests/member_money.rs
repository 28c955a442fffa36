//! Members' money through the real store (SQLite and PostgreSQL): a paid invoice is
//! booked on the ledger once, even retried or settled by two replicas at once; the
//! partner who brought the member earns the `on = "membership"` commission for the
//! member's first N paid months, which the month close pays out; a refund reverses the
//! payment and claws the commission back; and the admin API refuses what cannot be done.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use sqlx::Row;
use tapkit_core::date::parse_date;
use tapkit_server::config::ProgramConfig;
use tapkit_server::members::payments::{refund, settle};
use tapkit_server::members::service::{Join, MemberError, join};
use tapkit_server::money::rules::Commission;

/// Business partners earn 20 % of each of a member's first three paid months;
/// influencers a flat $15 on the first payment.
const RULES: &str = r#"
currency = "USD"
[[rules]]
name = "members, business"
on = "membership"
affiliate_kind = "business"
months = 3
rewards = [{ unit = "cash", percent_bp = 2000 }]
[[rules]]
name = "members, influencer"
on = "membership"
affiliate_kind = "influencer"
months = 1
rewards = [{ unit = "cash", fixed_minor = 1500 }]
"#;

fn rules() -> Commission {
    let c: Commission = toml::from_str(RULES).unwrap();
    c.validate().unwrap();
    c
}

async fn money_server(backend: Backend) -> Option<Server> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tapkit.sample.toml");
    let membership = tapkit_server::config::load(Some(&path))
        .unwrap()
        .program
        .membership;
    server_with(
        backend,
        ProgramConfig {
            fraud: quiet_fraud(),
            membership,
            commission: rules(),
            ..ProgramConfig::default()
        },
    )
    .await
}

/// Noon UTC of a date, Unix ms.
fn noon(date: &str) -> i64 {
    parse_date(date).unwrap() * 86_400_000 + 12 * 3_600_000
}

/// Joins a member brought by `aff` on `date`; returns the member and its first invoice.
async fn joined(
    s: &Server,
    customer: &str,
    plan: &str,
    aff: Option<i64>,
    date: &str,
) -> (i64, i64) {
    let st = &s.state;
    let (m, first) = join(
        &st.store,
        &st.config.program.membership,
        st.program.id,
        "USD",
        &Join {
            customer_id: customer,
            email: &format!("{customer}@example.com"),
            plan,
            affiliate_id: aff,
            first_name: None,
        },
        noon(date),
    )
    .await
    .unwrap();
    (m.id, first.id)
}

async fn pay(s: &Server, invoice: i64, date: &str) -> tapkit_server::members::payments::Outcome {
    let st = &s.state;
    settle(
        &st.store,
        &st.config.program.commission,
        st.program.id,
        invoice,
        Some("ch_test"),
        noon(date),
    )
    .await
    .unwrap()
}

/// Balance per (account, affiliate, unit) over the whole ledger.
async fn balances(s: &Server) -> Vec<(String, Option<i64>, String, i64)> {
    sqlx::query(
        "SELECT account, affiliate_id, unit, CAST(SUM(amount_minor) AS BIGINT) AS b FROM ledger_postings \
         GROUP BY account, affiliate_id, unit ORDER BY account, affiliate_id, unit",
    )
    .fetch_all(&s.pool().await)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("account"), r.get("affiliate_id"), r.get("unit"), r.get("b")))
    .collect()
}

async fn renew(s: &Server, date: &str) {
    let st = &s.state;
    tapkit_server::members::renewal::run(
        &st.store,
        &st.config.program.membership,
        st.program.id,
        "USD",
        noon(date),
    )
    .await
    .unwrap();
}

async fn renewal_invoice(s: &Server, member: i64, period: &str) -> i64 {
    s.state
        .store
        .member_invoices(member, false)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.period == period && i.kind == "renewal")
        .unwrap_or_else(|| panic!("no renewal invoice for {period}"))
        .id
}

async fn a_paid_invoice_is_booked_once_and_earns_its_partner_three_months(backend: Backend) {
    let Some(s) = money_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let (gym, _) = s.affiliate("Iron Gym", "business").await;
    let (ana, first) = joined(&s, "cus_ana", "plus", Some(gym), "2026-11-16").await;

    // Plus from 16 November: 4900 × 15 / 30 = 2450; 20 % of it is 490.
    let o = pay(&s, first, "2026-11-16").await;
    assert!(o.changed);
    assert_eq!(
        (o.invoice.status.as_str(), o.invoice.amount_minor),
        ("paid", 2450)
    );
    assert_eq!(o.invoice.reference.as_deref(), Some("ch_test"));
    let earned: Vec<(&str, &str, i64, &str)> = o
        .commissions
        .iter()
        .map(|c| {
            (
                c.status.as_str(),
                c.unit.as_str(),
                c.amount_minor,
                c.month.as_str(),
            )
        })
        .collect();
    assert_eq!(earned, [("earned", "USD", 490, "2026-11")]);

    // Paying it again (a retry) books nothing more.
    let ledger_rows = s.count("ledger_transactions").await;
    let again = pay(&s, first, "2026-11-17").await;
    assert!(!again.changed);
    assert_eq!(again.commissions, o.commissions);
    assert_eq!(s.count("ledger_transactions").await, ledger_rows);
    assert_eq!(
        balances(&s).await,
        [
            ("cash".to_owned(), None, "USD".to_owned(), 2450),
            ("commission_expense".to_owned(), None, "USD".to_owned(), 490),
            (
                "membership_revenue".to_owned(),
                None,
                "USD".to_owned(),
                -2450
            ),
            (
                "partner_payable".to_owned(),
                Some(gym),
                "USD".to_owned(),
                -490
            ),
        ]
    );

    // December, January and February renew at 4900; only the first three paid months
    // earn (November, December, January).
    for (period, date) in [
        ("2026-12", "2026-12-01"),
        ("2027-01", "2027-01-01"),
        ("2027-02", "2027-02-01"),
    ] {
        renew(&s, date).await;
        let inv = renewal_invoice(&s, ana, period).await;
        let o = pay(&s, inv, date).await;
        let amounts: Vec<i64> = o.commissions.iter().map(|c| c.amount_minor).collect();
        let expected: &[i64] = if period == "2027-02" { &[] } else { &[980] };
        assert_eq!(amounts, expected, "{period}");
    }
    assert_eq!(
        s.state.store.owed(gym).await.unwrap()[0].amount_minor,
        490 + 980 + 980
    );

    // A refund of December reverses the payment and claws its commission back, once.
    let dec = renewal_invoice(&s, ana, "2026-12").await;
    let st = &s.state;
    let r = refund(&st.store, st.program.id, dec, noon("2027-02-03"))
        .await
        .unwrap();
    assert!(r.changed);
    assert_eq!(r.invoice.status, "refunded");
    let lines: Vec<(&str, i64, &str)> = r
        .commissions
        .iter()
        .map(|c| (c.status.as_str(), c.amount_minor, c.month.as_str()))
        .collect();
    assert_eq!(
        lines,
        [("earned", 980, "2026-12"), ("reversed", -980, "2027-02")]
    );
    let r2 = refund(&st.store, st.program.id, dec, noon("2027-02-04"))
        .await
        .unwrap();
    assert!(!r2.changed);
    assert_eq!(r2.commissions.len(), 2);
    assert_eq!(st.store.owed(gym).await.unwrap()[0].amount_minor, 490 + 980);
    let b = balances(&s).await;
    assert!(b.contains(&("cash".to_owned(), None, "USD".to_owned(), 2450 + 4900 * 2)));
    assert!(b.contains(&(
        "membership_revenue".to_owned(),
        None,
        "USD".to_owned(),
        -(2450 + 4900 * 2)
    )));
    let total: i64 = b.iter().map(|r| r.3).sum();
    assert_eq!(total, 0, "the ledger balances: {b:?}");

    // The month close pays the membership commission out with the others.
    let report = tapkit_server::money::payouts::close(&s.state, "2026-11", noon("2026-12-02"))
        .await
        .unwrap();
    let line = report.lines.iter().find(|l| l.affiliate_id == gym).unwrap();
    assert_eq!((line.earned_minor, line.payout_minor), (490, 490));
}

async fn two_replicas_settling_one_invoice_book_it_once(backend: Backend) {
    let Some(s) = money_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let (gym, _) = s.affiliate("Iron Gym", "business").await;
    let other = tapkit_server::store::Store::connect(&s.state.config.database_url)
        .await
        .unwrap();
    let st = &s.state;
    let rules = &st.config.program.commission;
    for i in 0..8 {
        let (_, first) = joined(&s, &format!("cus_{i}"), "basic", Some(gym), "2026-11-11").await;
        let (a, b) = tokio::join!(
            settle(
                &st.store,
                rules,
                st.program.id,
                first,
                None,
                noon("2026-11-12")
            ),
            settle(
                &other,
                rules,
                st.program.id,
                first,
                None,
                noon("2026-11-12")
            ),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a.changed ^ b.changed, "exactly one books it: {a:?} {b:?}");
    }
    // Basic from 11 November: 2900 × 20 / 30 = 1933.33 → 1933; 20 % → 386.
    assert_eq!(
        sqlx::query("SELECT COUNT(*) AS n FROM ledger_transactions WHERE kind = 'settlement'")
            .fetch_one(&s.pool().await)
            .await
            .unwrap()
            .get::<i64, _>("n"),
        8
    );
    assert_eq!(s.count("member_commissions").await, 8);
    assert_eq!(st.store.owed(gym).await.unwrap()[0].amount_minor, 8 * 386);
}

async fn a_payment_restores_a_past_due_member_and_none_pays_for_a_lapsed_one(backend: Backend) {
    let Some(s) = money_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let (creator, _) = s.affiliate("Mia Makes", "influencer").await;
    let (bo, first) = joined(&s, "cus_bo", "basic", Some(creator), "2026-11-01").await;
    sqlx::query(
        "UPDATE members SET status = 'past_due', failed_on = 20393, retries = 1 WHERE id = $1",
    )
    .bind(bo)
    .execute(&s.pool().await)
    .await
    .unwrap();
    let o = pay(&s, first, "2026-11-08").await;
    assert_eq!(o.member.status, "active");
    assert_eq!((o.member.failed_on, o.member.retries), (None, 0));
    // The influencer's rule pays a flat $15 once.
    assert_eq!(o.commissions[0].amount_minor, 1500);
    renew(&s, "2026-12-01").await;
    let dec = renewal_invoice(&s, bo, "2026-12").await;
    assert!(pay(&s, dec, "2026-12-01").await.commissions.is_empty());

    // A lapsed member's late payment is booked but earns nobody anything.
    let (cy, cy_first) = joined(&s, "cus_cy", "plus", Some(creator), "2026-12-02").await;
    sqlx::query(
        "UPDATE members SET status = 'lapsed', status_reason = 'payment_failed' WHERE id = $1",
    )
    .bind(cy)
    .execute(&s.pool().await)
    .await
    .unwrap();
    let o = pay(&s, cy_first, "2026-12-20").await;
    assert_eq!(
        (o.invoice.status.as_str(), o.member.status.as_str()),
        ("paid", "lapsed")
    );
    assert!(o.commissions.is_empty());
}

async fn the_invoice_api_settles_refunds_and_refuses_what_cannot_be_done(backend: Backend) {
    let Some(s) = money_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let (gym, _) = s.affiliate("Iron Gym", "business").await;
    let (st, m) = s
        .admin(
            Method::POST,
            "/api/admin/members",
            &format!(r#"{{"customer_id":"cus_api","email":"a@example.com","plan":"plus","affiliate_id":{gym}}}"#),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    let inv = m["open_invoices"][0]["id"].as_i64().unwrap();
    let amount = m["open_invoices"][0]["amount_minor"].as_i64().unwrap();
    let path = format!("/api/admin/invoices/{inv}");

    // Refusing an unpaid invoice's refund; a reference that is not one.
    let (st, e) = s.admin(Method::POST, &format!("{path}/refund"), "").await;
    assert_eq!(st, StatusCode::CONFLICT, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("only a paid invoice"),
        "{e}"
    );
    for body in [r#"{"reference":""}"#, r#"{"reference":"a\u0007b"}"#] {
        let (st, e) = s.admin(Method::POST, &format!("{path}/paid"), body).await;
        assert_eq!(
            (st, &e["field"]),
            (StatusCode::UNPROCESSABLE_ENTITY, &"reference".into()),
            "{e}"
        );
    }
    let (st, e) = s
        .admin(Method::POST, &format!("{path}/paid"), r#"{"ref":"x"}"#)
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (st, e) = s
        .admin(Method::POST, "/api/admin/invoices/999999/paid", "")
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{e}");
    assert_eq!(
        s.count("ledger_transactions").await,
        0,
        "nothing was booked"
    );

    // Paid, with no body or with a reference; a retry answers the same.
    let (st, v) = s
        .admin(
            Method::POST,
            &format!("{path}/paid"),
            r#"{"reference":"pi_123"}"#,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["changed"].as_bool()),
        (Some("paid"), Some(true))
    );
    assert_eq!(v["reference"], "pi_123");
    assert_eq!(v["commissions"][0]["amount_minor"], amount * 2000 / 10_000);
    let (st, v) = s.admin(Method::POST, &format!("{path}/paid"), "").await;
    assert_eq!(
        (st, v["changed"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{v}"
    );
    let (_, m) = s
        .admin(Method::GET, &format!("/api/admin/members/{}", m["id"]), "")
        .await;
    assert_eq!(m["open_invoices"], serde_json::json!([]), "{m}");

    // Refunded, then it can be neither paid nor refunded again.
    let (st, v) = s.admin(Method::POST, &format!("{path}/refund"), "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["commissions"][1]["status"], "reversed");
    let (st, v) = s.admin(Method::POST, &format!("{path}/refund"), "").await;
    assert_eq!(
        (st, v["changed"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{v}"
    );
    let (st, e) = s.admin(Method::POST, &format!("{path}/paid"), "").await;
    assert_eq!(st, StatusCode::CONFLICT, "{e}");
    assert_eq!(s.state.store.owed(gym).await.unwrap()[0].amount_minor, 0);
}

/// A customer taps a partner's card, then joins at the brand's checkout: the signed
/// `membership_started` event creates the member, credited to that partner, once.
async fn a_tap_then_a_membership_started_event_makes_the_partners_member(backend: Backend) {
    let Some(s) = money_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let (gym, code) = s.affiliate("Iron Gym", "business").await;
    let token = s.tap(&code, "").await;
    let at = rfc3339_ms(tapkit_server::store::now_ms() - 60_000);
    let event = serde_json::json!({
        "event_id": "ms-1", "kind": "membership_started", "occurred_at": at,
        "customer_id": "cus_tap", "email": "Tap@Example.com", "plan": "plus",
        "attribution": token,
    });
    let v = s.deliver(event.clone()).await;
    assert_eq!(
        (
            v["status"].as_str(),
            v["attribution"].as_str(),
            v["affiliate_id"].as_i64()
        ),
        (Some("processed"), Some("attributed"), Some(gym)),
        "{v}"
    );
    let member = v["member_id"].as_i64().unwrap();
    let m = s.state.store.member(member).await.unwrap().unwrap();
    assert_eq!(
        (m.plan.as_str(), m.email.as_str(), m.affiliate_id),
        ("plus", "tap@example.com", Some(gym))
    );
    let first = v["first_invoice_id"].as_i64().unwrap();
    assert_eq!(
        s.state.store.invoice(first).await.unwrap().unwrap().status,
        "open"
    );

    // Redelivered: a duplicate, nothing new.
    let again = s.deliver(event).await;
    assert_eq!(
        (again["status"].as_str(), again["member_id"].as_i64()),
        (Some("duplicate"), Some(member))
    );
    assert_eq!(s.count("members").await, 1);
    assert_eq!(s.count("invoices").await, 1);

    // Without a token (or with a forged one) the member is nobody's; another event for
    // a customer who is already a member is a 409; bad fields are named.
    let v = s
        .deliver(serde_json::json!({
            "event_id": "ms-2", "kind": "membership_started", "occurred_at": at,
            "customer_id": "cus_walk_in", "email": "w@example.com", "plan": "basic",
            "attribution": "v1.1.2.forged",
        }))
        .await;
    assert_eq!(
        (v["attribution"].as_str(), v["reason"].as_str()),
        (Some("none"), Some("forged_or_damaged_token")),
        "{v}"
    );
    let send = |e: serde_json::Value| {
        let body = e.to_string();
        let sig = tapkit_server::money::wire::sign(
            body.as_bytes(),
            WEBHOOK,
            tapkit_server::store::now_ms() / 1000,
        );
        (body, sig)
    };
    let (body, sig) = send(serde_json::json!({
        "event_id": "ms-3", "kind": "membership_started", "occurred_at": at,
        "customer_id": "cus_tap", "email": "tap@example.com", "plan": "premium",
    }));
    let (st, e) = s.deliver_raw(&body, Some(sig)).await;
    assert_eq!(st, StatusCode::CONFLICT, "{e}");
    for (field, value) in [
        ("plan", "gold"),
        ("email", "nobody"),
        ("occurred_at", "yesterday"),
    ] {
        let mut ev = serde_json::json!({
            "event_id": format!("ms-bad-{field}"), "kind": "membership_started", "occurred_at": at,
            "customer_id": "cus_new", "email": "n@example.com", "plan": "basic",
        });
        ev[field] = value.into();
        let (body, sig) = send(ev);
        let (st, e) = s.deliver_raw(&body, Some(sig)).await;
        assert_eq!(
            (st, &e["field"]),
            (StatusCode::UNPROCESSABLE_ENTITY, &field.into()),
            "{e}"
        );
    }
    // Unsigned: refused before the body is read.
    let (st, _) = s.deliver_raw(&body, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(s.count("members").await, 2);
}

on_both_databases!(
    a_tap_then_a_membership_started_event_makes_the_partners_member,
    a_paid_invoice_is_booked_once_and_earns_its_partner_three_months,
    two_replicas_settling_one_invoice_book_it_once,
    a_payment_restores_a_past_due_member_and_none_pays_for_a_lapsed_one,
    the_invoice_api_settles_refunds_and_refuses_what_cannot_be_done,
);

#[test]
fn membership_rules_refuse_what_does_not_apply() {
    for (rule, needle) in [
        ("on = \"membership\"\nmonths = 0", "months must be 1 to 120"),
        ("on = \"booking\"\nmonths = 2", "months only applies"),
        ("on = \"membership\"\nfirst_only = true", "use months = 1"),
    ] {
        let c: Commission = toml::from_str(&format!(
            "[[rules]]\n{rule}\nrewards = [{{ unit = \"cash\", fixed_minor = 100 }}]"
        ))
        .unwrap();
        let e = c.validate().unwrap_err();
        assert!(e.contains(needle), "{rule}: {e}");
    }
    let _ = MemberError::InvoiceNotFound;
}

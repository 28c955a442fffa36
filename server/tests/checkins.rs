//! Checking members in at the counter, through the real router and store on SQLite and
//! PostgreSQL: an admin binds a member card; an enrolled kiosk posts the card's URL with
//! its mirror to `POST /api/kiosk/check-in`. A visit is used once per tap (rolled-over
//! first, never below zero, unlimited counted), a counter that does not rise is a copy,
//! a retried read gets its first answer, and the member's standing or the card's
//! revocation refuse with the reason. Concurrency: 50 check-ins at once for a member
//! with 2 visits left accept exactly 2, and two kiosks sending one tap accept it once.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;
use serde_json::{Value, json};
use tapkit_server::config::ProgramConfig;

async fn checkin_server(backend: Backend) -> Option<Server> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tapkit.sample.toml");
    let program = tapkit_server::config::load(Some(&path)).unwrap().program;
    server_with(
        backend,
        ProgramConfig {
            fraud: quiet_fraud(),
            membership: program.membership,
            domain: "book.example.com".into(),
            ..ProgramConfig::default()
        },
    )
    .await
}

impl Server {
    /// A member joined through the admin API: its id.
    async fn new_member(&self, customer: &str, plan: &str, first_name: &str) -> i64 {
        let (st, m) = self
            .admin(
                Method::POST,
                "/api/admin/members",
                &json!({"customer_id": customer, "email": format!("{customer}@example.com"),
                        "plan": plan, "first_name": first_name})
                .to_string(),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{m}");
        m["id"].as_i64().unwrap()
    }

    /// Binds a card: (card id, the URL the card holds before its mirror).
    async fn card(&self, member: i64, uid: &str) -> (i64, String) {
        let (st, c) = self
            .admin(
                Method::POST,
                &format!("/api/admin/members/{member}/cards"),
                &json!({"uid": uid}).to_string(),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{c}");
        (
            c["id"].as_i64().unwrap(),
            c["url"].as_str().unwrap().to_owned(),
        )
    }

    async fn check_in(&self, token: &str, url: &str, key: Option<&str>) -> (StatusCode, Value) {
        json_of(self.call(check_in_request(token, url, key)).await).await
    }

    async fn card_tap(&self, token: &str, url: &str, uid: &str, counter: u32) -> Value {
        let (st, v) = self
            .check_in(token, &format!("{url}?m={uid}x{counter:06X}"), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v
    }
}

/// A kiosk's check-in request (`key`: its Idempotency-Key).
fn check_in_request(token: &str, url: &str, key: Option<&str>) -> Request<Body> {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri("/api/kiosk/check-in")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            9,
        ))));
    if let Some(k) = key {
        b = b.header("idempotency-key", k);
    }
    b.body(Body::from(json!({"url": url}).to_string())).unwrap()
}

/// The request sent through `app` on a task of its own (so many are in flight at once).
fn spawn_check_in(
    app: axum::Router,
    req: Request<Body>,
) -> tokio::task::JoinHandle<(StatusCode, Value)> {
    tokio::spawn(async move {
        use tower::ServiceExt;
        json_of(app.oneshot(req).await.unwrap()).await
    })
}

async fn set(s: &Server, id: i64, assignments: &str) {
    sqlx::query(&format!("UPDATE members SET {assignments} WHERE id = $1"))
        .bind(id)
        .execute(&s.pool().await)
        .await
        .unwrap();
}

const UID: &str = "04A1B2C3D4E5F6";

async fn a_tap_uses_one_visit_and_a_copy_is_refused(backend: Backend) {
    let Some(s) = checkin_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let desk = s.kiosk_token("Iron Gym").await;
    let ana = s.new_member("cus_ana", "plus", "Ana").await;
    let (card, url) = s.card(ana, "04:a1:b2:c3:d4:e5:f6").await;
    assert!(url.starts_with("https://book.example.com/m/"), "{url}");

    // Visits go 4 → 3; staff see the first name, plan, discount and priority.
    let v = s.card_tap(&desk, &url, UID, 7).await;
    assert_eq!(v["accepted"], true, "{v}");
    assert_eq!(
        v["member"],
        json!({"first_name": "Ana", "plan": "Plus", "visits_left": 3, "rolled_over_visits": 0,
               "add_on_discount_bp": 1500, "priority": "high"}),
        "{v}"
    );
    // The same counter again (a copied URL) and a lower one: refused as copies.
    for counter in [7, 3] {
        let v = s.card_tap(&desk, &url, UID, counter).await;
        assert_eq!(
            (v["accepted"].as_bool(), v["reason"].as_str()),
            (Some(false), Some("counter_not_rising")),
            "{v}"
        );
        assert_eq!(v["member"]["visits_left"], 3);
    }
    // A retried request of one read (its Idempotency-Key) gets its first answer.
    let tapped = format!("{url}?m={UID}x000009");
    let (_, first) = s.check_in(&desk, &tapped, Some("read-9")).await;
    let (_, again) = s.check_in(&desk, &tapped, Some("read-9")).await;
    assert_eq!(
        (first["accepted"].as_bool(), first["replayed"].as_bool()),
        (Some(true), Some(false)),
        "{first}"
    );
    assert_eq!(
        (again["accepted"].as_bool(), again["replayed"].as_bool()),
        (Some(true), Some(true)),
        "{again}"
    );
    assert_eq!(
        again["member"]["visits_left"], 2,
        "one visit for one read: {again}"
    );
    // A gap in the counter is normal (phones read the card too).
    let v = s.card_tap(&desk, &url, UID, 40).await;
    assert_eq!(
        (v["accepted"].as_bool(), v["member"]["visits_left"].as_i64()),
        (Some(true), Some(1))
    );
    let v = s.card_tap(&desk, &url, UID, 41).await;
    assert_eq!(v["member"]["visits_left"], 0);
    // No visit left: refused, never below zero.
    let v = s.card_tap(&desk, &url, UID, 42).await;
    assert_eq!(
        (v["accepted"].as_bool(), v["reason"].as_str()),
        (Some(false), Some("no_visits_left")),
        "{v}"
    );
    let m = s.state.store.member(ana).await.unwrap().unwrap();
    assert_eq!((m.visits_used, m.visits_rolled_used), (4, 0));

    // Unknown cards tell staff nothing about any member.
    for bad in [
        format!("{url}?m=04000000000001x000001"),
        format!(
            "https://other.example.com/m/{}?m={UID}x000050",
            url.rsplit('/').next().unwrap()
        ),
        format!("https://book.example.com/m/0000aaaa0000?m={UID}x000051"),
    ] {
        let (st, v) = s.check_in(&desk, &bad, None).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(
            (v["reason"].as_str(), &v["member"]),
            (Some("unknown_card"), &Value::Null),
            "{bad}: {v}"
        );
    }
    // A URL that is no member card's: 422 naming the field and the shape.
    let (st, v) = s
        .check_in(&desk, "https://book.example.com/r/abc", None)
        .await;
    assert_eq!(
        (st, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("url")),
        "{v}"
    );
    assert!(v["error"].as_str().unwrap().contains("mirror"), "{v}");
    // Without a kiosk's credentials: 401.
    let (st, _) = s
        .check_in("kiosk.1.00", &format!("{url}?m={UID}x000060"), None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // A lost card is revoked and a new one bound.
    let (st, r) = s
        .admin(
            Method::POST,
            &format!("/api/admin/member-cards/{card}/revoke"),
            "",
        )
        .await;
    assert_eq!(
        (st, r["status"].as_str()),
        (StatusCode::OK, Some("revoked")),
        "{r}"
    );
    set(&s, ana, "visits_used = 0").await;
    let v = s.card_tap(&desk, &url, UID, 70).await;
    assert_eq!(v["reason"], "revoked_card", "{v}");
    let (_, url2) = s.card(ana, "04FFFFFFFFFF01").await;
    assert_eq!(url2, url, "the member's page and code stay");
    let v = s.card_tap(&desk, &url, "04FFFFFFFFFF01", 1).await;
    assert_eq!(v["accepted"], true, "{v}");
    // A UID bound to someone else is a 409 naming what to do.
    let bo = s.new_member("cus_bo", "basic", "Bo").await;
    let (st, v) = s
        .admin(
            Method::POST,
            &format!("/api/admin/members/{bo}/cards"),
            &json!({"uid": "04FFFFFFFFFF01"}).to_string(),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("revoke it first"),
        "{v}"
    );

    // Every check-in was logged, accepted or not (a replayed read and the requests
    // refused before reading the card are not check-ins): 12.
    assert_eq!(s.count("checkins").await, 12);
}

async fn the_members_standing_decides(backend: Backend) {
    let Some(s) = checkin_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let desk = s.kiosk_token("Glow Spa").await;
    let today = tapkit_server::store::now_ms().div_euclid(86_400_000);
    let cases = [
        (
            "status = 'lapsed', status_reason = 'payment_failed'",
            Some("lapsed"),
        ),
        ("status = 'paused', visits_included = 0", Some("paused")),
        ("status = 'cancelled'", Some("cancelled")),
        (
            &*format!("status = 'past_due', failed_on = {}", today - 10),
            Some("past_due"),
        ),
        (
            &*format!("status = 'past_due', failed_on = {}", today - 2),
            None,
        ),
    ];
    for (i, (set_to, reason)) in cases.iter().enumerate() {
        let id = s.new_member(&format!("cus_{i}"), "basic", "Cy").await;
        let uid = format!("04A1B2C3D4E5{i:02X}");
        let (_, url) = s.card(id, &uid).await;
        set(&s, id, set_to).await;
        let v = s.card_tap(&desk, &url, &uid, 1).await;
        assert_eq!(v["reason"].as_str(), *reason, "{set_to}: {v}");
        assert_eq!(v["accepted"], reason.is_none(), "{set_to}: {v}");
    }
    // Premium: unlimited, each visit recorded, none consumed.
    let di = s.new_member("cus_di", "premium", "Di").await;
    let (_, url) = s.card(di, "04DDDDDDDDDD01").await;
    for n in 1..=6 {
        let v = s.card_tap(&desk, &url, "04DDDDDDDDDD01", n).await;
        assert_eq!(
            (v["accepted"].as_bool(), &v["member"]["visits_left"]),
            (Some(true), &Value::Null),
            "{v}"
        );
    }
    let visits = s.state.store.member_checkins(di, 10).await.unwrap();
    assert_eq!(visits.len(), 6);
    assert!(
        visits
            .iter()
            .all(|c| c.visit.as_deref() == Some("unlimited"))
    );
}

async fn fifty_at_once_for_two_visits_accept_two(backend: Backend) {
    let Some(s) = checkin_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let desks = [s.kiosk_token("Desk A").await, s.kiosk_token("Desk B").await];
    let bo = s.new_member("cus_bo", "basic", "Bo").await; // 2 visits
    // Fifty cards of one member (a family's), tapped at once at two kiosks, through two
    // replicas' states sharing the database.
    let mut urls = Vec::new();
    for i in 0..50u32 {
        let uid = format!("04B0B0B0B0{i:04X}");
        let (_, url) = s.card(bo, &uid).await;
        urls.push(format!("{url}?m={uid}x000001"));
    }
    let other = tapkit_server::AppState::new(s.state.config.clone(), SECRET)
        .await
        .unwrap();
    let apps = [
        tapkit_server::app(s.state.clone()),
        tapkit_server::app(other),
    ];
    let mut calls = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        calls.push(spawn_check_in(
            apps[i % 2].clone(),
            check_in_request(&desks[i % 2], url, None),
        ));
    }
    let mut accepted = 0;
    for c in calls {
        let (st, v) = c.await.unwrap();
        assert_eq!(st, StatusCode::OK, "{v}");
        if v["accepted"] == true {
            accepted += 1;
        } else {
            assert_eq!(v["reason"], "no_visits_left", "{v}");
        }
    }
    assert_eq!(accepted, 2);
    let m = s.state.store.member(bo).await.unwrap().unwrap();
    assert_eq!(m.visits_used, 2);

    // One tap sent by two kiosks at once (a card held over both readers): once.
    let ana = s.new_member("cus_ana", "plus", "Ana").await;
    let (_, url) = s.card(ana, "04A0A0A0A0A001").await;
    let tapped = format!("{url}?m=04A0A0A0A0A001x000005");
    let (a, b) = tokio::join!(
        s.check_in(&desks[0], &tapped, None),
        s.check_in(&desks[1], &tapped, None)
    );
    let accepted = [a, b].iter().filter(|(_, v)| v["accepted"] == true).count();
    assert_eq!(accepted, 1);
    assert_eq!(
        s.state
            .store
            .member(ana)
            .await
            .unwrap()
            .unwrap()
            .visits_used,
        1
    );

    // One read retried ten times at once (same Idempotency-Key): one check-in, one
    // visit, and every answer the same.
    let tapped = format!("{url}?m=04A0A0A0A0A001x000006");
    let mut calls = Vec::new();
    for _ in 0..10 {
        calls.push(spawn_check_in(
            tapkit_server::app(s.state.clone()),
            check_in_request(&desks[0], &tapped, Some("read-6")),
        ));
    }
    let mut first = 0;
    for c in calls {
        let (st, v) = c.await.unwrap();
        assert_eq!(
            (st, v["accepted"].as_bool()),
            (StatusCode::OK, Some(true)),
            "{v}"
        );
        first += usize::from(v["replayed"] == false);
    }
    assert_eq!(first, 1, "one check-in, the others its replays");
    assert_eq!(
        s.state
            .store
            .member(ana)
            .await
            .unwrap()
            .unwrap()
            .visits_used,
        2
    );
}

/// A kiosk's offline check-in, submitted from its queue.
fn offline_request(token: &str, url: &str, key: Option<&str>, at: i64) -> Request<Body> {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri("/api/kiosk/check-in")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"));
    if let Some(k) = key {
        b = b.header("idempotency-key", k);
    }
    b.body(Body::from(
        json!({"url": url, "offline_at_ms": at}).to_string(),
    ))
    .unwrap()
}

async fn offline_check_ins_are_reconciled_once_with_overdrafts(backend: Backend) {
    let Some(s) = checkin_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let desk = s.kiosk_token("Iron Gym").await;
    let now = tapkit_server::store::now_ms();
    let bo = s.new_member("cus_bo", "basic", "Bo").await; // 2 visits
    let (_, url) = s.card(bo, UID).await;
    // Online first: counter 10 accepted (1 visit left).
    assert_eq!(s.card_tap(&desk, &url, UID, 10).await["accepted"], true);

    // The kiosk was offline and let Bo in three times (counters 7, 8, 9: read before
    // the online tap, submitted after it; the roster said 2 visits).
    let mut answers = Vec::new();
    for (i, counter) in [7u32, 8, 9].iter().enumerate() {
        let req = offline_request(
            &desk,
            &format!("{url}?m={UID}x{counter:06X}"),
            Some(&format!("q{i}")),
            now - 60_000,
        );
        let (st, v) = json_of(s.call(req).await).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        answers.push(v);
    }
    // Late counters are not copies; each is accepted, the ones not owed as overdrafts.
    assert!(answers.iter().all(|v| v["accepted"] == true), "{answers:?}");
    let overdrafts: Vec<&Value> = answers.iter().map(|v| &v["overdraft"]).collect();
    assert_eq!(
        overdrafts,
        [
            &Value::Null,
            &json!("no_visits_left"),
            &json!("no_visits_left")
        ]
    );
    let m = s.state.store.member(bo).await.unwrap().unwrap();
    assert_eq!(m.visits_used, 2, "never beyond the allowance");

    // The queue submitted again (the kiosk crashed before rewriting it): nothing new.
    for (i, counter) in [7u32, 8, 9].iter().enumerate() {
        let req = offline_request(
            &desk,
            &format!("{url}?m={UID}x{counter:06X}"),
            Some(&format!("q{i}")),
            now - 60_000,
        );
        let (st, v) = json_of(s.call(req).await).await;
        assert_eq!((st, &v["replayed"]), (StatusCode::OK, &json!(true)), "{v}");
    }
    // A tap already accepted, sent offline by another read: a copy, refused.
    let req = offline_request(&desk, &format!("{url}?m={UID}x00000A"), Some("q9"), now);
    let (_, v) = json_of(s.call(req).await).await;
    assert_eq!(
        (&v["accepted"], &v["reason"]),
        (&json!(false), &json!("counter_not_rising")),
        "{v}"
    );
    // The card's counter stays at the highest seen: a later online tap at 10 is a copy.
    assert_eq!(
        s.card_tap(&desk, &url, UID, 10).await["reason"],
        "counter_not_rising"
    );
    let kept: Vec<(bool, Option<String>)> = s
        .state
        .store
        .member_checkins(bo, 20)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.offline_at.is_some())
        .map(|c| (c.accepted, c.overdraft))
        .collect();
    assert_eq!(kept.len(), 4, "every offline check-in is kept: {kept:?}");
    assert_eq!(kept.iter().filter(|(_, o)| o.is_some()).count(), 2);

    // A lapsed member let in offline: kept, as an overdraft naming why.
    let cy = s.new_member("cus_cy", "basic", "Cy").await;
    let (_, cy_url) = s.card(cy, "04C0C0C0C0C0C0").await;
    set(&s, cy, "status = 'lapsed'").await;
    let req = offline_request(
        &desk,
        &format!("{cy_url}?m=04C0C0C0C0C0C0x000003"),
        Some("c1"),
        now,
    );
    let (_, v) = json_of(s.call(req).await).await;
    assert_eq!(
        (&v["accepted"], &v["overdraft"]),
        (&json!(true), &json!("lapsed")),
        "{v}"
    );

    // Without a key, the tap names the offline check-in: sent twice, counted once. A
    // time ahead of the server's clock (a kiosk clock gone wrong) is kept, dated now.
    let tapped = format!("{cy_url}?m=04C0C0C0C0C0C0x000004");
    for _ in 0..2 {
        let (st, v) = json_of(
            s.call(offline_request(&desk, &tapped, None, now + 3_600_000))
                .await,
        )
        .await;
        assert_eq!(
            (st, &v["overdraft"]),
            (StatusCode::OK, &json!("lapsed")),
            "{v}"
        );
    }
    let cy_offline: Vec<_> = s
        .state
        .store
        .member_checkins(cy, 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.counter == 4)
        .collect();
    assert_eq!(cy_offline.len(), 1, "{cy_offline:?}");
    assert!(cy_offline[0].offline_at.unwrap() < now + 3_600_000);
}

async fn the_roster_is_signed_for_its_kiosk(backend: Backend) {
    let Some(s) = checkin_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let desk = s.kiosk_token("Iron Gym").await;
    let ada = s.new_member("cus_ada", "plus", "Ada").await;
    s.card(ada, UID).await;
    let late = s.new_member("cus_late", "basic", "Lee").await;
    s.card(late, "04EEEEEEEEEE01").await;
    let today = tapkit_server::store::now_ms().div_euclid(86_400_000);
    set(
        &s,
        late,
        &format!("status = 'past_due', failed_on = {}", today - 10),
    )
    .await;
    // A member without a card is not on it.
    s.new_member("cus_nocard", "basic", "No").await;
    let req = Request::builder()
        .uri("/api/kiosk/roster")
        .header("authorization", format!("Bearer {desk}"))
        .body(Body::empty())
        .unwrap();
    let (st, signed) = json_of(s.call(req).await).await;
    assert_eq!(st, StatusCode::OK, "{signed}");
    let secret = tapkit_core::hex::decode(desk.rsplit('.').next().unwrap()).unwrap();
    let text = signed["roster"].as_str().unwrap();
    assert!(tapkit_core::kiosk_wire::roster_authentic(
        &secret,
        text,
        signed["signature"].as_str().unwrap()
    ));
    assert!(!tapkit_core::kiosk_wire::roster_authentic(
        b"another kiosk",
        text,
        signed["signature"].as_str().unwrap()
    ));
    let r: tapkit_core::kiosk_wire::Roster = serde_json::from_str(text).unwrap();
    assert!(r.expires_at_ms > r.version);
    let mut cards: Vec<(String, String, Option<i64>)> = r
        .cards
        .iter()
        .map(|c| (c.uid.clone(), c.status.clone(), c.visits_left))
        .collect();
    cards.sort();
    assert_eq!(
        cards,
        [
            (UID.to_owned(), "active".to_owned(), Some(4)),
            ("04EEEEEEEEEE01".to_owned(), "past_due".to_owned(), Some(2)),
        ]
    );
    let ada_card = r.cards.iter().find(|c| c.uid == UID).unwrap();
    assert_eq!(
        (
            ada_card.first_name.as_deref(),
            ada_card.plan.as_str(),
            ada_card.priority.as_str()
        ),
        (Some("Ada"), "Plus", "high")
    );
    // A member's card cannot also become a partner's card.
    let (aff, _) = s.affiliate("Other Shop", "business").await;
    let (st, v) = s
        .admin(
            Method::POST,
            "/api/admin/cards",
            &json!({"affiliate_id": aff, "uid": UID}).to_string(),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("membership card"),
        "{v}"
    );
    // Without a kiosk's credentials: 401.
    let req = Request::builder()
        .uri("/api/kiosk/roster")
        .body(Body::empty())
        .unwrap();
    assert_eq!(s.call(req).await.status(), StatusCode::UNAUTHORIZED);
}

/// The check-in's kiosk check reads no row for a good secret (the directory), and still
/// refuses a retired kiosk and a re-enrolled kiosk's old secret.
async fn a_retired_or_re_enrolled_kiosk_cannot_check_in(backend: Backend) {
    let Some(s) = checkin_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let ada = s.new_member("cus_ada", "plus", "Ada").await;
    let (_, url) = s.card(ada, UID).await;
    let desk = s.kiosk_token("Iron Gym").await;
    assert_eq!(s.card_tap(&desk, &url, UID, 1).await["accepted"], true);
    let id: i64 = desk.split('.').nth(1).unwrap().parse().unwrap();
    // Re-enrolled: a new code, a new secret; the old one no longer checks anyone in.
    let (st, k) = s
        .admin(
            Method::POST,
            &format!("/api/admin/kiosks/{id}/enrollment"),
            "",
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{k}");
    let new = s.enroll(&k["enrollment_code"]).await;
    assert!(
        new.starts_with(&format!("kiosk.{id}.")),
        "the same kiosk: {new}"
    );
    let (st, v) = s
        .check_in(&desk, &format!("{url}?m={UID}x000002"), None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(s.card_tap(&new, &url, UID, 2).await["accepted"], true);
    // Retired: refused.
    let (st, v) = s
        .admin(Method::POST, &format!("/api/admin/kiosks/{id}/retire"), "")
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s
        .check_in(&new, &format!("{url}?m={UID}x000003"), None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
}

on_both_databases!(
    a_retired_or_re_enrolled_kiosk_cannot_check_in,
    a_tap_uses_one_visit_and_a_copy_is_refused,
    the_members_standing_decides,
    fifty_at_once_for_two_visits_accept_two,
    offline_check_ins_are_reconciled_once_with_overdrafts,
    the_roster_is_signed_for_its_kiosk,
);

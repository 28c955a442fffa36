//! Memberships through the real store (SQLite and PostgreSQL): joining bills the
//! prorated month and grants the plan's visits, one membership per customer is live at
//! a time even when two replicas race, input is checked as sent, and a plan members hold
//! cannot leave the config.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use tapkit_core::date::parse_date;
use tapkit_server::AppState;
use tapkit_server::config::ProgramConfig;
use tapkit_server::members::plans::MembershipConfig;
use tapkit_server::members::service::{Join, MemberError, join, visits_left};
use tapkit_server::store::StoreError;

/// The sample config's three plans.
fn plans() -> MembershipConfig {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tapkit.sample.toml");
    tapkit_server::config::load(Some(&path))
        .unwrap()
        .program
        .membership
}

async fn members_server(backend: Backend) -> Option<Server> {
    server_with(
        backend,
        ProgramConfig {
            fraud: quiet_fraud(),
            membership: plans(),
            ..ProgramConfig::default()
        },
    )
    .await
}

/// Noon UTC of a date, Unix ms.
fn noon(date: &str) -> i64 {
    parse_date(date).unwrap() * 86_400_000 + 12 * 3_600_000
}

fn ana(plan: &str) -> Join<'_> {
    Join {
        customer_id: "cus_ana",
        email: "Ana@Example.com",
        plan,
        affiliate_id: None,
        first_name: None,
    }
}

async fn joining_bills_the_prorated_month_and_grants_the_full_visits(backend: Backend) {
    let Some(s) = members_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let st = &s.state;
    let (aff, _) = s.affiliate("Iron Gym", "business").await;
    let j = Join {
        affiliate_id: Some(aff),
        ..ana("plus")
    };
    // Plus ($49.00) on 16 November: 15 of 30 days left.
    let (m, first) = join(
        &st.store,
        &st.config.program.membership,
        st.program.id,
        "USD",
        &j,
        noon("2026-11-16"),
    )
    .await
    .unwrap();
    assert_eq!(
        (m.status.as_str(), m.plan.as_str(), m.period.as_str()),
        ("active", "plus", "2026-11")
    );
    assert_eq!(m.email, "ana@example.com");
    assert_eq!(m.affiliate_id, Some(aff));
    assert_eq!(visits_left(&m), Some(4), "the full plan's visits");
    assert_eq!(
        (
            first.kind.as_str(),
            first.amount_minor,
            first.status.as_str()
        ),
        ("first", 2450, "open")
    );
    let stored = st.store.member(m.id).await.unwrap().unwrap();
    assert_eq!(stored, m);
    assert_eq!(st.store.member_invoices(m.id, true).await.unwrap(), [first]);

    // Premium is unlimited; Basic on 10 December: 2900 × 22 / 31 = 2058.06 → 2058.
    let (p, _) = join(
        &st.store,
        &st.config.program.membership,
        st.program.id,
        "USD",
        &Join {
            customer_id: "cus_bo",
            ..ana("premium")
        },
        noon("2026-11-16"),
    )
    .await
    .unwrap();
    assert_eq!(visits_left(&p), None);
    let (_, b) = join(
        &st.store,
        &st.config.program.membership,
        st.program.id,
        "USD",
        &Join {
            customer_id: "cus_cy",
            ..ana("basic")
        },
        noon("2026-12-10"),
    )
    .await
    .unwrap();
    assert_eq!((b.amount_minor, b.period.as_str()), (2058, "2026-12"));
}

async fn one_live_membership_per_customer_even_when_two_replicas_race(backend: Backend) {
    let Some(s) = members_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let st = &s.state;
    let other = tapkit_server::store::Store::connect(&st.config.database_url)
        .await
        .unwrap();
    let cfg = &st.config.program.membership;
    let now = noon("2026-11-16");
    let (plus, basic) = (ana("plus"), ana("basic"));
    let (a, b) = tokio::join!(
        join(&st.store, cfg, st.program.id, "USD", &plus, now),
        join(&other, cfg, st.program.id, "USD", &basic, now),
    );
    let (won, lost) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        other => panic!("exactly one join must win: {other:?}"),
    };
    match lost {
        MemberError::Store(e @ StoreError::AlreadyMember { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("member {}", won.0.id)) && msg.contains("/plan"),
                "{msg}"
            );
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(s.count("members").await, 1);
    assert_eq!(
        s.count("invoices").await,
        1,
        "the loser's invoice rolled back"
    );
}

async fn bad_input_names_the_field_and_stores_nothing(backend: Backend) {
    let Some(s) = members_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let st = &s.state;
    let cfg = &st.config.program.membership;
    let now = noon("2026-11-16");
    let long = "x".repeat(201);
    for (j, field, says) in [
        (ana("gold"), "plan", "use one of basic, plus, premium"),
        (
            Join {
                customer_id: "",
                ..ana("plus")
            },
            "customer_id",
            "1 to 200",
        ),
        (
            Join {
                customer_id: &long,
                ..ana("plus")
            },
            "customer_id",
            "1 to 200",
        ),
        (
            Join {
                email: "ana at example",
                ..ana("plus")
            },
            "email",
            "name@example.com",
        ),
    ] {
        match join(&st.store, cfg, st.program.id, "USD", &j, now).await {
            Err(MemberError::Invalid { field: f, reason }) => {
                assert_eq!(f, field);
                assert!(reason.contains(says), "{reason}");
            }
            other => panic!("{field}: {other:?}"),
        }
    }
    assert_eq!(s.count("members").await, 0);
}

async fn a_plan_members_hold_cannot_leave_the_config(backend: Backend) {
    let Some(s) = members_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let st = &s.state;
    join(
        &st.store,
        &st.config.program.membership,
        st.program.id,
        "USD",
        &ana("plus"),
        noon("2026-11-16"),
    )
    .await
    .unwrap();
    // A restart with Plus removed from the config.
    let mut config = st.config.clone();
    config.program.membership.plans.retain(|p| p.id != "plus");
    let err = AppState::new(config, SECRET).await.unwrap_err().to_string();
    assert!(
        err.contains("plus") && err.contains("cannot be removed"),
        "{err}"
    );
    // With it back, the server starts.
    AppState::new(st.config.clone(), SECRET).await.unwrap();
}

on_both_databases!(
    joining_bills_the_prorated_month_and_grants_the_full_visits,
    one_live_membership_per_customer_even_when_two_replicas_race,
    bad_input_names_the_field_and_stores_nothing,
    a_plan_members_hold_cannot_leave_the_config,
);

/// Sets columns of a member directly (what plan changes, pauses, cancellations and
/// check-ins will do through their own services).
async fn set(s: &Server, id: i64, assignments: &str) {
    sqlx::query(&format!("UPDATE members SET {assignments} WHERE id = $1"))
        .bind(id)
        .execute(&s.pool().await)
        .await
        .unwrap();
}

async fn invoices_of(s: &Server, id: i64) -> Vec<(String, String, String, i64)> {
    s.state
        .store
        .member_invoices(id, false)
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.period, i.kind, i.plan, i.amount_minor))
        .collect()
}

async fn joined(s: &Server, customer: &str, plan: &str, date: &str) -> i64 {
    let st = &s.state;
    join(
        &st.store,
        &st.config.program.membership,
        st.program.id,
        "USD",
        &Join {
            customer_id: customer,
            ..ana(plan)
        },
        noon(date),
    )
    .await
    .unwrap()
    .0
    .id
}

async fn renew(s: &Server, date: &str) -> tapkit_server::members::renewal::Renewed {
    let st = &s.state;
    tapkit_server::members::renewal::run(
        &st.store,
        &st.config.program.membership,
        st.program.id,
        "USD",
        noon(date),
    )
    .await
    .unwrap()
}

async fn the_renewal_run_bills_each_period_once_and_rolls_visits_over(backend: Backend) {
    let Some(s) = members_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let plus = joined(&s, "cus_ana", "plus", "2026-10-16").await;
    set(&s, plus, "visits_used = 1").await; // one October visit
    let basic = joined(&s, "cus_bo", "basic", "2026-10-20").await;
    set(&s, basic, "pending_plan = 'premium'").await; // a plan change for the next period
    let leaving = joined(&s, "cus_cy", "plus", "2026-10-03").await;
    set(&s, leaving, "cancel_at_period_end = 1").await;
    let resting = joined(&s, "cus_di", "basic", "2026-10-05").await;
    set(&s, resting, "status = 'paused', paused_until = '2026-12'").await;

    // The run was down all November: on 2 December it catches up two periods.
    let r = renew(&s, "2026-12-02").await;
    assert_eq!((r.passes, r.cancelled), (2, 1));
    assert_eq!(
        r.invoiced,
        2 + 2 + 1,
        "Plus ×2, Basic→Premium ×2, the pause ends in December"
    );
    let first = |amount: i64, plan: &str| {
        (
            "2026-10".to_owned(),
            "first".to_owned(),
            plan.to_owned(),
            amount,
        )
    };
    let renewal = |period: &str, plan: &str, amount: i64| {
        (
            period.to_owned(),
            "renewal".to_owned(),
            plan.to_owned(),
            amount,
        )
    };
    // Plus on 16 Oct: 4900 × 16 / 31 = 2529.03.
    assert_eq!(
        invoices_of(&s, plus).await,
        [
            first(2529, "plus"),
            renewal("2026-11", "plus", 4900),
            renewal("2026-12", "plus", 4900)
        ]
    );
    let m = s.state.store.member(plus).await.unwrap().unwrap();
    // October left 3 (rolled into November, which used none of its 4): December carries
    // November's 4; October's 3 expired with November.
    assert_eq!(
        (
            m.period.as_str(),
            m.visits_included,
            m.visits_rolled,
            visits_left(&m)
        ),
        ("2026-12", Some(4), 4, Some(8))
    );
    let b = s.state.store.member(basic).await.unwrap().unwrap();
    assert_eq!(
        (b.plan.as_str(), b.pending_plan, b.visits_included),
        ("premium", None, None)
    );
    assert_eq!(
        invoices_of(&s, basic).await[1..],
        [
            renewal("2026-11", "premium", 7900),
            renewal("2026-12", "premium", 7900)
        ]
    );
    let c = s.state.store.member(leaving).await.unwrap().unwrap();
    assert_eq!(
        (c.status.as_str(), c.period.as_str()),
        ("cancelled", "2026-10")
    );
    assert_eq!(invoices_of(&s, leaving).await.len(), 1);
    let d = s.state.store.member(resting).await.unwrap().unwrap();
    assert_eq!(
        (
            d.status.as_str(),
            d.period.as_str(),
            d.visits_included,
            d.visits_rolled
        ),
        ("active", "2026-12", Some(2), 0),
        "paused through November (no visits, no invoice), resumed in December with nothing rolled"
    );
    assert_eq!(
        invoices_of(&s, resting).await[1..],
        [renewal("2026-12", "basic", 2900)]
    );

    // Again, and later the same month: nothing new.
    assert_eq!(renew(&s, "2026-12-02").await.invoiced, 0);
    assert_eq!(renew(&s, "2026-12-31").await.passes, 0);
    assert_eq!(s.count("invoices").await, 4 + 5);
}

async fn two_replicas_renewing_at_once_bill_once(backend: Backend) {
    let Some(s) = members_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    for i in 0..40 {
        joined(
            &s,
            &format!("cus_{i}"),
            ["basic", "plus", "premium"][i % 3],
            "2026-10-16",
        )
        .await;
    }
    let other = tapkit_server::store::Store::connect(&s.state.config.database_url)
        .await
        .unwrap();
    let st = &s.state;
    let cfg = &st.config.program.membership;
    let (a, b) = tokio::join!(
        tapkit_server::members::renewal::run(
            &st.store,
            cfg,
            st.program.id,
            "USD",
            noon("2026-12-01")
        ),
        tapkit_server::members::renewal::run(&other, cfg, st.program.id, "USD", noon("2026-12-01")),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.invoiced + b.invoiced, 80, "{a:?} {b:?}");
    assert_eq!(s.count("invoices").await, 40 + 80);
    let periods: Vec<(String, i64)> = {
        use sqlx::Row;
        sqlx::query("SELECT period, COUNT(*) AS n FROM invoices WHERE kind = 'renewal' GROUP BY period ORDER BY period")
            .fetch_all(&s.pool().await)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("period"), r.get("n")))
            .collect()
    };
    assert_eq!(
        periods,
        [("2026-11".to_owned(), 40), ("2026-12".to_owned(), 40)]
    );
}

on_both_databases!(
    the_renewal_run_bills_each_period_once_and_rolls_visits_over,
    two_replicas_renewing_at_once_bill_once,
);

/// The admin API of issue 19's interface, end to end through the router.
async fn the_admin_api_creates_reads_and_changes_members(backend: Backend) {
    use axum::http::{Method, StatusCode};
    use tapkit_server::members::billing::{Period, first_charge, upgrade_charge};
    let Some(s) = members_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let (aff, _) = s.affiliate("Iron Gym", "business").await;
    let today = tapkit_server::store::now_ms().div_euclid(86_400_000);
    let period = Period::of_day(today);
    let (st, m) = s
        .admin(
            Method::POST,
            "/api/admin/members",
            &format!(
                r#"{{"customer_id":"cus_api","email":"Ana@Example.com","plan":"plus","affiliate_id":{aff}}}"#
            ),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    assert_eq!(
        (&m["status"], &m["plan"], &m["visits_left"], &m["email"]),
        (
            &"active".into(),
            &"plus".into(),
            &4.into(),
            &"ana@example.com".into()
        )
    );
    assert_eq!(m["period"], period.to_string());
    assert_eq!(m["open_invoices"][0]["kind"], "first");
    assert_eq!(
        m["open_invoices"][0]["amount_minor"],
        first_charge(4900, today)
    );
    let id = m["id"].as_i64().unwrap();
    let (st, got) = s
        .admin(Method::GET, &format!("/api/admin/members/{id}"), "")
        .await;
    assert_eq!((st, &got), (StatusCode::OK, &m));
    assert_eq!(got["rolled_over_visits"], 0);

    // Upgrade to Premium: now, unlimited, the prorated difference invoiced.
    let (st, up) = s
        .admin(
            Method::POST,
            &format!("/api/admin/members/{id}/plan"),
            r#"{"plan":"premium"}"#,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{up}");
    assert_eq!(
        (&up["plan"], &up["visits_left"]),
        (&"premium".into(), &serde_json::Value::Null)
    );
    assert_eq!(up["upgrade_invoice"]["kind"], "upgrade");
    assert_eq!(
        up["upgrade_invoice"]["amount_minor"],
        upgrade_charge(4900, 7900, today)
    );
    // Back down to Basic: from the next period.
    let (_, down) = s
        .admin(
            Method::POST,
            &format!("/api/admin/members/{id}/plan"),
            r#"{"plan":"basic"}"#,
        )
        .await;
    assert_eq!(
        (&down["plan"], &down["pending_plan"]),
        (&"premium".into(), &"basic".into())
    );
    assert_eq!(down["upgrade_invoice"], serde_json::Value::Null);

    // A pause of 2 whole periods from the next one; a second is refused.
    let (st, p) = s
        .admin(
            Method::POST,
            &format!("/api/admin/members/{id}/pause"),
            r#"{"periods":2}"#,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["paused_until"], period.next().next().next().to_string());
    assert_eq!(p["status"], "active", "the paid period is kept");
    let (st, e) = s
        .admin(
            Method::POST,
            &format!("/api/admin/members/{id}/pause"),
            r#"{"periods":1}"#,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{e}");
    let (st, c) = s
        .admin(Method::POST, &format!("/api/admin/members/{id}/cancel"), "")
        .await;
    assert_eq!(
        (st, &c["cancel_at_period_end"]),
        (StatusCode::OK, &true.into())
    );

    // What is refused, and how.
    for (method, path, body, status, field) in [
        (
            Method::POST,
            "/api/admin/members".to_owned(),
            r#"{"customer_id":"cus_api","email":"a@b.co","plan":"basic"}"#,
            StatusCode::CONFLICT,
            None,
        ),
        (
            Method::POST,
            "/api/admin/members".to_owned(),
            r#"{"customer_id":"cus_2","email":"a@b.co","plan":"gold"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("plan"),
        ),
        (
            Method::POST,
            "/api/admin/members".to_owned(),
            r#"{"customer_id":"cus_2","email":"nope","plan":"basic"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("email"),
        ),
        (
            Method::POST,
            "/api/admin/members".to_owned(),
            r#"{"customer_id":"cus_2","email":"a@b.co","plan":"basic","affiliate_id":999999}"#,
            StatusCode::NOT_FOUND,
            Some("affiliate_id"),
        ),
        (
            Method::POST,
            "/api/admin/members".to_owned(),
            r#"["cus_2","a@b.co","basic"]"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
        (
            Method::GET,
            "/api/admin/members/999999".to_owned(),
            "",
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::GET,
            "/api/admin/members/abc".to_owned(),
            "",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("id"),
        ),
        (
            Method::POST,
            format!("/api/admin/members/{id}/pause"),
            r#"{"periods":0}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("periods"),
        ),
        (
            Method::POST,
            format!("/api/admin/members/{id}/pause"),
            r#"{"periods":13}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("periods"),
        ),
    ] {
        let (st, v) = s.admin(method, &path, body).await;
        assert_eq!(st, status, "{path} {body}: {v}");
        if let Some(f) = field {
            assert_eq!(v["field"], f, "{path} {body}: {v}");
        }
    }
    assert_eq!(s.count("members").await, 1);
}

on_both_databases!(the_admin_api_creates_reads_and_changes_members);

/// A pause asked for mid-period keeps the paid period, then holds the member for its
/// whole periods (no invoice, no visits) and resumes it; a paused member's cancellation
/// ends it at the end of the pause period it is in.
async fn a_pause_holds_whole_periods_then_resumes(backend: Backend) {
    let Some(s) = members_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let a = joined(&s, "cus_ana", "plus", "2026-10-16").await;
    // As POST /pause {"periods": 2} in October sets it: November and December off.
    set(&s, a, "paused_until = '2027-01'").await;
    let b = joined(&s, "cus_bo", "basic", "2026-10-16").await;
    set(&s, b, "paused_until = '2026-12'").await;
    renew(&s, "2026-11-01").await;
    for id in [a, b] {
        let m = s.state.store.member(id).await.unwrap().unwrap();
        assert_eq!(
            (m.status.as_str(), m.period.as_str(), visits_left(&m)),
            ("paused", "2026-11", Some(0))
        );
        assert_eq!(
            invoices_of(&s, id).await.len(),
            1,
            "no invoice while paused"
        );
    }
    // Bo cancels while paused: it ends with November.
    set(&s, b, "cancel_at_period_end = 1").await;
    renew(&s, "2027-01-05").await;
    let m = s.state.store.member(a).await.unwrap().unwrap();
    assert_eq!(
        (
            m.status.as_str(),
            m.period.as_str(),
            visits_left(&m),
            m.paused_until
        ),
        ("active", "2027-01", Some(4), None)
    );
    let periods: Vec<String> = invoices_of(&s, a).await.into_iter().map(|i| i.0).collect();
    assert_eq!(periods, ["2026-10", "2027-01"]);
    let m = s.state.store.member(b).await.unwrap().unwrap();
    assert_eq!(
        (m.status.as_str(), m.period.as_str()),
        ("cancelled", "2026-11")
    );
    assert_eq!(invoices_of(&s, b).await.len(), 1);
}

on_both_databases!(a_pause_holds_whole_periods_then_resumes);

/// MRR through the API over three months, against hand-computed values: joins, a plan
/// change, a cancellation and a pause that comes back.
async fn mrr_and_its_movements_match_the_hand_computed_months(backend: Backend) {
    use axum::http::{Method, StatusCode};
    let Some(s) = members_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let _ana = joined(&s, "cus_ana", "plus", "2026-10-16").await;
    let bo = joined(&s, "cus_bo", "basic", "2026-10-20").await;
    set(&s, bo, "pending_plan = 'premium'").await;
    let cy = joined(&s, "cus_cy", "plus", "2026-10-03").await;
    set(&s, cy, "cancel_at_period_end = 1").await;
    let di = joined(&s, "cus_di", "basic", "2026-10-05").await;
    set(&s, di, "paused_until = '2026-12'").await;
    renew(&s, "2026-12-02").await;

    let (st, v) = s
        .admin(
            Method::GET,
            "/api/admin/memberships/mrr?from=2026-10&to=2026-12",
            "",
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["currency"], "USD");
    let got: Vec<(String, i64, i64, i64, i64, i64, i64)> = v["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let n = |k: &str| m[k].as_i64().unwrap();
            (
                m["month"].as_str().unwrap().to_owned(),
                n("mrr_minor"),
                n("new_minor"),
                n("reactivated_minor"),
                n("expansion_minor"),
                n("contraction_minor"),
                n("churned_minor"),
            )
        })
        .collect();
    let row = |m: &str, a, b, c, d, e, f| (m.to_owned(), a, b, c, d, e, f);
    assert_eq!(
        got,
        [
            // October: four members join: 4900 + 2900 + 4900 + 2900.
            row("2026-10", 15_600, 15_600, 0, 0, 0, 0),
            // November: Bo is on Premium (+5000); Cy cancelled and Di paused (−7800).
            row("2026-11", 12_800, 0, 0, 5000, 0, 7800),
            // December: Di is back (+2900).
            row("2026-12", 15_700, 0, 2900, 0, 0, 0),
        ]
    );
    assert_eq!(v["months"][1]["churn_rate_bp"], 5000, "2 of 4");
    assert_eq!(v["months"][2]["members"], 3);
    assert_eq!(v["months"][2]["by_plan"]["premium"], 1);
    assert_eq!(v["months"][2]["arpm_minor"], 15_700 / 3);

    for (q, field) in [
        ("from=2026-12&to=2026-10", "from"),
        ("from=2016-01&to=2026-12", "from"),
        ("from=2026-13", "from"),
        ("to=0000-00", "to"),
    ] {
        let (st, e) = s
            .admin(Method::GET, &format!("/api/admin/memberships/mrr?{q}"), "")
            .await;
        assert_eq!(
            (st, &e["field"]),
            (StatusCode::UNPROCESSABLE_ENTITY, &field.into()),
            "{q}: {e}"
        );
    }
}

on_both_databases!(mrr_and_its_movements_match_the_hand_computed_months);

/// Visits are used one statement at a time: rolled-over ones first, never below zero,
/// and two replicas checking the same member in at once never take one visit twice.
async fn visits_are_used_rolled_first_and_never_below_zero(backend: Backend) {
    let Some(s) = members_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let st = &s.state;
    let plus = joined(&s, "cus_ana", "plus", "2026-10-16").await;
    set(&s, plus, "visits_used = 1").await; // three October visits left: they roll over
    renew(&s, "2026-11-01").await;
    let m = st.store.member(plus).await.unwrap().unwrap();
    assert_eq!(
        (m.period.as_str(), m.visits_rolled, m.visits_included),
        ("2026-11", 3, Some(4))
    );
    // The first use takes a rolled-over visit.
    let after = st
        .store
        .use_visit(plus, "2026-11", noon("2026-11-02"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((after.visits_rolled_used, after.visits_used), (1, 0));
    // Two replicas, 10 check-ins each, at once: 6 visits are left, 6 are used.
    let other = tapkit_server::store::Store::connect(&st.config.database_url)
        .await
        .unwrap();
    let tries = |store: tapkit_server::store::Store| async move {
        let mut ok = 0;
        for _ in 0..10 {
            if store
                .use_visit(plus, "2026-11", noon("2026-11-03"))
                .await
                .unwrap()
                .is_some()
            {
                ok += 1;
            }
        }
        ok
    };
    let (a, b) = tokio::join!(tries(st.store.clone()), tries(other));
    assert_eq!(a + b, 6, "{a} + {b}");
    let m = st.store.member(plus).await.unwrap().unwrap();
    assert_eq!((m.visits_rolled_used, m.visits_used), (3, 4));
    assert_eq!(tapkit_server::members::service::visits_left(&m), Some(0));
    // Another period's check-in, a paused or lapsed member: nothing is used.
    assert!(
        st.store
            .use_visit(plus, "2026-10", 0)
            .await
            .unwrap()
            .is_none()
    );
    let premium = joined(&s, "cus_bo", "premium", "2026-11-02").await;
    for _ in 0..5 {
        assert!(
            st.store
                .use_visit(premium, "2026-11", 0)
                .await
                .unwrap()
                .is_some()
        );
    }
    let m = st.store.member(premium).await.unwrap().unwrap();
    assert_eq!(
        (m.visits_included, m.visits_used),
        (None, 5),
        "unlimited: counted"
    );
    set(&s, premium, "status = 'lapsed'").await;
    assert!(
        st.store
            .use_visit(premium, "2026-11", 0)
            .await
            .unwrap()
            .is_none()
    );
}

on_both_databases!(visits_are_used_rolled_first_and_never_below_zero);

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
        (first.kind.as_str(), first.amount_minor, first.status.as_str()),
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
    assert_eq!(s.count("invoices").await, 1, "the loser's invoice rolled back");
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

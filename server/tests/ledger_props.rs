//! Property test of the ledger: random sequences of conversion events, duplicate
//! deliveries, review decisions, month closes and payouts, driven through the real
//! webhook and admin routes on a real SQLite database. After every step:
//! - every ledger transaction balances per unit;
//! - every partner's balance (minus its `partner_payable` account) equals its earned
//!   commissions minus its reversals (refunds, clawbacks) minus its payouts;
//! - nothing written earlier was updated or deleted (every earlier row is still there,
//!   unchanged), and no transaction landed in a period after it was closed.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;

use axum::http::Method;
use common::*;
use proptest::prelude::*;
use serde_json::json;
use sqlx::Row;
use tapkit_server::config::{Fraud, ProgramConfig};

#[derive(Debug, Clone)]
enum Step {
    Paid {
        booking: u8,
        affiliate: u8,
        amount: i64,
        month: u8,
    },
    Serviced {
        booking: u8,
        month: u8,
    },
    Refunded {
        booking: u8,
        month: u8,
    },
    Lead {
        user: u8,
        affiliate: u8,
        action: u8,
    },
    Redeliver,
    Review {
        approve: bool,
    },
    Close,
    MarkPaid {
        pick: u8,
    },
}

/// The program's largest amount per booking (the default).
const MAX_AMOUNT: i64 = tapkit_server::money::rules::DEFAULT_MAX_AMOUNT_MINOR;

/// Everyday amounts, and the extremes: the program's maximum and just under it (which
/// must earn and sum without overflow), just over it and `i64::MAX` (refused with 422).
fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 1..150_000i64,
        1 => (MAX_AMOUNT - 10)..=MAX_AMOUNT,
        1 => Just(MAX_AMOUNT + 1),
        1 => Just(i64::MAX),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..10u8, 0..4u8, amount(), 0..3u8).prop_map(|(booking, affiliate, amount, month)| Step::Paid { booking, affiliate, amount, month }),
        4 => (0..10u8, 0..3u8).prop_map(|(booking, month)| Step::Serviced { booking, month }),
        2 => (0..10u8, 0..4u8).prop_map(|(booking, month)| Step::Refunded { booking, month }),
        1 => (0..3u8, 0..4u8, 0..3u8).prop_map(|(user, affiliate, action)| Step::Lead { user, affiliate, action }),
        1 => Just(Step::Redeliver),
        1 => any::<bool>().prop_map(|approve| Step::Review { approve }),
        1 => Just(Step::Close),
        1 => any::<u8>().prop_map(|pick| Step::MarkPaid { pick }),
    ]
}

const SNAPSHOTS: [(&str, &str); 8] = [
    (
        "bookings",
        "booking_id, attribution, reason, click_id, affiliate_id, customer_id, stamped_at",
    ),
    (
        "conversion_events",
        "event_id, kind, booking_ref, occurred_at, amount_minor, outcome, reason",
    ),
    (
        "ledger_transactions",
        "period, kind, affiliate_id, booking_ref, memo, created_at",
    ),
    (
        "ledger_postings",
        "transaction_id, account, affiliate_id, unit, amount_minor",
    ),
    (
        "commissions",
        "booking_ref, affiliate_id, status, unit, amount_minor, month, payable_at, transaction_id, reason",
    ),
    (
        "payouts",
        "period, affiliate_id, unit, opening_minor, earned_minor, reversed_minor, issued_minor, held_minor, payout_minor, carried_minor, transaction_id",
    ),
    ("reviews", "booking_ref, reason, created_at"),
    ("ledger_periods", "period, closed_at"),
];

async fn snapshot(pool: &sqlx::AnyPool) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (table, cols) in SNAPSHOTS {
        let concat = cols
            .split(", ")
            .map(|c| format!("COALESCE(CAST({c} AS TEXT), '-')"))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let order = if table == "ledger_periods" {
            "period"
        } else {
            "id"
        };
        let rows = sqlx::query(&format!(
            "SELECT {concat} AS r FROM {table} ORDER BY {order}"
        ))
        .fetch_all(pool)
        .await
        .unwrap();
        out.insert(
            table.to_owned(),
            rows.iter()
                .map(|r| r.try_get::<String, _>("r").unwrap())
                .collect(),
        );
    }
    out
}

async fn check_invariants(s: &Server, pool: &sqlx::AnyPool, affiliates: &[i64]) {
    let ledger = s.state.store.ledger(1).await.unwrap();
    for t in &ledger {
        let (id, postings) = (t.id, &t.postings);
        let mut by_unit = BTreeMap::<&str, i64>::new();
        for p in postings {
            *by_unit.entry(p.unit.as_str()).or_default() += p.amount_minor;
        }
        assert!(
            by_unit.values().all(|v| *v == 0),
            "transaction {id} unbalanced: {by_unit:?}"
        );
        assert!(
            postings.len() >= 2,
            "transaction {id} has {} postings",
            postings.len()
        );
    }
    for a in affiliates {
        let owed: BTreeMap<String, i64> = s
            .state
            .store
            .owed(*a)
            .await
            .unwrap()
            .into_iter()
            .map(|o| (o.unit, o.amount_minor))
            .collect();
        let mut expected = BTreeMap::<String, i64>::new();
        let rows = sqlx::query(
            "SELECT unit, CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS v FROM commissions \
             WHERE affiliate_id = $1 AND transaction_id IS NOT NULL AND status IN ('earned', 'reversed') GROUP BY unit",
        )
        .bind(a)
        .fetch_all(pool)
        .await
        .unwrap();
        for r in rows {
            *expected.entry(r.try_get("unit").unwrap()).or_default() +=
                r.try_get::<i64, _>("v").unwrap();
        }
        let paid = sqlx::query(
            "SELECT unit, CAST(COALESCE(SUM(payout_minor), 0) AS BIGINT) AS v FROM payouts WHERE affiliate_id = $1 GROUP BY unit",
        )
        .bind(a)
        .fetch_all(pool)
        .await
        .unwrap();
        for r in paid {
            *expected.entry(r.try_get("unit").unwrap()).or_default() -=
                r.try_get::<i64, _>("v").unwrap();
        }
        expected.retain(|_, v| *v != 0);
        let owed: BTreeMap<String, i64> = owed.into_iter().filter(|(_, v)| *v != 0).collect();
        assert_eq!(
            owed, expected,
            "affiliate {a}: ledger balance vs commissions - payouts"
        );
    }
    // No transaction in a period after its close.
    let late: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM ledger_transactions t JOIN ledger_periods p \
         ON p.program_id = t.program_id AND p.period = t.period WHERE t.created_at > p.closed_at",
    )
    .fetch_one(pool)
    .await
    .unwrap()
    .try_get("n")
    .unwrap();
    assert_eq!(late, 0, "a transaction landed in a closed period");
}

async fn run(backend: Backend, steps: Vec<Step>) {
    let program = ProgramConfig {
        fraud: Fraud {
            review_every: 3,
            max_per_ip_per_day: 0,
            max_per_email_domain_per_day: 0,
            ..Fraud::default()
        },
        commission: toml::from_str(
            r#"
            currency = "USD"
            holding_days = 10
            minimum_payout_minor = 1500
            tiers = [{ name = "bronze", min_referrals = 1 }, { name = "silver", min_referrals = 3 }]
            [[rules]]
            on = "booking"
            affiliate_kind = "business"
            tier = "silver"
            rewards = [{ unit = "cash", percent_bp = 1250, cap_minor = 9000 }, { unit = "voucher", voucher = "thanks" }]
            [[rules]]
            on = "booking"
            affiliate_kind = "business"
            rewards = [{ unit = "cash", percent_bp = 1000, cap_minor = 5000 }]
            [[rules]]
            on = "booking"
            affiliate_kind = "influencer"
            rewards = [{ unit = "cash", percent_bp = 10000 }]
            [[rules]]
            on = "booking"
            rewards = [{ unit = "credit", fixed_minor = 1000 }]
            [[rules]]
            on = "lead"
            rewards = [{ unit = "credit", fixed_minor = 300 }]
            "#,
        )
        .unwrap(),
        ..ProgramConfig::default()
    };
    let Some(s) = server_with(backend, program).await else {
        return; // no PostgreSQL here, and not required
    };
    let pool = s.pool().await;
    let mut affs = Vec::new();
    for (name, kind) in [
        ("B1", "business"),
        ("B2", "business"),
        ("I1", "influencer"),
        ("C1", "customer"),
    ] {
        affs.push(s.affiliate(name, kind).await);
    }
    let ids: Vec<i64> = affs.iter().map(|a| a.0).collect();
    // Months M-3 .. M-1 (ended) and M (open); events happen in M-3 .. M-1.
    let (_, prev_start, _) = months();
    let mut starts = vec![prev_start];
    for _ in 0..2 {
        let (s0, _) =
            tapkit_core::date::parse_month(&tapkit_core::date::month_of_ms(starts[0] - 1)).unwrap();
        starts.insert(0, s0);
    }
    let mut closable: Vec<String> = starts
        .iter()
        .map(|s| tapkit_core::date::month_of_ms(*s))
        .collect();
    let mut last_event: Option<serde_json::Value> = None;
    let mut before = snapshot(&pool).await;
    let day = 86_400_000;
    for (n, st) in steps.into_iter().enumerate() {
        let at = |month: u8| {
            starts[usize::from(month.min(2))] + (n as i64 % 25 + 1) * day + n as i64 * 1000
        };
        match st {
            Step::Paid {
                booking,
                affiliate,
                amount,
                month,
            } => {
                let a = &affs[usize::from(affiliate)];
                let t = s
                    .click_at(a.0, &a.1, at(month) - 60_000, &format!("ip{n}"))
                    .await;
                let mut e = event("booking_paid", &format!("bk{booking}"), at(month), Some(&t));
                e["amount_minor"] = json!(amount);
                if amount > MAX_AMOUNT {
                    let body = e.to_string();
                    let sig = tapkit_server::money::wire::sign(
                        body.as_bytes(),
                        WEBHOOK,
                        tapkit_server::store::now_ms() / 1000,
                    );
                    let (st, v) = s.deliver_raw(&body, Some(sig)).await;
                    assert_eq!(st.as_u16(), 422, "{e} → {v}");
                    assert_eq!(v["field"], "amount_minor", "{v}");
                } else {
                    last_event = Some(s.post_event(e).await);
                }
            }
            Step::Serviced { booking, month } => {
                last_event = Some(
                    s.post_event(event(
                        "booking_serviced",
                        &format!("bk{booking}"),
                        at(month),
                        None,
                    ))
                    .await,
                );
            }
            Step::Refunded { booking, month } => {
                let when = if month == 3 {
                    tapkit_server::store::now_ms()
                } else {
                    at(month)
                };
                last_event = Some(
                    s.post_event(event(
                        "booking_refunded",
                        &format!("bk{booking}"),
                        when,
                        None,
                    ))
                    .await,
                );
            }
            Step::Lead {
                user,
                affiliate,
                action,
            } => {
                let a = &affs[usize::from(affiliate)];
                let t = s
                    .click_at(a.0, &a.1, at(0) - 60_000, &format!("ip{n}"))
                    .await;
                let mut e = event("lead", &format!("user{user}"), at(0), Some(&t));
                e["action"] = json!(["signup", "quote", "newsletter"][usize::from(action)]);
                last_event = Some(s.post_event(e).await);
            }
            Step::Redeliver => {
                if let Some(e) = &last_event {
                    let v = s.deliver(e.clone()).await;
                    assert_eq!(v["status"], "duplicate", "{v}");
                }
            }
            Step::Review { approve } => {
                let (_, open) = s.admin(Method::GET, "/api/admin/reviews", "").await;
                if let Some(r) = open.as_array().unwrap().first() {
                    let verb = if approve { "approve" } else { "reject" };
                    let (st, v) = s
                        .admin(
                            Method::POST,
                            &format!("/api/admin/reviews/{}/{verb}", r["id"]),
                            "",
                        )
                        .await;
                    assert!(st.is_success(), "{v}");
                }
            }
            Step::Close => {
                if !closable.is_empty() {
                    let p = closable.remove(0);
                    let (st, v) = s
                        .admin(Method::POST, &format!("/api/admin/periods/{p}/close"), "")
                        .await;
                    assert!(st.is_success(), "close {p}: {v}");
                }
            }
            Step::MarkPaid { pick } => {
                let rows = sqlx::query("SELECT id FROM payouts WHERE payout_minor > 0 AND id NOT IN (SELECT payout_id FROM payout_payments) ORDER BY id")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                if !rows.is_empty() {
                    let id: i64 = rows[usize::from(pick) % rows.len()].try_get("id").unwrap();
                    let (st, v) = s
                        .admin(Method::POST, &format!("/api/admin/payouts/{id}/paid"), "")
                        .await;
                    assert!(st.is_success(), "{v}");
                }
            }
        }
        check_invariants(&s, &pool, &ids).await;
        // Whatever the amounts, each partner's earnings and each closed month's report
        // answer (no overflow in any sum).
        for a in &ids {
            let (st, v) = s
                .admin(
                    Method::GET,
                    &format!("/api/admin/affiliates/{a}/earnings"),
                    "",
                )
                .await;
            assert!(st.is_success(), "earnings of {a}: {v}");
        }
        for p in starts.iter().map(|s| tapkit_core::date::month_of_ms(*s)) {
            if !closable.contains(&p) {
                let (st, _) = s
                    .admin_bytes(&format!("/api/admin/periods/{p}/payouts.csv"))
                    .await;
                assert!(st.is_success(), "payout CSV of {p}: {st}");
            }
        }
        let after = snapshot(&pool).await;
        for (table, old) in &before {
            let new = &after[table];
            assert!(
                new.len() >= old.len() && new[..old.len()] == old[..],
                "{table}: an earlier row was changed or deleted"
            );
        }
        before = after;
    }
}

impl Server {
    async fn post_event(&self, e: serde_json::Value) -> serde_json::Value {
        // A second event of the same kind for a booking is a duplicate by design.
        let v = self.deliver(e.clone()).await;
        assert!(
            v["status"] == "processed" || v["status"] == "duplicate",
            "{e} → {v}"
        );
        e
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn the_ledger_balances_and_never_forgets(steps in proptest::collection::vec(step(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(Backend::Sqlite, steps));
    }
}

proptest! {
    // Fewer cases: each one creates a PostgreSQL database of its own.
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]
    #[test]
    fn the_ledger_balances_and_never_forgets_on_postgres(steps in proptest::collection::vec(step(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(Backend::Postgres, steps));
    }
}

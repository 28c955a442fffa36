//! Property test of memberships: random lifecycles of a few members (joining, with or
//! without a partner; upgrades and downgrades; pauses; cancellations; check-ins; paid,
//! failed and refunded invoices; days passing and month-end renewals) through the real
//! services and store, on a real database. After every step:
//! - every ledger transaction balances per unit, and `cash` holds exactly the invoices
//!   that are paid (a refund takes its money back out, nothing else moves it);
//! - each partner's balance equals its membership commissions earned minus clawed back,
//!   and no invoice earns twice;
//! - one first-or-renewal invoice per member and period, and no negative amount;
//! - visits never go below zero nor above the allowance, and every check-in the store
//!   accepted is counted in the member's period: none is lost, none made up.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use sqlx::Row;
use tapkit_core::date::parse_date;
use tapkit_server::config::ProgramConfig;
use tapkit_server::members::billing::Period;
use tapkit_server::members::service::{Join, MemberError, visits_left};
use tapkit_server::members::{charges, payments, renewal, service};
use tapkit_server::money::rules::Commission;

const CUSTOMERS: u8 = 3;
const PLANS: [&str; 3] = ["basic", "plus", "premium"];

#[derive(Debug, Clone)]
enum Step {
    Join { c: u8, plan: u8, partner: bool },
    Plan { c: u8, plan: u8 },
    Pause { c: u8, periods: i64 },
    Cancel { c: u8 },
    Visit { c: u8, times: u8 },
    Pay { c: u8 },
    Fail { c: u8 },
    Refund { c: u8 },
    Days { n: i64 },
    NextMonth,
}

fn step() -> impl Strategy<Value = Step> {
    let c = 0..CUSTOMERS;
    prop_oneof![
        3 => (c.clone(), 0..3u8, any::<bool>()).prop_map(|(c, plan, partner)| Step::Join { c, plan, partner }),
        2 => (c.clone(), 0..3u8).prop_map(|(c, plan)| Step::Plan { c, plan }),
        1 => (c.clone(), 1..3i64).prop_map(|(c, periods)| Step::Pause { c, periods }),
        1 => c.clone().prop_map(|c| Step::Cancel { c }),
        4 => (c.clone(), 1..5u8).prop_map(|(c, times)| Step::Visit { c, times }),
        3 => c.clone().prop_map(|c| Step::Pay { c }),
        2 => c.clone().prop_map(|c| Step::Fail { c }),
        1 => c.clone().prop_map(|c| Step::Refund { c }),
        2 => (1..12i64).prop_map(|n| Step::Days { n }),
        2 => Just(Step::NextMonth),
    ]
}

/// Partners earn 10 % of a member's first two paid months.
const RULES: &str = r#"
currency = "USD"
[[rules]]
on = "membership"
months = 2
rewards = [{ unit = "cash", percent_bp = 1000 }]
"#;

const DAY: i64 = 86_400_000;

async fn props_server(backend: Backend) -> Option<Server> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tapkit.sample.toml");
    let membership = tapkit_server::config::load(Some(&path))
        .unwrap()
        .program
        .membership;
    let commission: Commission = toml::from_str(RULES).unwrap();
    commission.validate().unwrap();
    server_with(
        backend,
        ProgramConfig {
            fraud: quiet_fraud(),
            membership,
            commission,
            ..ProgramConfig::default()
        },
    )
    .await
}

/// A refusal a lifecycle may meet (a state that does not allow the step); anything
/// else, a store failure above all, fails the test.
fn refused(r: Result<impl std::fmt::Debug, MemberError>, what: &str) {
    match r {
        Ok(_)
        | Err(MemberError::Conflict(_) | MemberError::Invalid { .. } | MemberError::NotFound) => {}
        Err(MemberError::Store(tapkit_server::store::StoreError::AlreadyMember { .. })) => {}
        Err(e) => panic!("{what}: {e:?}"),
    }
}

async fn one(pool: &sqlx::AnyPool, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(pool)
        .await
        .unwrap()
        .try_get::<i64, _>("v")
        .unwrap()
}

async fn check(
    s: &Server,
    pool: &sqlx::AnyPool,
    partner: i64,
    checked_in: &BTreeMap<i64, (String, i64)>,
) {
    let st = &s.state;
    for t in st.store.ledger(st.program.id).await.unwrap() {
        let mut by_unit = BTreeMap::<&str, i64>::new();
        for p in &t.postings {
            *by_unit.entry(p.unit.as_str()).or_default() += p.amount_minor;
        }
        assert!(
            by_unit.values().all(|v| *v == 0),
            "transaction {} unbalanced: {by_unit:?}",
            t.id
        );
    }
    let cash = one(
        pool,
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS v FROM ledger_postings WHERE account = 'cash'",
    )
    .await;
    let paid = one(
        pool,
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS v FROM invoices WHERE status = 'paid'",
    )
    .await;
    assert_eq!(cash, paid, "cash on the ledger vs paid invoices");
    let revenue = one(
        pool,
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS v FROM ledger_postings WHERE account = 'membership_revenue'",
    )
    .await;
    assert_eq!(revenue, -paid, "membership revenue vs paid invoices");
    // The partner's balance: commissions earned minus clawed back (a `reversed` line
    // holds the negative amount).
    let owed: i64 = st
        .store
        .owed(partner)
        .await
        .unwrap()
        .iter()
        .map(|o| o.amount_minor)
        .sum();
    let earned = one(
        pool,
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS v FROM member_commissions",
    )
    .await;
    assert_eq!(owed, earned, "partner balance vs membership commissions");
    // A commission is earned only on a paid (or since refunded) invoice, and clawed back
    // only after a refund.
    let stray = one(
        pool,
        "SELECT COUNT(*) AS v FROM member_commissions c JOIN invoices i ON i.id = c.invoice_id \
         WHERE (c.status = 'earned' AND i.status NOT IN ('paid', 'refunded')) \
         OR (c.status = 'reversed' AND i.status <> 'refunded')",
    )
    .await;
    assert_eq!(stray, 0, "a commission that does not match its invoice");
    let twice = one(
        pool,
        "SELECT COUNT(*) AS v FROM (SELECT member_id, period FROM invoices \
         WHERE kind IN ('first', 'renewal') GROUP BY member_id, period HAVING COUNT(*) > 1) d",
    )
    .await;
    assert_eq!(twice, 0, "a member billed twice for one period");
    let negative = one(
        pool,
        "SELECT COUNT(*) AS v FROM invoices WHERE amount_minor < 0",
    )
    .await;
    assert_eq!(negative, 0, "a negative invoice");
    for m in st.store.members(st.program.id, 100).await.unwrap() {
        assert!(m.visits_used >= 0 && m.visits_rolled_used >= 0, "{m:?}");
        assert!(m.visits_rolled_used <= m.visits_rolled, "{m:?}");
        if let Some(n) = m.visits_included {
            assert!(m.visits_used <= n, "{m:?}");
        }
        assert!(visits_left(&m).is_none_or(|v| v >= 0), "{m:?}");
        let counted = match checked_in.get(&m.id) {
            Some((period, n)) if *period == m.period => *n,
            _ => 0,
        };
        assert_eq!(
            m.visits_used + m.visits_rolled_used,
            counted,
            "check-ins of member {} in {}: {m:?}",
            m.id,
            m.period
        );
    }
}

async fn run(backend: Backend, steps: Vec<Step>) {
    let Some(s) = props_server(backend).await else {
        return; // no PostgreSQL here, and not required
    };
    let pool = s.pool().await;
    let (partner, _) = s.affiliate("Gym", "business").await;
    let st = &s.state;
    let cfg = &st.config.program.membership;
    let rules = &st.config.program.commission;
    let pid = st.program.id;
    // The clock: noon on 10 October 2026, moved by the steps.
    let mut now = parse_date("2026-10-10").unwrap() * DAY + 12 * 3_600_000;
    // Each customer's latest member, and the check-ins the store accepted per member
    // and period.
    let mut member_of: BTreeMap<u8, i64> = BTreeMap::new();
    let mut checked_in: BTreeMap<i64, (String, i64)> = BTreeMap::new();
    for step in steps {
        let member = |c: u8| member_of.get(&c).copied();
        match step {
            Step::Join {
                c,
                plan,
                partner: brought,
            } => {
                let customer = format!("cus_{c}");
                let r = service::join(
                    &st.store,
                    cfg,
                    pid,
                    "USD",
                    &Join {
                        customer_id: &customer,
                        email: &format!("{customer}@example.com"),
                        plan: PLANS[usize::from(plan)],
                        affiliate_id: brought.then_some(partner),
                        first_name: None,
                    },
                    now,
                )
                .await;
                if let Ok((m, _)) = &r {
                    member_of.insert(c, m.id);
                }
                refused(r, "join");
            }
            Step::Plan { c, plan } => {
                if let Some(id) = member(c) {
                    let r = service::change_plan(
                        &st.store,
                        cfg,
                        "USD",
                        id,
                        PLANS[usize::from(plan)],
                        now,
                    )
                    .await;
                    refused(r, "plan");
                }
            }
            Step::Pause { c, periods } => {
                if let Some(id) = member(c) {
                    refused(service::pause(&st.store, id, periods, now).await, "pause");
                }
            }
            Step::Cancel { c } => {
                if let Some(id) = member(c) {
                    refused(service::cancel(&st.store, id, now).await, "cancel");
                }
            }
            Step::Visit { c, times } => {
                let Some(id) = member(c) else { continue };
                for _ in 0..times {
                    let before = st.store.member(id).await.unwrap().unwrap();
                    let used = st.store.use_visit(id, &before.period, now).await.unwrap();
                    let billed = matches!(before.status.as_str(), "active" | "past_due");
                    let had = billed && visits_left(&before).is_none_or(|v| v > 0);
                    assert_eq!(used.is_some(), had, "a visit for {before:?}");
                    if used.is_some() {
                        let e = checked_in.entry(id).or_insert((before.period.clone(), 0));
                        if e.0 != before.period {
                            *e = (before.period.clone(), 0);
                        }
                        e.1 += 1;
                    }
                }
            }
            Step::Pay { c } | Step::Fail { c } | Step::Refund { c } => {
                let Some(id) = member(c) else { continue };
                let invoices = st.store.member_invoices(id, false).await.unwrap();
                match step {
                    Step::Pay { .. } => {
                        if let Some(inv) = invoices
                            .iter()
                            .find(|i| matches!(i.status.as_str(), "open" | "failed"))
                        {
                            let r =
                                payments::settle(&st.store, rules, pid, inv.id, Some("pay_1"), now)
                                    .await;
                            refused(r, "settle");
                        }
                    }
                    Step::Fail { .. } => {
                        let m = st.store.member(id).await.unwrap().unwrap();
                        let inv = invoices
                            .iter()
                            .find(|i| matches!(i.status.as_str(), "open" | "failed"));
                        if let (Some(inv), "active" | "past_due") = (inv, m.status.as_str()) {
                            let booked = charges::book_failure(st, inv, &m, "card_declined", now)
                                .await
                                .unwrap();
                            assert!(booked.recorded, "nothing else raced this failure");
                        }
                    }
                    _ => {
                        if let Some(inv) = invoices.iter().rev().find(|i| i.status == "paid") {
                            refused(
                                payments::refund(&st.store, pid, inv.id, now).await,
                                "refund",
                            );
                        }
                    }
                }
            }
            Step::Days { n } => {
                // Within the month: the month's end is the next step's business.
                let day = now.div_euclid(DAY);
                let last = Period::of_day(day).next().first_day() - 1;
                now += (day + n).min(last).saturating_sub(day) * DAY;
            }
            Step::NextMonth => {
                let next = Period::of_day(now.div_euclid(DAY)).next().first_day();
                now = next * DAY + 3_600_000;
                renewal::run(&st.store, cfg, pid, "USD", now).await.unwrap();
                // A second run (another replica, a restart) changes nothing.
                let again = renewal::run(&st.store, cfg, pid, "USD", now).await.unwrap();
                assert_eq!(again.invoiced, 0, "{again:?}");
            }
        }
        check(&s, &pool, partner, &checked_in).await;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    #[test]
    fn memberships_keep_the_ledger_balanced_and_visits_counted(steps in proptest::collection::vec(step(), 1..50)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(Backend::Sqlite, steps));
    }
}

proptest! {
    // Fewer cases: each one creates a PostgreSQL database of its own.
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]
    #[test]
    fn memberships_keep_the_ledger_balanced_and_visits_counted_on_postgres(steps in proptest::collection::vec(step(), 1..50)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(Backend::Postgres, steps));
    }
}

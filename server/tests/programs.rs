//! The example programs of `server/programs/` (the reward tables of
//! `shared/docs/reward-programs.md`), each loaded from its file and driven with
//! conversions through the real webhook; the amounts are checked by hand.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::json;

fn one(unit: &str, v: i64) -> Vec<(String, i64)> {
    vec![(unit.to_owned(), v)]
}

async fn program_a_pays_partners_tiered_percentages_and_influencers_a_flat_fee(backend: Backend) {
    let Some(s) = program_server_on(backend, "detailing.toml").await else {
        return; // no PostgreSQL here, and not required
    };
    let gym = s.affiliate("Iron Gym", "business").await;
    let gym = (gym.0, gym.1.as_str());
    // 400.00 bookings: 10 % ×2 (bronze), 12 % ×2 (silver), then 15 % (gold).
    let mut got = Vec::new();
    for (i, booking) in ["a1", "a2", "a3", "a4", "a5"].iter().enumerate() {
        let v = s
            .booking(gym, booking, 40_000, 1 + i as i64, &format!("c-{booking}"))
            .await;
        assert_eq!(v["outcome"], "earned", "{v}");
        got.push(amounts(&v)[0].1);
    }
    assert_eq!(got, vec![4000, 4000, 4800, 4800, 6000]);
    // Caps: gold at most 75.00.
    let v = s.booking(gym, "a6", 90_000, 6, "c-a6").await;
    assert_eq!(amounts(&v), one("USD", 7500));
    // A partner pinned to gold gets 15 % from its first booking.
    let dealer = s.affiliate("Main St Cars", "business").await;
    let (st, _) = s
        .admin(
            Method::PATCH,
            &format!("/api/admin/affiliates/{}", dealer.0),
            r#"{"tier":"gold"}"#,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let v = s
        .booking((dealer.0, &dealer.1), "a7", 20_000, 2, "c-a7")
        .await;
    assert_eq!(amounts(&v), one("USD", 3000));
    // Influencers: a flat 25.00.
    let inf = s.affiliate("Dana Drives", "influencer").await;
    let v = s.booking((inf.0, &inf.1), "a8", 55_500, 3, "c-a8").await;
    assert_eq!(amounts(&v), one("USD", 2500));
    // Paid only (on hold for service): pending, nothing owed.
    let (_, start, _) = months();
    let t = s
        .click_at(inf.0, &inf.1, start + 4 * 86_400_000, "ip-a9")
        .await;
    let v = s
        .deliver(event(
            "booking_paid",
            "a9",
            start + 4 * 86_400_000 + 5000,
            Some(&t),
        ))
        .await;
    assert_eq!(v["outcome"], "pending");
    assert_eq!(s.owed(inf.0).await, one("USD", 2500));
    // The 48-hour window: a click 3 days before the booking attributes nothing.
    let t = s
        .click_at(inf.0, &inf.1, start + 86_400_000, "ip-a10")
        .await;
    let v = s
        .deliver(event(
            "booking_paid",
            "a10",
            start + 4 * 86_400_000,
            Some(&t),
        ))
        .await;
    assert_eq!(v["reason"], "attribution_expired");
}

async fn program_a_members_variant_pays_a_flat_fee_per_member_booking(backend: Backend) {
    let Some(s) = program_server_on(backend, "detailing-members.toml").await else {
        return; // no PostgreSQL here, and not required
    };
    let gym = s.affiliate("Iron Gym", "business").await;
    for (i, amount) in [10_000, 80_000, 250_000].iter().enumerate() {
        let v = s
            .booking(
                (gym.0, &gym.1),
                &format!("m{i}"),
                *amount,
                1 + i as i64,
                &format!("c{i}"),
            )
            .await;
        assert_eq!(amounts(&v), one("USD", 3000), "{v}");
    }
}

async fn program_b_rewards_customers_with_vouchers_and_partners_with_cash_by_tier(
    backend: Backend,
) {
    let Some(s) = program_server_on(backend, "salon.toml").await else {
        return; // no PostgreSQL here, and not required
    };
    let carla = s.affiliate("Carla", "customer").await;
    let mut got = Vec::new();
    for i in 1..=5 {
        let v = s
            .booking(
                (carla.0, &carla.1),
                &format!("b-c{i}"),
                8_000,
                i,
                &format!("client-{i}"),
            )
            .await;
        got.push(amounts(&v));
    }
    let v = |name: &str| (format!("voucher:{name}"), 1);
    assert_eq!(
        got,
        vec![
            vec![v("10pct-off-next-service")],
            vec![v("10pct-off-next-service")],
            vec![v("free-basic-service")],
            vec![v("free-basic-service")],
            vec![v("free-premium-service"), ("credit:USD".into(), 2500)],
        ]
    );
    // Rewards credit on a referred client's FIRST service only.
    let again = s
        .booking((carla.0, &carla.1), "b-c6", 8_000, 8, "client-1")
        .await;
    assert_eq!(
        (again["outcome"].as_str(), amounts(&again)),
        (Some("no_commission"), vec![])
    );

    let spa = s.affiliate("Lotus Spa", "business").await;
    let mut cash = Vec::new();
    for i in 1..=5 {
        let v = s
            .booking(
                (spa.0, &spa.1),
                &format!("b-p{i}"),
                8_000,
                i,
                &format!("spa-client-{i}"),
            )
            .await;
        cash.push(amounts(&v));
    }
    assert_eq!(cash[0], one("USD", 1500));
    assert_eq!(cash[2], one("USD", 4000));
    assert_eq!(cash[4], vec![("USD".into(), 7500), v("featured-listing")]);
    // A partner on the hybrid plan: cash and cross-referral credit per referral.
    let barber = s.affiliate("Fade Barbers", "business").await;
    s.admin(
        Method::PATCH,
        &format!("/api/admin/affiliates/{}", barber.0),
        r#"{"tier":"hybrid"}"#,
    )
    .await;
    let h = s
        .booking((barber.0, &barber.1), "b-h1", 8_000, 2, "barber-client")
        .await;
    assert_eq!(
        amounts(&h),
        vec![("USD".into(), 1500), ("credit:USD".into(), 1500)]
    );
    // Each unit is its own balance, issued to Carla as rewards the moment each was
    // earned ([program.rewards]), so month close owes her nothing more.
    let mut held = std::collections::BTreeMap::<String, i64>::new();
    for (r, _) in s.state.store.rewards_of(carla.0, 100).await.unwrap() {
        *held.entry(r.unit).or_default() += r.balance;
    }
    assert_eq!(
        held.into_iter().collect::<Vec<_>>(),
        vec![
            ("credit:USD".into(), 2500),
            ("voucher:10pct-off-next-service".into(), 2),
            ("voucher:free-basic-service".into(), 2),
            ("voucher:free-premium-service".into(), 1),
        ]
    );
    assert!(s.owed(carla.0).await.iter().all(|(_, n)| *n == 0));
    // Too fast: a conversion 1 s after its click is rejected.
    let (_, start, _) = months();
    let t = s.click_at(spa.0, &spa.1, start, "ip-fast").await;
    let mut e = event("booking_paid", "b-fast", start + 1000, Some(&t));
    e["customer_id"] = json!("fast-client");
    assert_eq!(s.deliver(e).await["reason"], "too_fast_after_click");
}

async fn program_c_pays_platform_credit_per_step_and_ten_percent_of_the_first_purchase(
    backend: Backend,
) {
    let Some(s) = program_server_on(backend, "platform.toml").await else {
        return; // no PostgreSQL here, and not required
    };
    let owner = s.affiliate("Olga Owner", "customer").await;
    let (_, start, _) = months();
    let t = s.click_at(owner.0, &owner.1, start, "ip-c").await;
    let mut credited = Vec::new();
    for (i, action) in ["account_created", "browsed_listings", "newsletter", "rfq"]
        .iter()
        .enumerate()
    {
        let mut e = event("lead", "user-77", start + (i as i64 + 1) * 60_000, Some(&t));
        e["action"] = json!(action);
        e["customer_id"] = json!("user-77");
        let v = s.deliver(e).await;
        assert_eq!(v["outcome"], "earned", "{v}");
        credited.push(amounts(&v)[0].1);
    }
    assert_eq!(credited, vec![500, 1000, 2500, 5000]);
    // The first purchase: 10 % of 4,000.00 is capped at 250.00; a second pays nothing.
    let mut p = event("purchase", "order-1", start + 3_600_000, Some(&t));
    p["amount_minor"] = json!(400_000);
    p["customer_id"] = json!("user-77");
    let v = s.deliver(p).await;
    assert_eq!(amounts(&v), one("credit:USD", 25_000), "{v}");
    let mut p = event("purchase", "order-2", start + 7_200_000, Some(&t));
    p["amount_minor"] = json!(10_000);
    p["customer_id"] = json!("user-77");
    assert_eq!(s.deliver(p).await["outcome"], "no_commission");
    // The credit comes out of the program's credit pool, in its own unit.
    assert_eq!(s.owed(owner.0).await, one("credit:USD", 34_000));
    let pool: i64 = s
        .state
        .store
        .ledger(1)
        .await
        .unwrap()
        .iter()
        .flat_map(|t| t.postings.iter())
        .filter(|p| p.account == "credit_pool")
        .map(|p| p.amount_minor)
        .sum();
    assert_eq!(pool, 34_000);
}

async fn program_a_holds_commissions_inside_the_holding_period_at_month_close(backend: Backend) {
    let Some(s) = program_server_on(backend, "detailing.toml").await else {
        return; // no PostgreSQL here, and not required
    };
    let gym = s.affiliate("Iron Gym", "business").await;
    let (prev, _, _) = months();
    // Serviced on day 1: payable 14 days later, inside the month. Serviced on the
    // month's last days: still held at the close.
    let early = s.booking((gym.0, &gym.1), "h1", 50_000, 1, "h-c1").await;
    assert_eq!(amounts(&early), one("USD", 5000));
    let days_in_month = {
        let (a, b) = tapkit_core::date::parse_month(&prev).unwrap();
        (b - a) / 86_400_000
    };
    let late = s
        .booking((gym.0, &gym.1), "h2", 20_000, days_in_month - 2, "h-c2")
        .await;
    assert_eq!(amounts(&late), one("USD", 2000));
    let (st, r) = s
        .admin(
            Method::POST,
            &format!("/api/admin/periods/{prev}/close"),
            "",
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let line = &r["lines"][0];
    assert_eq!(
        (
            line["earned_minor"].as_i64(),
            line["held_minor"].as_i64(),
            line["payout_minor"].as_i64(),
            line["carried_minor"].as_i64()
        ),
        (Some(7000), Some(2000), Some(5000), Some(2000)),
        "{r}"
    );
}

on_both_databases!(
    program_a_pays_partners_tiered_percentages_and_influencers_a_flat_fee,
    program_a_members_variant_pays_a_flat_fee_per_member_booking,
    program_b_rewards_customers_with_vouchers_and_partners_with_cash_by_tier,
    program_c_pays_platform_credit_per_step_and_ten_percent_of_the_first_purchase,
    program_a_holds_commissions_inside_the_holding_period_at_month_close,
);

/// The sample config ships the three membership plans of issue 19, and the server
/// refuses to start on a plan table it could not bill, naming the plan's key.
#[test]
fn the_sample_program_sells_three_plans_and_bad_plans_stop_start_up() {
    use tapkit_server::members::plans::{Priority, Visits};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tapkit.sample.toml");
    let c = tapkit_server::config::load(Some(&path)).unwrap();
    let m = &c.program.membership;
    let plans: Vec<(&str, i64, Visits, i64, Priority)> = m
        .plans
        .iter()
        .map(|p| {
            (
                p.id.as_str(),
                p.price_minor,
                p.visits,
                p.add_on_discount_bp,
                p.priority,
            )
        })
        .collect();
    assert_eq!(
        plans,
        [
            ("basic", 2900, Visits::Limited(2), 1000, Priority::Standard),
            ("plus", 4900, Visits::Limited(4), 1500, Priority::High),
            ("premium", 7900, Visits::Unlimited, 2000, Priority::Instant),
        ]
    );
    assert_eq!(
        (m.retry_days.as_slice(), m.grace_days),
        (&[3, 7, 14][..], 7)
    );

    let sample = std::fs::read_to_string(&path).unwrap();
    let dir = std::env::temp_dir().join(format!("tapkit-plans-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (from, to, expect) in [
        (
            "id = \"plus\"",
            "id = \"basic\"",
            "plans[1].id \"basic\" is used by two plans",
        ),
        ("visits = 4", "visits = -4", "visits must be a whole number"),
        (
            "price_minor = 7900",
            "price_minor = 0",
            "plans[2].price_minor 0",
        ),
    ] {
        assert!(sample.contains(from), "{from}");
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, sample.replacen(from, to, 1)).unwrap();
        let err = tapkit_server::config::load(Some(&bad)).unwrap_err();
        assert!(err.contains(expect), "{to}: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

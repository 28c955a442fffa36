//! The membership renewal run's benchmark (issue 19: 100,000 members renew in under
//! 10 s on SQLite; results in BENCHMARKS.md, run by scripts/bench-renewal.sh):
//! `--members` live members of the sample config's three plans, all in October 2026,
//! seeded in bulk (not what is measured), then the time of the renewal run on
//! 1 November (one renewal invoice and the new period's visits each, one transaction),
//! and of a second run, which must find nothing to do.
//!
//!   cargo run --release -p tapkit-server --example bench_renewal -- \
//!       --database-url sqlite:///tmp/r.db [--members 100000]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: failing loudly is right

use std::time::Instant;

use tapkit_server::members::renewal;
use tapkit_server::store::Store;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
async fn main() {
    let url = arg("--database-url", "");
    assert!(
        !url.is_empty(),
        "--database-url sqlite:///PATH or postgres://…"
    );
    let members: i64 = arg("--members", "100000").parse().expect("--members N");
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tapkit.sample.toml");
    let config = tapkit_server::config::load(Some(&sample)).expect("the sample config");
    let store = Store::connect(&url).await.expect("the database");
    let program = store
        .ensure_program(&config.program_row())
        .await
        .expect("the program");
    // Seeding goes around the store (it has no bulk insert, and needs none).
    let pool = sqlx::AnyPool::connect(&url)
        .await
        .expect("a seeding connection");
    let t = Instant::now();
    sqlx::query(
        "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO members (program_id, customer_id, email, plan, period, visits_included, \
         visits_used, created_at, updated_at) \
         SELECT $2, 'cus_' || i, 'm' || i || '@example.com', \
         CASE i % 3 WHEN 0 THEN 'basic' WHEN 1 THEN 'plus' ELSE 'premium' END, '2026-10', \
         CASE i % 3 WHEN 0 THEN 2 WHEN 1 THEN 4 ELSE NULL END, i % 2, 0, 0 FROM n",
    )
    .bind(members)
    .bind(program.id)
    .execute(&pool)
    .await
    .expect("seeding members");
    eprintln!(
        "seeded {members} members in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let nov_1 = tapkit_core::date::parse_date("2026-11-01").unwrap() * 86_400_000 + 3_600_000;
    let m = &config.program.membership;
    let t = Instant::now();
    let r = renewal::run(&store, m, program.id, "USD", nov_1)
        .await
        .unwrap();
    let first = t.elapsed().as_secs_f64();
    assert_eq!(r.invoiced, members as u64, "{r:?}");
    let t = Instant::now();
    let again = renewal::run(&store, m, program.id, "USD", nov_1)
        .await
        .unwrap();
    let second = t.elapsed().as_secs_f64();
    assert_eq!(again.invoiced, 0, "a second run bills nothing: {again:?}");
    println!(
        "{:?}: {members} members renewed in {first:.2} s ({:.1} µs a member); a second run: {:.1} ms, nothing billed",
        store.backend(),
        first * 1e6 / members as f64,
        second * 1e3
    );
}

#!/usr/bin/env bash
# Money-side benchmark (server/examples/bench_money.rs), results in BENCHMARKS.md:
#   1. conversions per second end to end through the signed webhook (loopback HTTP,
#      16 keep-alive connections, paid + serviced per booking), on SQLite
#      (synchronous=FULL, the default) and on PostgreSQL (127.0.0.1:5432);
#   2. month close for CONVERSIONS earned conversions across 1,000 partners, on both.
#      Seeding is not what is measured and runs with relaxed durability (SQLite
#      synchronous=NORMAL, PostgreSQL synchronous_commit=off).
#   scripts/bench-money.sh [BOOKINGS] [CONVERSIONS]     defaults 2000 and 100000
set -euo pipefail
cd "$(dirname "$0")/.."
bookings=${1:-2000}
conversions=${2:-100000}
pg_admin=$(scripts/ensure-postgres.sh)
pg_base=${pg_admin%/*}
cargo build --release -p tapkit-server --example bench_money
bin=target/release/examples/bench_money
work=$(mktemp -d)
dbs=()
cleanup() {
  for d in "${dbs[@]}"; do psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
export RUST_LOG=warn
pgdb() { local d=tapkit_bench_money_$$_$1; psql "$pg_admin" -qc "CREATE DATABASE $d"; dbs+=("$d"); echo "$pg_base/$d"; }

echo "== webhook throughput, SQLite (synchronous=FULL)"
$bin --database-url "sqlite://$work/hook.db" --bookings "$bookings" --clients 16 --partners 1000
echo "== webhook throughput, PostgreSQL"
$bin --database-url "$(pgdb hook)" --bookings "$bookings" --clients 16 --partners 1000
echo "== month close, SQLite: $conversions conversions, 1000 partners"
$bin --database-url "sqlite://$work/close.db" --close-conversions "$conversions" --partners 1000
echo "== month close, PostgreSQL: $conversions conversions, 1000 partners"
$bin --database-url "$(pgdb close)?options=-c%20synchronous_commit%3Doff" --close-conversions "$conversions" --partners 1000

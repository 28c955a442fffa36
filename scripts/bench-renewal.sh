#!/usr/bin/env bash
# The membership renewal run (server/examples/bench_renewal.rs), results in BENCHMARKS.md:
# MEMBERS live members renewed on 1 November, on SQLite (synchronous=FULL, the default)
# and on PostgreSQL (127.0.0.1:5432, a fresh database).
#   scripts/bench-renewal.sh [MEMBERS]     default 100000
set -euo pipefail
cd "$(dirname "$0")/.."
members=${1:-100000}
pg_admin=$(scripts/ensure-postgres.sh)
cargo build --release -p tapkit-server --example bench_renewal
work=$(mktemp -d)
db=tapkit_bench_renewal_$$
trap 'psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export RUST_LOG=warn
target/release/examples/bench_renewal --database-url "sqlite://$work/r.db" --members "$members"
psql "$pg_admin" -qc "CREATE DATABASE $db"
target/release/examples/bench_renewal --database-url "${pg_admin%/*}/$db" --members "$members"

#!/usr/bin/env bash
# /r/{code} throughput with wrk on loopback, 64 connections, in one run side by side:
#   1. a bare Axum handler answering the same 302 (the same headers; the ceiling),
#   1b. the same handler waiting first for a writer thread that stores nothing (what
#       waiting for any commit before the 302 costs, apart from the storage),
#   2. tapkit-server on SQLite, synchronous=FULL (the default: clicks survive power loss),
#   3. tapkit-server on SQLite, synchronous=NORMAL (clicks survive a server crash),
#   4. tapkit-server on PostgreSQL (127.0.0.1:5432, a fresh database).
# Every Tapkit run has full logging: each click committed before its 302 leaves. After
# each run the clicks stored are compared with the 302s wrk counted (wrk stops counting
# at the deadline while up to 64 requests are still in flight, which the server finishes
# and stores: stored - counted must be between 0 and 64).
#   scripts/bench-redirect.sh [SECONDS]     default 15
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
command -v wrk >/dev/null || { sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo; $sudo apt-get install -y -qq wrk >/dev/null; }
pg_admin=$(scripts/ensure-postgres.sh)
cargo build --release -p tapkit-server --bin tapkit-server --example bare_302
work=$(mktemp -d)
pids=()
pgdb=tapkit_bench_$$
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
export RUST_LOG=warn TAPKIT_RATE_LIMIT_PER_HOUR=0
results=()

run_wrk() { # name url
  wrk -t2 -c64 -d"${secs}s" --latency -H "User-Agent: Mozilla/5.0 bench" "$2" > "$work/wrk.txt"
  local rps p50 p99 sent
  rps=$(awk '/Requests\/sec/{print $2}' "$work/wrk.txt")
  p50=$(awk '$1=="50%"{print $2}' "$work/wrk.txt")
  p99=$(awk '$1=="99%"{print $2}' "$work/wrk.txt")
  sent=$(awk '/requests in/{print $1}' "$work/wrk.txt")
  echo "$1: $rps req/s, p50 $p50, p99 $p99, $sent 302s" >&2
  echo "$rps $p50 $p99 $sent"
}

tapkit() { # name port database_url sync
  local dir=$work/$2
  mkdir -p "$dir"
  export TAPKIT_DATA_DIR=$dir TAPKIT_LISTEN=127.0.0.1:$2 TAPKIT_DATABASE_URL=$3 TAPKIT_SQLITE_SYNCHRONOUS=$4
  local token code pid
  token=$(./target/release/tapkit-server token create --name bench)
  ./target/release/tapkit-server serve & pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && break; sleep 0.1; done
  code=$(curl -s -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"name":"Bench Gym","kind":"business"}' "http://127.0.0.1:$2/api/admin/affiliates" \
    | sed -n 's/.*"code":"\([^"]*\)".*/\1/p')
  read -r rps p50 p99 sent < <(run_wrk "$1" "http://127.0.0.1:$2/r/$code")
  local batches
  batches=$(curl -s "http://127.0.0.1:$2/metrics" | awk '/^tapkit_click_batch_size_(sum|count) /{print $2}' | paste -sd/)
  kill "$pid"; wait "$pid" 2>/dev/null || true   # graceful stop: in-flight clicks finish
  local stored
  case $3 in
    sqlite*) stored=$(sqlite3 "$dir/tapkit.db" 'SELECT COUNT(*) FROM clicks') ;;
    *) stored=$(psql "$3" -Atc 'SELECT COUNT(*) FROM clicks') ;;
  esac
  local extra=$((stored - sent))
  local check=ok; ((extra >= 0 && extra <= 64)) || check=MISMATCH
  results+=("| $1 | $rps | $p50 | $p99 | $sent | $stored ($check) | $batches |")
}

BARE_LISTEN=127.0.0.1:8090 ./target/release/examples/bare_302 & pids+=($!)
sleep 0.5
read -r rps p50 p99 sent < <(run_wrk "ceiling: bare Axum 302" "http://127.0.0.1:8090/r/BENCH-00000")
results+=("| ceiling: bare Axum, the same 302 | $rps | $p50 | $p99 | $sent | – | – |")
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
BARE_WAIT=1 BARE_LISTEN=127.0.0.1:8094 ./target/release/examples/bare_302 & pids+=($!)
sleep 0.5
read -r rps p50 p99 sent < <(run_wrk "bare + waiting for a writer storing nothing" "http://127.0.0.1:8094/r/BENCH-00000")
results+=("| bare, waiting for a writer thread that stores nothing | $rps | $p50 | $p99 | $sent | – | – |")
kill "${pids[1]}"; wait "${pids[1]}" 2>/dev/null || true

tapkit "tapkit SQLite, synchronous=FULL (default)" 8091 "sqlite://$work/8091/tapkit.db" full
tapkit "tapkit SQLite, synchronous=NORMAL" 8092 "sqlite://$work/8092/tapkit.db" normal
psql "$pg_admin" -qc "CREATE DATABASE $pgdb" >/dev/null
tapkit "tapkit PostgreSQL 15" 8093 "${pg_admin%/*}/$pgdb" full

echo
echo "wrk -t2 -c64 -d${secs}s, $(nproc) cores shared by wrk and the server, $(date -u +%F)"
echo "| server | req/s | p50 | p99 | 302s counted by wrk | clicks stored | clicks/batches |"
echo "|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${results[@]}"

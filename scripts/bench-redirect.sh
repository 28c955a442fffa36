#!/usr/bin/env bash
# /r/{code} throughput with wrk on loopback, 64 connections: the real server (full
# logging, every click committed before its 302) beside a bare Axum 302 (the ceiling),
# in the same run. Checks that the clicks stored equal the 302s wrk received.
#   scripts/bench-redirect.sh [SECONDS]     default 15
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
command -v wrk >/dev/null || { sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo; $sudo apt-get install -y -qq wrk >/dev/null; }
cargo build --release -p tapkit-server --bin tapkit-server --example bare_302
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
run_wrk() { wrk -t2 -c64 -d"${secs}s" --latency -H "User-Agent: Mozilla/5.0 bench" "$1" | tee "$work/wrk.txt" | grep -E "Requests/sec|50%|99%|requests in"; }

BARE_LISTEN=127.0.0.1:8090 ./target/release/examples/bare_302 & pids+=($!)
export TAPKIT_DATA_DIR=$work/data TAPKIT_LISTEN=127.0.0.1:8091 TAPKIT_RATE_LIMIT_PER_HOUR=0 RUST_LOG=warn
token=$(./target/release/tapkit-server token create --name bench)
./target/release/tapkit-server serve & pids+=($!)
sleep 1
code=$(curl -s -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"name":"Bench Gym","kind":"business"}' http://127.0.0.1:8091/api/admin/affiliates | sed -n 's/.*"code":"\([^"]*\)".*/\1/p')
echo "== ceiling: bare Axum 302"
run_wrk "http://127.0.0.1:8090/r/$code"
echo "== tapkit-server /r/{code} on SQLite (synchronous=FULL, group commit)"
run_wrk "http://127.0.0.1:8091/r/$code"
sent=$(awk '/requests in/{print $1}' "$work/wrk.txt")
stored=$(sqlite3 "$work/data/tapkit.db" 'SELECT COUNT(*) FROM clicks' 2>/dev/null || echo "?")
echo "302s received by wrk: $sent; clicks stored: $stored"

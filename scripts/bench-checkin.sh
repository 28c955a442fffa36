#!/usr/bin/env bash
# Member check-ins at the counter, `POST /api/kiosk/check-in`, with wrk on loopback:
# 200 connections (200 check-ins in flight at once), 1,000 Premium members with one card
# each, every card's mirror counter rising (scripts/bench/checkin.lua), one enrolled
# kiosk's credentials. Rows: SQLite (synchronous=FULL, the default) and PostgreSQL 15
# (127.0.0.1:5432, a fresh database). Each row reports req/s, p50, p99, the server's CPU
# per request (utime+stime from /proc over the run, divided by the requests wrk counted),
# and afterwards the check-ins stored against the answers wrk counted, with the refused
# ones (there must be none: every counter rises and Premium is unlimited).
#   scripts/bench-checkin.sh [SECONDS] [CONNECTIONS]     default 15 s, 200
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
conns=${2:-200}
command -v wrk >/dev/null || { sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo; $sudo apt-get install -y -qq wrk >/dev/null; }
pg_admin=$(scripts/ensure-postgres.sh)
cargo build --release -p tapkit-server --bin tapkit-server
bin=${CARGO_TARGET_DIR:-target}/release/tapkit-server
work=$(mktemp -d)
pids=()
pgdb=tapkit_bench_checkin_$$
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
export RUST_LOG=warn TAPKIT_RATE_LIMIT_PER_HOUR=0
cat > "$work/tapkit.toml" <<'TOML'
[program]
name = "Shine Auto Detailing"
domain = "book.example.com"
booking_url = "https://book.example.com/"

[[program.membership.plans]]
id = "premium"
name = "Premium"
price_minor = 7900
visits = "unlimited"
add_on_discount_bp = 2000
priority = "instant"
TOML
export TAPKIT_CONFIG=$work/tapkit.toml
results=()

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

row() { # name port database_url
  local dir=$work/$2
  mkdir -p "$dir"
  export TAPKIT_DATA_DIR=$dir TAPKIT_LISTEN=127.0.0.1:$2 TAPKIT_DATABASE_URL=$3
  local token pid aff enroll kiosk ktoken codes
  token=$("$bin" token create --name bench)
  "$bin" serve & pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && break; sleep 0.1; done
  api() { curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }
  aff=$(api -d '{"name":"Bench Gym","kind":"business"}' "http://127.0.0.1:$2/api/admin/affiliates" \
    | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
  enroll=$(api -d "{\"affiliate_id\":$aff}" "http://127.0.0.1:$2/api/admin/kiosks" \
    | python3 -c 'import json,sys;print(json.load(sys.stdin)["enrollment_code"])')
  kiosk=$(curl -sf -H 'Content-Type: application/json' -d "{\"code\":\"$enroll\"}" "http://127.0.0.1:$2/api/kiosk/enroll")
  ktoken=$(python3 -c 'import json,sys;k=json.loads(sys.argv[1]);print("kiosk.%s.%s" % (k["kiosk_id"], k["secret"]))' "$kiosk")
  codes=$(python3 scripts/bench/members_setup.py 127.0.0.1 "$2" "$token" 1000)
  sed -e "s/@TOKEN@/$ktoken/" -e "s/@CODES@/$codes/" scripts/bench/checkin.lua > "$work/checkin.lua"
  local db_url=$3   # q reads it (bash's locals are seen by the functions called here)
  case $3 in
    sqlite*) q() { sqlite3 "$dir/tapkit.db" "$1"; } ;;
    *) q() { psql "$db_url" -Atc "$1"; } ;;
  esac
  local before
  before=$(cpu_ticks "$pid")
  wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$work/checkin.lua" "http://127.0.0.1:$2" > "$work/wrk.txt"
  local ticks=$(( $(cpu_ticks "$pid") - before ))
  local rps p50 p99 sent cpu stored refused
  rps=$(awk '/Requests\/sec/{print $2}' "$work/wrk.txt")
  p50=$(awk '$1=="50%"{print $2}' "$work/wrk.txt")
  p99=$(awk '$1=="99%"{print $2}' "$work/wrk.txt")
  sent=$(awk '/requests in/{print $1}' "$work/wrk.txt")
  cpu=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$sent" 'BEGIN{printf "%.1f", t / hz / n * 1e6}')
  grep -q 'Non-2xx' "$work/wrk.txt" && { echo "non-2xx answers:" >&2; cat "$work/wrk.txt" >&2; }
  sleep 0.5   # the requests still in flight when wrk stopped counting finish
  stored=$(q 'SELECT COUNT(*) FROM checkins')
  refused=$(q 'SELECT COUNT(*) FROM checkins WHERE accepted = 0')
  echo "$1: $rps req/s, p50 $p50, p99 $p99, ${cpu} µs CPU/request, $sent answered, $stored stored, $refused refused" >&2
  results+=("| $1 | $rps | $p50 | $p99 | $cpu | $sent | $stored | $refused |")
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

row "SQLite, synchronous=FULL (default)" 8191 "sqlite://$work/8191/tapkit.db"
psql "$pg_admin" -qc "CREATE DATABASE $pgdb" >/dev/null
row "PostgreSQL 15" 8193 "${pg_admin%/*}/$pgdb"

echo
echo "wrk -t2 -c$conns -d${secs}s, POST /api/kiosk/check-in, 1,000 member cards, $(nproc) cores shared by wrk and the server, $(date -u +%F)"
echo "| database | check-ins/s | p50 | p99 | server CPU per request (µs) | answered (wrk) | stored | refused |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${results[@]}"

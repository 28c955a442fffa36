#!/usr/bin/env bash
# /r/{code} throughput with wrk on loopback, 64 connections, in one run side by side:
#   1. a bare Axum handler answering the same 302 (the same headers; the ceiling),
#   1b. the same handler waiting first for a writer thread that stores nothing (what
#       waiting for any commit before the 302 costs, apart from the storage),
#   1c. the same handler waiting for a writer thread that commits one small row per
#       request to SQLite (WAL, synchronous=FULL), a batch a transaction: the floor of a
#       durable group commit on this machine, without any of Tapkit's work,
#   2. tapkit-server on SQLite, synchronous=FULL (the default: clicks survive power loss),
#   3. tapkit-server on SQLite, synchronous=NORMAL (clicks survive a server crash),
#   4. tapkit-server on PostgreSQL (127.0.0.1:5432, a fresh database).
# On SQLite FULL, besides the link tap, two more rows on the same server:
#   - NFC taps (`?m=UIDxCOUNTER`) of 1,000 registered cards, each with a rising counter,
#     as phones send them (scripts/bench/nfc.lua), checked afterwards: no NFC click of the
#     run may be flagged as a replay;
#   - NFC taps of 1,000 NTAG 424 DNA cards (`?e=…&c=…`, SUN), each counter rising, the
#     URLs made ahead with the card's algorithm (server/examples/sun_bench.rs,
#     scripts/bench/sun.lua) and every signature checked by the server: none of its clicks
#     may be anything but attributed;
#   - kiosk QR scans (`?k=<token>`) of an enrolled kiosk, the token made as the kiosk
#     makes it.
# Last, the SUN check alone (sun_bench verify): nanoseconds per tap, no HTTP.
# Every row reports the server's CPU per request: its utime+stime over the run (from
# /proc) divided by the requests wrk counted. It does not depend on wrk's share of the
# cores, so it compares rows better than req/s does.
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
cargo build --release -p tapkit-server --bin tapkit-server --example bare_302 --example sun_bench
cargo build -q -p tapkit-provisioner --bin provisioner
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
# The brand's NTAG 424 DNA keys, made as an admin makes them; every server of the run
# reads them.
./target/debug/provisioner keys new --out "$work/sun-keys" >/dev/null
export TAPKIT_SUN_KEYS_FILE=$work/sun-keys
results=()

cpu_ticks() { # pid: utime+stime in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat"
}

run_wrk() { # name url [lua script] [pid whose CPU to count]
  local script=() before=0
  [[ -n ${3:-} ]] && script=(-s "$3")
  [[ -n ${4:-} ]] && before=$(cpu_ticks "$4")
  wrk -t2 -c64 -d"${secs}s" --latency "${script[@]}" -H "User-Agent: Mozilla/5.0 bench" "$2" > "$work/wrk.txt"
  local rps p50 p99 sent cpu=–
  rps=$(awk '/Requests\/sec/{print $2}' "$work/wrk.txt")
  p50=$(awk '$1=="50%"{print $2}' "$work/wrk.txt")
  p99=$(awk '$1=="99%"{print $2}' "$work/wrk.txt")
  sent=$(awk '/requests in/{print $1}' "$work/wrk.txt")
  if [[ -n ${4:-} ]]; then
    cpu=$(awk -v t="$(( $(cpu_ticks "$4") - before ))" -v hz="$(getconf CLK_TCK)" -v n="$sent" \
      'BEGIN{printf "%.1f", t / hz / n * 1e6}')
  fi
  echo "$1: $rps req/s, p50 $p50, p99 $p99, $sent 302s, ${cpu} µs CPU/request" >&2
  echo "$rps $p50 $p99 $sent $cpu"
}

tapkit() { # name port database_url sync [extra rows: nfc+kiosk]
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
  local db_url=$3   # q reads it (bash's locals are seen by the functions called here)
  case $3 in
    sqlite*) q() { sqlite3 "$dir/tapkit.db" "$1"; } ;;
    *) q() { psql "$db_url" -Atc "$1"; } ;;
  esac
  row() { # name url [lua]: one wrk run, then clicks stored against 302s counted
    local before_stored rps p50 p99 sent cpu batches stored
    before_stored=$(q 'SELECT COUNT(*) FROM clicks')
    read -r rps p50 p99 sent cpu < <(run_wrk "$1" "$2" "${3:-}" "$pid")
    sleep 0.3   # the in-flight requests wrk stopped counting finish and are stored
    stored=$(( $(q 'SELECT COUNT(*) FROM clicks') - before_stored ))
    batches=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^tapkit_click_batch_size_(sum|count) /{print $2}' | paste -sd/)
    local extra=$((stored - sent))
    local check=ok; ((extra >= 0 && extra <= 64)) || check=MISMATCH
    results+=("| $1 | $rps | $p50 | $p99 | $cpu | $sent | $stored ($check) | $batches |")
  }
  local port=$2
  row "$1" "http://127.0.0.1:$2/r/$code"
  if [[ ${5:-} == nfc+kiosk ]]; then
    local aff
    aff=$(q "SELECT id FROM affiliates WHERE code = '$code'")
    # 1,000 cards of the partner, registered through the API as the provisioner does:
    # UIDs 04 + 12 hex digits of $1 + 0..999, each body ending with $2.
    register_cards() {
      for i in $(seq 0 999); do
        printf '{"affiliate_id":%s,"uid":"04%012X"%s}\n' "$aff" "$(($1 + i))" "$2"
      done | while read -r body; do
        curl -sf -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
          -d "$body" "http://127.0.0.1:$port/api/admin/cards"
      done
    }
    register_cards 0 ""
    sleep 1.2   # the directory's poll has picked the cards up (the API reloaded it already)
    sed "s/@CODE@/$code/; s/@ROUNDS@/$((secs * 60))/" scripts/bench/nfc.lua > "$work/nfc.lua"
    local nfc_before
    nfc_before=$(q "SELECT COUNT(*) FROM clicks WHERE channel = 'nfc'")
    row "$1, NFC tap (1,000 cards, rising counters)" "http://127.0.0.1:$2" "$work/nfc.lua"
    local replays not_attributed
    replays=$(q "SELECT COUNT(*) FROM clicks WHERE channel = 'nfc' AND reason = 'replayed_counter'")
    not_attributed=$(q "SELECT COUNT(*) FROM clicks WHERE channel = 'nfc' AND outcome <> 'attributed'")
    echo "NFC clicks: $(( $(q "SELECT COUNT(*) FROM clicks WHERE channel = 'nfc'") - nfc_before )), flagged as replays: $replays, not attributed: $not_attributed" >&2
    nfc_note="NFC row: $replays of its clicks flagged as replays, $not_attributed not attributed (both must be 0)."
    # 1,000 NTAG 424 DNA cards of the partner under key version 1, and the URLs they
    # send, made ahead (enough for 60,000 taps a second for the whole run: past its end a thread would replay).
    register_cards $((0x5000000000)) ',"key_version":1'
    ./target/release/examples/sun_bench urls "$TAPKIT_SUN_KEYS_FILE" "$code" "$work" $((secs * 60))
    sed "s|@DIR@|$work|" scripts/bench/sun.lua > "$work/sun.lua"
    sleep 1.2
    local sun_before
    sun_before=$(q "SELECT COUNT(*) FROM clicks WHERE channel = 'nfc'")
    row "$1, NFC tap, NTAG 424 DNA SUN (1,000 cards, rising counters, signatures checked)" "http://127.0.0.1:$2" "$work/sun.lua"
    local sun_bad sun_replays
    sun_replays=$(q "SELECT COUNT(*) FROM clicks WHERE channel = 'nfc' AND reason = 'replayed_counter'")
    sun_bad=$(q "SELECT COUNT(*) FROM clicks c JOIN cards k ON k.id = c.card_id WHERE k.key_version IS NOT NULL AND c.outcome <> 'attributed'")
    echo "SUN clicks: $(( $(q "SELECT COUNT(*) FROM clicks WHERE channel = 'nfc'") - sun_before )), not attributed: $sun_bad" >&2
    sun_note="NFC SUN row: $sun_bad of its clicks not attributed, replays in both NFC rows: $sun_replays (both must be 0)."
    # A kiosk of the partner, enrolled as display-kiosk does; its current QR token.
    local enroll kiosk
    enroll=$(curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      -d "{\"affiliate_id\":$aff}" "http://127.0.0.1:$2/api/admin/kiosks" \
      | sed -n 's/.*"enrollment_code":"\([^"]*\)".*/\1/p')
    kiosk=$(curl -sf -H 'Content-Type: application/json' -d "{\"code\":\"$enroll\"}" \
      "http://127.0.0.1:$2/api/kiosk/enroll")
    local ktoken
    ktoken=$(python3 -c 'import hashlib, hmac, json, sys, time
k = json.loads(sys.argv[1]); kid = k["kiosk_id"]; step = int(time.time()) // 60
mac = hmac.new(bytes.fromhex(k["secret"]), f"tapkit kiosk qr v1.{kid}.{step}".encode(), hashlib.sha256).digest()[:8]
print(f"{kid}.{step}.{mac.hex()}")' "$kiosk")
    row "$1, kiosk QR scan" "http://127.0.0.1:$2/r/$code?k=$ktoken"
    local kiosk_ok
    kiosk_ok=$(q "SELECT COUNT(*) FROM clicks WHERE channel = 'kiosk' AND outcome = 'attributed'")
    kiosk_note="kiosk row: $kiosk_ok of its clicks attributed (the token is fresh for the whole run)."
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true   # graceful stop: in-flight clicks finish
}
nfc_note=""
kiosk_note=""
sun_note=""

BARE_LISTEN=127.0.0.1:8090 ./target/release/examples/bare_302 & pids+=($!)
sleep 0.5
read -r rps p50 p99 sent cpu < <(run_wrk "ceiling: bare Axum 302" "http://127.0.0.1:8090/r/BENCH-00000" "" "${pids[0]}")
results+=("| ceiling: bare Axum, the same 302 | $rps | $p50 | $p99 | $cpu | $sent | – | – |")
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
BARE_WAIT=1 BARE_LISTEN=127.0.0.1:8094 ./target/release/examples/bare_302 & pids+=($!)
sleep 0.5
read -r rps p50 p99 sent cpu < <(run_wrk "bare + waiting for a writer storing nothing" "http://127.0.0.1:8094/r/BENCH-00000" "" "${pids[1]}")
results+=("| bare, waiting for a writer thread that stores nothing | $rps | $p50 | $p99 | $cpu | $sent | – | – |")
kill "${pids[1]}"; wait "${pids[1]}" 2>/dev/null || true
BARE_WAIT=sqlite BARE_DB=$work/bare.db BARE_LISTEN=127.0.0.1:8095 ./target/release/examples/bare_302 & pids+=($!)
sleep 0.5
read -r rps p50 p99 sent cpu < <(run_wrk "bare + a writer committing one row a request" "http://127.0.0.1:8095/r/BENCH-00000" "" "${pids[2]}")
stored=$(sqlite3 "$work/bare.db" 'SELECT COUNT(*) FROM hits')
results+=("| bare, waiting for a writer committing one SQLite row a request (FULL) | $rps | $p50 | $p99 | $cpu | $sent | $stored | – |")
kill "${pids[2]}"; wait "${pids[2]}" 2>/dev/null || true

tapkit "tapkit SQLite, synchronous=FULL (default)" 8091 "sqlite://$work/8091/tapkit.db" full nfc+kiosk
tapkit "tapkit SQLite, synchronous=NORMAL" 8092 "sqlite://$work/8092/tapkit.db" normal
psql "$pg_admin" -qc "CREATE DATABASE $pgdb" >/dev/null
tapkit "tapkit PostgreSQL 15" 8093 "${pg_admin%/*}/$pgdb" full

echo
echo "wrk -t2 -c64 -d${secs}s, $(nproc) cores shared by wrk and the server, $(date -u +%F)"
echo "| server | req/s | p50 | p99 | server CPU per request (µs) | 302s counted by wrk | clicks stored | clicks/batches (cumulative) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${results[@]}"
[[ -n $nfc_note ]] && echo "$nfc_note"
[[ -n $kiosk_note ]] && echo "$kiosk_note"
[[ -n $sun_note ]] && echo "$sun_note"
echo
./target/release/examples/sun_bench verify "$TAPKIT_SUN_KEYS_FILE" 1000000

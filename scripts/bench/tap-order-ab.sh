#!/usr/bin/env bash
# A/B on one release server (SQLite FULL): link, NFC `?m=` (counters from Lua), NFC `?m=`
# (URLs from a file), NFC SUN (URLs from a file), link again, in that order, each row
# SECONDS long. Shows how much of a later row's cost is the clicks table the earlier rows
# filled, and what the file-reading wrk script costs. Needs the release build of
# scripts/bench-redirect.sh (tapkit-server, examples/sun_bench) and a debug provisioner.
#   scripts/bench/tap-order-ab.sh [SECONDS]     default 8
set -euo pipefail
cd /work/main
secs=${1:-8}
work=$(mktemp -d)
export RUST_LOG=warn TAPKIT_RATE_LIMIT_PER_HOUR=0
./target/debug/provisioner keys new --out "$work/keys" >/dev/null
export TAPKIT_SUN_KEYS_FILE=$work/keys TAPKIT_DATA_DIR=$work/d TAPKIT_LISTEN=127.0.0.1:8199 TAPKIT_DATABASE_URL=sqlite://$work/d/tapkit.db
mkdir -p $work/d
token=$(./target/release/tapkit-server token create --name ab)
./target/release/tapkit-server serve & pid=$!
trap 'kill $pid; rm -rf $work' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:8199/healthz >/dev/null && break; sleep 0.1; done
api() { curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$2" "http://127.0.0.1:8199$1"; }
code=$(api /api/admin/affiliates '{"name":"AB Gym","kind":"business"}' | sed -n 's/.*"code":"\([^"]*\)".*/\1/p')
aff=$(sqlite3 $work/d/tapkit.db "SELECT id FROM affiliates WHERE code='$code'")
for i in $(seq 0 999); do api /api/admin/cards "{\"affiliate_id\":$aff,\"uid\":\"04$(printf %012X $i)\"}" >/dev/null; api /api/admin/cards "{\"affiliate_id\":$aff,\"uid\":\"04$(printf %012X $((0x5000000000 + i)))\",\"key_version\":1}" >/dev/null; done
rounds=$((secs * 60))
./target/release/examples/sun_bench urls "$work/keys" "$code" "$work" $rounds
for half in 0 1; do
  # Counters above the counter-Lua row's, which tapped the same cards first.
  awk -v h=$half -v code=$code -v r=$rounds 'BEGIN{for(c=1;c<=r;c++) for(k=h*500;k<h*500+500;k++) printf "/r/%s?m=04%012Xx%06X\n", code, k, 1000000 + c}' > $work/m-$half.txt
done
sed "s|@DIR@/sun-|$work/m-|" scripts/bench/sun.lua > $work/mfile.lua
sed "s|@DIR@|$work|" scripts/bench/sun.lua > $work/sun.lua
sed "s/@CODE@/$code/; s/@ROUNDS@/$((secs * 60))/" scripts/bench/nfc.lua > $work/nfc.lua
sleep 1.2
run() {
  local t0 t1 n
  t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  wrk -t2 -c64 -d${secs}s ${2:+-s $2} -H "User-Agent: Mozilla/5.0 ab" "http://127.0.0.1:8199$3" > $work/w.txt
  t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  n=$(awk '/requests in/{print $1}' $work/w.txt)
  echo "$1: $(awk '/Requests\/sec/{print $2}' $work/w.txt) req/s, $(awk -v a=$t0 -v b=$t1 -v n=$n -v hz=$(getconf CLK_TCK) 'BEGIN{printf "%.1f", (b-a)/hz/n*1e6}') µs CPU/request"
}
run "link" "" "/r/$code"
run "nfc ?m= (counter lua)" $work/nfc.lua ""
run "nfc ?m= (file lua)" $work/mfile.lua ""
run "sun (file lua)" $work/sun.lua ""
run "link again" "" "/r/$code"
echo "clicks not attributed (must be none): $(sqlite3 $work/d/tapkit.db "SELECT outcome || '/' || COALESCE(reason, '') || ' ' || COUNT(*) FROM clicks WHERE outcome <> 'attributed' GROUP BY outcome, reason")"

#!/usr/bin/env bash
# display-kiosk benchmark (release builds), results in BENCHMARKS.md:
#   1. start-up: `display-kiosk run` spawned → first 200 on its page (`/`), N runs;
#   2. resident memory after hour-equivalents of use: the page refreshes its frame every
#      5 s (720 frame renders per hour, 60 token rotations), driven here back to back;
#   3. bytes per heartbeat on the wire (request + answer, HTTP headers included), counted
#      by a byte-counting TCP proxy between the kiosk and the server.
#   scripts/bench-kiosk.sh [HOURS]      default 10 hour-equivalents (7,200 renders)
set -euo pipefail
cd "$(dirname "$0")/.."
hours=${1:-10}
cargo build --release -p tapkit-server -p display-kiosk
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
sp=$(port); pp=$(port); kp=$(port)
cat > "$work/tapkit.toml" <<TOML
[program]
name = "Shine Auto Detailing"
domain = "book.example.com"
booking_url = "https://book.example.com/"
[program.kiosk]
heartbeat_secs = 5
offline_after_secs = 10
TOML
export TAPKIT_CONFIG=$work/tapkit.toml TAPKIT_DATA_DIR=$work TAPKIT_LISTEN=127.0.0.1:$sp RUST_LOG=warn
token=$(target/release/tapkit-server token create --name bench)
target/release/tapkit-server serve 2>"$work/server.log" & pids+=($!)
python3 scripts/bench/byte_proxy.py "$pp" "$sp" "$work/bytes.json" & pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$sp/healthz" >/dev/null && break; sleep 0.1; done
api() { curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }
aff=$(api -d '{"name":"Shine Auto Detailing","kind":"business"}' "http://127.0.0.1:$sp/api/admin/affiliates" | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
code=$(api -d "{\"affiliate_id\":$aff}" "http://127.0.0.1:$sp/api/admin/kiosks" | python3 -c 'import json,sys;print(json.load(sys.stdin)["enrollment_code"])')
# Enrol through the proxy, so every later call of the kiosk is counted.
target/release/display-kiosk enroll --server "http://127.0.0.1:$pp" --code "$code" --state-dir "$work/kiosk" >/dev/null
python3 scripts/bench/kiosk_bench.py --kiosk target/release/display-kiosk --state-dir "$work/kiosk" \
  --port "$kp" --bytes "$work/bytes.json" --hours "$hours"

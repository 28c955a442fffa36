#!/usr/bin/env bash
# The main job on embedded defaults, no hardware and no services to install:
#  1. builds the provisioner and the server,
#  2. provisions a sample batch of partner cards onto the built-in simulated reader and
#     shows what a phone reads from each card,
#  3. starts the attribution server on SQLite with the sample program
#     (server/tapkit.sample.toml), creates two sample partners through the admin API,
#     taps one card URL, and leaves the server running until Ctrl-C.
# Settings: TAPKIT_LISTEN (default 127.0.0.1:8080), TAPKIT_DATA_DIR (default ./demo-data).
# DEMO_NO_WAIT=1 stops the server at the end instead of waiting (for scripts).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== system packages the build links against (libpcsclite via pkg-config)"
scripts/install-deps.sh build
echo "== building (release)"
cargo build --release --bin provisioner --bin tapkit-server
echo "== provisioning sample partners onto simulated cards"
./target/release/provisioner demo "$@"

export TAPKIT_LISTEN=${TAPKIT_LISTEN:-127.0.0.1:8080}
export TAPKIT_DATA_DIR=${TAPKIT_DATA_DIR:-demo-data}
export TAPKIT_CONFIG=server/tapkit.sample.toml
base=http://$TAPKIT_LISTEN
echo
echo "== attribution server on SQLite ($TAPKIT_DATA_DIR/tapkit.db), sample program, $base"
token=$(./target/release/tapkit-server token create --name demo)
./target/release/tapkit-server serve & server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$base/healthz" >/dev/null || { echo "the server did not start on $base (port taken? set TAPKIT_LISTEN)"; exit 1; }
api() { curl -s -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }
for name in "Iron Gym" "Café Zürich & Co."; do
  api -d "{\"name\":\"$name\",\"kind\":\"business\"}" "$base/api/admin/affiliates" >/dev/null
done
code=$(api "$base/api/admin/affiliates" | sed -n 's/.*"code":"\([^"]*\)".*/\1/p' | head -1)
echo "partners (GET /api/admin/affiliates):"
api "$base/api/admin/affiliates" | tr '{' '\n' | sed -n 's/.*"name":"\([^"]*\)".*"code":"\([^"]*\)".*"url":"\([^"]*\)".*/  \1  \2  \3/p'
echo
echo "a customer scans $code's printed QR (GET /r/$code?s=qr):"
curl -s -o /dev/null -D - -A "Mozilla/5.0 (demo phone)" "$base/r/$code?s=qr" | grep -iE "^(HTTP|location|set-cookie)" | sed 's/^/  /'
echo
echo "The server keeps running at $base:"
echo "  admin token (keep it secret):   $token"
echo "  API description:                $base/api/openapi.json"
echo "  clicks per day:                 curl -H 'Authorization: Bearer <token>' $base/api/admin/analytics"
echo "  metrics:                        $base/metrics"
if [[ ${DEMO_NO_WAIT:-0} == 1 ]]; then exit 0; fi
echo "Ctrl-C stops it (its data stays in $TAPKIT_DATA_DIR)."
wait $server

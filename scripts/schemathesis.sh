#!/usr/bin/env bash
# Runs schemathesis (every check) against a real tapkit-server and the OpenAPI document it
# serves, with the credentials a real deployment has: an admin API token from
# `tapkit-server token create`, an enrolled kiosk's identity, and conversion webhooks
# signed with the server's webhook secret. Any failure makes this script fail.
#
# It builds nothing: run `cargo build --workspace --bins` first (scripts/test.sh does).
#   TAPKIT_SERVER_BIN     the server binary (default target/debug/tapkit-server)
#   TAPKIT_SCHEMATHESIS   the schemathesis CLI (default target/st-venv/bin/schemathesis,
#                         which scripts/test.sh installs)
#   ST_MAX_EXAMPLES       test cases per operation and phase (default 100)
#   ST_SEED               the seed, to replay a run (default: a new one, printed)
#   ST_ARGS               more schemathesis options, e.g. "--include-path /api/conversions"
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TAPKIT_SERVER_BIN:-target/debug/tapkit-server}
st=${TAPKIT_SCHEMATHESIS:-target/st-venv/bin/schemathesis}
examples=${ST_MAX_EXAMPLES:-100}
seed=${ST_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
say() { echo "schemathesis.sh: $*" >&2; }
# The Python schemathesis runs on (3.11 or later, which it needs and tomllib is in).
py=$(dirname "$st")/python; [[ -x $py ]] || py=python3

[[ -x $bin ]] || { say "no server binary at $bin: run cargo build --workspace --bins"; exit 1; }
[[ -x $st ]] || {
  say "no schemathesis at $st: python3 -m venv target/st-venv && target/st-venv/bin/pip install schemathesis==4.32.5 (scripts/test.sh does this)"
  exit 1
}

dir=$(mktemp -d "${TMPDIR:-/tmp}/tapkit-schemathesis.XXXXXX")
server=""
cleanup() {
  if [[ -n $server ]]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
# The sample program, on a fresh SQLite database; no per-IP limit, so every tap is a real
# redirect rather than a rate-limited one.
export TAPKIT_CONFIG=server/tapkit.sample.toml TAPKIT_DATA_DIR=$dir
export TAPKIT_DATABASE_URL=sqlite://$dir/tapkit.db TAPKIT_LISTEN=127.0.0.1:$port
export TAPKIT_PUBLIC_URL=$base TAPKIT_RATE_LIMIT_PER_HOUR=0
export TAPKIT_WEBHOOK_SECRET_FILE=$dir/webhook-secret
(umask 077 && "$py" -c 'import secrets; print(secrets.token_hex(32), end="")' > "$TAPKIT_WEBHOOK_SECRET_FILE")
log=$dir/server.log

admin_token=$("$bin" token create --name schemathesis 2>>"$log")
"$bin" serve 2>>"$log" & server=$!
for _ in $(seq 100); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { say "the server exited:"; cat "$log" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "$base/healthz" >/dev/null || { say "the server did not answer on $base"; cat "$log" >&2; exit 1; }

# A kiosk as the admin creates it and the display enrols it.
api() { # METHOD PATH [BODY]: the JSON answer (fails on an HTTP error)
  curl -fsS -X "$1" "$base$2" -H "Authorization: Bearer $admin_token" \
    -H 'Content-Type: application/json' ${3:+--data "$3"}
}
field() { "$py" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
affiliate=$(api POST /api/admin/affiliates '{"name":"Schemathesis Gym","kind":"business"}' | field id)
code=$(api POST /api/admin/kiosks "{\"affiliate_id\":$affiliate,\"name\":\"Front counter\"}" | field enrollment_code)
enrolled=$(curl -fsS -X POST "$base/api/kiosk/enroll" -H 'Content-Type: application/json' --data "{\"code\":\"$code\"}")
kiosk_id=$(field kiosk_id <<<"$enrolled")
kiosk_secret=$(field secret <<<"$enrolled")

# A member, whose first invoice the payment events (payment_succeeded / payment_failed)
# name: the payment system can only send events for a charge Tapkit asked it for.
invoice=$(api POST /api/admin/members '{"customer_id":"cus_schemathesis","email":"st@example.com","plan":"basic"}' \
  | "$py" -c 'import json, sys; print(json.load(sys.stdin)["open_invoices"][0]["id"])')
export TAPKIT_ST_INVOICE_ID=$invoice
export TAPKIT_ST_ADMIN_TOKEN=$admin_token TAPKIT_ST_KIOSK_TOKEN=kiosk.$kiosk_id.$kiosk_secret
export TAPKIT_ST_KIOSK_ID=$kiosk_id TAPKIT_ST_WEBHOOK_SECRET=$(cat "$TAPKIT_WEBHOOK_SECRET_FILE")
# The program's currency, one of its tiers and its membership plans: values of the deployment the document
# can only name (the hooks put them into schema-valid cases).
read -r TAPKIT_ST_CURRENCY TAPKIT_ST_TIER TAPKIT_ST_PLANS < <("$py" -c '
import sys, tomllib
p = tomllib.load(open(sys.argv[1], "rb"))["program"]
c = p["commission"]
print(c["currency"], c["tiers"][0]["name"], ",".join(x["id"] for x in p["membership"]["plans"]))' "$TAPKIT_CONFIG")
export TAPKIT_ST_CURRENCY TAPKIT_ST_TIER TAPKIT_ST_PLANS
export SCHEMATHESIS_HOOKS=$PWD/tests/tools/schemathesis_hooks.py
say "server $base (pid $server), kiosk $kiosk_id, $examples examples per operation, seed $seed"
set +e
"$st" --config-file tests/tools/schemathesis.toml run "$base/api/openapi.json" \
  --checks all --max-examples "$examples" --seed "$seed" --workers 1 \
  --generation-database none --no-color ${ST_ARGS:-}
rc=$?
set -e
# The credentials must have worked, or the run tested little beyond the 401s: signed
# webhooks were processed, the kiosk's heartbeats recorded, the admin created partners.
read -r events beats partners < <("$py" - "$dir/tapkit.db" "$kiosk_id" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
one = lambda sql, *a: db.execute(sql, a).fetchone()[0]
print(one("SELECT COUNT(*) FROM conversion_events"),
      one("SELECT COUNT(*) FROM kiosks WHERE id = ? AND last_seen IS NOT NULL", int(sys.argv[2])),
      one("SELECT COUNT(*) FROM affiliates") - 1)
EOF
)
say "signed webhooks processed: $events; heartbeats of kiosk $kiosk_id recorded: $beats; partners created: $partners"
if [[ -z ${ST_ARGS:-} ]] && [[ $events -eq 0 || $beats -eq 0 || $partners -eq 0 ]]; then
  say "a credential did not work (see the counts above)"; rc=1
fi
if grep -q 'panicked' "$log"; then
  say "the server panicked:"; grep -A5 'panicked' "$log" >&2; rc=1
fi
if [[ $rc -ne 0 ]]; then
  say "FAILED (exit $rc); replay with ST_SEED=$seed scripts/schemathesis.sh; the server's log:"
  tail -n 40 "$log" >&2
fi
exit "$rc"

#!/usr/bin/env bash
# The main job as a guided demo on embedded defaults: no NFC reader, no database server,
# nothing to configure. It builds the provisioner and the server, then
#   1. starts the attribution server on SQLite with the sample program,
#   2. creates three sample partners through the admin API,
#   3. provisions their NFC cards on the built-in simulated reader (each written, read
#      back and registered to its partner on the server),
#   4. writes the print shop's PDF and the portal's QR PNGs,
#   5. simulates phones tapping the cards (and a printed-QR scan and a replayed URL),
#   6. books one appointment: the checkout's signed webhooks earn the partner a commission,
# and leaves the server running with the admin console's URL and a one-time sign-in link.
#
# Settings: TAPKIT_LISTEN (default 127.0.0.1:8080), DEMO_DIR (default ./demo-data; a
# previous demo's directory is emptied first), DEMO_NO_WAIT=1 stops the server at the end
# instead of waiting (for scripts); DEMO_BIN_DIR=DIR uses binaries already built there
# instead of building (the test of this script uses target/debug).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -t 1 ]]; then bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'; else bold="" dim="" off=""; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
note() { printf '%s%s%s\n' "$dim" "$*" "$off"; }

step "System packages: libpcsclite (the build links it), curl and openssl (this script uses them)"
scripts/install-deps.sh build demo
if [[ -n ${DEMO_BIN_DIR:-} ]]; then
  bin=$DEMO_BIN_DIR
else
  step "Building the provisioner and the server (release; the first build takes a few minutes)"
  cargo build --release --bin provisioner --bin tapkit-server
  bin=target/release
fi
started=$(date +%s)

export TAPKIT_LISTEN=${TAPKIT_LISTEN:-127.0.0.1:8080}
base=http://$TAPKIT_LISTEN
if curl -s -o /dev/null "$base/"; then
  echo "demo: something already answers on $base (an earlier demo still running? stop it with Ctrl-C, or set TAPKIT_LISTEN=127.0.0.1:8090)" >&2
  exit 1
fi
dir=${DEMO_DIR:-demo-data}
if [[ -e $dir ]]; then
  if [[ ! -e $dir/.tapkit-demo ]]; then
    echo "demo: $dir exists and is not a demo directory; set DEMO_DIR to another path" >&2
    exit 2
  fi
  rm -rf "$dir"
fi
mkdir -p "$dir"
: > "$dir/.tapkit-demo"
export TAPKIT_DATA_DIR=$dir TAPKIT_CONFIG=server/tapkit.sample.toml
export TAPKIT_PUBLIC_URL=http://$TAPKIT_LISTEN     # sign-in links point here
export TAPKIT_WEBHOOK_SECRET_FILE=$dir/webhook-secret
(umask 077 && openssl rand -hex 32 | tr -d '\n' > "$TAPKIT_WEBHOOK_SECRET_FILE")
# No provisioner config from this machine's ~/.config is used.
export XDG_CONFIG_HOME=$dir

step "1. The attribution server on SQLite ($dir/tapkit.db), sample program ($TAPKIT_CONFIG)"
token=$($bin/tapkit-server token create --name demo 2>>"$dir/server.log")
$bin/tapkit-server serve 2> "$dir/server.log" & server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
if ! kill -0 "$server" 2>/dev/null || ! curl -sf "$base/healthz" >/dev/null; then
  tail -5 "$dir/server.log" >&2
  echo "demo: the server did not start on $base (port taken? set TAPKIT_LISTEN=127.0.0.1:8090)" >&2
  exit 1
fi
echo "listening on $base (log: $dir/server.log)"

# The token goes to curl in a file, not on its command line (where ps would show it).
(umask 077 && printf 'Authorization: Bearer %s\n' "$token" > "$dir/auth-header")
api() { curl -sS -H @"$dir/auth-header" -H 'Content-Type: application/json' "$@"; }
field() { sed -n "s/.*\"$1\": *\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p"; }

step "2. Three sample partners, created through the admin API (POST /api/admin/affiliates)"
codes=() ids=()
for name in "Iron Gym" "Glow Day Spa" "Café Zürich & Co."; do
  a=$(api -d "{\"name\":\"$name\",\"kind\":\"business\"}" "$base/api/admin/affiliates")
  codes+=("$(field code <<<"$a")") ids+=("$(field id <<<"$a")")
  printf '  %-16s %-44s %s\n' "$(field code <<<"$a")" "$(field url <<<"$a")" "$name"
done

step "3. Their NFC cards, at the (simulated) reader: written, verified, registered"
note "provisioner provision --server $base --reader sim …  (with a USB reader: --reader <name>)"
TAPKIT_ADMIN_TOKEN=$token $bin/provisioner provision --server "$base" --reader sim \
  --journal "$dir/journal.jsonl" --non-interactive \
  --sim-cards "image:$dir/card-1.json,image:$dir/card-2.json,image:$dir/card-3.json" 2>&1 |
  sed 's/^/  /'
echo "  the server's cards: $(api "$base/api/admin/cards" | grep -o '"uid":"[0-9A-F]*"' | cut -d'"' -f4 | tr '\n' ' ')"

step "4. Print files: the print shop's PDF and the portal's QR images"
TAPKIT_ADMIN_TOKEN=$token $bin/provisioner print --server "$base" --all --layout a4 \
  --out "$dir/cards.pdf" --png-dir "$dir/qr" 2>&1 | sed 's/^/  /'

step "5. Phones tap the cards"
phone="Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
hop() { # GET a card/QR URL on this server as a phone; prints status, Location and cookie
  local local_url=${1/https:\/\/book.example.com/$base} head
  head=$(curl -sS -o /dev/null -D - -A "$phone" "$local_url" | tr -d '\r')
  printf '    → %s %s\n' "$(sed -n '1s/HTTP\/[0-9.]* //p' <<<"$head")" \
    "$(sed -n 's/^location: /to /Ip' <<<"$head")"
  local cookie
  cookie=$(sed -n 's/^set-cookie: \(tapkit_ref_js=[^;]*\).*/\1/Ip' <<<"$head")
  if [[ -n $cookie ]]; then printf '      cookie %s…\n' "${cookie:0:40}"; else echo "      no cookie: this visit earns nothing"; fi
  last_cookie=${cookie#tapkit_ref_js=}
}
declare -a taps
for i in 1 2 3; do
  url=$($bin/provisioner read --reader sim --sim-image "$dir/card-$i.json" --json | field url)
  taps[i]=$url
  echo "  card $i — the phone reads $url"
  hop "$url"
  [[ $i == 1 ]] && first_tap=$last_cookie
done
echo "  a customer scans Glow Day Spa's printed QR: $base/r/${codes[1]}?s=qr"
hop "https://book.example.com/r/${codes[1]}?s=qr"
echo "  someone replays card 1's URL (the chip's counter did not rise):"
hop "${taps[1]}"

step "6. A booking: the checkout sends Tapkit signed webhooks (POST /api/conversions)"
note "(the program ignores bookings less than 2 s after their tap as bots; waiting)"
sleep 2
webhook() { # kind, extra JSON fields
  local body t sig
  body="{\"event_id\":\"demo-B1-$1\",\"kind\":\"$1\",\"booking_id\":\"B1\",\"occurred_at\":\"$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)\",\"customer_id\":\"cus_demo\"$2}"
  t=$(date +%s)
  sig=$(printf '%s.%s' "$t" "$body" | openssl dgst -sha256 -hmac "$(cat "$TAPKIT_WEBHOOK_SECRET_FILE")" -r | cut -d' ' -f1)
  curl -sS -H 'Content-Type: application/json' -H "Tapkit-Signature: t=$t,v1=$sig" -d "$body" "$base/api/conversions"
}
r=$(webhook booking_paid ",\"amount_minor\":25000,\"currency\":\"USD\",\"attribution\":\"$first_tap\"")
echo "  booking_paid \$250.00 with card 1's token  → $(field outcome <<<"$r") (earned once serviced)"
r=$(webhook booking_serviced "")
echo "  booking_serviced                          → $(field outcome <<<"$r"): Iron Gym earns \$25.00 (10 %)"
owed=$(api "$base/api/admin/affiliates/${ids[0]}/earnings" | tr -d ' \n' | sed -n 's/.*"owed":\[{"amount_minor":\([0-9]*\).*/\1/p')
echo "  Iron Gym is owed $(( ${owed:-0} / 100 )).$(printf '%02d' $(( ${owed:-0} % 100 ))) USD, paid out at the month's close once the 14 holding days pass"

printf -v email 'admin@demo.example'
$bin/tapkit-server admin add --email "$email" >/dev/null 2>>"$dir/server.log"
link=$($bin/tapkit-server admin link --email "$email" 2>>"$dir/server.log")

step "Done in $(( $(date +%s) - started )) s after the build. The server keeps running at $base"
cat <<EOF
  admin console:              $base/admin
  sign in as $email:  $link
                              (one-time link, 7 days; or add a password:
                               tapkit-server admin add --email … --password-stdin)
  admin API token:            $token   (keep it secret)
  print PDF (A4, crop marks): $dir/cards.pdf      QR images: $dir/qr/
  which card went to whom:    $dir/journal.jsonl
  API description:            $base/api/openapi.json
EOF
if [[ ${DEMO_NO_WAIT:-0} == 1 ]]; then exit 0; fi
echo "Ctrl-C stops it (its data stays in $dir)."
wait $server

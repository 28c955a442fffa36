#!/usr/bin/env bash
# Installs the system packages Tapkit needs, only those missing, and says what it does.
#   install-deps.sh build   C libraries the Rust build links against (libpcsclite via pkg-config)
#   install-deps.sh pcsc    pcscd and the vsmartcard vpcd virtual reader (real PC/SC in tests)
#   install-deps.sh python  python3 + venv, for pyscard + ndeflib (the independent PC/SC client and NDEF decoder)
#   install-deps.sh print   poppler-utils, qpdf and zbar-tools: PDF boxes/fonts/streams/rendering and an independent QR decoder
#   install-deps.sh browser chromium + chromedriver: the real browser the cookie and UI tests drive
#   install-deps.sh sqlite  the sqlite3 shell: tests and benches read the server's database file independently
#   install-deps.sh node    nodejs + npm, to fetch axe-core (the accessibility checker the UI tests run in Chromium)
#   install-deps.sh demo    curl and openssl, which scripts/demo.sh uses
#   install-deps.sh e2e     nginx (the reverse proxy of the end-to-end test), libfaketime (its shifted clock),
#                           openssl (its certificate), curl
set -euo pipefail
want=()
for group in "$@"; do
  case "$group" in
    build) want+=(pkgconf libpcsclite-dev) ;;
    pcsc) want+=(pcscd vsmartcard-vpcd libpcsclite-dev pkgconf) ;;
    python) want+=(python3 python3-venv) ;;
    print) want+=(poppler-utils zbar-tools qpdf) ;;
    sqlite) want+=(sqlite3) ;;
    browser) want+=(chromium chromium-driver fonts-liberation2) ;;
    node) command -v npm >/dev/null 2>&1 || want+=(nodejs npm) ;;
    demo) want+=(curl openssl) ;;
    e2e) command -v nginx >/dev/null 2>&1 || want+=(nginx-light)
         want+=(faketime openssl curl) ;;
    *) echo "install-deps: unknown group $group" >&2; exit 2 ;;
  esac
done
need=()
for p in "${want[@]+"${want[@]}"}"; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "install-deps: installing ${need[*]} (apt-get)"
  $sudo apt-get update -qq
  # the postinst's "policy-rc.d denied execution of start" warning is harmless
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

#!/usr/bin/env bash
# Runs Tapkit's whole test suite on a Debian/Ubuntu machine with Rust installed:
# installs the system packages the tests need, checks formatting and lints, builds, and
# runs every test, including those through the real pcscd with the vpcd virtual reader
# (which must run: a skipped real-component test fails this script).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
step() { printf '\n== %s\n' "$*"; }

step "system packages (pcscd, vpcd virtual reader, libpcsclite, python3-venv, poppler, zbar, chromium, nginx, libfaketime)"
scripts/install-deps.sh build pcsc python print sqlite browser node e2e

step "python venv with pyscard + ndeflib (the independent PC/SC client and NDEF decoder)"
venv=target/py-venv
if [[ ! -x $venv/bin/python ]] || ! $venv/bin/python -c 'import smartcard, ndef' 2>/dev/null; then
  python3 -m venv "$venv"
  $venv/bin/pip install -q --disable-pip-version-check pyscard==2.3.1 ndeflib==0.3.3
fi
export TAPKIT_PYTHON=$PWD/$venv/bin/python

step "python venv with schemathesis (the OpenAPI conformance run)"
st_venv=target/st-venv
if [[ ! -x $st_venv/bin/schemathesis ]] || [[ $($st_venv/bin/schemathesis --version 2>/dev/null) != *" 4.32.5" ]]; then
  python3 -m venv "$st_venv"
  $st_venv/bin/pip install -q --disable-pip-version-check schemathesis==4.32.5
fi
export TAPKIT_SCHEMATHESIS=$PWD/$st_venv/bin/schemathesis

step "axe-core (the accessibility checker the console and portal tests inject into Chromium)"
axe=target/npm/node_modules/axe-core/axe.min.js
if [[ ! -f $axe ]]; then
  npm install --silent --no-audit --no-fund --prefix target/npm axe-core@4.10.3 >/dev/null
fi
export TAPKIT_AXE=$PWD/$axe

step "PostgreSQL on 127.0.0.1:5432 (the store suite runs on it and on SQLite)"
TAPKIT_TEST_PG_URL=$(scripts/ensure-postgres.sh)
export TAPKIT_TEST_PG_URL TAPKIT_REQUIRE_PG=1

# A debug build of every test binary takes a few GiB; say how much room there is, so a
# "No space left on device" from rustc later is not a mystery.
echo "free disk for target/: $(df -h --output=avail . | tail -1 | xargs)"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "build"
cargo build --workspace --bins

step "schemathesis against the served OpenAPI document (--checks all; must report 0 failures)"
st_log=target/schemathesis-output.log
set +e
scripts/schemathesis.sh 2>&1 | tee "$st_log"
st_rc=${PIPESTATUS[0]}
set -e

step "tests (unit, property, simulator, and real pcscd + vpcd)"
log=target/test-output.log
export TAPKIT_REQUIRE_PCSC=1 TAPKIT_REQUIRE_BROWSER=1
set +e
scripts/with-pcscd.sh cargo test --workspace 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e

step "summary"
# The real-pcscd tests must have run; count them from their binary's result line.
pcscd_line=$(awk '/Running tests\/pcscd.rs/{f=1} f && /^test result:/{print; exit}' "$log")
pcscd_passed=$(sed -n 's/.* \([0-9]\+\) passed.*/\1/p' <<<"$pcscd_line")
total_passed=$(awk '/^test result:/{for(i=1;i<=NF;i++) if($(i+1) ~ /^passed/) s+=$i} END{print s+0}' "$log")
total_failed=$(awk '/^test result:/{for(i=1;i<=NF;i++) if($(i+1) ~ /^failed/) s+=$i} END{print s+0}' "$log")
echo "real pcscd + vpcd tests: ${pcscd_passed:-0} passed"
store_line=$(awk '/Running tests\/store.rs/{f=1} f && /^test result:/{print; exit}' "$log")
echo "store suite (SQLite and PostgreSQL): $(sed -n 's/.* \([0-9]\+\) passed.*/\1/p' <<<"$store_line") passed"
echo "tests: ${total_passed:-0} passed, ${total_failed:-0} failed"
echo "schemathesis: $(grep -E '^  [0-9]+ generated' "$st_log" | tail -1 | xargs) ($(grep -E '^=+ .* in [0-9.]+s =+$' "$st_log" | tail -1 | tr -d '=' | xargs))"
if [[ $st_rc -ne 0 ]]; then
  echo "FAILED: schemathesis exited $st_rc (see above; ST_SEED replays the run)" >&2; exit "$st_rc"
fi
if [[ $rc -ne 0 ]]; then
  echo "FAILED: cargo test exited $rc" >&2; exit "$rc"
fi
if [[ -z "${pcscd_passed:-}" || "$pcscd_passed" -eq 0 ]]; then
  echo "FAILED: no test ran through the real pcscd" >&2; exit 1
fi

#!/usr/bin/env bash
# Front-desk check-in latency, card on the reader → answer on the screen, through the
# real pcscd + vpcd: `provisioner sim-card` presents a provisioned member card on the
# virtual reader, `display-kiosk run --reader` reads it through pcscd and checks it in
# with a real `tapkit-server` (SQLite), and the clock stops when the kiosk's frame (what
# the page draws) carries the answer. The start is when pcscd reports the card present.
# Prints one BENCHMARKS.md row: taps, p50, p95, p99, slowest (ms). Debug build, as the
# tests run; 2 cores shared by pcscd, the simulator, the kiosk, the server and the poller.
#   scripts/bench-desk.sh [TAPS]     default 100
set -euo pipefail
cd "$(dirname "$0")/.."
taps=${1:-100}
cargo build --workspace --bins
echo "| path | taps | p50 (ms) | p95 (ms) | p99 (ms) | slowest (ms) |"
echo "|---|---:|---:|---:|---:|---:|"
TAPKIT_BENCH_TAPS=$taps TAPKIT_REQUIRE_PCSC=1 scripts/with-pcscd.sh \
  cargo test -q -p tapkit-e2e --test desk -- --ignored --nocapture bench_card_on_the_reader_to_the_screen 2>/dev/null \
  | grep '^| card'

#!/usr/bin/env bash
# Fuzzes the tag-memory / NDEF decoder with cargo-fuzz (libFuzzer) for a while.
#   scripts/fuzz.sh [SECONDS]      default 60
# cargo-fuzz needs nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them. Crashes land in fuzz/artifacts/ndef_decode/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
if ! cargo fuzz --help >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (cargo install, a few minutes once)"
  cargo install --locked cargo-fuzz
fi
mkdir -p fuzz/corpus/ndef_decode
# Seed with the golden vectors: the worked example and a factory NTAG213 data area.
printf '\x03\x19\xd1\x01\x15\x55\x04example.com/r/ABC123\xfe' > fuzz/corpus/ndef_decode/worked-example
printf '\x01\x03\xa0\x0c\x34\x03\x00\xfe' > fuzz/corpus/ndef_decode/ntag213-factory
echo "fuzz: running ndef_decode for ${secs}s"
RUSTC_BOOTSTRAP=1 cargo fuzz run ndef_decode fuzz/corpus/ndef_decode -- -max_total_time="$secs" -max_len=1024

#!/usr/bin/env bash
# Fuzzes the decoders of outside input with cargo-fuzz (libFuzzer), each for a while:
# the tag-memory / NDEF decoder, the NTAG 424 DNA SUN parameters and key file, and the
# emulated NTAG 424 DNA's APDU parser (what pcscd hands the simulator).
#   scripts/fuzz.sh [SECONDS]      default 60
# cargo-fuzz needs nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them. Crashes land in fuzz/artifacts/<target>/.
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
mkdir -p fuzz/corpus/sun_params
# A valid SUN pair ([A] Table 3, zero keys) and a key file.
printf 'EF963FF7828658A599F3041510671E88&94EED9EE65337086' > fuzz/corpus/sun_params/an12196-t3
printf '# tapkit-sun-keys 1\n1 00112233445566778899AABBCCDDEEFF\n' > fuzz/corpus/sun_params/keyfile
mkdir -p fuzz/corpus/ntag424_apdu
# GetVersion, SELECT of the NDEF application, of the NDEF file, a read (FF FE splits APDUs).
printf '\x90\x60\x00\x00\x00\xff\xfe\x00\xa4\x04\x0c\x07\xd2\x76\x00\x00\x85\x01\x01\x00\xff\xfe\x00\xa4\x00\x0c\x02\xe1\x04\xff\xfe\x00\xb0\x00\x00\x02\xff\xfe\x90\x71\x00\x00\x02\x00\x00\x00' > fuzz/corpus/ntag424_apdu/phone-read
for target in ndef_decode sun_params ntag424_apdu; do
  echo "fuzz: running $target for ${secs}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "fuzz/corpus/$target" -- -max_total_time="$secs" -max_len=1024
done

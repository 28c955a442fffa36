#!/usr/bin/env bash
# Runs the provisioner benchmark in-process and through the real pcscd + vpcd stack.
# Copy the tables into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build pcsc
scripts/with-pcscd.sh cargo bench -p tapkit-provisioner --bench write_apdus

# Print and batch: 1,000 cards on A4 and one per page (time, size, peak RSS); a 100-card
# batch on the simulator (per-card time and APDUs).
scripts/install-deps.sh print
command -v /usr/bin/time >/dev/null || { sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo; $sudo apt-get install -y -qq time >/dev/null; }
cargo build --release --bin provisioner --example gen_codes
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
names=(); for i in $(seq 1 1000); do names+=("Partner Business $i"); done
./target/release/examples/gen_codes "${names[@]}" > "$work/1000.csv"
for layout in a4 per-card; do
  /usr/bin/time -f "%e s elapsed, %M KB peak RSS" ./target/release/provisioner print --csv "$work/1000.csv" \
    --domain book.example.com --layout "$layout" --out "$work/$layout.pdf" 2> "$work/time.txt" >/dev/null
  echo "print 1000 cards, $layout: $(tail -1 "$work/time.txt"), $(stat -c %s "$work/$layout.pdf") bytes, $(pdfinfo "$work/$layout.pdf" | awk '/^Pages/{print $2}') pages"
done
./target/release/examples/gen_codes "${names[@]:0:100}" > "$work/100.csv"
start=$(date +%s.%N)
./target/release/provisioner provision --csv "$work/100.csv" --domain book.example.com --reader sim \
  --journal "$work/j.jsonl" --non-interactive --json > "$work/events.jsonl"
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" '/"event":"card"/{n++; match($0, /"apdus":[0-9]+/); a+=substr($0, RSTART+8, RLENGTH-8)} END{printf "batch of %d cards on the simulator: %.2f ms per card (whole process, journal fsync included), %.1f APDUs per card\n", n, (e-s)*1000/n, a/n}' "$work/events.jsonl"

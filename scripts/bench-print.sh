#!/usr/bin/env bash
# The print bench (issue 23): `provisioner print` of 1,000, 10,000 and 100,000 generated
# partners, A4 10-up with mirrored backs, the built-in template (logo, backs). Prints
# time, peak RSS (/usr/bin/time), PDF size and pages, and time per 1,000 cards, so
# linearity shows. Copy the table into BENCHMARKS.md.
#   scripts/bench-print.sh              # 1k, 10k, 100k
#   scripts/bench-print.sh 1000 5000    # chosen sizes
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build print
command -v /usr/bin/time >/dev/null || { sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo; $sudo apt-get install -y -qq time >/dev/null; }
cargo build --release --bin provisioner --example gen_codes
sizes=("$@"); [[ ${#sizes[@]} -gt 0 ]] || sizes=(1000 10000 100000)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
echo "cores: $(nproc)"
printf '| cards | layout | time | per 1,000 cards | peak RSS | PDF size | pages |\n|---:|---|---:|---:|---:|---:|---:|\n'
for n in "${sizes[@]}"; do
  ./target/release/examples/gen_codes --count "$n" > "$work/p.csv"
  for layout in a4 per-card; do
    # 100,000 one-per-page cards is 200,000 pages; the A4 row is the target.
    [[ $layout == per-card && $n -gt 10000 ]] && continue
    /usr/bin/time -f "%e %M" -o "$work/time.txt" ./target/release/provisioner print --csv "$work/p.csv" \
      --domain book.example.com --layout "$layout" --out "$work/out.pdf" >/dev/null
    read -r secs kb < "$work/time.txt"
    pages=$(pdfinfo "$work/out.pdf" | awk '/^Pages/{print $2}')
    bytes=$(stat -c %s "$work/out.pdf")
    awk -v n="$n" -v l="$layout" -v s="$secs" -v kb="$kb" -v b="$bytes" -v p="$pages" 'BEGIN{
      printf "| %d | %s | %.2f s | %.2f s | %.0f MB | %.1f MB | %d |\n", n, l, s, s*1000/n, kb/1024, b/1e6, p}'
    rm -f "$work/out.pdf"
  done
done

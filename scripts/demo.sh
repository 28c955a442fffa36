#!/usr/bin/env bash
# The main job on embedded defaults: builds the provisioner and provisions a sample batch
# of partner cards onto the built-in simulated reader (no hardware, no services), then
# shows what a phone would read from each card.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== system packages the build links against (libpcsclite via pkg-config)"
scripts/install-deps.sh build
echo "== building (release)"
cargo build --release --bin provisioner
echo "== provisioning sample partners"
./target/release/provisioner demo "$@"

#!/usr/bin/env bash
# Runs the provisioner benchmark in-process and through the real pcscd + vpcd stack.
# Copy the tables into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build pcsc
scripts/with-pcscd.sh cargo bench -p tapkit-provisioner --bench write_apdus

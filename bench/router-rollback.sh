#!/usr/bin/env bash
# Time from the rollback decision (canary weight set to 0) to the last request reaching the
# canary, on the embedded router under load. Goal: ≤ 100 ms. Usage: bench/router-rollback.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run -q --release -p serin-local --example router_rollback -- "${1:-20}"

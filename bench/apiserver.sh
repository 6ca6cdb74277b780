#!/usr/bin/env bash
# What the in-memory API server (tests/testkit) costs the tests that use it: create/GET/LIST rates, watch
# fan-out and memory with 1,000 Canaries + 1,000 Deployments, next to the controller's memory goal.
# Usage: bench/apiserver.sh [--debug]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=(--release)
[[ "${1:-}" == "--debug" ]] && profile=()
cargo run -q "${profile[@]}" -p serin-testkit --example apiserver_bench

#!/usr/bin/env bash
# Latency the router adds at 1,000 req/s: direct vs embedded router vs Traefik (if installed),
# side by side. Usage: bench/router-latency.sh [SECONDS_PER_PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run -q --release -p serin-local --example router_latency -- "${1:-10}"

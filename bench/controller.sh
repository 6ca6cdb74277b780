#!/usr/bin/env bash
# API requests per Canary per tick and controller memory with 1,000 Canaries: the real
# `serin controller` (release build) against the in-memory API server over HTTP.
# Usage: bench/controller.sh [CANARIES]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p serin
SERIN_BIN=target/release/serin cargo run -q --release -p serin-controller --example scale -- "${1:-1000}"

#!/usr/bin/env bash
# The decision benchmark of serin's statistical judge against Flagger's fixed range
# (issue 10): false rollbacks, detection and time to decision over many simulated releases.
#   bench/judge.sh                 # 20 req/s, p = 1%, regressed 2x, 10,000 releases
#   bench/judge.sh --rate 50       # any option of the example: --rate --p --ratio --steps
#   bench/judge.sh --sweep         #   --seed --releases --alpha --min-effect --hold --sweep
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p serin-analysis --example judge_bench
exec target/release/examples/judge_bench "$@"

#!/usr/bin/env bash
# The analysis engine's cost per tick, in microseconds, next to the analysis interval.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench -p serin-analysis --bench tick "$@"

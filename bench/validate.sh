#!/usr/bin/env bash
# Throughput of `serin validate` on a large multi-document file (N Canaries and MetricTemplates),
# next to PyYAML merely loading the same file (what a Python-based checker pays before checking).
# Usage: bench/validate.sh [N=2000]   SERIN_BIN=path uses that binary (default: release build).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
bin=${SERIN_BIN:-target/release/serin}
if [[ -z "${SERIN_BIN:-}" ]]; then
  cargo build --release -p serin --quiet
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
file="$work/manifests.yaml"
python3 - "$n" "$file" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
seed = open("tests/fixtures/valid/everything.yaml").read()
with open(path, "w") as out:
    for i in range(n):
        out.write(seed.replace("name: shop", f"name: shop-{i}").replace("name: latency-p99", f"name: latency-p99-{i}")
                      .replace("name: on-call", f"name: on-call-{i}"))
        out.write("\n---\n")
PY
docs=$((n * 3))
size=$(stat -c %s "$file")
start=$(date +%s.%N)
code=0
"$bin" validate -f "$file" >"$work/out.txt" 2>"$work/err.txt" || code=$?
end=$(date +%s.%N)
if ((code != 0)); then
  echo "bench/validate.sh: serin validate exited $code on the generated file:" >&2
  tail -n 3 "$work/err.txt" "$work/out.txt" >&2
  exit 1
fi
summary=$(tail -1 "$work/out.txt")
serin_s=$(echo "$end - $start" | bc -l)
py_s=$(python3 - "$file" <<'PY'
import sys, time, yaml
loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
t = time.perf_counter()
docs = list(yaml.load_all(open(sys.argv[1]), Loader=loader))
print(f"{time.perf_counter() - t:.3f}")
PY
)
printf 'input: %d documents, %.1f MiB (%s)\n' "$docs" "$(echo "$size / 1048576" | bc -l)" "$summary"
printf '%-44s %8.3f s  %8.0f documents/s\n' "serin validate (parse + schema + rules)" "$serin_s" "$(echo "$docs / $serin_s" | bc -l)"
printf '%-44s %8.3f s  %8.0f documents/s\n' "PyYAML load only (no validation)" "$py_s" "$(echo "$docs / $py_s" | bc -l)"

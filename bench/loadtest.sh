#!/usr/bin/env bash
# serin loadtest side by side with Debian's hey and wrk against nginx on loopback.
#   1. throughput: -c 50 for DURATION seconds (default 10), requests/s as reported and as counted by nginx,
#      and CPU time (user + system, the process and its children) per request counted by nginx: the
#      figure that still compares the generators when other work shares the cores
#   2. rate accuracy: -q 10 -c 2 -z 10s (hey semantics: 200 requests) and --rate 500 -z 10s (5000 requests),
#      counted at nginx (stub_status)
# Usage: bench/loadtest.sh [DURATION_SECONDS]
#   SERIN_BENCH_NO_BUILD=1  reuse the built binary; SERIN=path  another serin build (e.g. the engine alone:
#   target/release/examples/loadtest); SERIN_BENCH_SKIP_RATE=1  throughput only
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
for tool in nginx hey wrk curl /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench/loadtest.sh: $tool is missing (apt-get install -y $tool)" >&2; exit 2; }
done
# SERIN_BENCH_NO_BUILD=1 reuses target/release/serin (e.g. while others hold the build lock).
[[ -n ${SERIN_BENCH_NO_BUILD:-}${SERIN:-} ]] || cargo build --release -p serin >&2
SERIN=${SERIN:-target/release/serin}

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work; uwsgi_temp_path $work; scgi_temp_path $work;
  server {
    listen 127.0.0.1:$port;
    location / { return 200 "ok\n"; }
    location = /nginx-status { stub_status; }
  }
}
CONF
nginx -c "$work/nginx.conf" &
nginx_pid=$!
trap 'kill $nginx_pid 2>/dev/null; wait $nginx_pid 2>/dev/null; rm -rf "$work"' EXIT
url="http://127.0.0.1:$port/"
for _ in $(seq 100); do curl -fs "$url" >/dev/null && break; sleep 0.05; done

# nginx's request counter (third number of the third stub_status line); the read itself counts one.
served() { curl -fs "http://127.0.0.1:$port/nginx-status" | awk 'NR==3 {print $3}'; }
counted() { # command... -> requests nginx served during it; CPU seconds of the command in $work/cpu
  local before after
  before=$(served)
  /usr/bin/time -f "%U %S" -o "$work/time" "$@" >"$work/out" 2>"$work/err" \
    || { echo "failed: $*" >&2; cat "$work/err" >&2; return 1; }
  after=$(served)
  awk '{print $1 + $2}' "$work/time" >"$work/cpu"
  echo $((after - before - 1))
}
cpu_us() { echo "$(cat "$work/cpu") * 1000000 / $1" | bc -l; } # requests -> CPU µs per request

echo "serin loadtest benchmark: nginx (1 worker) on 127.0.0.1, $(nproc) cores, ${DUR}s per run"
echo
printf '%-44s %14s %14s %14s\n' "throughput, -c 50, ${DUR}s" "reported rps" "nginx rps" "CPU µs/req"
n=$(counted hey -z "${DUR}s" -c 50 "$url"); r=$(awk '/Requests\/sec/ {print $2}' "$work/out")
printf '%-44s %14.0f %14.0f %14.1f\n' "hey -z ${DUR}s -c 50" "$r" "$(echo "$n / $DUR" | bc -l)" "$(cpu_us "$n")"
hey_rps=$(echo "$n / $DUR" | bc -l)
n=$(counted wrk -t 2 -c 50 -d "${DUR}s" "$url"); r=$(awk '/Requests\/sec/ {print $2}' "$work/out")
printf '%-44s %14.0f %14.0f %14.1f\n' "wrk -t 2 -c 50 -d ${DUR}s" "$r" "$(echo "$n / $DUR" | bc -l)" "$(cpu_us "$n")"
wrk_rps=$(echo "$n / $DUR" | bc -l)
n=$(counted "$SERIN" loadtest -z "${DUR}s" -c 50 --output json "$url")
r=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rps"])' "$work/out")
printf '%-44s %14.0f %14.0f %14.1f\n' "serin loadtest -z ${DUR}s -c 50" "$r" "$(echo "$n / $DUR" | bc -l)" "$(cpu_us "$n")"
serin_rps=$(echo "$n / $DUR" | bc -l)
printf '%-44s %14s %14.2f   (target >= 2)\n' "serin / hey" "" "$(echo "$serin_rps / $hey_rps" | bc -l)"
printf '%-44s %14s %14.2f   (target >= 0.8)\n' "serin / wrk" "" "$(echo "$serin_rps / $wrk_rps" | bc -l)"
[[ -z ${SERIN_BENCH_SKIP_RATE:-} ]] || exit 0

echo
printf '%-44s %10s %10s %10s\n' "rate accuracy, counted at nginx" "expected" "counted" "error"
row() { printf '%-44s %10d %10d %9.2f%%\n' "$1" "$2" "$3" "$(echo "($3 - $2) * 100 / $2" | bc -l)"; }
row "hey -q 10 -c 2 -z 10s" 200 "$(counted hey -q 10 -c 2 -z 10s "$url")"
row "serin loadtest -q 10 -c 2 -z 10s" 200 "$(counted "$SERIN" loadtest -q 10 -c 2 -z 10s "$url")"
row "serin loadtest --rate 500 -z 10s" 5000 "$(counted "$SERIN" loadtest --rate 500 -z 10s "$url")"

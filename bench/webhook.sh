#!/usr/bin/env bash
# Throughput and tail latency of `serin webhook` /mutate over TLS keep-alive: hey POSTs a recorded
# Deployment UPDATE review (a new image on a canary-managed Deployment, so every answer carries the
# hold patch and a warning) with 50 connections for DURATION seconds (default 10); then the same
# with `serin loadtest` when it can drive HTTPS; and, as the floor of this machine, `serin loadtest`
# against nginx (when installed) answering the same bytes as a constant over the same TLS: what
# any server would measure here with the client sharing its cores. All side by side, one run.
# Goal on a 2-core machine: >= 15,000 reviews/s and p99 <= 2 ms.
# Usage: bench/webhook.sh [DURATION_SECONDS]   (SERIN=path/to/serin skips the release build;
#        SERIN_WEBHOOK_THREADS=N serves with N threads, default one per core)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
for tool in hey openssl curl python3; do
  command -v "$tool" >/dev/null || { echo "bench/webhook.sh: $tool is missing (apt-get install -y $tool)" >&2; exit 2; }
done
if [[ -z "${SERIN:-}" ]]; then
  cargo build --release -p serin >&2
  SERIN=target/release/serin
fi

work=$(mktemp -d)
server=""
nginx_pid=""
cleanup() {
  [[ -n "$server" ]] && kill "$server" 2>/dev/null
  [[ -n "$nginx_pid" ]] && kill "$nginx_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -keyout "$work/tls.key" -out "$work/tls.crt" -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1,DNS:localhost 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# A review as kube-apiserver sends it for `kubectl set image deployment/web web=ghcr.io/acme/web:1.4.3`.
python3 - "$work/review.json" <<'PY'
import json, sys
def deployment(image, rv):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": "web", "namespace": "prod", "uid": "5e3c1f0a-7d2b-4a8e-9c61-0b9f2d4e7a13",
            "resourceVersion": rv, "generation": 7, "creationTimestamp": "2026-11-20T09:14:03Z",
            "labels": {"app": "web", "serin.dev/canary": "web", "app.kubernetes.io/part-of": "shop"},
            "annotations": {"deployment.kubernetes.io/revision": "6",
                            "serin.dev/stable-hash": "0123456789abcdef",
                            "kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\",\"namespace\":\"prod\"}}"},
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "apps/v1",
                               "time": "2026-11-20T09:14:03Z", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:replicas": {}}}}]},
        "spec": {
            "replicas": 3, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"creationTimestamp": None, "labels": {"app": "web"},
                             "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9797"}},
                "spec": {
                    "containers": [{
                        "name": "web", "image": image, "imagePullPolicy": "IfNotPresent",
                        "ports": [{"name": "http", "containerPort": 9898, "protocol": "TCP"},
                                  {"name": "http-metrics", "containerPort": 9797, "protocol": "TCP"}],
                        "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "GOMAXPROCS", "value": "2"}],
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 9898, "scheme": "HTTP"},
                                           "periodSeconds": 5, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 9898, "scheme": "HTTP"},
                                          "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                        "resources": {"limits": {"cpu": "1", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "64Mi"}},
                        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                    "securityContext": {}, "schedulerName": "default-scheduler"}}},
        "status": {"observedGeneration": 6, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}}
review = {
    "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
    "request": {
        "uid": "3f1c2b7e-0d4a-4c59-8a2e-6b1d9e0f4c21",
        "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "requestKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "requestResource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "name": "web", "namespace": "prod", "operation": "UPDATE",
        "userInfo": {"username": "kubernetes-admin", "groups": ["kubeadm:cluster-admins", "system:authenticated"]},
        "object": deployment("ghcr.io/acme/web:1.4.3", "184467"),
        "oldObject": deployment("ghcr.io/acme/web:1.4.2", "184466"),
        "dryRun": False,
        "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-set"}}}
json.dump(review, open(sys.argv[1], "w"))
PY

# The server's default runtime (one worker thread per core) unless SERIN_WEBHOOK_THREADS says
# otherwise. Measured here: one thread gave hey about the same rate and serin loadtest ~35% less.
threads=${SERIN_WEBHOOK_THREADS:-}
"$SERIN" webhook --standalone --address 127.0.0.1 --port "$port" --log-level error ${threads:+--worker-threads "$threads"} \
  --tls-cert-file "$work/tls.crt" --tls-key-file "$work/tls.key" 2>"$work/server.log" &
server=$!
url="https://127.0.0.1:$port"
for _ in $(seq 100); do curl -sfk "$url/healthz" >/dev/null && break; sleep 0.1; done
curl -sfk "$url/healthz" >/dev/null || { cat "$work/server.log" >&2; exit 1; }

# The answer is the one the benchmark means to measure: allowed, with the hold patch.
answer=$(curl -sfk -X POST -H 'content-type: application/json' --data-binary @"$work/review.json" "$url/mutate")
python3 -c 'import json,sys; r=json.loads(sys.argv[1])["response"]; assert r["allowed"] and r["patchType"]=="JSONPatch" and r["warnings"], r' "$answer"

# hey 0.1.4 sends the URL's host:port as TLS SNI, which rustls rightly refuses (a hostname has no
# port); -host sets the Host header and with it the SNI to a plain name. hey skips verification.
# `serin loadtest` takes hey's flags and prints hey's summary; it runs as a second row when it can
# drive HTTPS POST (it needs the same -host).
load=(-c 50 -host localhost -m POST -T application/json -D "$work/review.json")
# CPU ticks of a process and its children (nginx's workers).
cpu_ticks() {
  local p total=0
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$(( total + $(awk '{print $14 + $15}' "/proc/$p/stat") ))
  done
  echo "$total"
}
rows=(hey)
if "$SERIN" loadtest -n 200 "${load[@]}" "$url/mutate" >"$work/probe.txt" 2>&1 && grep -q '\[200\]' "$work/probe.txt"; then
  rows+=(loadtest)
else
  echo "bench/webhook.sh: serin loadtest cannot POST over HTTPS here, hey only: $(head -c 300 "$work/probe.txt")" >&2
fi

# nginx answers every POST with the bytes serin answered, from memory (`return`), over TLS with
# the same certificate and one worker per core: the transport alone, no work per review.
nginx_bin=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null || true)
if [[ " ${rows[*]} " == *" loadtest "* && -n "$nginx_bin" && "$answer" != *"'"* && "$answer" != *'$'* ]]; then
  nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$work/nginx"
  cat >"$work/nginx/nginx.conf" <<EOF
worker_processes $(nproc);
daemon off;
error_log $work/nginx/error.log;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  client_body_buffer_size 64k;
  server {
    listen 127.0.0.1:$nginx_port ssl;
    ssl_certificate $work/tls.crt;
    ssl_certificate_key $work/tls.key;
    keepalive_requests 1000000000;
    default_type application/json;
    location / { return 200 '$answer'; }
  }
}
EOF
  "$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" 2>"$work/nginx/start.log" &
  nginx_pid=$!
  for _ in $(seq 50); do curl -sfk -o /dev/null -X POST "https://127.0.0.1:$nginx_port/mutate" && break; sleep 0.1; done
  if curl -sfk -o /dev/null -X POST "https://127.0.0.1:$nginx_port/mutate"; then
    rows+=(nginx)
  else
    echo "bench/webhook.sh: nginx did not start, no floor row: $(cat "$work/nginx/start.log" "$work/nginx/error.log" 2>/dev/null | head -c 300)" >&2
  fi
fi

load_before=$(cut -d' ' -f1 /proc/loadavg)
for row in "${rows[@]}"; do
  case $row in
    hey) cmd=(hey); target="$url/mutate"; pid=$server ;;
    loadtest) cmd=("$SERIN" loadtest); target="$url/mutate"; pid=$server ;;
    nginx) cmd=("$SERIN" loadtest); target="https://127.0.0.1:$nginx_port/mutate"; pid=$nginx_pid ;;
  esac
  "${cmd[@]}" -n 5000 "${load[@]}" "$target" >/dev/null  # warm-up
  before=$(cpu_ticks "$pid")
  "${cmd[@]}" -z "${DUR}s" "${load[@]}" "$target" >"$work/$row.txt"
  echo $(( $(cpu_ticks "$pid") - before )) >"$work/$row.cpu"
done
load_after=$(cut -d' ' -f1 /proc/loadavg)

python3 - "$work" "$(wc -c <"$work/review.json")" "$(nproc)" "$load_before" "$load_after" "$(getconf CLK_TCK)" "${threads:-$(nproc)}" "${rows[@]}" <<'PY'
import re, sys
work, size, cores, load_before, load_after, tck, threads = sys.argv[1:8]
names = {"hey": "hey->serin", "loadtest": "loadtest->serin", "nginx": "loadtest->nginx"}
order = sys.argv[8:]
rows = {}
for row in order:
    text = open(f"{work}/{row}.txt").read()
    codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", text))
    errors = re.search(r"Error distribution:(.*)", text, re.S)
    total = sum(int(n) for n in codes.values())
    # CPU time is what the server itself costs, whatever else runs on the machine.
    cpu_us = int(open(f"{work}/{row}.cpu").read()) / int(tck) * 1e6 / max(total, 1)
    rows[row] = dict(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        p50=float(re.search(r"50%+ in ([\d.]+) secs", text).group(1)) * 1000,
        p99=float(re.search(r"99%+ in ([\d.]+) secs", text).group(1)) * 1000,
        cpu=cpu_us)
    print(f"{names[row]}: status codes {codes}" + ("; ERRORS:" + errors.group(1).strip() if errors else ""))
print(f"review: Deployment UPDATE, {size} bytes; -c 50 over TLS keep-alive; {cores} cores, serin on {threads} thread(s); "
      f"load average {load_before} before, {load_after} after (other work on the machine shares the cores)")
print(f"{'':20}" + "".join(f"{names[r]:>17}" for r in order) + f"{'goal':>12}")
serin_rows = [r for r in order if r != "nginx"]
def line(label, key, fmt, goal="", ok=None):
    cells = "".join(f"{format(rows[r][key], fmt):>17}" for r in order)
    verdict = ""
    if ok:
        verdict = "  " + ", ".join(f"{names[r]}: {'ok' if ok(rows[r][key]) else 'MISSED'}" for r in serin_rows)
    print(f"{label:20}{cells}{goal:>12}{verdict}")
line("reviews/s", "rps", ",.0f", ">= 15,000", lambda v: v >= 15000)
line("p50 latency (ms)", "p50", ".2f")
line("p99 latency (ms)", "p99", ".2f", "<= 2.00", lambda v: v <= 2.0)
line("server CPU/review", "cpu", ".1f")
print("(server CPU/review in us, TLS included: user+system time of the server, nginx's workers included, / answers)")
if "nginx" in rows:
    print("loadtest->nginx: nginx answering the same bytes as a constant (no work per review) with the same "
          "client on the same cores: the floor any server meets on this machine.")
PY

#!/usr/bin/env bash
# Latency and throughput of `serin webhook` /mutate over TLS keep-alive: hey POSTs a recorded
# Deployment UPDATE review (a new image on a canary-managed Deployment, so every answer carries the
# hold patch and a warning) for DURATION seconds (default 10) twice: at 200 reviews/s (-c 10 -q 20,
# far above what a cluster sends: a few reviews per release), and at saturation (-c 50, no rate).
# Goals on a 2-core machine: p99 <= 5 ms at 200 reviews/s, >= 5,000 reviews/s at saturation.
# Usage: bench/webhook.sh [DURATION_SECONDS]   (SERIN=path/to/serin skips the release build)
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
cleanup() {
  [[ -n "$server" ]] && kill "$server" 2>/dev/null
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

"$SERIN" webhook --standalone --address 127.0.0.1 --port "$port" --log-level error \
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
post=(-host localhost -m POST -T application/json -D "$work/review.json")
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
hey -n 2000 -c 10 "${post[@]}" "$url/mutate" >/dev/null  # warm-up
for row in rate saturation; do
  case $row in
    rate) load=(-c 10 -q 20) ;;        # hey's -q is per worker: 10 x 20 = 200 reviews/s
    saturation) load=(-c 50) ;;
  esac
  before=$(cpu_ticks)
  hey -z "${DUR}s" "${load[@]}" "${post[@]}" "$url/mutate" >"$work/$row.txt"
  echo $(( $(cpu_ticks) - before )) >"$work/$row.cpu"
done
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")

# Hostile clients (issue 20), one after the other, the server's RSS sampled while each holds its
# connections and after they close: 500 idle TLS connections, 300 with half a request head, 100
# each holding 3 MiB - 1 byte of a 3 MiB body. Past --max-connections (128) the rest wait.
python3 - "$port" "$server" <<'PY' >"$work/attacks.txt"
import socket, ssl, sys, threading, time
port, pid = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context()
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
def rss():
    return next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")) / 1024
def attack(n, payload):
    held, threads = [], []
    def one():
        try:
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="localhost")
            if payload: s.sendall(payload)
            held.append(s)
        except OSError:
            pass
    for _ in range(n):
        t = threading.Thread(target=one); t.start(); threads.append(t)
    for t in threads: t.join()
    time.sleep(1)
    during = rss()
    for s in held: s.close()
    time.sleep(2)
    return len(held), during, rss()
body = b"POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-length: 3145728\r\n\r\n" + b" " * (3145728 - 1)
for name, n, payload in [("idle TLS", 500, b""), ("slow headers", 300, b"POST /mutate HTTP/1.1\r\nhost: x\r\n"),
                         ("partial 3 MiB bodies", 100, body)]:
    before = rss()
    served, during, after = attack(n, payload)
    print(f"{name:22} {n} clients, {served:3} served at once: RSS {before:.1f} -> {during:.1f} MiB while held, {after:.1f} MiB after close")
PY
curl -sfk "$url/healthz" >/dev/null || echo "bench/webhook.sh: the server no longer answers after the attacks" >&2
attack_peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")

python3 - "$work" "$(wc -c <"$work/review.json")" "$(nproc)" "$(getconf CLK_TCK)" "$rss_kb" <<'PY'
import re, sys
work, size, cores, tck, rss_kb = sys.argv[1:6]
goals = {"rate": ("p99", lambda r: r["p99"] <= 5.0, "p99 <= 5 ms"),
         "saturation": ("rps", lambda r: r["rps"] >= 5000, ">= 5,000 reviews/s")}
print(f"review: Deployment UPDATE, {size} bytes, over TLS keep-alive; {cores} cores shared with hey")
print(f"{'run':12}{'reviews/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/review':>15}  goal")
for row in ("rate", "saturation"):
    text = open(f"{work}/{row}.txt").read()
    codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", text))
    total = sum(int(n) for n in codes.values())
    r = dict(rps=float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
             p50=float(re.search(r"50%+ in ([\d.]+) secs", text).group(1)) * 1000,
             p99=float(re.search(r"99%+ in ([\d.]+) secs", text).group(1)) * 1000,
             cpu=int(open(f"{work}/{row}.cpu").read()) / int(tck) * 1e6 / max(total, 1))
    _, ok, goal = goals[row]
    errors = re.search(r"Error distribution:(.*)", text, re.S)
    print(f"{row:12}{r['rps']:>11,.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['cpu']:>15.1f}  {goal}: "
          f"{'ok' if ok(r) else 'MISSED'}  (status codes {codes}{'; ERRORS ' + errors.group(1).strip() if errors else ''})")
print(f"server peak RSS under load: {int(rss_kb) / 1024:.1f} MiB")
PY
cat "$work/attacks.txt"
echo "server peak RSS after the attacks: $(( attack_peak_kb / 1024 )) MiB (chart memory limit: 128Mi)"

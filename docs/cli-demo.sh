#!/usr/bin/env bash
# Produces the `serin status -w` and `serin wait` output shown in README ("Operating canaries"):
# the in-memory API server (serin-testkit), `serin controller`, the real `serin loadtester` whose
# load (started by a rollout hook) two `loadtester` MetricTemplates score, and `serin demo-app`.
# Usage: cargo build -p serin -p serin-testkit && docs/cli-demo.sh
set -euo pipefail
BIN=${BIN:-target/debug}
DIR=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
LT_PORT=$(free_port); API_PORT=$(free_port)

APP_PORT=$(free_port)
# The real loadtester, and a demo app standing as the canary's pods: the rollout hook starts hey
# against it, and the two loadtester MetricTemplates score that load over each metric's interval.
"$BIN/serin" loadtester --port "$LT_PORT" > /dev/null 2>&1 & PIDS+=($!)
"$BIN/serin" demo-app --port "$APP_PORT" --version v2 > /dev/null 2>&1 & PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$LT_PORT/healthz" > /dev/null && break; sleep 0.1; done

"$BIN/serin" crds > "$DIR/crds.yaml"
cat > "$DIR/objects.yaml" <<YAML
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: httproutes.gateway.networking.k8s.io}
spec:
  group: gateway.networking.k8s.io
  scope: Namespaced
  names: {kind: HTTPRoute, plural: httproutes, singular: httproute, listKind: HTTPRouteList}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "ghcr.io/acme/web:1.0.0", ports: [{containerPort: 8080}]}]}
---
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: load-errors, namespace: shop}
spec:
  provider: {type: loadtester, address: "http://127.0.0.1:$LT_PORT"}
  query: "{{ namespace }}/{{ name }} error_rate"
---
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: load-p99, namespace: shop}
spec:
  provider: {type: loadtester, address: "http://127.0.0.1:$LT_PORT"}
  query: "{{ namespace }}/{{ name }} p99"
---
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web, namespace: shop}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service:
    port: 80
    targetPort: 8080
    gatewayRefs: [{name: gw, namespace: infra}]
  analysis:
    interval: 2s
    threshold: 3
    maxWeight: 60
    stepWeight: 20
    noDataPolicy: {action: halt, limit: 10}
    metrics:
      - {name: error-rate, interval: 2s, templateRef: {name: load-errors}, thresholdRange: {max: 0.01}}
      - {name: latency-p99-ms, interval: 2s, templateRef: {name: load-p99}, thresholdRange: {max: 500}}
    webhooks:
      - name: load
        type: rollout
        url: "http://127.0.0.1:$LT_PORT/"
        metadata: {type: cmd, cmd: "hey -z 10m -q 20 -c 2 http://127.0.0.1:$APP_PORT/"}
YAML
"$BIN/serin-testkit" apiserver --port "$API_PORT" --kubeconfig "$DIR/kubeconfig" \
  --seed "$DIR/crds.yaml" --seed "$DIR/objects.yaml" > /dev/null & PIDS+=($!)
for _ in $(seq 100); do [ -s "$DIR/kubeconfig" ] && break; sleep 0.1; done
export KUBECONFIG=$DIR/kubeconfig
"$BIN/serin" controller --mesh-provider gatewayapi:v1 --listen 127.0.0.1:0 --log-level error 2> /dev/null & PIDS+=($!)

"$BIN/serin" wait web -n shop --for promoted --timeout 60s   # the first revision is promoted at initialization
"$BIN/serin" status -n shop web -w > "$DIR/status.txt" & PIDS+=($!)
curl -sf -X PATCH -H 'Content-Type: application/merge-patch+json' \
  "http://127.0.0.1:$API_PORT/apis/apps/v1/namespaces/shop/deployments/web" \
  -d '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"ghcr.io/acme/web:1.1.0","ports":[{"containerPort":8080}]}]}}}}' > /dev/null
echo '$ serin wait web -n shop --for promoted --timeout 2m'
"$BIN/serin" wait web -n shop --for promoted --timeout 2m 2>&1
echo "exit $?"
sleep 1
echo
echo '$ serin status -n shop web -w'
cat "$DIR/status.txt"

# A second release, aborted mid-analysis: `serin wait` reports the reason and exits 1.
curl -sf -X PATCH -H 'Content-Type: application/merge-patch+json' \
  "http://127.0.0.1:$API_PORT/apis/apps/v1/namespaces/shop/deployments/web" \
  -d '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"ghcr.io/acme/web:1.2.0","ports":[{"containerPort":8080}]}]}}}}' > /dev/null
until "$BIN/serin" status -n shop web | grep -q 'Progressing.* 20%'; do sleep 0.2; done
echo
echo '$ serin abort web -n shop'
"$BIN/serin" abort web -n shop
echo '$ serin wait web -n shop --for promoted --timeout 1m'
code=0; "$BIN/serin" wait web -n shop --for promoted --timeout 1m 2>&1 || code=$?
echo "exit $code"
echo '$ serin promote web -n shop   # nothing runs any more: used up, with an event saying why'
"$BIN/serin" promote web -n shop

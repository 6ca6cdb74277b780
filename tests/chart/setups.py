"""The setups CI renders (default, Traefik with Prometheus, Gateway API, NGINX, one namespace,
cert-manager, loadtester only, alerts), what each must contain, and values that must be refused."""

from __future__ import annotations

import helm_python as helm
import yaml

from kube import check_semantics, validate_schemas
from render import CHART, args_of, by_kind, find, helm_template, rules_of, values_from_sets
from report import expect, fail, failures

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

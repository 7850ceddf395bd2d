"""Medians, ranges and same-round ratios."""

import pytest

from benchmarks import summary
from benchmarks.suite import rotated


def test_summarize_odd_and_even():
    assert summary.summarize([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    s = summary.summarize([4.0, 1.0, 2.0, 10.0])
    assert s["median"] == 3.0 and s["min"] == 1.0 and s["max"] == 10.0 and s["n"] == 4


def test_summarize_empty_is_an_error():
    with pytest.raises(ValueError):
        summary.summarize([])


def test_ratios_use_the_same_round():
    rnd = {
        "direct": {"rps": 200.0, "cpu_us_per_rq": None},
        "envoy": {"rps": 50.0, "cpu_us_per_rq": 40.0},
        "meshcore": {"rps": 150.0, "cpu_us_per_rq": 10.0},
    }
    summary.add_ratios(rnd)
    assert rnd["meshcore"]["ratio_direct"] == pytest.approx(0.75)
    assert rnd["meshcore"]["ratio_envoy"] == pytest.approx(3.0)
    assert rnd["meshcore"]["cpu_vs_envoy"] == pytest.approx(0.25)
    assert rnd["direct"]["ratio_direct"] == pytest.approx(1.0)
    assert rnd["direct"]["cpu_vs_envoy"] is None
    assert rnd["envoy"]["ratio_envoy"] == pytest.approx(1.0)


def test_ratios_without_reference_are_none():
    rnd = {"meshcore": {"rps": 150.0, "cpu_us_per_rq": 10.0}}
    summary.add_ratios(rnd)
    assert rnd["meshcore"]["ratio_direct"] is None
    assert rnd["meshcore"]["ratio_envoy"] is None
    assert summary.ratio(1.0, 0.0) is None


def test_summarize_target_skips_missing_and_round():
    got = summary.summarize_target(
        [
            {"round": 1.0, "rps": 10.0, "cpu_us_per_rq": None},
            {"round": 2.0, "rps": 30.0, "cpu_us_per_rq": 5.0},
            {"round": 3.0, "rps": 20.0, "cpu_us_per_rq": 7.0},
        ]
    )
    assert "round" not in got
    assert got["rps"] == {"median": 20.0, "min": 10.0, "max": 30.0, "n": 3}
    assert got["cpu_us_per_rq"]["n"] == 2
    assert got["cpu_us_per_rq"]["median"] == 6.0
    assert summary.median_of(got, "rps") == 20.0
    assert summary.median_of(got, "p99_ms") is None


def test_rotation_changes_who_goes_first():
    names = ["direct", "meshcore", "envoy"]
    assert rotated(names, 0) == names
    assert rotated(names, 1) == ["meshcore", "envoy", "direct"]
    assert rotated(names, 4) == ["meshcore", "envoy", "direct"]
    assert rotated([], 3) == []

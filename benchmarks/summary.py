"""The maths of a run: ratios within a round, then medians and ranges over rounds."""

from __future__ import annotations

import statistics
from typing import TypedDict

Sample = dict[str, float | None]


class Summary(TypedDict):
    median: float
    min: float
    max: float
    n: int


def summarize(values: list[float]) -> Summary:
    """Median and range of `values` (which must not be empty)."""
    if not values:
        raise ValueError("no values to summarize")
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is zero."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def add_ratios(round_samples: dict[str, Sample]) -> None:
    """Adds `ratio_direct` and `ratio_envoy` (requests/s against the direct and Envoy runs of
    the same round) and `cpu_vs_envoy` to each sample of one round of one scenario."""
    direct = round_samples.get("direct", {}).get("rps")
    envoy = round_samples.get("envoy", {})
    for s in round_samples.values():
        s["ratio_direct"] = ratio(s.get("rps"), direct)
        s["ratio_envoy"] = ratio(s.get("rps"), envoy.get("rps"))
        s["cpu_vs_envoy"] = ratio(s.get("cpu_us_per_rq"), envoy.get("cpu_us_per_rq"))


def summarize_target(samples: list[Sample]) -> dict[str, Summary]:
    """Per metric, the median and range over the rounds that measured it."""
    metrics: dict[str, list[float]] = {}
    for s in samples:
        for k, v in s.items():
            if v is not None and k != "round":
                metrics.setdefault(k, []).append(float(v))
    return {k: summarize(vs) for k, vs in metrics.items()}


def median_of(summaries: dict[str, Summary], metric: str) -> float | None:
    s = summaries.get(metric)
    return s["median"] if s else None

"""`/stats` in Envoy's text and JSON forms.

Text: counters and gauges together sorted by name as `name: value`, then histograms sorted
by name as `name: P0(interval,cumulative) P25(...) ... P100(...)` or `name: No recorded
values` for a histogram that never saw a sample.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from meshcore.admin.histogram import (
    SUPPORTED_PERCENTILES,
    Histogram,
    format_number,
    format_percentile_label,
    quantiles,
)
from meshcore.admin.stats_model import StatsSnapshot

NO_RECORDED_VALUES = "No recorded values"


def _interval_and_cumulative(
    snap: StatsSnapshot, name: str, hist: Histogram
) -> tuple[list[float], list[float]]:
    cumulative = quantiles(hist)
    interval_hist = snap.intervals.get(name)
    interval = quantiles(interval_hist) if interval_hist else [math.nan] * len(cumulative)
    return interval, cumulative


def histogram_summary(snap: StatsSnapshot, name: str, hist: Histogram) -> str:
    if hist.count == 0:
        return NO_RECORDED_VALUES
    interval, cumulative = _interval_and_cumulative(snap, name, hist)
    return " ".join(
        f"{format_percentile_label(p)}({format_number(i)},{format_number(c)})"
        for p, i, c in zip(SUPPORTED_PERCENTILES, interval, cumulative, strict=True)
    )


def render_text(snap: StatsSnapshot) -> str:
    scalars = {**snap.counters, **snap.gauges}
    lines = [f"{name}: {scalars[name]}" for name in sorted(scalars)]
    lines += [
        f"{name}: {histogram_summary(snap, name, snap.histograms[name])}"
        for name in sorted(snap.histograms)
    ]
    return "".join(line + "\n" for line in lines)


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else value


def render_json(snap: StatsSnapshot) -> bytes:
    """Envoy's `/stats?format=json`: `{"stats": [{"name", "value"}, ..., {"histograms":
    {"supported_quantiles": [...], "computed_quantiles": [{"name", "values": [{"interval",
    "cumulative"}]}]}}]}`; a missing quantile (no samples) is null."""
    scalars = {**snap.counters, **snap.gauges}
    stats: list[dict[str, Any]] = [{"name": n, "value": scalars[n]} for n in sorted(scalars)]
    if snap.histograms:
        computed = []
        for name in sorted(snap.histograms):
            interval, cumulative = _interval_and_cumulative(snap, name, snap.histograms[name])
            computed.append(
                {
                    "name": name,
                    "values": [
                        {"interval": _json_number(i), "cumulative": _json_number(c)}
                        for i, c in zip(interval, cumulative, strict=True)
                    ],
                }
            )
        stats.append(
            {
                "histograms": {
                    "supported_quantiles": list(SUPPORTED_PERCENTILES),
                    "computed_quantiles": computed,
                }
            }
        )
    return orjson.dumps({"stats": stats})

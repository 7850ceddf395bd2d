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
from meshcore.admin.stat_lines import SEP, parse_histogram
from meshcore.admin.stats_model import StatsSnapshot

NO_RECORDED_VALUES = "No recorded values"
_NO_VALUES = b": " + NO_RECORDED_VALUES.encode()
# What orjson escapes in a string (the separator NUL never occurs inside a name).
_ESCAPED = b'"\\' + bytes(range(1, 0x20))


def _needs_escape(text: bytes) -> bool:
    # Deleting the bytes is one C pass, several times faster than a regex search.
    return len(text.translate(None, _ESCAPED)) != len(text)


def _interval_and_cumulative(
    hist: Histogram, interval_hist: Histogram | None
) -> tuple[list[float], list[float]]:
    cumulative = quantiles(hist)
    interval = quantiles(interval_hist) if interval_hist else [math.nan] * len(cumulative)
    return interval, cumulative


def histogram_summary(hist: Histogram, interval: Histogram | None) -> str:
    if hist.count == 0:
        return NO_RECORDED_VALUES
    interval_q, cumulative = _interval_and_cumulative(hist, interval)
    return " ".join(
        f"{format_percentile_label(p)}({format_number(i)},{format_number(c)})"
        for p, i, c in zip(SUPPORTED_PERCENTILES, interval_q, cumulative, strict=True)
    )


def _histogram_text(line: bytes, bounds: tuple[float, ...]) -> bytes:
    name, _, rest = line.partition(SEP)
    if rest == b"0":  # never had a sample: no need to read it
        return name + _NO_VALUES
    return name + b": " + histogram_summary(*parse_histogram(line, bounds)).encode()


def _scalars(snap: StatsSnapshot) -> list[bytes]:
    """Counters and gauges together, sorted by name (two sorted runs: one merge)."""
    scalars = snap.counters.lines + snap.gauges.lines
    scalars.sort()
    return scalars


def render_text(snap: StatsSnapshot) -> str:
    scalars = b"\n".join(_scalars(snap)).replace(SEP, b": ")
    histograms = b"\n".join(_histogram_text(line, snap.bounds) for line in snap.histograms.lines)
    body = b"\n".join(part for part in (scalars, histograms) if part)
    return (body + b"\n").decode() if body else ""


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else value


_EMPTY_QUANTILES = orjson.dumps(
    [{"interval": None, "cumulative": None}] * len(SUPPORTED_PERCENTILES)
)


def _computed(line: bytes, bounds: tuple[float, ...]) -> bytes:
    name, _, rest = line.partition(SEP)
    if rest == b"0" and not _needs_escape(name):
        return b'{"name":"' + name + b'","values":' + _EMPTY_QUANTILES + b"}"
    hist, interval_hist = parse_histogram(line, bounds)
    interval, cumulative = _interval_and_cumulative(hist, interval_hist)
    values = [
        {"interval": _json_number(i), "cumulative": _json_number(c)}
        for i, c in zip(interval, cumulative, strict=True)
    ]
    return orjson.dumps({"name": name.decode(), "values": values})


def _scalars_json(scalars: list[bytes]) -> bytes:
    """`{"name":"n","value":v},...`, as orjson writes it; joined as bytes unless a name needs
    escaping."""
    if _needs_escape(b"".join(scalars)):
        entries: list[dict[str, Any]] = []
        for line in scalars:
            name, _, value = line.partition(SEP)
            entries.append({"name": name.decode(), "value": int(value)})
        return orjson.dumps(entries)[1:-1]
    return b'{"name":"' + b'},{"name":"'.join(scalars).replace(SEP, b'","value":') + b"}"


def render_json(snap: StatsSnapshot) -> bytes:
    """Envoy's `/stats?format=json`: `{"stats": [{"name", "value"}, ..., {"histograms":
    {"supported_quantiles": [...], "computed_quantiles": [{"name", "values": [{"interval",
    "cumulative"}]}]}}]}`; a missing quantile (no samples) is null."""
    parts = []
    scalars = _scalars(snap)
    if scalars:
        parts.append(_scalars_json(scalars))
    if snap.histograms.lines:
        computed = b",".join(_computed(line, snap.bounds) for line in snap.histograms.lines)
        supported = orjson.dumps(list(SUPPORTED_PERCENTILES))
        parts.append(
            b'{"histograms":{"supported_quantiles":'
            + supported
            + b',"computed_quantiles":['
            + computed
            + b"]}}"
        )
    return b'{"stats":[' + b",".join(parts) + b"]}"

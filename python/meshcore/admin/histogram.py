"""Histograms from the engine's buckets: quantiles, interval differences, number formatting."""

from __future__ import annotations

import math
from dataclasses import dataclass

# The engine's bucket bounds (Envoy's defaults; `meshcore._fastpath.HISTOGRAM_BOUNDS_MS`).
ENGINE_BOUNDS_MS: tuple[float, ...] = (
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
    30000.0, 60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
)  # fmt: skip

# The percentiles Envoy reports (`/stats` prints them as P0 ... P100).
SUPPORTED_PERCENTILES: tuple[int | float, ...] = (0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100)


@dataclass(frozen=True)
class Histogram:
    """`bounds` are bucket upper bounds (inclusive); `counts` has one more entry than
    `bounds`, the last counting samples above the largest bound."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    sum: float
    count: int

    def __post_init__(self) -> None:
        if len(self.counts) != len(self.bounds) + 1:
            raise ValueError(
                f"histogram has {len(self.counts)} counts for {len(self.bounds)} bounds "
                f"(expected {len(self.bounds) + 1})"
            )

    def cumulative_counts(self) -> list[int]:
        """Samples at or below each bound (Prometheus `le` buckets), without the +Inf one."""
        out: list[int] = []
        running = 0
        for n in self.counts[:-1]:
            running += n
            out.append(running)
        return out

    def minus(self, earlier: Histogram) -> Histogram:
        """The samples recorded since `earlier` (an older reading of the same histogram);
        all of self if the bucket layout changed."""
        if earlier.bounds != self.bounds:
            return self
        return Histogram(
            self.bounds,
            tuple(max(a - b, 0) for a, b in zip(self.counts, earlier.counts, strict=True)),
            self.sum - earlier.sum,
            max(self.count - earlier.count, 0),
        )


def quantile(hist: Histogram, q: float) -> float:
    """The q-quantile (0..1), interpolated linearly inside the bucket holding it, as Envoy's
    circllhist does inside its bins: P0 is the lower edge of the first non-empty bucket,
    P100 the upper edge of the last. The first bucket starts at 0; samples above the largest
    bound are reported as that bound (their real values are unknown). NaN if empty."""
    total = sum(hist.counts)
    if total == 0:
        return math.nan
    rank = q * total
    below = 0
    for i, n in enumerate(hist.counts):
        if n and below + n >= rank:
            if i == len(hist.bounds):
                return hist.bounds[-1] if hist.bounds else 0.0
            lower = hist.bounds[i - 1] if i > 0 else 0.0
            upper = hist.bounds[i]
            fraction = min(max((rank - below) / n, 0.0), 1.0)
            return lower + (upper - lower) * fraction
        below += n
    raise AssertionError("unreachable: rank never exceeds the total")


def quantiles(hist: Histogram) -> list[float]:
    """The value at each of SUPPORTED_PERCENTILES."""
    return [quantile(hist, p / 100) for p in SUPPORTED_PERCENTILES]


def format_number(value: float) -> str:
    """A double as Envoy's `fmt::format("{}")` prints it: shortest round-trip digits, no
    trailing `.0`, `nan` for NaN (`1.05`, `10`, `1e+16`)."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def format_percentile_label(percentile: float) -> str:
    """`P99.5`, as Envoy's `fmt::format("P{:g}", 100 * q)`."""
    return f"P{percentile:g}"

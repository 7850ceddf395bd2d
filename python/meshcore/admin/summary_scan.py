"""Reads the few per-cluster and per-connection-manager stats the summary needs straight out
of the engine's flat export (sorted `name\\0value` lines): one C-speed regex scan per export
yields a column per stat, with no Python step per stat line (10,000 clusters carry ~520,000
stats, of which the summary wants 14 each)."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable
from itertools import accumulate

from meshcore.admin.histogram import ENGINE_BOUNDS_MS
from meshcore.admin.stat_lines import Lines, split_lines

CLUSTER = b"cluster."
HTTP = b"http."
_RQ_TIME = b".upstream_rq_time"
_EJECTED = b".outlier_detection.ejections_active\0"

# The stats one scan finds, in the order they sort within a cluster's lines; the pattern
# captures the value only (a group per name would cost a tuple per match).
COUNTER_STATS = (
    "upstream_rq_1xx", "upstream_rq_2xx", "upstream_rq_3xx", "upstream_rq_4xx",
    "upstream_rq_5xx", "upstream_rq_total",
)  # fmt: skip
GAUGE_STATS = (
    "circuit_breakers.default.cx_open", "circuit_breakers.default.rq_open",
    "circuit_breakers.default.rq_pending_open", "circuit_breakers.default.rq_retry_open",
    "membership_healthy", "membership_total", "upstream_cx_active", "upstream_rq_active",
)  # fmt: skip
_COUNTERS = re.compile(rb"\.upstream_rq_(?:[1-5]xx|total)\0(\d+)\n")
_GAUGES = re.compile(
    rb"\.(?:circuit_breakers\.default\.(?:cx|rq|rq_pending|rq_retry)_open"
    rb"|membership_(?:healthy|total)|upstream_(?:cx|rq)_active)\0(-?\d+)\n"
)
assert list(COUNTER_STATS) == sorted(COUNTER_STATS) and list(GAUGE_STATS) == sorted(GAUGE_STATS)

Columns = dict[str, list[bytes]]
"""Stat name -> its value (ASCII digits, as the engine wrote it) for each cluster."""


def prefix_region(blob: bytes, prefix: bytes) -> tuple[int, int]:
    """[start, end) of the lines of a sorted export whose names start with `prefix` (they are
    contiguous); (0, 0) when there are none."""
    if blob.startswith(prefix):
        start = 0
    else:
        at = blob.find(b"\n" + prefix)
        if at < 0:
            return 0, 0
        start = at + 1
    last = blob.rfind(b"\n" + prefix, start)
    last = start if last < 0 else last + 1
    end = blob.find(b"\n", last)
    return start, len(blob) if end < 0 else end + 1


def interval_p99(fields: bytes, bounds: tuple[float, ...] = ENGINE_BOUNDS_MS) -> float | None:
    """p99 (ms) of a histogram line's last flush interval, None when it had no samples.
    `histogram.quantile`'s interpolation, with a binary search over running totals instead
    of a Histogram per line (it runs for up to every cluster of the summary)."""
    buckets = len(bounds) + 1
    if fields.count(b" ") != 1 + 2 * buckets:
        return None
    counts = list(map(int, fields.split(b" ")[2 + buckets :]))
    running = list(accumulate(counts))
    total = running[-1]
    if total == 0:
        return None
    rank = 0.99 * total
    i = bisect_left(running, rank)  # the first bucket whose running total reaches the rank
    if i >= len(bounds):
        return bounds[-1]
    below = running[i - 1] if i else 0
    lower = bounds[i - 1] if i else 0.0
    fraction = min(max((rank - below) / counts[i], 0.0), 1.0)
    return round(lower + (bounds[i] - lower) * fraction, 3)


def cumulative_buckets(fields: bytes, bounds: tuple[float, ...] = ENGINE_BOUNDS_MS) -> list[int]:
    """A histogram line's cumulative per-bucket counts (zeros while it has no samples)."""
    parts = fields.split(b" ")
    buckets = len(bounds) + 1
    if len(parts) < 2 + buckets:
        return [0] * buckets
    return [int(c) for c in parts[2 : 2 + buckets]]


def cluster_latency(histograms: bytes) -> tuple[list[bytes], list[bytes]]:
    """(names, `upstream_rq_time` fields) of every cluster, in export order: every cluster
    has the histogram (shown from zero), so these are also the cluster names."""
    start, end = prefix_region(histograms, CLUSTER)
    names: list[bytes] = []
    fields: list[bytes] = []
    cut = len(CLUSTER)
    for line in split_lines(histograms[start:end]):
        name, _, rest = line.partition(b"\0")
        if name.endswith(_RQ_TIME):
            names.append(name[cut : -len(_RQ_TIME)])
            fields.append(rest)
    return names, fields


def dot_prefix_free(names: Iterable[bytes]) -> bool:
    """True when no name is another's name plus `.something`. Then the clusters come in the
    same order for every stat (`a` and `a.b` would not: `cluster.a.b.x` sorts between
    `cluster.a.membership_total` and `cluster.a.upstream_rq_total`)."""
    known = set(names)
    for name in known:
        at = name.find(b".")
        while at >= 0:
            if name[:at] in known:
                return False
            at = name.find(b".", at + 1)
    return True


def _scan(
    blob: bytes, pattern: re.Pattern[bytes], stats: tuple[str, ...], clusters: int
) -> Columns | None:
    """One column per stat; None unless every cluster had exactly one line of each (the
    stats of a set exist for every cluster scope, so a count off means a layout this scan
    does not know, e.g. a nested scope with the same stat names)."""
    start, end = prefix_region(blob, CLUSTER)
    found = pattern.findall(blob, start, end)
    width = len(stats)
    if len(found) != width * clusters:
        return None
    return {stat: found[i::width] for i, stat in enumerate(stats)}


def _lookup(blob: bytes, stats: tuple[str, ...], names: list[bytes]) -> Columns:
    """The slow path of `_scan`: a binary search per stat (a missing stat reads 0)."""
    lines = Lines(split_lines(blob))
    columns: Columns = {stat: [] for stat in stats}
    for name in names:
        scope = f"cluster.{name.decode()}."
        for stat in stats:
            columns[stat].append(str(lines.get(scope + stat) or 0).encode())
    return columns


def cluster_columns(raw: tuple[bytes, bytes, bytes], names: list[bytes]) -> tuple[Columns, bool]:
    """The COUNTER_STATS and GAUGE_STATS columns for `names` (in export order), and whether
    the fast scan served both."""
    safe = dot_prefix_free(names)
    columns: Columns = {}
    fast = True
    scans = ((raw[0], _COUNTERS, COUNTER_STATS), (raw[1], _GAUGES, GAUGE_STATS))
    for blob, pattern, stats in scans:
        found = _scan(blob, pattern, stats, len(names)) if safe else None
        if found is None:
            fast = False
            found = _lookup(blob, stats, names)
        columns.update(found)
    return columns, fast


def ejections(gauges: bytes) -> dict[bytes, int]:
    """`outlier_detection.ejections_active` by cluster name, for the clusters that have
    outlier detection (the only ones with the gauge)."""
    out: dict[bytes, int] = {}
    pos = gauges.find(_EJECTED)
    while pos >= 0:
        start = gauges.rfind(b"\n", 0, pos) + 1
        end = gauges.find(b"\n", pos)
        end = len(gauges) if end < 0 else end
        if gauges.startswith(CLUSTER, start):
            out[gauges[start + len(CLUSTER) : pos]] = int(gauges[pos + len(_EJECTED) : end])
        pos = gauges.find(_EJECTED, end)
    return out


def http_stats(blob: bytes) -> dict[bytes, bytes]:
    """`http.*` lines of one export, name -> value (a few dozen per connection manager)."""
    start, end = prefix_region(blob, HTTP)
    out: dict[bytes, bytes] = {}
    for line in split_lines(blob[start:end]):
        name, _, value = line.partition(b"\0")
        out[name] = value
    return out

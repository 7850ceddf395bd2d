"""`/stats/prometheus`: the Prometheus text exposition as Envoy renders it.

Names are `envoy_` + the tag-extracted stat name with every character outside
[a-zA-Z0-9_] replaced by `_`; tags become labels (`envoy.cluster_name` ->
`envoy_cluster_name`). Counters, then gauges, then histograms, each family sorted by name
and headed by `# TYPE`. Histograms print cumulative `_bucket{le=...}` lines, `_sum` and
`_count`; bounds and sums use `%.32g` like Envoy.
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import lru_cache

from meshcore.admin.histogram import Histogram
from meshcore.admin.stat_lines import SEP, Lines, parse_histogram
from meshcore.admin.stats_model import StatsSnapshot
from meshcore.admin.tags import extract_tags

_INVALID = re.compile(r"[^a-zA-Z0-9_]")

Labels = tuple[tuple[str, str], ...]


# The caches below hold what repeats across the ~500,000 stats of 10,000 clusters: metric
# names (a few dozen), tag names, and each cluster's label set.


@lru_cache(maxsize=4096)
def _sanitized(text: str) -> str:
    return _INVALID.sub("_", text)


def metric_name(stat_name: str) -> tuple[str, Labels]:
    """`cluster.a.upstream_rq_200` -> (`envoy_cluster_upstream_rq`, (("envoy_response_code",
    "200"), ("envoy_cluster_name", "a")))."""
    extracted, tags = extract_tags(stat_name)
    labels = tuple((_sanitized(tag), value) for tag, value in tags)
    return "envoy_" + _sanitized(extracted), labels


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@lru_cache(maxsize=65536)
def _label_list(labels: Labels) -> str:
    """`a="x",b="y"` (no braces)."""
    return ",".join(f'{name}="{_escape(value)}"' for name, value in labels)


def _labels(labels: Labels, extra: str = "") -> str:
    inner = _label_list(labels)
    if extra:
        inner = f"{inner},{extra}" if inner else extra
    return "{" + inner + "}"


def _le(bound: str) -> str:
    return f'le="{bound}"'


def _g32(value: float) -> str:
    return format(value, ".32g")


@lru_cache(maxsize=256)
def _le_bound(bound: float) -> str:
    return _le(_g32(bound))


def _families(lines: Lines) -> dict[str, list[tuple[Labels, bytes]]]:
    """Metric name -> [(labels, line)], members in stat name order (the lines' order)."""
    families: defaultdict[str, list[tuple[Labels, bytes]]] = defaultdict(list)
    for line in lines.lines:
        name, labels = metric_name(line[: line.index(SEP)].decode())
        families[name].append((labels, line))
    return families


def _scalar_section(stats: Lines, kind: str) -> list[str]:
    lines: list[str] = []
    families = _families(stats)
    for name in sorted(families):
        lines.append(f"# TYPE {name} {kind}")
        lines += [
            f"{name}{_labels(labels)} {line[line.index(SEP) + 1 :].decode()}"
            for labels, line in families[name]
        ]
    return lines


def _histogram_lines(name: str, labels: Labels, hist: Histogram) -> list[str]:
    lines = [
        f"{name}_bucket{_labels(labels, _le_bound(bound))} {count}"
        for bound, count in zip(hist.bounds, hist.cumulative_counts(), strict=True)
    ]
    lines.append(f"{name}_bucket{_labels(labels, _le('+Inf'))} {hist.count}")
    lines.append(f"{name}_sum{_labels(labels)} {_g32(hist.sum)}")
    lines.append(f"{name}_count{_labels(labels)} {hist.count}")
    return lines


def render_prometheus(snap: StatsSnapshot) -> str:
    lines = _scalar_section(snap.counters, "counter")
    lines += _scalar_section(snap.gauges, "gauge")
    families = _families(snap.histograms)
    for name in sorted(families):
        lines.append(f"# TYPE {name} histogram")
        for labels, line in families[name]:
            hist, _interval = parse_histogram(line, snap.bounds)
            lines += _histogram_lines(name, labels, hist)
    return "".join(line + "\n" for line in lines)

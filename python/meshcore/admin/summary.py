"""`/stats/summary`: the compact JSON the admin page and `meshcore top` poll: per HTTP
connection manager and per cluster (one array per field), the counters rates are computed
from, health and latency, computed by the control layer from one `Engine.stats()` export."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import orjson

from meshcore.admin import summary_scan
from meshcore.admin.histogram import ENGINE_BOUNDS_MS
from meshcore.admin.stats_model import server_gauges
from meshcore.lifecycle.interfaces import EngineApi
from meshcore.lifecycle.state import ServerState

VERSION = 1

# Summary field -> engine stat, per cluster (`cluster.<name>.<stat>`).
CLUSTER_STATS = {
    "rq_total": "upstream_rq_total",
    "rq_1xx": "upstream_rq_1xx",
    "rq_2xx": "upstream_rq_2xx",
    "rq_3xx": "upstream_rq_3xx",
    "rq_4xx": "upstream_rq_4xx",
    "rq_5xx": "upstream_rq_5xx",
    "rq_active": "upstream_rq_active",
    "cx_active": "upstream_cx_active",
    "hosts": "membership_total",
    "healthy": "membership_healthy",
    "cb_cx_open": "circuit_breakers.default.cx_open",
    "cb_rq_open": "circuit_breakers.default.rq_open",
    "cb_rq_pending_open": "circuit_breakers.default.rq_pending_open",
    "cb_rq_retry_open": "circuit_breakers.default.rq_retry_open",
}
# Summary field -> engine stat, per HTTP connection manager (`http.<stat_prefix>.<stat>`).
HTTP_COUNTERS = {
    "rq_total": b"downstream_rq_total",
    "rq_1xx": b"downstream_rq_1xx",
    "rq_2xx": b"downstream_rq_2xx",
    "rq_3xx": b"downstream_rq_3xx",
    "rq_4xx": b"downstream_rq_4xx",
    "rq_5xx": b"downstream_rq_5xx",
}
HTTP_GAUGES = {"rq_active": b"downstream_rq_active", "cx_active": b"downstream_cx_active"}
_HTTP_TIME = b".downstream_rq_time"


def _http(raw: tuple[bytes, bytes, bytes]) -> list[dict[str, Any]]:
    counters, gauges, histograms = (summary_scan.http_stats(blob) for blob in raw)
    prefixes = sorted(
        name[len(summary_scan.HTTP) : -len(_HTTP_TIME)]
        for name in histograms
        if name.endswith(_HTTP_TIME)
    )
    out = []
    for prefix in prefixes:
        scope = summary_scan.HTTP + prefix + b"."
        row: dict[str, Any] = {"name": prefix.decode()}
        row.update({k: int(counters.get(scope + s, b"0")) for k, s in HTTP_COUNTERS.items()})
        row.update({k: int(gauges.get(scope + s, b"0")) for k, s in HTTP_GAUGES.items()})
        row["rq_time"] = summary_scan.cumulative_buckets(histograms[scope + _HTTP_TIME[1:]])
        out.append(row)
    return out


def _numbers(values: list[bytes]) -> orjson.Fragment:
    # The engine's values are ASCII integers (the scan's `-?\d+`): already JSON numbers.
    return orjson.Fragment(b"[" + b",".join(values) + b"]")


def _clusters(raw: tuple[bytes, bytes, bytes], pattern: re.Pattern[str] | None) -> dict[str, Any]:
    names, latency = summary_scan.cluster_latency(raw[2])
    columns, fast = summary_scan.cluster_columns(raw, names)
    ejected_by_name = summary_scan.ejections(raw[1])
    text = [name.decode() for name in names]
    ejected = [ejected_by_name.get(name) for name in names] if ejected_by_name else None
    keep: list[int] | None = None
    if pattern is not None:
        keep = [i for i, name in enumerate(text) if pattern.search(name)]
        text = [text[i] for i in keep]
        latency = [latency[i] for i in keep]
        if ejected is not None:
            ejected = [ejected[i] for i in keep]
    out: dict[str, Any] = {"count": len(text), "fast_scan": fast, "name": text}
    for field, stat in CLUSTER_STATS.items():
        column = columns[stat]
        out[field] = _numbers(column if keep is None else [column[i] for i in keep])
    out["ejected"] = ejected if ejected is not None else [None] * len(text)
    out["p99_ms"] = [summary_scan.interval_p99(fields) for fields in latency]
    return out


def summarize(
    engine: EngineApi, state: ServerState, pattern: re.Pattern[str] | None = None
) -> dict[str, Any]:
    """The summary document (docs/admin.md); `pattern` picks clusters by name (`re.search`)."""
    raw = engine.stats()
    gauges = server_gauges(state, engine)
    return {
        "version": VERSION,
        "time_s": round(time.monotonic(), 6),
        "server": {
            "state": state.reported_phase().name,
            "uptime_s": gauges["server.uptime"],
            "concurrency": gauges["server.concurrency"],
            "connections": gauges["server.total_connections"],
            "memory_bytes": gauges["server.memory_physical_size"],
            "stats_flush_interval_s": getattr(state.config, "stats_flush_interval_s", 5.0),
        },
        "bounds_ms": list(ENGINE_BOUNDS_MS),
        "http": _http(raw),
        "clusters": _clusters(raw, pattern),
    }


def render(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc)


class SummaryCache:
    """The last unfiltered summary, reused for `max_age_s` so that several open admin pages
    (or `meshcore top`s) polling at once cost one summary between them."""

    def __init__(self, max_age_s: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s = max_age_s
        self._clock = clock
        self._at = 0.0
        self._body: bytes | None = None

    def get(self, build: Callable[[], bytes]) -> bytes:
        now = self._clock()
        if self._body is None or now - self._at >= self.max_age_s:
            self._body = build()
            self._at = now
        return self._body

"""`/stats/summary`: the columns read from the engine's flat export (fast scan and the
lookup it falls back to), connection managers, latency, the cluster filter, the cache, and
the admin routes for it and for the page's static files."""

from __future__ import annotations

import random
import re
from typing import Any

import orjson
import pytest
from meshcore.admin import summary, summary_scan
from meshcore.admin.handlers import AdminApp, AdminContext
from meshcore.admin.histogram import ENGINE_BOUNDS_MS, Histogram, quantile
from meshcore.admin.server import Request
from meshcore.admin.stat_lines import encode
from meshcore.admin.stats_model import StatsCollector
from meshcore.lifecycle.control_stats import ControlStats
from meshcore.lifecycle.state import Phase, ServerOptions, ServerState

BUCKETS = len(ENGINE_BOUNDS_MS) + 1
# Cluster stats besides the ones the summary reads, so the scan must skip them.
OTHER_COUNTERS = ("upstream_cx_total", "upstream_rq_completed", "upstream_rq_timeout")
OTHER_GAUGES = ("circuit_breakers.default.remaining_cx",)


def hist_line(cumulative: list[int] | None, interval: list[int] | None = None) -> str:
    if cumulative is None:
        return "0"
    fields = [str(sum(cumulative)), "1.5", *map(str, cumulative)]
    if interval is not None:
        fields += map(str, interval)
    return " ".join(fields)


def buckets(**at: int) -> list[int]:
    """Bucket counts: `b5=3` puts 3 samples in bucket 5 (25–50 ms)."""
    out = [0] * BUCKETS
    for key, n in at.items():
        out[int(key[1:])] = n
    return out


class StatsEngine:
    """An engine whose `stats()` is built like the real export: every stat of a cluster's
    sets, sorted by name."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        self.gauges: dict[str, int] = {}
        self.histograms: dict[str, str] = {}
        self.active = 2

    def add_cluster(
        self,
        name: str,
        *,
        counters: dict[str, int] | None = None,
        gauges: dict[str, int] | None = None,
        rq_time: str = "0",
        ejections: int | None = None,
    ) -> None:
        scope = f"cluster.{name}."
        for stat in (*summary_scan.COUNTER_STATS, *OTHER_COUNTERS):
            self.counters[scope + stat] = (counters or {}).get(stat, 0)
        for stat in (*summary_scan.GAUGE_STATS, *OTHER_GAUGES):
            default = 1 if stat.startswith("membership_") else 0
            self.gauges[scope + stat] = (gauges or {}).get(stat, default)
        if ejections is not None:
            self.gauges[scope + "outlier_detection.ejections_active"] = ejections
        self.histograms[scope + "upstream_rq_time"] = rq_time
        self.histograms[scope + "upstream_cx_connect_ms"] = "0"

    def add_http(self, prefix: str, values: dict[str, int], rq_time: str) -> None:
        scope = f"http.{prefix}."
        for key, stat in summary.HTTP_COUNTERS.items():
            self.counters[scope + stat.decode()] = values.get(key, 0)
        for key, stat in summary.HTTP_GAUGES.items():
            self.gauges[scope + stat.decode()] = values.get(key, 0)
        self.counters[scope + "no_route"] = 0
        self.histograms[scope + "downstream_rq_time"] = rq_time
        self.histograms[scope + "downstream_cx_length_ms"] = "0"

    def stats(self) -> tuple[bytes, bytes, bytes]:
        hist = sorted(f"{name}\0{value}".encode() for name, value in self.histograms.items())
        return tuple(  # type: ignore[return-value]
            b"".join(line + b"\n" for line in lines)
            for lines in (encode(self.counters), encode(self.gauges), hist)
        )

    def active_connections(self) -> int:
        return self.active


def state() -> ServerState:
    st = ServerState(ServerOptions(config_path="x", concurrency=3))
    st.phase = Phase.LIVE
    return st


def columns(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The cluster columns as name -> field -> value."""
    parsed = orjson.loads(summary.render(doc))["clusters"]
    fields = [f for f in parsed if isinstance(parsed[f], list) and f != "name"]
    return {name: {f: parsed[f][i] for f in fields} for i, name in enumerate(parsed["name"])}


def two_clusters(engine: StatsEngine, second: str = "b") -> None:
    engine.add_cluster(
        "a",
        counters={"upstream_rq_total": 12, "upstream_rq_2xx": 9, "upstream_rq_5xx": 3},
        gauges={"upstream_rq_active": 2, "upstream_cx_active": 4, "membership_total": 3,
                "membership_healthy": 2},
        rq_time=hist_line(buckets(b5=12), buckets(b5=99, b6=1)),
    )  # fmt: skip
    engine.add_cluster(
        second,
        counters={"upstream_rq_total": 1, "upstream_rq_4xx": 1},
        gauges={"circuit_breakers.default.rq_open": 1},
        rq_time=hist_line(buckets(b1=1)),
        ejections=1,
    )


def test_cluster_columns_from_the_fast_scan():
    engine = StatsEngine()
    two_clusters(engine)
    doc = summary.summarize(engine, state())  # type: ignore[arg-type]
    assert doc["clusters"]["fast_scan"] is True
    assert doc["clusters"]["count"] == 2
    got = columns(doc)
    assert got["a"] == {
        "rq_total": 12, "rq_1xx": 0, "rq_2xx": 9, "rq_3xx": 0, "rq_4xx": 0, "rq_5xx": 3,
        "rq_active": 2, "cx_active": 4, "hosts": 3, "healthy": 2, "cb_cx_open": 0,
        "cb_rq_open": 0, "cb_rq_pending_open": 0, "cb_rq_retry_open": 0, "ejected": None,
        # 99 samples in 25–50 ms and one in 50–100: the 99th is at the top of 25–50.
        "p99_ms": 50.0,
    }  # fmt: skip
    assert got["b"]["rq_4xx"] == 1
    assert got["b"]["cb_rq_open"] == 1
    assert got["b"]["ejected"] == 1
    assert got["b"]["p99_ms"] is None  # no flush interval reading yet
    assert doc["server"] == {
        "state": "LIVE",
        "uptime_s": 0,
        "concurrency": 3,
        "connections": 2,
        "memory_bytes": doc["server"]["memory_bytes"],
        "stats_flush_interval_s": 5.0,  # no config yet: Envoy's default
    }


def test_server_reports_the_configs_stats_flush_interval():
    class Config:
        stats_flush_interval_s = 2.5

    st = state()
    st.set_config(Config())  # type: ignore[arg-type]
    doc = summary.summarize(StatsEngine(), st)  # type: ignore[arg-type]
    assert doc["server"]["stats_flush_interval_s"] == 2.5


@pytest.mark.parametrize(
    "layout",
    ["nested names", "unknown nested scope"],
)
def test_layouts_the_scan_does_not_know_fall_back_to_lookups(layout):
    engine = StatsEngine()
    if layout == "nested names":
        # `a.b` sorts inside `a`'s lines, differently for each stat name.
        two_clusters(engine, second="a.b")
        expected_second = "a.b"
    else:
        two_clusters(engine)
        engine.counters["cluster.a.canary.upstream_rq_2xx"] = 5
        expected_second = "b"
    doc = summary.summarize(engine, state())  # type: ignore[arg-type]
    assert doc["clusters"]["fast_scan"] is False
    got = columns(doc)
    assert (got["a"]["rq_2xx"], got["a"]["rq_5xx"], got["a"]["healthy"]) == (9, 3, 2)
    assert got[expected_second]["rq_4xx"] == 1
    assert got[expected_second]["cb_rq_open"] == 1
    assert got[expected_second]["ejected"] == 1


def test_http_rows_carry_counters_and_cumulative_latency_buckets():
    engine = StatsEngine()
    two_clusters(engine)
    engine.add_http(
        "ingress",
        {"rq_total": 20, "rq_2xx": 15, "rq_5xx": 4, "rq_active": 1, "cx_active": 3},
        hist_line(buckets(b2=19), buckets(b2=4)),
    )
    engine.add_http("admin.side", {"rq_total": 1, "rq_4xx": 1}, "0")
    doc = summary.summarize(engine, state())  # type: ignore[arg-type]
    rows = {row["name"]: row for row in doc["http"]}
    assert rows["ingress"] == {
        "name": "ingress", "rq_total": 20, "rq_1xx": 0, "rq_2xx": 15, "rq_3xx": 0,
        "rq_4xx": 0, "rq_5xx": 4, "rq_active": 1, "cx_active": 3, "rq_time": buckets(b2=19),
    }  # fmt: skip
    assert rows["admin.side"]["rq_4xx"] == 1
    assert rows["admin.side"]["rq_time"] == [0] * BUCKETS
    assert doc["bounds_ms"] == list(ENGINE_BOUNDS_MS)


def test_filter_keeps_matching_clusters_with_their_own_values():
    engine = StatsEngine()
    two_clusters(engine)
    engine.add_cluster("c", counters={"upstream_rq_total": 7})
    doc = summary.summarize(engine, state(), re.compile("^[bc]$"))  # type: ignore[arg-type]
    got = columns(doc)
    assert list(got) == ["b", "c"]
    assert got["b"]["ejected"] == 1 and got["c"]["ejected"] is None
    assert got["c"]["rq_total"] == 7
    assert doc["clusters"]["count"] == 2


def test_no_clusters():
    doc = summary.summarize(StatsEngine(), state())  # type: ignore[arg-type]
    assert doc["clusters"]["count"] == 0
    assert orjson.loads(summary.render(doc))["clusters"]["rq_total"] == []
    assert doc["http"] == []


def test_prefix_region():
    blob = b"a.x\x001\ncluster.a.y\x002\ncluster.b.y\x003\nhttp.z\x004\n"
    start, end = summary_scan.prefix_region(blob, b"cluster.")
    assert blob[start:end] == b"cluster.a.y\x002\ncluster.b.y\x003\n"
    assert summary_scan.prefix_region(blob, b"listener.") == (0, 0)
    start, end = summary_scan.prefix_region(blob, b"a.")
    assert blob[start:end] == b"a.x\x001\n"


def test_cache_reuses_a_summary_for_its_max_age():
    now = [100.0]
    cache = summary.SummaryCache(0.5, clock=lambda: now[0])
    built: list[int] = []

    def build() -> bytes:
        built.append(1)
        return str(len(built)).encode()

    assert cache.get(build) == b"1"
    now[0] += 0.4
    assert cache.get(build) == b"1"
    now[0] += 0.1
    assert cache.get(build) == b"2"


def app() -> AdminApp:
    engine = StatsEngine()
    two_clusters(engine)
    st = state()
    ctx = AdminContext(engine, st, StatsCollector(engine, st, ControlStats()), lambda *_: "")  # type: ignore[arg-type]
    return AdminApp(ctx)


def request(path: str, method: str = "GET", **query: str) -> Request:
    return Request(method, path, query, [], b"")


async def test_summary_endpoint():
    response = await app()(request("/stats/summary"))
    assert response.status == 200
    assert response.content_type == "application/json"
    doc = orjson.loads(response.body)
    assert doc["version"] == summary.VERSION
    assert doc["clusters"]["name"] == ["a", "b"]
    filtered = orjson.loads((await app()(request("/stats/summary", filter="^b"))).body)
    assert filtered["clusters"]["name"] == ["b"]
    bad = await app()(request("/stats/summary", filter="("))
    assert bad.status == 400
    assert bad.body.startswith(b"Invalid regex")


async def test_static_files_of_the_page():
    admin = app()
    js = await admin(request("/static/dashboard.js"))
    assert (js.status, js.content_type) == (200, "text/javascript; charset=UTF-8")
    assert b'fetch("/stats/summary"' in js.body
    css = await admin(request("/static/dashboard.css"))
    assert (css.status, css.content_type) == (200, "text/css; charset=UTF-8")
    for path in ("/static/../handlers.py", "/static/nope.js", "/static/", "/static/index.html"):
        assert (await admin(request(path))).status == 404, path
    assert (await admin(request("/static/dashboard.js", "POST"))).status == 404
    home = await admin(request("/"))
    assert b'<script src="/static/dashboard.js" defer></script>' in home.body
    assert b"<a href='/stats/summary'>/stats/summary</a>" in home.body
    assert b"<!--ENDPOINTS-->" not in home.body


def test_interval_p99_is_the_histograms_quantile():
    rng = random.Random(8)
    for _ in range(500):
        interval = [rng.choice((0, 0, 0, 1, 3, 50)) for _ in range(BUCKETS)]
        line = hist_line([1] * BUCKETS, interval).encode()
        expected = quantile(Histogram(ENGINE_BOUNDS_MS, tuple(interval), 0.0, 0), 0.99)
        got = summary_scan.interval_p99(line)
        if sum(interval) == 0:
            assert got is None
        else:
            assert got == pytest.approx(round(expected, 3), abs=1e-9), interval
    assert summary_scan.interval_p99(hist_line([1] * BUCKETS).encode()) is None
    assert summary_scan.interval_p99(b"0") is None

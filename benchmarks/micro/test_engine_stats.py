"""Stats with 10,000 clusters loaded (~520,000 stats): `Engine.stats()` (the flat export), the
stats flush the collector runs every 5 s, the admin's `/stats` in text and JSON (engine
export, merge with the control layer's stats, render), `/clusters` text, and the admin page's
`/stats/summary` (idle, and with every cluster's latency histogram to read)."""

from __future__ import annotations

import orjson
import pytest
from meshcore._fastpath import Engine
from meshcore.admin import clusters_view, stats_text, summary
from meshcore.admin.stats_model import StatsCollector, parse_engine_stats, select
from meshcore.lifecycle.control_stats import ControlStats
from meshcore.lifecycle.state import ServerOptions, ServerState

from benchmarks.micro import mesh_bootstrap

LAST = mesh_bootstrap.cluster_name(9_999)


@pytest.fixture
def collector(engine_10k: Engine) -> StatsCollector:
    control = ControlStats()
    control.inc("config_reload.update_success")
    return StatsCollector(
        engine_10k, ServerState(ServerOptions(config_path="x", concurrency=2)), control
    )


def test_engine_stats_10k(benchmark, engine_10k: Engine) -> None:
    raw = benchmark.pedantic(engine_10k.stats, rounds=8, iterations=1, warmup_rounds=1)
    stats = parse_engine_stats(raw)
    assert stats.gauges[f"cluster.{LAST}.membership_total"] == 2
    assert len(stats.counters) > 10_000 * 30


def test_stats_flush_10k(benchmark, collector: StatsCollector, engine_10k: Engine) -> None:
    benchmark.pedantic(collector.flush, rounds=20, iterations=1, warmup_rounds=1)
    # No traffic, so no histogram has an interval reading (nor any sample).
    assert all(
        line.endswith(b"\x000") for line in parse_engine_stats(engine_10k.stats()).histograms.lines
    )


def test_admin_stats_text_10k(benchmark, collector: StatsCollector) -> None:
    def render() -> str:
        return stats_text.render_text(select(collector.snapshot(), None))

    text = benchmark.pedantic(render, rounds=5, iterations=1, warmup_rounds=1)
    assert f"cluster.{LAST}.membership_total: 2\n" in text
    assert "config_reload.update_success: 1\n" in text
    assert f"cluster.{LAST}.upstream_rq_time: No recorded values\n" in text
    assert text.count("\n") > 10_000 * 50


def test_admin_stats_json_10k(benchmark, collector: StatsCollector) -> None:
    def render() -> bytes:
        return stats_text.render_json(select(collector.snapshot(), None))

    body = benchmark.pedantic(render, rounds=5, iterations=1, warmup_rounds=1)
    assert b'{"name":"cluster.svc-9999.membership_total","value":2}' in body


def test_admin_clusters_text_10k(benchmark, engine_10k: Engine) -> None:
    def render() -> str:
        clusters = clusters_view.parse_clusters(engine_10k.clusters(), None)
        return clusters_view.render_text(clusters, set(), lambda *_: "")

    text = benchmark.pedantic(render, rounds=5, iterations=1, warmup_rounds=1)
    assert f"{LAST}::observability_name::{LAST}\n" in text
    assert text.count("::health_flags::healthy\n") == 20_000


class _BusyEngine:
    """The 10k engine's export with every cluster's `upstream_rq_time` holding samples and a
    flush-interval reading, as if all 10,000 clusters had traffic in the last 5 s."""

    _BUSY = b" ".join([b"40", b"1000.5", *[b"2"] * 20, *[b"1"] * 20])

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def stats(self) -> tuple[bytes, bytes, bytes]:
        counters, gauges, histograms = self.engine.stats()
        busy = b".upstream_rq_time\x00" + self._BUSY + b"\n"
        return counters, gauges, histograms.replace(b".upstream_rq_time\x000\n", busy)

    def active_connections(self) -> int:
        return self.engine.active_connections()


def _summary_body(engine: object, state: ServerState) -> bytes:
    return summary.render(summary.summarize(engine, state))  # type: ignore[arg-type]


def test_admin_stats_summary_10k(benchmark, engine_10k: Engine) -> None:
    state = ServerState(ServerOptions(config_path="x", concurrency=2))
    body = benchmark.pedantic(
        _summary_body, args=(engine_10k, state), rounds=8, iterations=1, warmup_rounds=1
    )
    doc = orjson.loads(body)
    assert doc["clusters"]["count"] == 10_000
    assert doc["clusters"]["fast_scan"] is True
    last = doc["clusters"]["name"].index(LAST)
    assert doc["clusters"]["hosts"][last] == 2
    assert doc["clusters"]["p99_ms"][last] is None


def test_admin_stats_summary_10k_all_busy(benchmark, engine_10k: Engine) -> None:
    state = ServerState(ServerOptions(config_path="x", concurrency=2))
    busy = _BusyEngine(engine_10k)
    body = benchmark.pedantic(
        _summary_body, args=(busy, state), rounds=8, iterations=1, warmup_rounds=1
    )
    doc = orjson.loads(body)
    assert doc["clusters"]["fast_scan"] is True
    assert len(doc["clusters"]["p99_ms"]) == 10_000
    assert all(p == 3600000.0 for p in doc["clusters"]["p99_ms"])

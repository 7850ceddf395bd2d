"""`Engine.stats()` with 10,000 clusters loaded, and the admin's `/stats` text rendering of
it (parse the engine JSON, render Envoy's `name: value` lines)."""

from __future__ import annotations

import orjson
from meshcore._fastpath import Engine
from meshcore.admin import stats_text
from meshcore.admin.stats_model import parse_engine_stats

from benchmarks.micro import mesh_bootstrap

LAST = mesh_bootstrap.cluster_name(9_999)


def test_engine_stats_10k(benchmark, engine_10k: Engine) -> None:
    raw = benchmark.pedantic(engine_10k.stats, rounds=8, iterations=1, warmup_rounds=1)
    stats = orjson.loads(raw)
    assert stats["gauges"][f"cluster.{LAST}.membership_total"] == 2


def test_admin_stats_text_10k(benchmark, engine_10k: Engine) -> None:
    raw = engine_10k.stats()

    def render() -> str:
        return stats_text.render_text(parse_engine_stats(raw))

    text = benchmark.pedantic(render, rounds=5, iterations=1, warmup_rounds=1)
    assert f"cluster.{LAST}.membership_total: 2\n" in text
    assert text.count("\n") > 10_000

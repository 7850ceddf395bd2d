"""`Engine.update_endpoints` of one cluster (a health flap) while 1,000 or 10,000 clusters
are loaded: the design says it must not rebuild the world, so it should not grow with N."""

from __future__ import annotations

from collections.abc import Callable
from itertools import cycle

import orjson
import pytest
from meshcore._fastpath import Engine
from meshcore.config import MeshConfig

from benchmarks.micro import mesh_bootstrap


def _healthy_flags(engine: Engine, cluster: str) -> list[bool]:
    for entry in orjson.loads(engine.clusters()):
        if entry["name"] == cluster:
            return [host["healthy"] for host in entry["hosts"]]
    raise AssertionError(f"cluster {cluster} not found")


@pytest.mark.parametrize("services", [1_000, 10_000], ids=["1k", "10k"])
def test_update_endpoints_flap(
    benchmark, new_engine: Callable[[], Engine], configs: dict[int, MeshConfig], services: int
) -> None:
    engine = new_engine()
    engine.apply(configs[services].snapshot_bytes())
    index = services // 2
    cluster = mesh_bootstrap.cluster_name(index)
    down = mesh_bootstrap.endpoints_json(index, healthy=False)
    up = mesh_bootstrap.endpoints_json(index, healthy=True)
    flaps = cycle([down, up])

    def flap() -> None:
        engine.update_endpoints(cluster, next(flaps))

    benchmark.pedantic(flap, rounds=200, iterations=10, warmup_rounds=5)
    # The flaps took effect: each payload leaves the cluster in its state.
    engine.update_endpoints(cluster, down)
    assert _healthy_flags(engine, cluster) == [False, True]
    engine.update_endpoints(cluster, up)
    assert _healthy_flags(engine, cluster) == [True, True]

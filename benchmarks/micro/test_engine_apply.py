"""`Engine.apply` of a 1,000- and 10,000-service snapshot: the first apply on a new engine
(startup), and a reload that changes one cluster while 10,000 are loaded."""

from __future__ import annotations

from collections.abc import Callable
from itertools import cycle

import orjson
import pytest
from meshcore._fastpath import Engine
from meshcore.config import MeshConfig


@pytest.mark.parametrize(("services", "rounds"), [(1_000, 20), (10_000, 8)], ids=["1k", "10k"])
def test_apply_first(
    benchmark,
    new_engine: Callable[[], Engine],
    configs: dict[int, MeshConfig],
    services: int,
    rounds: int,
) -> None:
    snapshot = configs[services].snapshot_bytes()
    engines: list[Engine] = []

    def fresh_engine() -> tuple[tuple[bytes], dict[str, object]]:
        # Each round applies to a new engine; the previous one is stopped outside the timing.
        if engines:
            engines.pop().stop()
        engines.append(new_engine())
        return (snapshot,), {}

    def apply(data: bytes) -> int:
        return engines[-1].apply(data)

    generation = benchmark.pedantic(apply, setup=fresh_engine, rounds=rounds)
    assert generation >= 1
    assert engines[-1].listener_ports()["outbound"] > 0
    assert len(orjson.loads(engines[-1].clusters())) == services


def test_reapply_one_cluster_changed_10k(
    benchmark, engine_10k: Engine, configs: dict[int, MeshConfig]
) -> None:
    base = configs[10_000].snapshot
    changed = orjson.loads(orjson.dumps(base))
    changed["clusters"][4_321]["connect_timeout_ms"] += 750
    snapshots = cycle([orjson.dumps(changed), orjson.dumps(base)])
    port = engine_10k.listener_ports()["outbound"]
    first = engine_10k.apply(next(snapshots))

    def reload() -> int:
        return engine_10k.apply(next(snapshots))

    last = benchmark.pedantic(reload, rounds=8, iterations=1)
    assert last > first
    # A reload keeps the listener's socket.
    assert engine_10k.listener_ports()["outbound"] == port

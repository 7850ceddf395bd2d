"""Shared fixtures of the control-path micro benchmarks: synthetic mesh bootstraps (built once
per session), their loaded configs, and engines that are always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from meshcore._fastpath import Engine
from meshcore.config import MeshConfig
from meshcore.config.loader import load_data

from benchmarks.micro import mesh_bootstrap

# Worker threads per engine: this machine's 2 CPUs, meshcore's default there.
CONCURRENCY = 2


@pytest.fixture(scope="session", autouse=True)
def warm_config_layer() -> None:
    """Loads a tiny bootstrap first so that one-off costs (imports, the PGV validators'
    code generation, ~0.3 s per message type) are not charged to the first benchmark."""
    _config, problems = load_data(mesh_bootstrap.bootstrap(2))
    assert problems == []


@pytest.fixture(scope="session")
def bootstraps() -> dict[int, dict[str, Any]]:
    return {n: mesh_bootstrap.bootstrap(n) for n in (1_000, 10_000)}


@pytest.fixture(scope="session")
def configs(bootstraps: dict[int, dict[str, Any]]) -> dict[int, MeshConfig]:
    loaded = {}
    for n, raw in bootstraps.items():
        config, problems = load_data(raw)
        assert problems == [] and config is not None
        assert len(config.snapshot["clusters"]) == n
        loaded[n] = config
    return loaded


@pytest.fixture(scope="session")
def large_yaml_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 10,000-service bootstrap as a YAML file (~8 MiB)."""
    path = tmp_path_factory.mktemp("micro") / "mesh-10000.yaml"
    path.write_text(mesh_bootstrap.bootstrap_yaml(10_000), encoding="utf-8")
    return path


@pytest.fixture
def new_engine() -> Iterator[Callable[[], Engine]]:
    """A factory of engines; every engine it made is stopped when the benchmark ends."""
    made: list[Engine] = []

    def make() -> Engine:
        engine = Engine(CONCURRENCY)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.stop()


@pytest.fixture
def engine_10k(new_engine: Callable[[], Engine], configs: dict[int, MeshConfig]) -> Engine:
    """An engine serving the 10,000-service mesh (listener on a free port)."""
    engine = new_engine()
    assert engine.apply(configs[10_000].snapshot_bytes()) >= 1
    assert engine.listener_ports()["outbound"] > 0
    return engine

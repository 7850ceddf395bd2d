"""Translating bootstraps of a 1,000- and 10,000-service mesh into the engine snapshot:
`load_data` (schema, PGV rules, supported fields, translation), `load_text` (plus YAML), and
`validate_file` (what `meshcore validate` runs) on an ~8 MiB YAML file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from meshcore import config
from meshcore.config.loader import load_data

from benchmarks.micro import mesh_bootstrap


@pytest.fixture(scope="module")
def yaml_1k() -> str:
    return mesh_bootstrap.bootstrap_yaml(1_000)


def test_load_text_1k(benchmark, yaml_1k: str) -> None:
    loaded = benchmark.pedantic(config.load_text, args=(yaml_1k,), rounds=5, iterations=1)
    assert len(loaded.snapshot["clusters"]) == 1_000


@pytest.mark.parametrize(("services", "rounds"), [(1_000, 5), (10_000, 3)], ids=["1k", "10k"])
def test_load_data(
    benchmark, bootstraps: dict[int, dict[str, Any]], services: int, rounds: int
) -> None:
    loaded, problems = benchmark.pedantic(
        load_data, args=(bootstraps[services],), rounds=rounds, iterations=1
    )
    assert problems == []
    assert loaded is not None
    assert len(loaded.snapshot["clusters"]) == services
    routes = loaded.snapshot["listeners"][0]["filter_chains"][0]["filter"][
        "http_connection_manager"
    ]["route_config"]
    assert len(routes["virtual_hosts"]) == services


def test_validate_file_10k(benchmark, large_yaml_file: Path) -> None:
    problems = benchmark.pedantic(
        config.validate_file, args=(large_yaml_file,), rounds=3, iterations=1
    )
    assert problems == []

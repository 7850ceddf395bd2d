"""Malformed configs never crash the loader: seeded random damage to the example bootstrap
always ends in problems (or in a snapshot the engine accepts), never in an exception."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from meshcore.config.loader import load_data

from .snapshot_contract import snapshot_errors

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "front-proxy.yaml"
DAMAGE: list[Any] = [
    None,
    0,
    -1,
    70000,
    2**70,
    1.5,
    True,
    "",
    "x",
    "%",
    "5s",
    "::",
    "MAGLEV",
    "HTTP2",
    [],
    [None],
    [1],
    {},
    {"a": 1},
    {"prefix": "/"},
    {"@type": 5},
    {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster"},
]
KEYS = ["typed_config", "weight", "name", "headers", "timeout", "route", "redirect", "bogus"]


def _locations(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if path:
        yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _locations(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _locations(value, (*path, index))


def _damage(config: dict[str, Any], rng: random.Random) -> None:
    for _ in range(rng.randint(1, 4)):
        *parents, last = rng.choice(list(_locations(config)))
        parent: Any = config
        for step in parents:
            parent = parent[step]
        roll = rng.random()
        if roll < 0.6:
            parent[last] = copy.deepcopy(rng.choice(DAMAGE))
        elif roll < 0.8 and isinstance(parent, dict):
            del parent[last]
        elif isinstance(parent, dict):
            parent[rng.choice(KEYS)] = copy.deepcopy(rng.choice(DAMAGE))


@pytest.mark.parametrize("seed", range(4))
def test_damaged_configs_yield_problems_not_exceptions(seed: int) -> None:
    example = yaml.safe_load(EXAMPLE.read_text())
    rng = random.Random(seed)
    rejected = 0
    for _ in range(50):
        config = copy.deepcopy(example)
        _damage(config, rng)
        loaded, problems = load_data(config)
        if loaded is None:
            assert problems
            assert all(p.path and p.message for p in problems)
            rejected += 1
        else:
            assert snapshot_errors(loaded.snapshot) == []
    assert rejected > 25

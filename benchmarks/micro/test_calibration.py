"""The Python suite's reference workload: plain CPython work shaped like config loading
(building, copying and walking nested dicts and lists), with no meshcore code in it. The
guard divides every Python median by how much slower this one ran than in the baseline, so
what the machine's state does to all Python code (another process on the other CPU, a cold
memory allocator) cancels out, and only changes relative to the interpreter remain."""

from __future__ import annotations

import copy
from typing import Any

from benchmarks.micro import mesh_bootstrap

SERVICES = 5_000


def reference_workload() -> int:
    """Builds a 5,000-service bootstrap, deep-copies it and counts its nodes."""
    tree: Any = copy.deepcopy(mesh_bootstrap.bootstrap(SERVICES))
    nodes = 0
    stack = [tree]
    while stack:
        node = stack.pop()
        nodes += 1
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return nodes


def test_python_reference(benchmark) -> None:
    nodes = benchmark.pedantic(reference_workload, rounds=5, iterations=1)
    # One node per value: 38 per service (virtual host, routes, cluster, endpoints).
    assert nodes == 38 * SERVICES + 29

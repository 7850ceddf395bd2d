"""Shared pieces of the xDS benchmarks: percentiles, process memory, proxies on an ADS
bootstrap."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tests.support.proxy import Proxy
from tests.xds.builders import xds_bootstrap


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def start(kind: str, ads_port: int, workdir: Path, *, delta: bool, **extra: Any) -> Proxy:
    config = xds_bootstrap(ads_port, node=kind, delta=delta, **extra)
    return Proxy(kind, config, workdir / kind, concurrency=1)

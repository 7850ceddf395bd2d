"""Shared pieces of the xDS benchmarks: percentiles, process memory, proxies on an ADS
bootstrap, the ACK of a push as the test server recorded it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tests.support.proxy import Proxy
from tests.xds.ads_server import AdsServer
from tests.xds.builders import xds_bootstrap


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(samples: list[float]) -> dict[str, float]:
    """p50 and p99 of `samples`."""
    return {"p50": percentile(samples, 50), "p99": percentile(samples, 99)}


def ack_times(
    server: AdsServer,
    node: str | None,
    type_url: str,
    version: str,
    after: int,
    timeout: float = 10.0,
) -> tuple[float, float]:
    """When the ACK of `type_url` `version` (from `node`; None: any; a delta stream's next
    ACK of the type) arrived after request `after`, and when the response it acknowledges
    was sent."""
    found = server.wait_request(
        lambda r: (
            (node is None or r.node == node)
            and r.type_url == type_url
            and r.is_ack()
            and (r.delta or r.request.version_info == version)
        ),
        timeout=timeout,
        after=after,
    )
    return found.at, server.sent_at[found.nonce]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def start(kind: str, ads_port: int, workdir: Path, *, delta: bool, **extra: Any) -> Proxy:
    config = xds_bootstrap(ads_port, node=kind, delta=delta, **extra)
    return Proxy(kind, config, workdir / kind, concurrency=1)

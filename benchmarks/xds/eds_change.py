"""One endpoint changed in a large EDS assignment: cluster `a` has N endpoints (the first
one a real upstream, the others loopback addresses no request goes to), and each push flips
the port of the one in the middle; per push, push → ACK and server send → ACK. No requests
during the change. Each proxy has its own assignment (per node) and is timed alone, in
turns, as in `push_latency`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import trio

from tests.support.ports import free_port
from tests.support.upstream import UpstreamServer
from tests.xds.ads_server import AdsServer
from tests.xds.builders import (
    ASSIGNMENT,
    CLUSTER,
    LISTENER,
    ROUTE_CONFIG,
    assignment,
    eds_cluster,
    listener,
    route_config,
)

from .common import ack_times, start, summary


def hosts(upstream_port: int, count: int, flipped: bool) -> list[tuple[str, int]]:
    """The upstream, then `count - 1` loopback addresses; the middle one's port flips."""
    middle = (count - 1) // 2
    return [("127.0.0.1", upstream_port)] + [
        (f"127.0.{1 + i // 250}.{1 + i % 250}", 9000 + (1 if flipped and i == middle else 0))
        for i in range(count - 1)
    ]


async def run(
    kinds: list[str], endpoints: int, rounds: int, workdir: Path, delta: bool
) -> dict[str, Any]:
    server = AdsServer().start()
    upstreams = await trio.to_thread.run_sync(UpstreamServer)  # it runs its own trio loop
    proxies = {}
    try:
        a = await trio.to_thread.run_sync(upstreams.start, "a")
        server.set_resources(CLUSTER, [eds_cluster("a")])
        ports = {kind: free_port() for kind in kinds}
        for kind, port in ports.items():
            server.set_resources(
                ASSIGNMENT, [assignment("a", hosts(a.port, endpoints, False))], node=kind
            )
            server.set_resources(LISTENER, [listener("ingress", port, rds="r")], node=kind)
            server.set_resources(ROUTE_CONFIG, [route_config("r", "a")], node=kind)
        for kind in kinds:  # started = ready: the initial EDS applied
            proxies[kind] = await trio.to_thread.run_sync(
                lambda k=kind: start(k, server.port, workdir, delta=delta)
            )
        acks: dict[str, list[float]] = {k: [] for k in kinds}
        turnarounds: dict[str, list[float]] = {k: [] for k in kinds}
        for i in range(rounds):
            changed = [assignment("a", hosts(a.port, endpoints, i % 2 == 0))]
            for kind in kinds:
                mark = len(server.recorded)
                pushed = time.monotonic()
                version = server.set_resources(ASSIGNMENT, changed, node=kind)
                ack, sent = await trio.to_thread.run_sync(
                    ack_times, server, kind, ASSIGNMENT, version, mark
                )
                acks[kind].append((ack - pushed) * 1000)
                turnarounds[kind].append((ack - sent) * 1000)
                await trio.sleep(0.02)
        return {
            kind: {
                "endpoints": endpoints,
                "ack_ms": summary(acks[kind]),
                "sent_to_ack_ms": summary(turnarounds[kind]),
                "rounds": rounds,
            }
            for kind in kinds
        }
    finally:
        for proxy in proxies.values():
            proxy.stop()
        await trio.to_thread.run_sync(upstreams.close)
        server.stop()

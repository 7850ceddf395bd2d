"""Push to applied for a route change: the route config flips between two clusters; for
each push, the time until the proxy ACKs it (meshcore ACKs after applying; Envoy after its
main thread did; also from the moment the server handed the response to gRPC, which leaves
out the test server's own work) and until a request on a keep-alive connection is routed
by it. Each
proxy has its own route config (per node) and is measured alone, in turns, so that on a
small machine the two do not compete for the CPU during a measurement. With `vhosts`, the
route config also has that many Istio-like service virtual hosts before the catch-all one
(the one that changes), as an Istio outbound RDS resource has. With `root_change`, each
push also flips a field of the route config itself (`max_direct_response_body_size_bytes`),
so that a proxy cannot reuse the previous version and checks it whole, as a first version."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import trio
from envoy.config.route.v3 import route_pb2
from google.protobuf import json_format

from tests.support.client import RawConnection, build_request
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


def routes(
    name: str, cluster: str, vhosts: int = 0, root_change: bool = False
) -> route_pb2.RouteConfiguration:
    """The route config pushed: a catch-all virtual host to `cluster`, after `vhosts`
    service virtual hosts that stay as they are (3 domains, one route with a retry policy,
    to cluster a or b); with `root_change`, its own `max_direct_response_body_size_bytes`
    differs for clusters a and b."""
    if not vhosts and not root_change:
        return route_config(name, cluster)
    every = [
        *(_service(i) for i in reversed(range(vhosts))),
        {
            "name": "all",
            "domains": ["*"],
            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}],
        },
    ]
    config: dict[str, Any] = {"name": name, "virtual_hosts": every}
    if root_change:
        config["max_direct_response_body_size_bytes"] = 4096 if cluster == "a" else 8192
    return json_format.ParseDict(config, route_pb2.RouteConfiguration())


def _service(i: int) -> dict[str, Any]:
    """Istio's outbound virtual host for service `i` (one of each port's RDS resource)."""
    retry = {
        "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
        "num_retries": 2,
    }
    return {
        "name": f"svc{i}",
        "domains": [f"svc{i}.ns.svc.cluster.local", f"svc{i}.ns", f"svc{i}"],
        "routes": [
            {
                "name": "default",
                "match": {"prefix": "/"},
                "route": {"cluster": "a" if i % 2 else "b", "timeout": "0s", "retry_policy": retry},
            }
        ],
    }


async def routed_at(port: int, expected: str, timeout: float = 10.0) -> float:
    """Sends requests back to back until one is answered by `expected`; returns when."""
    request = build_request("GET", "/")
    with trio.fail_after(timeout):
        async with await RawConnection.open(port) as conn:
            while True:
                await conn.send(request)
                response = await conn.read_response()
                if response.upstream == expected:
                    return time.monotonic()


async def run(
    kinds: list[str],
    rounds: int,
    workdir: Path,
    delta: bool,
    vhosts: int = 0,
    root_change: bool = False,
) -> dict[str, Any]:
    server = AdsServer().start()
    upstreams = await trio.to_thread.run_sync(UpstreamServer)  # it runs its own trio loop
    proxies = {}
    try:
        a = await trio.to_thread.run_sync(upstreams.start, "a")
        b = await trio.to_thread.run_sync(upstreams.start, "b")
        server.set_resources(CLUSTER, [eds_cluster("a"), eds_cluster("b")])
        server.set_resources(
            ASSIGNMENT,
            [assignment("a", [("127.0.0.1", a.port)]), assignment("b", [("127.0.0.1", b.port)])],
        )
        ports = {kind: free_port() for kind in kinds}
        for kind, port in ports.items():
            server.set_resources(LISTENER, [listener("ingress", port, rds="r")], node=kind)
            server.set_resources(ROUTE_CONFIG, [routes("r", "a", vhosts, root_change)], node=kind)
        for kind in kinds:
            proxies[kind] = await trio.to_thread.run_sync(
                lambda k=kind: start(k, server.port, workdir, delta=delta)
            )
        for port in ports.values():
            await routed_at(port, "a")
        acks: dict[str, list[float]] = {k: [] for k in kinds}
        routed: dict[str, list[float]] = {k: [] for k in kinds}
        turnarounds: dict[str, list[float]] = {k: [] for k in kinds}
        for i in range(rounds):
            target = "b" if i % 2 == 0 else "a"
            for kind in kinds:
                mark = len(server.recorded)
                pushed = time.monotonic()
                version = server.set_resources(
                    ROUTE_CONFIG, [routes("r", target, vhosts, root_change)], node=kind
                )
                done = await routed_at(ports[kind], target)
                ack, sent = await trio.to_thread.run_sync(
                    ack_times, server, kind, ROUTE_CONFIG, version, mark
                )
                acks[kind].append((ack - pushed) * 1000)
                turnarounds[kind].append((ack - sent) * 1000)
                routed[kind].append((done - pushed) * 1000)
                await trio.sleep(0.02)
        return {
            kind: {
                "ack_ms": summary(acks[kind]),
                "sent_to_ack_ms": summary(turnarounds[kind]),
                "routed_ms": summary(routed[kind]),
                "rounds": rounds,
                "vhosts": vhosts,
                "root_change": root_change,
            }
            for kind in kinds
        }
    finally:
        for proxy in proxies.values():
            proxy.stop()
        await trio.to_thread.run_sync(upstreams.close)
        server.stop()

"""A route change through the real server and engine (`Server.apply_xds` with
`Engine.apply_listeners`) leaves the engine as a fresh server given the same resources: the
same clusters with the same hosts, listeners and config."""

from __future__ import annotations

from typing import Any

import orjson
from meshcore.app import Server
from meshcore.xds.client import XdsClient

from .builders import (
    ASSIGNMENT,
    CLUSTER,
    LISTENER,
    ROUTE_CONFIG,
    assignment,
    eds_cluster,
    listener,
    route_config,
)
from .incremental import response
from .real_server import real_server

HOSTS = {"s0": [("127.0.0.1", 1000)], "s1": [("127.0.0.1", 1001), ("127.0.0.1", 1002)]}


async def _load(client: XdsClient, route_to: str) -> None:
    clusters = [eds_cluster(n) for n in HOSTS]
    await client._on_response(response(CLUSTER, clusters, "c"))
    assignments = [assignment(n, hosts) for n, hosts in HOSTS.items()]
    await client._on_response(response(ASSIGNMENT, assignments, "e"))
    await client._on_response(response(LISTENER, [listener("l", 0, rds="r")], "l"))
    await client._on_response(response(ROUTE_CONFIG, [route_config("r", route_to)], "r"))


def _state(server: Server) -> tuple[Any, Any, list[str]]:
    clusters = orjson.loads(server.engine.clusters())
    assert server.state.config is not None
    return clusters, server.state.config.snapshot, sorted(server.engine.listener_ports())


async def test_a_route_change_leaves_the_engine_as_a_fresh_apply() -> None:
    async with real_server() as (server, client, stream):
        await _load(client, "s0")
        generation_clusters = orjson.loads(server.engine.clusters())
        await client._on_response(response(ROUTE_CONFIG, [route_config("r", "s1")], "r2"))
        assert stream.acked("r2")
        changed = _state(server)
        assert changed[0] == generation_clusters  # the clusters, as they were
        routes = changed[1]["listeners"][-1]["filter_chains"][0]["filter"]
        route = routes["http_connection_manager"]["route_config"]["virtual_hosts"][0]
        assert route["routes"][0]["action"]["route"]["target"] == {"cluster": "s1"}
    async with real_server() as (server, client, _):
        await _load(client, "s1")
        fresh = _state(server)
    assert changed[0] == fresh[0]
    assert changed[1] == fresh[1]
    assert changed[2] == fresh[2]


async def test_the_engine_refusing_a_route_change_keeps_the_old_one() -> None:
    async with real_server() as (server, client, stream):
        await _load(client, "s0")
        before = _state(server)

        def refuse(snapshot: bytes) -> int:
            raise ValueError("listeners[1]: refused")

        engine = server.engine
        server.engine = _Refusing(engine, refuse)  # type: ignore[assignment]
        await client._on_response(response(ROUTE_CONFIG, [route_config("r", "s1")], "r2"))
        server.engine = engine
        assert "listeners[1]: refused" in stream.sent[-1].error_detail.message
        assert _state(server) == before


class _Refusing:
    """The engine, but `apply_listeners` raises."""

    def __init__(self, engine: Any, refuse: Any) -> None:
        self._engine = engine
        self.apply_listeners = refuse

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

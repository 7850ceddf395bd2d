"""Through the xDS client: a route config update is checked against the last ACCEPTED
version of the same resource (never a NACKed one, nor one the engine refused), a bad
virtual host is NACKed at its path, and the state after a chain of one-host changes equals
that of a fresh client given the last version; through the real server and engine, the
virtual hosts shared between versions are never changed in place."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from envoy.config.route.v3 import route_pb2
from meshcore.app import Server
from meshcore.config import rds_reuse
from meshcore.xds.client import XdsClient

from .builders import (
    ASSIGNMENT,
    CLUSTER,
    LISTENER,
    ROUTE_CONFIG,
    assignment,
    eds_cluster,
    listener,
    parse,
)
from .incremental import MarkingSink, Stream, dump, engine_state, new_client, response, store_state
from .real_server import real_server

CLUSTERS = ("a", "b", "c")


def _routes(changed: dict[int, dict[str, Any]] | None = None, hosts: int = 50) -> Any:
    changed = changed or {}
    every = []
    for i in range(hosts):
        route = {"match": {"prefix": "/"}, "route": {"cluster": "ab"[i % 2]}}
        every.append(
            {"name": f"svc{i}", "domains": [f"svc{i}"], "routes": [route]} | changed.get(i, {})
        )
    every.append(
        {
            "name": "all",
            "domains": ["*"],
            "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 404}}],
        }
    )
    return parse(route_pb2.RouteConfiguration, {"name": "r", "virtual_hosts": every})


def _to(cluster: str) -> dict[str, Any]:
    return {"routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}]}


async def _client() -> tuple[XdsClient, Stream, MarkingSink]:
    sink = MarkingSink()
    client, stream = new_client(sink)
    await client._on_response(response(CLUSTER, [eds_cluster(n) for n in CLUSTERS], "c"))
    endpoints = [assignment(n, [("10.0.0.1", 80 + i)]) for i, n in enumerate(CLUSTERS)]
    await client._on_response(response(ASSIGNMENT, endpoints, "e"))
    await client._on_response(response(LISTENER, [listener("l", 0, rds="r")], "l"))
    return client, stream, sink


def _accepted_raw(client: XdsClient) -> bytes:
    return client.store.accepted[ROUTE_CONFIG]["r"].raw


def _reusable(client: XdsClient, msg: Any) -> int:
    """How many virtual hosts of `msg` the accepted version would give it."""
    memo = client.store.accepted[ROUTE_CONFIG]["r"].checked.memo
    reused = rds_reuse.translate(msg, "route_configs[r]", memo)
    assert reused is not None
    return reused.reused


async def test_a_bad_host_is_nacked_at_its_path_and_never_becomes_the_base() -> None:
    client, stream, sink = await _client()
    first = _routes()
    await client._on_response(response(ROUTE_CONFIG, [first], "r1"))
    assert stream.acked("r1")
    applied = len(sink.configs)

    bad = _routes({3: {"rate_limits": [{"actions": [{"remote_address": {}}]}]}})
    await client._on_response(response(ROUTE_CONFIG, [bad], "r2"))
    assert not stream.acked("r2")
    detail = stream.sent[-1].error_detail.message
    assert detail == "route_configs[r].virtual_hosts[3].rate_limits: rate_limits is not supported"
    assert len(sink.configs) == applied and _accepted_raw(client) == first.SerializeToString()

    sink.refuse = ValueError("refused")  # the engine refuses a good version
    refused = _routes({4: _to("c")})
    await client._on_response(response(ROUTE_CONFIG, [refused], "r3"))
    assert not stream.acked("r3")
    sink.refuse = None
    assert _accepted_raw(client) == first.SerializeToString()
    # The next version is checked against the accepted one: svc4 is new to it as well.
    second = _routes({4: _to("c"), 5: _to("c")})
    assert _reusable(client, second) == 49
    await client._on_response(response(ROUTE_CONFIG, [second], "r4"))
    assert stream.acked("r4")
    hosts = engine_state(sink)["listeners"][-1]["filter_chains"][0]["filter"]
    chosen = hosts["http_connection_manager"]["route_config"]["virtual_hosts"]
    targets = [h["routes"][0]["action"]["route"]["target"]["cluster"] for h in chosen[3:7]]
    assert targets == ["b", "c", "c", "a"]


async def test_a_chain_of_one_host_changes_ends_as_a_fresh_client() -> None:
    client, stream, sink = await _client()
    versions = [
        _routes(),
        _routes({10: _to("c")}),
        _routes({10: _to("c"), 20: _to("c")}, hosts=60),
        _routes({10: _to("c"), 20: {"domains": ["svc20", "extra"]}}, hosts=40),
    ]
    for i, msg in enumerate(versions):
        if i:
            assert _reusable(client, msg) >= 38
        await client._on_response(response(ROUTE_CONFIG, [msg], f"r{i}"))
        assert stream.acked(f"r{i}")
    fresh, fresh_stream, fresh_sink = await _client()
    await fresh._on_response(response(ROUTE_CONFIG, [versions[-1]], "f"))
    assert fresh_stream.acked("f")
    assert engine_state(sink) == engine_state(fresh_sink)
    assert dump(client) == dump(fresh)
    assert store_state(client.store) == store_state(fresh.store)
    got = client.store.accepted[ROUTE_CONFIG]["r"].checked
    want = fresh.store.accepted[ROUTE_CONFIG]["r"].checked
    assert got.refs == want.refs and got.snapshot == want.snapshot


@asynccontextmanager
async def _real_server() -> AsyncIterator[tuple[Server, XdsClient, Stream]]:
    """A client applying to the real `Server` and engine, its clusters and listener loaded."""
    async with real_server() as (server, client, stream):
        await client._on_response(response(CLUSTER, [eds_cluster(n) for n in CLUSTERS], "c"))
        endpoints = [assignment(n, [("127.0.0.1", 1000 + i)]) for i, n in enumerate(CLUSTERS)]
        await client._on_response(response(ASSIGNMENT, endpoints, "e"))
        await client._on_response(response(LISTENER, [listener("l", 0, rds="r")], "l"))
        yield server, client, stream


async def test_reused_hosts_stay_as_translated_through_the_real_server() -> None:
    versions = [_routes(), _routes({1: _to("c")}), _routes({1: _to("c"), 2: _to("c")})]
    async with _real_server() as (server, client, stream):
        kept: list[Any] = []
        for i, msg in enumerate(versions):
            await client._on_response(response(ROUTE_CONFIG, [msg], f"r{i}"))
            assert stream.acked(f"r{i}")
            route = client.store.accepted[ROUTE_CONFIG]["r"].checked
            kept.append((route.snapshot, copy.deepcopy(route.snapshot)))
        # Shared with the later versions, applied, dumped: never changed in place.
        assert kept[0][0]["virtual_hosts"][5] is kept[2][0]["virtual_hosts"][5]
        assert all(shared == copied for shared, copied in kept)
        assert server.state.config is not None
        changed = server.state.config.snapshot, orjson.loads(server.engine.clusters())
    async with _real_server() as (server, client, stream):
        await client._on_response(response(ROUTE_CONFIG, [versions[-1]], "f"))
        assert stream.acked("f") and server.state.config is not None
        assert changed == (server.state.config.snapshot, orjson.loads(server.engine.clusters()))

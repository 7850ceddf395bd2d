"""A cluster change through the real server and engine (`Server.apply_xds` with
`Engine.apply_clusters`) leaves the engine as a fresh server given the same resources: the
same clusters with the same hosts and health, listeners and config; the clusters it does not
change keep their state (checkers, host health) as it was."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import orjson
import pytest
import trio
from envoy.service.discovery.v3 import discovery_pb2
from meshcore.app import Server
from meshcore.xds.client import XdsClient

from tests.support.ports import dead_port

from .builders import (
    ASSIGNMENT,
    CLUSTER,
    LISTENER,
    ROUTE_CONFIG,
    assignment,
    eds_cluster,
    listener,
    route_config,
    static_cluster,
)
from .incremental import Stream, response
from .real_server import real_server

HOSTS = {"s0": [("127.0.0.1", 1000)], "s1": [("127.0.0.1", 1001), ("127.0.0.1", 1002)]}
# One host per check: the first round ends after one result; no second check meanwhile.
CHECK = {
    "timeout": "1s",
    "interval": "60s",
    "no_traffic_interval": "60s",
    "unhealthy_threshold": 1,
    "healthy_threshold": 1,
    "tcp_health_check": {},
}


class Recording:
    """The engine, noting which apply each change went through."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._engine, name)
        if name.startswith("apply"):

            def call(*args: Any) -> Any:
                self.calls.append(name)
                return attr(*args)

            return call
        return attr


def _response(delta: bool, type_url: str, messages: list[Any], nonce: str) -> Any:
    """A delta response, or a state-of-the-world one (all resources of the type)."""
    if delta:
        return response(type_url, messages, nonce)
    out = discovery_pb2.DiscoveryResponse(type_url=type_url, nonce=nonce, version_info=nonce)
    for message in messages:
        out.resources.add().Pack(message)
    return out


class Resolver:
    """Answers `<name>.test` with 127.0.0.<n> (n: how many times it was asked, so that each
    resolution differs), noting the names asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, hostname: str, family: str) -> list[str]:
        self.asked.append(hostname)
        return [f"127.0.0.{len(self.asked)}"]


@asynccontextmanager
async def _server(
    delta: bool = True, resolver: Resolver | None = None
) -> AsyncIterator[tuple[Server, XdsClient, Stream, Recording]]:
    async with real_server(delta, wrap=Recording, resolver=resolver or Resolver()) as (
        server,
        client,
        stream,
    ):
        yield server, client, stream, cast(Recording, server.engine)


async def _live_port(nursery: trio.Nursery) -> int:
    """A TCP port that accepts (a health check passes), closing what it accepts."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def close(stream: trio.SocketStream) -> None:
        await stream.aclose()

    nursery.start_soon(trio.serve_listeners, close, listeners)
    return int(listeners[0].socket.getsockname()[1])


def _clusters(live: int, dead: int, *, changed: bool) -> list[Any]:
    """s0, s1 (EDS), h0 (checked, its host passes), h1 (checked, its host fails), p0; the
    change: h1 (not its check) and p0 take other settings, s1 goes, n0 comes."""
    out = [
        eds_cluster("s0"),
        static_cluster("h0", [("127.0.0.1", live)], health_checks=[CHECK]),
        static_cluster(
            "h1",
            [("127.0.0.1", dead)],
            health_checks=[CHECK],
            lb_policy="RANDOM" if changed else None,
        ),
        static_cluster("p0", [("127.0.0.1", 2000)], connect_timeout="3s" if changed else "1s"),
    ]
    if changed:
        out.append(static_cluster("n0", [("127.0.0.1", 2001)]))
    else:
        out.insert(1, eds_cluster("s1"))
    return out


async def _load(client: XdsClient, clusters: list[Any], delta: bool = True) -> None:
    await client._on_response(_response(delta, CLUSTER, clusters, "c"))
    assignments = [assignment(n, hosts) for n, hosts in HOSTS.items()]
    await client._on_response(_response(delta, ASSIGNMENT, assignments, "e"))
    await client._on_response(_response(delta, LISTENER, [listener("l", 0, rds="r")], "l"))
    await client._on_response(_response(delta, ROUTE_CONFIG, [route_config("r", "s0")], "r"))


def _state(server: Server) -> dict[str, Any]:
    """The engine's clusters and the applied config, in name order (an incremental apply
    puts new clusters last, a fresh one in the order CDS sent them)."""
    config = server.state.config
    assert config is not None
    snapshot = dict(config.snapshot)
    snapshot["clusters"] = sorted(snapshot["clusters"], key=lambda c: str(c["name"]))
    return {
        "engine": sorted(orjson.loads(server.engine.clusters()), key=lambda c: str(c["name"])),
        "snapshot": snapshot,
        "health_checks": sorted(config.health_checks, key=lambda h: h.cluster),
        "dns": sorted(d.name for d in config.dns_clusters),
        "listeners": sorted(server.engine.listener_ports()),
        "checked": sorted(
            (name, [(key, h.failed) for key, h in checker.hosts.items()])
            for name, checker in (server.health.current.checkers.items())  # type: ignore[union-attr]
        ),
    }


@pytest.mark.parametrize("delta", [True, False], ids=["delta", "sotw"])
async def test_a_cluster_change_leaves_the_engine_as_a_fresh_apply(delta: bool) -> None:
    dead = dead_port()
    async with trio.open_nursery() as upstreams:
        live = await _live_port(upstreams)
        async with _server(delta) as (server, client, stream, engine):
            await _load(client, _clusters(live, dead, changed=False), delta)
            health = server.health.current
            assert health is not None
            h0, h1 = health.checkers["h0"], health.checkers["h1"]
            h0_hosts, h1_hosts = dict(h0.hosts), dict(h1.hosts)
            assert [h.failed for h in h0_hosts.values()] == [False]
            assert [h.failed for h in h1_hosts.values()] == [True]
            engine.calls.clear()

            change = _clusters(live, dead, changed=True)
            changed = [c for c in change if c.name in ("h1", "p0", "n0")]
            if delta:
                await client._on_response(response(CLUSTER, changed, "c2", removed=("s1",)))
            else:  # every cluster, s1 left out
                await client._on_response(_response(False, CLUSTER, change, "c2"))
            assert stream.acked("c2")
            assert engine.calls == ["apply_clusters"]
            changed_state = _state(server)
            # The unchanged cluster's checker and host health are those it had; the changed
            # one runs a new checker that took over its hosts' state (the same check).
            assert server.health.current is health
            assert health.checkers["h0"] is h0
            assert h0.hosts == h0_hosts
            assert all(h0.hosts[k] is h for k, h in h0_hosts.items())
            assert health.checkers["h1"] is not h1
            assert all(health.checkers["h1"].hosts[k] is h for k, h in h1_hosts.items())
            by_name = {c["name"]: c for c in changed_state["snapshot"]["clusters"]}
            assert by_name["p0"]["connect_timeout_ms"] == 3000
            assert "s1" not in by_name and "n0" in by_name
        async with _server(delta) as (server, client, _, _engine):
            await _load(client, _clusters(live, dead, changed=True), delta)
            fresh = _state(server)
        upstreams.cancel_scope.cancel()
    assert changed_state == fresh


async def test_the_engine_refusing_a_cluster_change_keeps_everything() -> None:
    dead = dead_port()
    async with trio.open_nursery() as upstreams:
        live = await _live_port(upstreams)
        async with _server() as (server, client, stream, engine):
            await _load(client, _clusters(live, dead, changed=False))
            before = _state(server)
            health = server.health.current
            assert health is not None
            checkers = dict(health.checkers)
            gauges = server.control.gauges()
            assert gauges["cluster.h0.health_check.healthy"] == 1

            def refuse(snapshot: bytes, removed: list[str]) -> int:
                raise ValueError("clusters[0]: refused")

            engine.apply_clusters = refuse  # type: ignore[method-assign]
            change = _clusters(live, dead, changed=True)
            changed = [c for c in change if c.name in ("h1", "p0", "n0")]
            # h0's check changes too: its new checker starts over (its host not healthy yet)
            check = {**CHECK, "timeout": "2s"}
            changed.append(static_cluster("h0", [("127.0.0.1", live)], health_checks=[check]))
            await client._on_response(response(CLUSTER, changed, "c2", removed=("s1",)))
            del engine.apply_clusters
            assert "clusters[0]: refused" in stream.sent[-1].error_detail.message
            assert _state(server) == before
            assert server.health.current is health and health.checkers == checkers
            assert server.control.gauges() == gauges  # the running checkers' again
            # A cluster removed while a route names it serves on (make before break).
            await client._on_response(response(ROUTE_CONFIG, [route_config("r", "s1")], "r2"))
            assert stream.acked("r2")
            await client._on_response(response(CLUSTER, [], "c3", removed=("s1",)))
            assert stream.acked("c3")  # s1 is kept while the route names it (make before break)
            assert any(c["name"] == "s1" for c in orjson.loads(server.engine.clusters()))
            await client._on_response(response(ROUTE_CONFIG, [route_config("r", "s0")], "r3"))
            assert stream.acked("r3")
        upstreams.cancel_scope.cancel()


def _dns(name: str, timeout: str = "1s") -> Any:
    return static_cluster(
        name,
        [(f"{name}.test", 80)],
        cluster_type="STRICT_DNS",
        connect_timeout=timeout,
        dns_refresh_rate="3600s",
    )


async def test_a_dns_cluster_change_resolves_only_that_cluster() -> None:
    resolver = Resolver()
    async with _server(resolver=resolver) as (server, client, stream, engine):
        await _load(client, [eds_cluster("s0"), _dns("d0"), _dns("d1")])
        asked = len(resolver.asked)  # each whole apply of the load resolved both
        assert set(resolver.asked) == {"d0.test", "d1.test"}
        hosts = {c["name"]: c["hosts"] for c in orjson.loads(server.engine.clusters())}
        engine.calls.clear()
        await client._on_response(response(CLUSTER, [_dns("d1", "2s")], "c2"))
        assert stream.acked("c2")
        assert engine.calls == ["apply_clusters"]
        assert resolver.asked[asked:] == ["d1.test"]  # d0 is not resolved again
        address = f"127.0.0.{asked + 1}"
        after = {c["name"]: c["hosts"] for c in orjson.loads(server.engine.clusters())}
        assert after["d0"] == hosts["d0"]
        assert [h["address"] for h in after["d1"]] == [address]
        config = server.state.config
        assert config is not None
        dns = {d.name: d for d in config.dns_clusters}
        assert sorted(dns) == ["d0", "d1"]
        snapshot = {c["name"]: c for c in config.snapshot["clusters"]}
        assert snapshot["d1"]["connect_timeout_ms"] == 2000
        assert server.dns.hostname_of("d1", address, 80) == "d1.test"
        await client._on_response(response(CLUSTER, [], "c3", removed=("d1",)))
        assert stream.acked("c3")
        assert engine.calls == ["apply_clusters", "apply_clusters"]
        config = server.state.config
        assert config is not None
        assert [d.name for d in config.dns_clusters] == ["d0"]
        assert "d1" not in {c["name"] for c in orjson.loads(server.engine.clusters())}


async def test_cluster_changes_after_an_eds_cluster_went_stay_incremental() -> None:
    async with _server() as (server, client, stream, engine):
        await _load(client, [eds_cluster("s0"), eds_cluster("s1"), _dns("d0")])
        engine.calls.clear()
        await client._on_response(response(CLUSTER, [], "c2", removed=("s1",)))
        assert stream.acked("c2")
        # Its assignment is no longer wanted: dropped, from the serving view too.
        store = client.store
        assert "s1" not in store.accepted[ASSIGNMENT] and "s1" not in store.view.endpoints
        assert store.view.endpoints == {
            name: entry.checked.endpoints for name, entry in store.accepted[ASSIGNMENT].items()
        }
        await client._on_response(response(CLUSTER, [_dns("d0", "3s")], "c3"))
        assert stream.acked("c3")
        assert engine.calls == ["apply_clusters", "apply_clusters"]
        names = sorted(c["name"] for c in orjson.loads(server.engine.clusters()))
        assert names == ["d0", "s0", "xds_cluster"]

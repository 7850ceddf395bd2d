"""Interop: one ADS test server drives real Envoy and meshcore at once (state of the world
and delta); after every push both route a scripted set of requests identically, both NACK
the same bad push, and under continuous load a series of pushes fails no request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio

from tests.support.bootstrap import route
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream

from .ads_server import AdsServer, Recorded
from .builders import (
    ASSIGNMENT,
    CLUSTER,
    LISTENER,
    ROUTE_CONFIG,
    assignment,
    eds_cluster,
    listener,
    route_config,
    xds_bootstrap,
)
from .harness import request
from .traffic import Load, until_answers

SCRIPT = ["/", "/b", "/c", "/x"]


class Mesh:
    """The ADS server's resources for both proxies_by_kind (each node has its own listener port)."""

    def __init__(self, server: AdsServer, upstreams: dict[str, Upstream], kinds: list[str]):
        self.server = server
        self.upstreams = upstreams
        self.ports = {kind: free_port() for kind in kinds}

    def host(self, name: str) -> tuple[str, int]:
        return ("127.0.0.1", self.upstreams[name].port)

    def clusters(self, *names: str) -> str:
        return self.server.set_resources(CLUSTER, [eds_cluster(n) for n in names])

    def endpoints(self, **hosts: str) -> str:
        return self.server.set_resources(
            ASSIGNMENT, [assignment(name, [self.host(up)]) for name, up in hosts.items()]
        )

    def routes(self, *prefixes: tuple[str, str], catch_all: str | None = None) -> str:
        chosen = [route({"prefix": p}, cluster=c) for p, c in prefixes]
        if catch_all is not None:
            chosen.append(route({"prefix": "/"}, cluster=catch_all))
        return self.server.set_resources(ROUTE_CONFIG, [route_config("r", routes=chosen)])

    def listeners(self) -> None:
        for kind, port in self.ports.items():
            self.server.set_resources(LISTENER, [listener("ingress", port, rds="r")], node=kind)

    async def expect(self, expected: list[str]) -> None:
        """Both proxies_by_kind answer the script with `expected` (each polled until it does)."""
        for port in self.ports.values():
            await until_answers(port, SCRIPT, expected)


async def start_all(
    mesh: Mesh, proxies_by_kind: dict[str, Proxy], tmp_path_factory: Any, delta: bool
) -> None:
    for kind in mesh.ports:
        config = xds_bootstrap(mesh.server.port, node=kind, delta=delta)
        proxies_by_kind[kind] = await trio.to_thread.run_sync(
            start_proxy, kind, config, tmp_path_factory
        )


def nack_from(kind: str, type_url: str) -> Callable[[Recorded], bool]:
    return lambda r: r.node == kind and r.type_url == type_url and r.is_nack()


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_envoy_and_meshcore_route_identically_after_each_push(
    ads_server: AdsServer,
    upstreams: dict[str, Upstream],
    proxies_by_kind: dict[str, Proxy],
    tmp_path_factory: Any,
    delta: bool,
) -> None:
    mesh = Mesh(ads_server, upstreams, proxy_kinds())
    mesh.clusters("a", "b")
    mesh.endpoints(a="a", b="b")
    mesh.listeners()
    mesh.routes(catch_all="a")
    await start_all(mesh, proxies_by_kind, tmp_path_factory, delta)
    await mesh.expect(["a", "a", "a", "a"])

    mesh.routes(("/b", "b"), catch_all="a")  # a route change
    await mesh.expect(["a", "b", "a", "a"])

    mesh.clusters("a", "b", "c")  # a new cluster, then its endpoints, then a route to it
    mesh.endpoints(a="a", b="b", c="c")
    mesh.routes(("/b", "b"), ("/c", "c"), catch_all="a")
    await mesh.expect(["a", "b", "c", "a"])

    mesh.endpoints(a="a", b="c", c="c")  # b's host moves
    await mesh.expect(["a", "c", "c", "a"])

    mesh.routes(("/b", "b"), ("/c", "c"))  # no catch-all: 404 for the rest
    await mesh.expect(["status:404", "c", "c", "status:404"])

    mesh.routes(("/b", "b"), ("/c", "c"), catch_all="b")  # then a leaves
    mesh.clusters("b", "c")
    await mesh.expect(["c", "c", "c", "c"])

    mark = len(ads_server.recorded)
    bad = [route({"safe_regex": {"regex": "(unclosed"}}, cluster="b")]
    ads_server.set_resources(ROUTE_CONFIG, [route_config("r", routes=bad)])
    for kind in mesh.ports:
        nack = await request(ads_server, nack_from(kind, ROUTE_CONFIG), after=mark)
        assert nack.error
    await mesh.expect(["c", "c", "c", "c"])


async def test_no_request_fails_under_load_during_pushes(
    ads_server: AdsServer,
    upstreams: dict[str, Upstream],
    proxies_by_kind: dict[str, Proxy],
    tmp_path_factory: Any,
) -> None:
    """A few thousand keep-alive requests while routes, clusters and endpoints change."""
    mesh = Mesh(ads_server, upstreams, proxy_kinds())
    mesh.clusters("a", "b")
    mesh.endpoints(a="a", b="b")
    mesh.listeners()
    mesh.routes(catch_all="a")
    await start_all(mesh, proxies_by_kind, tmp_path_factory, delta=False)
    loads = {kind: Load(port) for kind, port in mesh.ports.items()}
    steps: list[Callable[[], object]] = [
        lambda: mesh.routes(catch_all="b"),
        lambda: mesh.clusters("a", "b", "c"),
        lambda: mesh.endpoints(a="a", b="b", c="c"),
        lambda: mesh.routes(catch_all="c"),
        lambda: mesh.endpoints(a="a", b="b", c="a"),  # c's host moves
        lambda: mesh.clusters("b", "c"),  # a removed (no route uses it)
        lambda: mesh.routes(catch_all="b"),
        lambda: mesh.endpoints(b="c", c="a"),
        lambda: mesh.clusters("b"),  # c removed
        lambda: mesh.endpoints(b="b"),
    ]
    async with trio.open_nursery() as nursery:
        for load in loads.values():
            nursery.start_soon(load.run)
        await trio.sleep(0.3)
        for step in steps:
            step()
            await trio.sleep(0.45)
        for load in loads.values():
            load.stop.set()
    for kind, load in loads.items():
        assert load.failures == [], f"{kind}: {load.failures[:5]}"
        assert load.total > 1000, f"{kind}: only {load.total} requests"
        assert set(load.counts) <= {"a", "b", "c"}, load.counts
    await mesh.expect(["b", "b", "b", "b"])

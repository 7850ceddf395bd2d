"""RING_HASH and MAGLEV with route `hash_policy` on real Envoy and meshcore: the same header,
cookie or query parameter value always reaches the same host, different values spread over
the hosts, and `source_ip` pins a client."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import trio

from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.client import get
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

NAMES = ["h1", "h2", "h3", "h4"]


@pytest.fixture(scope="module")
def upstreams(upstream_server: UpstreamServer) -> dict[str, Upstream]:
    return {name: upstream_server.start(name) for name in NAMES}


def hash_config(port: int, up: dict[str, Upstream]) -> dict:
    at = [("127.0.0.1", up[name].port) for name in NAMES]
    header = [{"header": {"header_name": "x-user"}}]
    routes = [
        route({"prefix": "/ring"}, cluster="ring", hash_policy=header),
        route({"prefix": "/maglev"}, cluster="maglev", hash_policy=header),
        route({"prefix": "/cookie"}, cluster="ring", hash_policy=[{"cookie": {"name": "sid"}}]),
        route(
            {"prefix": "/query"},
            cluster="maglev",
            hash_policy=[{"query_parameter": {"name": "user"}}],
        ),
        route(
            {"prefix": "/source"},
            cluster="ring",
            hash_policy=[{"connection_properties": {"source_ip": True}}],
        ),
    ]
    clusters = [
        static_cluster("ring", at, lb_policy="RING_HASH"),
        static_cluster("maglev", at, lb_policy="MAGLEV"),
    ]
    rc = route_config([virtual_host("all", ["*"], routes)])
    return bootstrap([http_listener("main", port, rc)], clusters)


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, upstreams, tmp_path_factory) -> Iterator[Proxy]:
    running = start_proxy(request.param, hash_config(free_port(), upstreams), tmp_path_factory)
    yield running
    running.stop()


async def hosts_for(
    proxy: Proxy, target: str, headers: list[tuple[str, str]], n: int = 10
) -> Counter[str]:
    seen: Counter[str] = Counter()
    with trio.fail_after(30):
        for _ in range(n):
            response = await get(proxy.port, target, headers=headers)
            assert response.status == 200
            seen[response.upstream or "?"] += 1
    return seen


@pytest.mark.parametrize("target", ["/ring", "/maglev"])
async def test_same_header_same_host_and_keys_spread(proxy, target):
    chosen = set()
    for user in range(40):
        seen = await hosts_for(proxy, target, [("x-user", f"user-{user}")], n=5)
        assert len(seen) == 1, (user, seen)
        chosen |= set(seen)
    assert len(chosen) >= 3, chosen


async def test_cookie_and_query_parameter_pin_the_host(proxy):
    for k in range(10):
        assert len(await hosts_for(proxy, "/cookie", [("cookie", f"a=1; sid=s{k}")], 5)) == 1
        assert len(await hosts_for(proxy, f"/query?x=1&user=u{k}", [], 5)) == 1


async def test_source_ip_pins_the_client(proxy):
    assert len(await hosts_for(proxy, "/source", [], 20)) == 1

"""Priority levels and the healthy panic threshold on real Envoy and meshcore: traffic spills
from priority 0 to priority 1 as priority 0 loses health (overprovisioning factor 1.4), and a
mostly unhealthy single level panics (balances over every host) unless the threshold is 0."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    socket_address,
    virtual_host,
)
from tests.support.load import count_upstreams
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

NAMES = ["a0", "b0", "c1", "x0", "y0", "z1", "p1", "p2", "p3"]


@pytest.fixture(scope="module")
def upstreams(upstream_server: UpstreamServer) -> dict[str, Upstream]:
    return {name: upstream_server.start(name) for name in NAMES}


def lb_endpoint(up: Upstream, healthy: bool = True) -> dict:
    entry: dict = {"endpoint": {"address": socket_address("127.0.0.1", up.port)}}
    if not healthy:
        entry["health_status"] = "UNHEALTHY"
    return entry


def cluster(name: str, levels: list[list[dict]], **extra) -> dict:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {"priority": p, "lb_endpoints": eps} for p, eps in enumerate(levels) if eps
            ],
        },
        **extra,
    }


def prio_config(port: int, up: dict[str, Upstream]) -> dict:
    clusters = [
        # P0 down: everything to P1.
        cluster("down", [[lb_endpoint(up["a0"], False), lb_endpoint(up["b0"], False)],
                         [lb_endpoint(up["c1"])]]),
        # P0 half healthy: 50% × 1.4 = 70% to P0, 30% to P1.
        cluster("half", [[lb_endpoint(up["x0"]), lb_endpoint(up["y0"], False)],
                         [lb_endpoint(up["z1"])]]),
        # One level, 1 of 3 healthy (33% < 50%): panic, all three get traffic...
        cluster("panic", [[lb_endpoint(up["p1"]), lb_endpoint(up["p2"], False),
                           lb_endpoint(up["p3"], False)]]),
        # ...unless the panic threshold is 0.
        cluster("nopanic", [[lb_endpoint(up["p1"]), lb_endpoint(up["p2"], False),
                             lb_endpoint(up["p3"], False)]],
                common_lb_config={"healthy_panic_threshold": {"value": 0}}),
        # Healthy P0: P1 gets nothing.
        cluster("healthy", [[lb_endpoint(up["a0"]), lb_endpoint(up["b0"])],
                            [lb_endpoint(up["c1"])]]),
    ]  # fmt: skip
    routes = [route({"prefix": f"/{c['name']}"}, cluster=c["name"]) for c in clusters]
    rc = route_config([virtual_host("all", ["*"], routes)])
    return bootstrap([http_listener("main", port, rc)], clusters)


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, upstreams, tmp_path_factory) -> Iterator[Proxy]:
    running = start_proxy(request.param, prio_config(free_port(), upstreams), tmp_path_factory)
    yield running
    running.stop()


async def count(proxy: Proxy, target: str, total: int) -> dict[str, int]:
    with trio.fail_after(60):
        return dict(await count_upstreams(proxy.port, total, target=target, connections=4))


async def test_unhealthy_priority_0_fails_over_to_priority_1(proxy):
    assert await count(proxy, "/down", 200) == {"c1": 200}


async def test_healthy_priority_0_takes_everything(proxy):
    counts = await count(proxy, "/healthy", 200)
    assert set(counts) == {"a0", "b0"}, counts


async def test_half_healthy_priority_0_spills_30_percent(proxy):
    counts = await count(proxy, "/half", 2000)
    assert set(counts) == {"x0", "z1"}, counts
    assert 1_250 <= counts["x0"] <= 1_550, counts  # 70%
    assert 450 <= counts["z1"] <= 750, counts  # 30%


async def test_panic_balances_over_all_hosts(proxy):
    counts = await count(proxy, "/panic", 300)
    assert set(counts) == {"p1", "p2", "p3"}, counts
    assert proxy.counter("cluster.panic.lb_healthy_panic") == 300


async def test_panic_threshold_zero_keeps_to_healthy_hosts(proxy):
    assert await count(proxy, "/nopanic", 100) == {"p1": 100}

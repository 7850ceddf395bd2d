"""Load balancing: weighted clusters, ROUND_ROBIN with host weights, LEAST_REQUEST, RANDOM,
and a STRICT_DNS cluster resolving `localhost`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import trio

from tests.support.bootstrap import (
    bootstrap,
    header_value,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.client import RawConnection, build_request, get
from tests.support.load import count_upstreams
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

NAMES = [
    "ninety",
    "ten",
    "rr-heavy",
    "rr-light",
    "rr-1",
    "rr-2",
    "rr-3",
    "lr-1",
    "lr-2",
    "rand-1",
    "rand-2",
    "dns",
]


@pytest.fixture(scope="module")
def upstreams(upstream_server: UpstreamServer) -> dict[str, Upstream]:
    return {name: upstream_server.start(name) for name in NAMES}


def lb_config(port: int, up: dict[str, Upstream]) -> dict:
    def at(name: str, weight: int | None = None) -> tuple:
        return (
            ("127.0.0.1", up[name].port) if weight is None else ("127.0.0.1", up[name].port, weight)
        )

    routes = [
        route(
            {"prefix": "/split"},
            weighted_clusters={
                "clusters": [
                    {
                        "name": "ninety",
                        "weight": 90,
                        "request_headers_to_add": [header_value("x-split", "ninety")],
                    },
                    {
                        "name": "ten",
                        "weight": 10,
                        "request_headers_to_add": [header_value("x-split", "ten")],
                    },
                ]
            },
        ),
        route({"prefix": "/rr-weighted"}, cluster="rr-weighted"),
        route({"prefix": "/rr"}, cluster="rr"),
        route({"prefix": "/least"}, cluster="least"),
        route({"prefix": "/random"}, cluster="random"),
        route({"prefix": "/dns"}, cluster="dns"),
    ]
    clusters = [
        static_cluster("ninety", [at("ninety")]),
        static_cluster("ten", [at("ten")]),
        static_cluster(
            "rr-weighted", [at("rr-heavy", 3), at("rr-light", 1)], lb_policy="ROUND_ROBIN"
        ),
        static_cluster("rr", [at("rr-1"), at("rr-2"), at("rr-3")]),
        static_cluster(
            "least",
            [at("lr-1"), at("lr-2")],
            lb_policy="LEAST_REQUEST",
            least_request_lb_config={"choice_count": 5},
        ),
        static_cluster("random", [at("rand-1"), at("rand-2")], lb_policy="RANDOM"),
        static_cluster(
            "dns",
            [("localhost", up["dns"].port)],
            cluster_type="STRICT_DNS",
            dns_lookup_family="V4_ONLY",
        ),
    ]
    rc = route_config([virtual_host("all", ["*"], routes)])
    return bootstrap([http_listener("main", port, rc)], clusters)


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, upstreams, tmp_path_factory) -> Iterator[Proxy]:
    running = start_proxy(request.param, lb_config(free_port(), upstreams), tmp_path_factory)
    yield running
    running.stop()


async def test_weighted_clusters_split_90_10(proxy, upstreams):
    with trio.fail_after(60):
        counts = await count_upstreams(proxy.port, 10_000, target="/split")
    assert sum(counts.values()) == 10_000
    assert set(counts) == {"ninety", "ten"}, counts
    assert 8_800 <= counts["ninety"] <= 9_200, counts
    assert 800 <= counts["ten"] <= 1_200, counts
    assert len(upstreams["ninety"].requests) == counts["ninety"]


async def test_weighted_cluster_headers(proxy, upstreams):
    with trio.fail_after(10):
        await count_upstreams(proxy.port, 40, target="/split", connections=2)
    for name in ("ninety", "ten"):
        assert all(r.header_values("x-split") == [name] for r in upstreams[name].requests)


async def sequential(proxy: Proxy, target: str, count: int) -> list[str]:
    answered = []
    async with await RawConnection.open(proxy.port) as conn:
        for _ in range(count):
            response = await conn.request("GET", target)
            assert response.status == 200
            answered.append(response.upstream)
    return answered


async def test_round_robin_visits_hosts_in_turn(proxy):
    with trio.fail_after(10):
        answered = await sequential(proxy, "/rr", 30)
    for start in range(0, 30, 3):
        assert sorted(answered[start : start + 3]) == ["rr-1", "rr-2", "rr-3"], answered


async def test_round_robin_honours_load_balancing_weight(proxy):
    with trio.fail_after(10):
        answered = await sequential(proxy, "/rr-weighted", 40)
    assert Counter(answered) == {"rr-heavy": 30, "rr-light": 10}
    # Weights 3:1 are exact over every cycle of 4 picks, wherever the cycle starts.
    for start in range(len(answered) - 3):
        assert Counter(answered[start : start + 4])["rr-light"] == 1, answered


async def test_least_request_prefers_the_idle_host(proxy, upstreams):
    lr = [upstreams["lr-1"], upstreams["lr-2"]]
    with trio.fail_after(15):
        async with await RawConnection.open(proxy.port) as hanging:
            await hanging.send(
                build_request("GET", "/least/hang", headers=[("x-mc-behavior", "hang")])
            )
            while not any(u.requests for u in lr):
                await trio.sleep(0.01)
            busy = next(u for u in lr if u.requests)
            idle = next(u for u in lr if u is not busy)
            answered = await sequential(proxy, "/least/quick", 20)
    counts = Counter(answered)
    assert counts[idle.name] >= 16, counts
    assert counts[idle.name] + counts[busy.name] == 20


async def test_random_uses_every_host(proxy):
    with trio.fail_after(10):
        counts = await count_upstreams(proxy.port, 200, target="/random", connections=4)
    assert counts["rand-1"] >= 50, counts
    assert counts["rand-2"] >= 50, counts
    assert counts["rand-1"] + counts["rand-2"] == 200


async def test_strict_dns_localhost(proxy, upstreams):
    with trio.fail_after(10):
        response = await get(proxy.port, "/dns/x")
    assert response.status == 200
    assert response.upstream == "dns"
    assert upstreams["dns"].requests[-1].target == "/dns/x"

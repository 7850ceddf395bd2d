"""Circuit breakers (`circuit_breakers.thresholds`) on real Envoy and meshcore: requests over
`max_requests` / `max_pending_requests` get 503 UO (counted in Envoy 1.40's
`upstream_rq_active_overflow` / `upstream_rq_pending_overflow`), `max_connections` makes
requests wait for the one connection, and the `circuit_breakers.default.*` gauges."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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
from tests.support.client import Response, get
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

OVERFLOW_BODY = "upstream connect error or disconnect/reset before headers. reset reason: overflow"


@pytest.fixture(scope="module")
def upstreams(upstream_server: UpstreamServer) -> dict[str, Upstream]:
    return {name: upstream_server.start(name) for name in ("cb-rq", "cb-pending", "cb-cx")}


def _cluster(name: str, up: Upstream, **thresholds: Any) -> dict[str, Any]:
    return static_cluster(
        name,
        [("127.0.0.1", up.port)],
        circuit_breakers={"thresholds": [thresholds]},
    )


def breaker_config(port: int, up: dict[str, Upstream]) -> dict[str, Any]:
    routes = [
        route({"prefix": f"/{name}"}, cluster=name) for name in ("cb-rq", "cb-pending", "cb-cx")
    ]
    clusters = [
        _cluster("cb-rq", up["cb-rq"], max_requests=1, track_remaining=True),
        _cluster("cb-pending", up["cb-pending"], max_pending_requests=0),
        _cluster("cb-cx", up["cb-cx"], max_connections=1),
    ]
    rc = route_config([virtual_host("all", ["*"], routes)])
    return bootstrap([http_listener("main", port, rc)], clusters)


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, upstreams, tmp_path_factory) -> Iterator[Proxy]:
    running = start_proxy(request.param, breaker_config(free_port(), upstreams), tmp_path_factory)
    yield running
    running.stop()


def _stat(proxy: Proxy, name: str) -> int:
    return int(proxy.stats().get(name, "-1"))


async def test_max_requests_overflow_is_503_uo(proxy, upstreams):
    up = upstreams["cb-rq"]
    up.clear()
    overflow = _stat(proxy, "cluster.cb-rq.upstream_rq_active_overflow")
    assert _stat(proxy, "cluster.cb-rq.circuit_breakers.default.remaining_rq") == 1
    results: list[Response] = []

    async def slow() -> None:
        results.append(await get(proxy.port, "/cb-rq", headers=[("x-mc-behavior", "delay-ms=800")]))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow)
            await up.until(lambda u: len(u.requests) == 1)
            assert _stat(proxy, "cluster.cb-rq.circuit_breakers.default.rq_open") == 1
            assert _stat(proxy, "cluster.cb-rq.circuit_breakers.default.remaining_rq") == 0
            rejected = await get(proxy.port, "/cb-rq")
    assert rejected.status == 503
    assert rejected.text == OVERFLOW_BODY
    assert results[0].status == 200
    assert len(up.requests) == 1
    assert _stat(proxy, "cluster.cb-rq.upstream_rq_active_overflow") == overflow + 1
    assert _stat(proxy, "cluster.cb-rq.upstream_rq_503") >= 1
    assert _stat(proxy, "cluster.cb-rq.circuit_breakers.default.rq_open") == 0
    assert _stat(proxy, "cluster.cb-rq.circuit_breakers.default.remaining_rq") == 1
    with trio.fail_after(10):
        assert (await get(proxy.port, "/cb-rq")).status == 200


async def test_no_pending_requests_allowed_means_no_connection(proxy, upstreams):
    overflow = _stat(proxy, "cluster.cb-pending.upstream_rq_pending_overflow")
    for _ in range(3):
        with trio.fail_after(10):
            response = await get(proxy.port, "/cb-pending")
        assert response.status == 503
        assert response.text == OVERFLOW_BODY
    assert upstreams["cb-pending"].requests == []
    assert _stat(proxy, "cluster.cb-pending.upstream_rq_pending_overflow") == overflow + 3


async def test_max_connections_queues_on_the_one_connection(proxy, upstreams):
    up = upstreams["cb-cx"]
    up.clear()
    overflow = _stat(proxy, "cluster.cb-cx.upstream_cx_overflow")
    results: list[Response] = []

    async def one() -> None:
        results.append(await get(proxy.port, "/cb-cx", headers=[("x-mc-behavior", "delay-ms=300")]))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(one)
            await up.until(lambda u: len(u.requests) == 1)
            nursery.start_soon(one)
            nursery.start_soon(one)
    assert [r.status for r in results] == [200, 200, 200]
    assert len(up.requests) == 3
    assert len(up.connection_ids()) == 1
    assert _stat(proxy, "cluster.cb-cx.upstream_cx_overflow") >= overflow + 2
    assert _stat(proxy, "cluster.cb-cx.upstream_cx_total") == 1

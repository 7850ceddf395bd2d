"""Timeouts and connection limits on real Envoy and meshcore: `per_try_timeout` without and
with retries inside the route timeout, downstream `max_requests_per_connection` and
`max_connection_duration`, upstream `max_requests_per_connection`."""

from __future__ import annotations

import itertools
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
from tests.support.client import RawConnection, get
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

_keys = itertools.count()
UPSTREAM_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


@pytest.fixture(scope="module")
def upstreams(upstream_server: UpstreamServer) -> dict[str, Upstream]:
    return {name: upstream_server.start(name) for name in ("t-main", "t-capped")}


def timeout_config(port: int, up: dict[str, Upstream]) -> dict[str, Any]:
    back_off = {"base_interval": "0.001s", "max_interval": "0.002s"}
    routes = [
        route(
            {"prefix": "/per-try-only"},
            cluster="main",
            timeout="5s",
            retry_policy={"retry_on": "connect-failure", "per_try_timeout": "0.3s"},
        ),
        route(
            {"prefix": "/global"},
            cluster="main",
            timeout="0.8s",
            retry_policy={
                "retry_on": "5xx",
                "num_retries": 10,
                "per_try_timeout": "0.3s",
                "retry_back_off": back_off,
            },
        ),
        route({"prefix": "/capped"}, cluster="capped"),
        route({"prefix": "/"}, cluster="main"),
    ]
    capped_options = {
        "@type": f"type.googleapis.com/{UPSTREAM_OPTIONS}",
        "common_http_protocol_options": {"max_requests_per_connection": 2},
        "explicit_http_config": {"http_protocol_options": {}},
    }
    clusters = [
        static_cluster("main", [("127.0.0.1", up["t-main"].port)]),
        static_cluster(
            "capped",
            [("127.0.0.1", up["t-capped"].port)],
            typed_extension_protocol_options={UPSTREAM_OPTIONS: capped_options},
        ),
    ]
    rc = route_config([virtual_host("all", ["*"], routes)])
    limited = http_listener(
        "limited",
        port,
        rc,
        common_http_protocol_options={
            "max_requests_per_connection": 3,
            "max_connection_duration": "1.5s",
        },
        # An idle connection past max_connection_duration is drained: closed after this.
        drain_timeout="0.5s",
    )
    slow_clients = http_listener(
        "slow-clients",
        free_port(),
        rc,
        stat_prefix="slow",
        request_headers_timeout="0.5s",
    )
    return bootstrap([limited, slow_clients], clusters)


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, upstreams, tmp_path_factory) -> Iterator[Proxy]:
    running = start_proxy(request.param, timeout_config(free_port(), upstreams), tmp_path_factory)
    yield running
    running.stop()


def _count(up: Upstream, key: str) -> int:
    return sum(1 for r in up.requests if r.header("x-mc-key") == key)


async def test_per_try_timeout_without_a_retry_is_504(proxy, upstreams):
    before = proxy.counter("cluster.main.upstream_rq_per_try_timeout")
    key = f"t{next(_keys)}"
    start = trio.current_time()
    with trio.fail_after(10):
        response = await get(
            proxy.port, "/per-try-only", headers=[("x-mc-behavior", "hang"), ("x-mc-key", key)]
        )
    elapsed = trio.current_time() - start
    assert response.status == 504
    assert response.text == "upstream request timeout"
    assert 0.25 <= elapsed < 3.0
    assert _count(upstreams["t-main"], key) == 1
    assert proxy.counter("cluster.main.upstream_rq_per_try_timeout") == before + 1


async def test_the_route_timeout_bounds_all_attempts(proxy, upstreams):
    key = f"t{next(_keys)}"
    start = trio.current_time()
    with trio.fail_after(10):
        response = await get(
            proxy.port, "/global", headers=[("x-mc-behavior", "hang"), ("x-mc-key", key)]
        )
    elapsed = trio.current_time() - start
    assert response.status == 504
    assert 0.7 <= elapsed < 3.0
    # 0.3 s tries inside 0.8 s: two full tries and the start of a third.
    assert 2 <= _count(upstreams["t-main"], key) <= 3


async def test_downstream_max_requests_per_connection(proxy, upstreams):
    before = proxy.counter("http.ingress.downstream_cx_max_requests_reached")
    with trio.fail_after(10):
        async with await RawConnection.open(proxy.port) as conn:
            answers = [await conn.request("GET", "/") for _ in range(3)]
            assert await conn.is_closed_by_peer()
    assert [a.status for a in answers] == [200, 200, 200]
    assert [a.header("connection") for a in answers] == [None, None, "close"]
    assert proxy.counter("http.ingress.downstream_cx_max_requests_reached") == before + 1


async def test_downstream_max_connection_duration(proxy, upstreams):
    before = proxy.counter("http.ingress.downstream_cx_max_duration_reached")
    start = trio.current_time()
    with trio.fail_after(10):
        async with await RawConnection.open(proxy.port) as conn:
            assert (await conn.request("GET", "/")).status == 200
            assert await conn.is_closed_by_peer()
    assert 1.2 <= trio.current_time() - start < 5.0
    assert proxy.counter("http.ingress.downstream_cx_max_duration_reached") == before + 1


async def test_upstream_max_requests_per_connection(proxy, upstreams):
    up = upstreams["t-capped"]
    up.clear()
    before = proxy.counter("cluster.capped.upstream_cx_max_requests")
    with trio.fail_after(10):
        for _ in range(4):
            async with await RawConnection.open(proxy.port) as conn:
                assert (await conn.request("GET", "/capped")).status == 200
    assert len(up.requests) == 4
    conns = [r.connection for r in up.requests]
    assert conns[0] == conns[1] and conns[2] == conns[3] and conns[1] != conns[2]
    assert proxy.counter("cluster.capped.upstream_cx_max_requests") == before + 2


async def test_request_headers_timeout_is_408(proxy, upstreams):
    port = proxy.listener_ports()[1]
    start = trio.current_time()
    with trio.fail_after(10):
        async with await RawConnection.open(port) as conn:
            await conn.send(b"GET / HTTP/1.1\r\nhost: a\r\n")
            response = await conn.read_response()
            assert await conn.is_closed_by_peer()
    assert 0.4 <= trio.current_time() - start < 5.0
    assert response.status == 408
    assert response.text == "request header timeout"
    assert proxy.counter("http.slow.downstream_rq_header_timeout") == 1

"""Stats after known traffic: Envoy's names and exact counts, in `/stats` and
`/stats/prometheus`."""

from __future__ import annotations

import re
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
from tests.support.client import RawConnection
from tests.support.ports import dead_port, free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

EXPECTED = {
    "http.ingress.downstream_cx_total": 2,
    "http.ingress.downstream_cx_active": 0,
    "http.ingress.downstream_rq_total": 8,
    "http.ingress.downstream_rq_1xx": 0,
    "http.ingress.downstream_rq_2xx": 3,
    "http.ingress.downstream_rq_3xx": 0,
    "http.ingress.downstream_rq_4xx": 2,
    "http.ingress.downstream_rq_5xx": 3,
    "http.ingress.no_route": 1,
    "cluster.svc.upstream_rq_total": 5,
    "cluster.svc.upstream_rq_2xx": 3,
    "cluster.svc.upstream_rq_5xx": 2,
    "cluster.svc.upstream_rq_200": 3,
    "cluster.svc.upstream_rq_503": 2,
    "cluster.svc.upstream_cx_total": 1,
    "cluster.svc.upstream_cx_active": 1,
    "cluster.svc.upstream_cx_connect_fail": 0,
    "cluster.dead.upstream_cx_total": 1,
    "cluster.dead.upstream_cx_active": 0,
    "cluster.dead.upstream_cx_connect_fail": 1,
}


@pytest.fixture(scope="module")
def upstream(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("svc")


@pytest.fixture(params=proxy_kinds())
def proxy(request, upstream, tmp_path_factory) -> Iterator[Proxy]:
    routes = [
        route({"prefix": "/ok"}, cluster="svc"),
        route({"prefix": "/dead"}, cluster="dead"),
        route({"prefix": "/teapot"}, direct_response={"status": 418}),
    ]
    config = bootstrap(
        [
            http_listener(
                "main", free_port(), route_config([virtual_host("svc", ["svc.test"], routes)])
            )
        ],
        [
            static_cluster("svc", [("127.0.0.1", upstream.port)]),
            static_cluster("dead", [("127.0.0.1", dead_port())]),
        ],
    )
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running
    running.stop()


async def known_traffic(proxy: Proxy) -> list[int]:
    statuses = []
    async with await RawConnection.open(proxy.port) as conn:
        for _ in range(3):
            statuses.append((await conn.request("GET", "/ok", host="svc.test")).status)
    async with await RawConnection.open(proxy.port) as conn:
        statuses.append((await conn.request("GET", "/nowhere", host="svc.test")).status)
        for _ in range(2):
            response = await conn.request(
                "GET", "/ok", host="svc.test", headers=[("x-mc-behavior", "status=503")]
            )
            statuses.append(response.status)
        statuses.append((await conn.request("GET", "/dead", host="svc.test")).status)
        statuses.append((await conn.request("GET", "/teapot", host="svc.test")).status)
    return statuses


async def settled_stats(proxy: Proxy) -> dict[str, str]:
    """Stats once the proxy has noticed both client connections closed."""
    while True:
        stats = await trio.to_thread.run_sync(proxy.stats)
        if stats.get("http.ingress.downstream_cx_active") == "0":
            return stats
        await trio.sleep(0.02)


async def test_counters_and_gauges_after_known_traffic(proxy):
    with trio.fail_after(10):
        assert await known_traffic(proxy) == [200, 200, 200, 404, 503, 503, 503, 418]
        stats = await settled_stats(proxy)
    actual = {name: int(stats[name]) if name in stats else None for name in EXPECTED}
    assert actual == EXPECTED


async def test_upstream_rq_time_histogram(proxy):
    """Envoy merges histograms on its stats flush (every 5 s by default): wait for it."""
    expected_count = 'envoy_cluster_upstream_rq_time_count{envoy_cluster_name="svc"} 5'
    with trio.fail_after(15):
        await known_traffic(proxy)
        while True:
            status, text = await trio.to_thread.run_sync(proxy.admin, "GET", "/stats/prometheus")
            assert status == 200
            if expected_count in text.splitlines():
                break
            await trio.sleep(0.1)
        stats = await trio.to_thread.run_sync(proxy.stats)
    assert "# TYPE envoy_cluster_upstream_rq_time histogram" in text.splitlines()
    buckets = re.findall(
        r'^envoy_cluster_upstream_rq_time_bucket\{envoy_cluster_name="svc",le="([^"]+)"\} (\d+)$',
        text,
        re.M,
    )
    assert buckets and buckets[-1] == ("+Inf", "5"), buckets
    counts = [int(count) for _, count in buckets]
    assert counts == sorted(counts)
    summary = stats.get("cluster.svc.upstream_rq_time", "")
    assert re.match(r"^P0\([^)]*\) P25\(", summary), summary


async def test_prometheus_exposition(proxy):
    with trio.fail_after(10):
        await known_traffic(proxy)
        await settled_stats(proxy)
        status, text = await trio.to_thread.run_sync(proxy.admin, "GET", "/stats/prometheus")
    assert status == 200
    lines = set(text.splitlines())
    for expected in (
        "# TYPE envoy_http_downstream_rq_total counter",
        'envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="ingress"} 8',
        "envoy_http_downstream_rq_xx{"
        'envoy_response_code_class="2",envoy_http_conn_manager_prefix="ingress"} 3',
        'envoy_http_no_route{envoy_http_conn_manager_prefix="ingress"} 1',
        "# TYPE envoy_cluster_upstream_rq_total counter",
        'envoy_cluster_upstream_rq_total{envoy_cluster_name="svc"} 5',
        'envoy_cluster_upstream_cx_connect_fail{envoy_cluster_name="dead"} 1',
        "# TYPE envoy_cluster_upstream_cx_active gauge",
        'envoy_cluster_upstream_cx_active{envoy_cluster_name="svc"} 1',
    ):
        assert expected in lines, expected

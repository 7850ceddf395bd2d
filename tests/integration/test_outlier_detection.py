"""Outlier detection on real Envoy and meshcore with the same config: a host answering 503
is ejected after `consecutive_5xx` responses, traffic moves to the others, `/clusters` shows
`/failed_outlier_check`, the `outlier_detection.*` stats count it, and the host returns after
`base_ejection_time` (checked on the `interval` timer)."""

from __future__ import annotations

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
from tests.support.load import count_upstreams
from tests.support.ports import dead_port, free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

OD = "cluster.od.outlier_detection"


@pytest.fixture
def upstreams(upstream_server: UpstreamServer) -> Iterator[dict[str, Upstream]]:
    ups = {
        "bad": upstream_server.start("bad", default_behavior="status=503"),
        "good-1": upstream_server.start("good-1"),
        "good-2": upstream_server.start("good-2"),
    }
    yield ups
    for up in ups.values():
        upstream_server.stop_upstream(up)


def od_config(port: int, ups: dict[str, Upstream], refused: int) -> dict:
    at = [("127.0.0.1", ups[name].port) for name in ("bad", "good-1", "good-2")]
    detection = {
        "consecutive_5xx": 5,
        "interval": "0.5s",
        "base_ejection_time": "1s",
        "max_ejection_percent": 50,
    }
    clusters = [
        static_cluster("od", at, outlier_detection=detection),
        static_cluster(
            "local",
            [("127.0.0.1", refused), ("127.0.0.1", ups["good-1"].port)],
            outlier_detection={
                **detection,
                "split_external_local_origin_errors": True,
                "consecutive_local_origin_failure": 2,
            },
        ),
        static_cluster("plain", at),
    ]
    routes = [
        route({"prefix": "/local"}, cluster="local"),
        route({"prefix": "/plain"}, cluster="plain"),
        route({"prefix": "/"}, cluster="od"),
    ]
    rc = route_config([virtual_host("all", ["*"], routes)])
    return bootstrap([http_listener("main", port, rc)], clusters)


@pytest.fixture(params=proxy_kinds())
def proxy(request, upstreams, tmp_path_factory) -> Iterator[Proxy]:
    running = start_proxy(
        request.param, od_config(free_port(), upstreams, dead_port()), tmp_path_factory
    )
    yield running
    running.stop()


async def wait_for(predicate, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not await trio.to_thread.run_sync(predicate):
            await trio.sleep(0.05)


async def test_five_503s_eject_the_host_until_its_ejection_time_passes(proxy, upstreams):
    bad = upstreams["bad"]
    with trio.fail_after(10):
        while len(bad.requests) < 5:
            await get(proxy.port)
    await wait_for(lambda: proxy.counter(f"{OD}.ejections_active") == 1)
    assert proxy.counter(f"{OD}.ejections_enforced_consecutive_5xx") == 1
    assert proxy.counter(f"{OD}.ejections_detected_consecutive_5xx") == 1
    assert proxy.counter(f"{OD}.ejections_enforced_total") == 1
    status, body = proxy.admin("GET", "/clusters")
    assert status == 200
    assert f"od::127.0.0.1:{bad.port}::health_flags::/failed_outlier_check" in body, body
    assert f"od::127.0.0.1:{upstreams['good-1'].port}::health_flags::healthy" in body

    bad.clear()
    counts = await count_upstreams(proxy.port, 60, connections=2)
    assert set(counts) == {"good-1", "good-2"}, counts
    assert bad.requests == []

    # Back after base_ejection_time (1 s), on an interval tick (0.5 s).
    with trio.fail_after(6):
        while not bad.requests:
            await get(proxy.port)
            await trio.sleep(0.05)
    await wait_for(lambda: proxy.counter(f"{OD}.ejections_active") == 0)


async def test_clusters_without_outlier_detection_keep_every_host(proxy, upstreams):
    counts = await count_upstreams(proxy.port, 60, target="/plain", connections=1)
    assert counts == {"bad": 20, "good-1": 20, "good-2": 20}, counts
    assert not any(name.startswith("cluster.plain.outlier_detection") for name in proxy.stats())


async def test_split_local_origin_failures_eject_a_refusing_host(proxy, upstreams):
    with trio.fail_after(10):
        while proxy.counter("cluster.local.outlier_detection.ejections_active") < 1:
            await get(proxy.port, "/local")
    assert (
        proxy.counter(
            "cluster.local.outlier_detection.ejections_enforced_consecutive_local_origin_failure"
        )
        == 1
    )
    counts = await count_upstreams(proxy.port, 20, target="/local", connections=1)
    assert counts == {"good-1": 20}, counts

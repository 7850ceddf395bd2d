"""`meshcore run` under a series of cluster changes from the test ADS server (delta and state
of the world): traffic to a cluster the changes leave alone never fails, and a changed
cluster serves with its new settings (needs the installed package)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tests.support.bootstrap import route
from tests.support.ports import free_port
from tests.support.proxy import Proxy, start_proxy
from tests.support.upstream import Upstream

from .ads_server import AdsServer
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
    xds_bootstrap,
)
from .traffic import Load, answer, until_answers

pytestmark = pytest.mark.meshcore_only


def _b(upstreams: dict[str, Upstream], to: str, timeout_ms: int) -> Any:
    """Cluster b: STATIC, its one host upstream `to`."""
    cluster = static_cluster("b", [("127.0.0.1", upstreams[to].port)])
    cluster.connect_timeout.FromMilliseconds(timeout_ms)
    return cluster


@pytest.mark.parametrize("delta", [True, False], ids=["delta", "sotw"])
async def test_cluster_changes_keep_traffic_to_the_others_flowing(
    ads_server: AdsServer,
    upstreams: dict[str, Upstream],
    proxies: list[Proxy],
    tmp_path_factory: Any,
    delta: bool,
) -> None:
    port = free_port()
    a = eds_cluster("a")
    ads_server.set_resources(CLUSTER, [a, _b(upstreams, "b", 1000)])
    ads_server.set_resources(ASSIGNMENT, [assignment("a", [("127.0.0.1", upstreams["a"].port)])])
    ads_server.set_resources(LISTENER, [listener("ingress", port, rds="r")])
    routes = [route({"prefix": "/b"}, cluster="b"), route({"prefix": "/"}, cluster="a")]
    ads_server.set_resources(ROUTE_CONFIG, [route_config("r", routes=routes)])
    bootstrap = xds_bootstrap(ads_server.port, node="meshcore", delta=delta)
    proxies.append(
        await trio.to_thread.run_sync(start_proxy, "meshcore", bootstrap, tmp_path_factory)
    )
    assert await answer(port, "/") == "a"
    assert await answer(port, "/b") == "b"

    load = Load(port)  # GET / -> cluster a, which no change touches
    steps = [
        [a, _b(upstreams, "b", 1500)],  # b's settings change
        [a, _b(upstreams, "b", 2000), eds_cluster("x")],  # and a cluster comes (warming)
        [a, _b(upstreams, "b", 2000), static_cluster("y", [("127.0.0.1", upstreams["c"].port)])],
        [a, _b(upstreams, "c", 2500)],  # y (and x) go; b now sends to upstream c
    ]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(load.run)
        await trio.sleep(0.3)
        for clusters in steps:
            ads_server.set_resources(CLUSTER, clusters)
            await trio.sleep(0.4)
        assert await until_answers(port, ["/b", "/"], ["c", "a"]) == ["c", "a"]
        await trio.sleep(0.2)
        load.stop.set()
    assert load.failures == [], load.failures[:5]
    assert load.total > 100, f"only {load.total} requests"
    assert set(load.counts) == {"a"}

"""Retries, ring-hash load balancing and outlier detection together, on real Envoy and
meshcore with the same config: users whose key hashes to a failing host still get 200s (the
retry goes to another host), the failing host is ejected after `consecutive_5xx`, and from
then on nobody's request reaches it or needs a retry."""

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
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

NAMES = ("bad", "good-1", "good-2", "good-3")
USERS = [f"user-{i}" for i in range(40)]
PREVIOUS_HOSTS = {
    "name": "envoy.retry_host_predicates.previous_hosts",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3."
        "PreviousHostsPredicate"
    },
}
CLUSTER = "cluster.ring"


@pytest.fixture
def upstreams(upstream_server: UpstreamServer) -> Iterator[dict[str, Upstream]]:
    ups = {
        name: upstream_server.start(name, default_behavior="status=503" if name == "bad" else "")
        for name in NAMES
    }
    yield ups
    for up in ups.values():
        upstream_server.stop_upstream(up)


def combined_config(port: int, ups: dict[str, Upstream]) -> dict:
    at = [("127.0.0.1", ups[name].port) for name in NAMES]
    retry = {
        "retry_on": "5xx",
        "num_retries": 3,
        "retry_back_off": {"base_interval": "0.001s", "max_interval": "0.002s"},
        "retry_host_predicate": [PREVIOUS_HOSTS],
        "host_selection_retry_max_attempts": 10,
    }
    routes = [
        route(
            {"prefix": "/"},
            cluster="ring",
            hash_policy=[{"header": {"header_name": "x-user"}}],
            retry_policy=retry,
        )
    ]
    clusters = [
        static_cluster(
            "ring",
            at,
            lb_policy="RING_HASH",
            outlier_detection={
                "consecutive_5xx": 3,
                "interval": "0.3s",
                "base_ejection_time": "60s",
                "max_ejection_percent": 50,
            },
        )
    ]
    rc = route_config([virtual_host("all", ["*"], routes)])
    return bootstrap([http_listener("main", port, rc)], clusters)


@pytest.fixture(params=proxy_kinds())
def proxy(request, upstreams, tmp_path_factory) -> Iterator[Proxy]:
    running = start_proxy(request.param, combined_config(free_port(), upstreams), tmp_path_factory)
    yield running
    running.stop()


async def wait_for(predicate, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not await trio.to_thread.run_sync(predicate):
            await trio.sleep(0.05)


async def requests_for_every_user(proxy: Proxy) -> dict[str, str]:
    """One request per user; every one must succeed. Returns user -> answering upstream."""
    answered = {}
    with trio.fail_after(30):
        for user in USERS:
            response = await get(proxy.port, "/", headers=[("x-user", user)])
            assert response.status == 200, (user, response.status)
            answered[user] = response.upstream or "?"
    return answered


async def test_retries_hide_a_failing_hashed_host_until_outlier_detection_ejects_it(
    proxy, upstreams
):
    bad = upstreams["bad"]
    answered = await requests_for_every_user(proxy)
    hashed_to_bad = {r.header("x-user") for r in bad.requests}
    # 40 keys over 4 hosts: some hash to the failing host (a ring without it would be a
    # broken test, not a pass).
    assert hashed_to_bad, "no user hashed to the failing host"
    assert "bad" not in answered.values()
    assert all(answered[user].startswith("good-") for user in hashed_to_bad)
    assert proxy.counter(f"{CLUSTER}.upstream_rq_retry") >= len(hashed_to_bad)
    assert proxy.counter(f"{CLUSTER}.upstream_rq_retry_success") >= len(hashed_to_bad)

    # The ring depends on the upstreams' ports: fewer than consecutive_5xx users may hash to
    # the failing host. Their requests again, until it has answered 503 three times.
    with trio.fail_after(30):
        while len(bad.requests) < 3:
            for user in sorted(hashed_to_bad):
                response = await get(proxy.port, "/", headers=[("x-user", user)])
                assert response.status == 200, (user, response.status)
                assert response.upstream != "bad"
    # The failing host answered 503 consecutive_5xx times: ejected on a tick.
    await wait_for(lambda: proxy.counter(f"{CLUSTER}.outlier_detection.ejections_active") == 1)
    assert proxy.counter(f"{CLUSTER}.outlier_detection.ejections_enforced_consecutive_5xx") == 1

    bad.clear()
    retries_before = proxy.counter(f"{CLUSTER}.upstream_rq_retry")
    again = await requests_for_every_user(proxy)
    assert bad.requests == []
    assert proxy.counter(f"{CLUSTER}.upstream_rq_retry") == retries_before
    # The users that hashed to the ejected host now hash elsewhere, each consistently.
    third = await requests_for_every_user(proxy)
    assert third == again

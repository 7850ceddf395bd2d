"""Local rate limit (`envoy.filters.http.local_ratelimit`) over real sockets, on Envoy and
meshcore: a bucket of N lets exactly N requests through, then 429 `local_rate_limited` with
the configured and `x-ratelimit-*` headers; per-route buckets; not-enforced mode; stats."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

from tests.support.bootstrap import (
    Json,
    bootstrap,
    header_value,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.client import RawConnection, get
from tests.support.filters import (
    RATELIMIT_NAME,
    always,
    bucket,
    enforced_ratelimit,
    http_filters,
    ratelimit,
)
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

BODY = b"local_rate_limited"


def with_limit(r: Json, config: Json) -> Json:
    r["typed_per_filter_config"] = {RATELIMIT_NAME: config}
    return r


@pytest.fixture(scope="module")
def upstream(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("live")


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, upstream, tmp_path_factory) -> Iterator[Proxy]:
    routes = [
        with_limit(
            route({"prefix": "/three"}, cluster="live"),
            enforced_ratelimit(
                "three",
                3,
                enable_x_ratelimit_headers="DRAFT_VERSION_03",
                response_headers_to_add=[header_value("x-limited", "yes")],
            ),
        ),
        with_limit(
            route({"prefix": "/one"}, cluster="live"),
            enforced_ratelimit("one", 1, status={"code": "ServiceUnavailable"}),
        ),
        with_limit(
            route({"prefix": "/shadow"}, cluster="live"),
            ratelimit(
                "shadow",
                token_bucket=bucket(1),
                filter_enabled={"default_value": always()},
                filter_enforced={"default_value": always(0)},
                request_headers_to_add_when_not_enforced=[header_value("x-would-limit", "1")],
            ),
        ),
        route({"prefix": "/"}, cluster="live"),
    ]
    # Filter level: stat prefix only, so disabled (Envoy's default 0% enabled).
    config = bootstrap(
        [
            http_listener(
                "main",
                free_port(),
                route_config([virtual_host("all", ["*"], routes)]),
                http_filters=http_filters((RATELIMIT_NAME, ratelimit("top"))),
            )
        ],
        [static_cluster("live", [("127.0.0.1", upstream.port)])],
    )
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running
    running.stop()


async def test_bucket_of_three_passes_three_then_429(proxy, upstream):
    with trio.fail_after(5):
        async with await RawConnection.open(proxy.port) as conn:
            passed = [await conn.request("GET", "/three") for _ in range(3)]
            assert [(r.status, r.upstream) for r in passed] == [(200, "live")] * 3
            limited = await conn.request("GET", "/three")
            assert (limited.status, limited.body) == (429, BODY)
            assert limited.header("x-limited") == "yes"
            assert limited.header("x-ratelimit-limit") == "3"
            assert limited.header("x-ratelimit-remaining") == "0"
            reset = int(limited.header("x-ratelimit-reset") or "-1")
            assert 0 <= reset <= 3600
            # The connection stays usable, and other routes are not limited.
            other = await conn.request("GET", "/other")
            assert other.upstream == "live"
    assert [r.target for r in upstream.requests] == ["/three"] * 3 + ["/other"]


async def test_route_buckets_are_separate_and_status_configurable(proxy):
    with trio.fail_after(5):
        assert (await get(proxy.port, "/one")).upstream == "live"
        limited = await get(proxy.port, "/one")
        assert (limited.status, limited.body) == (503, BODY)
        # Without enable_x_ratelimit_headers there are none.
        assert limited.header("x-ratelimit-limit") is None


async def test_not_enforced_forwards_with_the_request_headers(proxy, upstream):
    with trio.fail_after(5):
        first = await get(proxy.port, "/shadow")
        second = await get(proxy.port, "/shadow")
    assert (first.upstream, second.upstream) == ("live", "live")
    marks = [r.header("x-would-limit") for r in upstream.requests]
    assert marks == [None, "1"]


async def test_filter_level_without_enabled_is_a_no_op(proxy):
    with trio.fail_after(5):
        for _ in range(5):
            assert (await get(proxy.port, "/free")).upstream == "live"
    assert proxy.counter("top.http_local_rate_limit.enabled") == 0


async def test_rate_limit_stats(proxy):
    with trio.fail_after(5):
        for _ in range(4):
            await get(proxy.port, "/one")
    stats = proxy.stats()
    # /one: one token for the whole module; this test and the earlier one share it.
    enabled = int(stats["one.http_local_rate_limit.enabled"])
    ok = int(stats["one.http_local_rate_limit.ok"])
    assert ok == 1
    assert int(stats["one.http_local_rate_limit.rate_limited"]) == enabled - 1
    assert int(stats["one.http_local_rate_limit.enforced"]) == enabled - 1

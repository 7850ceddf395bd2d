"""Fault injection (`envoy.filters.http.fault`) over real sockets, on Envoy and meshcore:
fixed and header-controlled aborts and delays, gRPC aborts, header conditions, per-route
overrides (route over virtual host over filter level) and the fault stats."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

from tests.support.bootstrap import (
    Json,
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.client import RawConnection, get
from tests.support.filters import FAULT_NAME, always, fault, http_filters
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

ABORT_BODY = b"fault filter abort"
DELAY_S = 0.3


def with_fault(r: Json, config: Json) -> Json:
    r["typed_per_filter_config"] = {FAULT_NAME: config}
    return r


@pytest.fixture(scope="module")
def upstream(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("live")


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, upstream, tmp_path_factory) -> Iterator[Proxy]:
    abort_503 = {"http_status": 503, "percentage": always()}
    routes = [
        with_fault(route({"prefix": "/abort"}, cluster="live"), fault(abort=abort_503)),
        with_fault(
            route({"prefix": "/delay"}, cluster="live"),
            fault(delay={"fixed_delay": f"{DELAY_S}s", "percentage": always()}),
        ),
        with_fault(
            route({"prefix": "/header"}, cluster="live"),
            fault(
                abort={"header_abort": {}, "percentage": always()},
                delay={"header_delay": {}, "percentage": always()},
            ),
        ),
        with_fault(
            route({"prefix": "/grpc"}, cluster="live"),
            fault(abort={"grpc_status": 14, "percentage": always()}),
        ),
        with_fault(
            route({"prefix": "/never"}, cluster="live"),
            fault(abort={"http_status": 500, "percentage": always(0)}),
        ),
        with_fault(
            route({"prefix": "/direct"}, direct_response={"status": 200}),
            fault(abort={"http_status": 402, "percentage": always()}),
        ),
        route({"prefix": "/"}, cluster="live"),
    ]
    # The filter-level fault applies only to requests with `x-fault-me`.
    top = fault(
        abort={"http_status": 500, "percentage": always()},
        headers=[{"name": "x-fault-me", "present_match": True}],
    )
    # Virtual host level: every route of b.example aborts 418, but the route's own
    # (empty) config wins for /own.
    b_routes = [
        with_fault(route({"prefix": "/own"}, cluster="live"), fault()),
        route({"prefix": "/"}, cluster="live"),
    ]
    b_host = virtual_host("b", ["b.example"], b_routes)
    b_host["typed_per_filter_config"] = {
        FAULT_NAME: fault(abort={"http_status": 418, "percentage": always()})
    }
    config = bootstrap(
        [
            http_listener(
                "main",
                free_port(),
                route_config([b_host, virtual_host("all", ["*"], routes)]),
                http_filters=http_filters((FAULT_NAME, top)),
            )
        ],
        [static_cluster("live", [("127.0.0.1", upstream.port)])],
    )
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running
    running.stop()


async def test_full_abort_answers_the_status_without_reaching_the_upstream(proxy, upstream):
    with trio.fail_after(5):
        async with await RawConnection.open(proxy.port) as conn:
            response = await conn.request("GET", "/abort")
            assert (response.status, response.body) == (503, ABORT_BODY)
            assert response.header("content-type") == "text/plain"
            # The connection stays usable.
            follow_up = await conn.request("GET", "/live")
            assert (follow_up.status, follow_up.upstream) == (200, "live")
    assert [r.target for r in upstream.requests] == ["/live"]


async def test_fixed_delay_then_forward(proxy, upstream):
    start = trio.current_time()
    with trio.fail_after(5):
        response = await get(proxy.port, "/delay")
    elapsed = trio.current_time() - start
    assert (response.status, response.upstream) == (200, "live")
    assert DELAY_S * 0.9 <= elapsed < DELAY_S + 2.0


async def test_header_controlled_abort_and_delay(proxy, upstream):
    with trio.fail_after(5):
        aborted = await get(proxy.port, "/header", headers=[("x-envoy-fault-abort-request", "429")])
        assert (aborted.status, aborted.body) == (429, ABORT_BODY)
        # No fault headers: forwarded.
        plain = await get(proxy.port, "/header")
        assert plain.upstream == "live"
        # The percentage header can lower the configured 100% to 0.
        zero = await get(
            proxy.port,
            "/header",
            headers=[
                ("x-envoy-fault-abort-request", "500"),
                ("x-envoy-fault-abort-request-percentage", "0"),
            ],
        )
        assert zero.upstream == "live"
        start = trio.current_time()
        delayed = await get(proxy.port, "/header", headers=[("x-envoy-fault-delay-request", "300")])
        assert delayed.upstream == "live"
        assert trio.current_time() - start >= 0.27


async def test_grpc_abort_to_a_grpc_request(proxy):
    with trio.fail_after(5):
        response = await get(
            proxy.port,
            "/grpc",
            headers=[("content-type", "application/grpc")],
            method="POST",
            body=b"",
        )
    assert response.status == 200
    assert response.header("grpc-status") == "14"
    assert response.header("grpc-message") == "fault filter abort"
    assert response.header("content-type") == "application/grpc"


async def test_zero_percent_never_aborts(proxy):
    with trio.fail_after(5):
        for _ in range(5):
            assert (await get(proxy.port, "/never")).upstream == "live"


async def test_header_condition_of_the_filter_level_fault(proxy):
    with trio.fail_after(5):
        assert (await get(proxy.port, "/other")).upstream == "live"
        hit = await get(proxy.port, "/other", headers=[("x-fault-me", "1")])
        assert (hit.status, hit.body) == (500, ABORT_BODY)


async def test_direct_response_routes_are_faulted_too(proxy):
    with trio.fail_after(5):
        response = await get(proxy.port, "/direct")
    assert (response.status, response.body) == (402, ABORT_BODY)


async def test_route_config_wins_over_the_virtual_host(proxy):
    with trio.fail_after(5):
        vhost = await get(proxy.port, "/x", host="b.example")
        assert (vhost.status, vhost.body) == (418, ABORT_BODY)
        own = await get(proxy.port, "/own", host="b.example")
        assert (own.status, own.upstream) == (200, "live")


async def test_fault_stats(proxy):
    before = proxy.stats()
    with trio.fail_after(5):
        await get(proxy.port, "/abort")
        await get(proxy.port, "/abort")
        await get(proxy.port, "/delay")
    after = proxy.stats()

    def delta(name: str) -> int:
        return int(after.get(name, "0")) - int(before.get(name, "0"))

    assert delta("http.ingress.fault.aborts_injected") == 2
    assert delta("http.ingress.fault.delays_injected") == 1
    assert after.get("http.ingress.fault.active_faults") == "0"
    assert delta("http.ingress.downstream_rq_5xx") == 2

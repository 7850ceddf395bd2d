"""Local replies: the proxy answers itself (NR 404, UH 503, UF 503, UT 504, UC 503) with
Envoy's status and body, and the connection stays usable."""

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
from tests.support.client import RawConnection, get
from tests.support.ports import Blackhole, dead_port, free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

RESET_BEFORE_HEADERS = "upstream connect error or disconnect/reset before headers. reset reason: "
CONNECT_FAILURE = RESET_BEFORE_HEADERS + "remote connection failure"
CONNECT_TIMEOUT = RESET_BEFORE_HEADERS + "connection timeout"
CONNECTION_TERMINATION = RESET_BEFORE_HEADERS + "connection termination"


@pytest.fixture(scope="module")
def upstream(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("live")


@pytest.fixture(scope="module")
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    yield hole
    hole.close()


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, upstream, blackhole, tmp_path_factory) -> Iterator[Proxy]:
    routes = [
        route({"prefix": "/live"}, cluster="live"),
        route({"prefix": "/timeout"}, cluster="live", timeout="0.3s"),
        route({"prefix": "/empty"}, cluster="empty"),
        route({"prefix": "/refused"}, cluster="refused"),
        route({"prefix": "/blackhole"}, cluster="blackhole"),
    ]
    config = bootstrap(
        [http_listener("main", free_port(), route_config([virtual_host("all", ["*"], routes)]))],
        [
            static_cluster("live", [("127.0.0.1", upstream.port)]),
            static_cluster("empty", []),
            static_cluster("refused", [("127.0.0.1", dead_port())]),
            static_cluster("blackhole", [("127.0.0.1", blackhole.port)], connect_timeout="0.25s"),
        ],
    )
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running
    running.stop()


async def local_reply(proxy: Proxy, path: str, headers=None):
    """Sends `path`, checks the local reply's framing, and that the connection still works."""
    with trio.fail_after(5):
        async with await RawConnection.open(proxy.port) as conn:
            response = await conn.request("GET", path, headers=headers)
            assert response.upstream is None
            assert response.header("content-length") == str(len(response.body))
            follow_up = await conn.request("GET", "/live")
            assert follow_up.status == 200
            assert follow_up.upstream == "live"
    return response


async def test_no_route_nr_404(proxy):
    response = await local_reply(proxy, "/nowhere")
    assert response.status == 404
    assert response.body == b""


async def test_no_healthy_upstream_uh_503(proxy):
    response = await local_reply(proxy, "/empty")
    assert response.status == 503
    assert response.body == b"no healthy upstream"
    assert response.header("content-type") == "text/plain"


async def test_connect_failure_uf_503(proxy):
    response = await local_reply(proxy, "/refused")
    assert response.status == 503
    assert response.text == CONNECT_FAILURE
    assert response.header("content-type") == "text/plain"


async def test_connect_timeout_uf_503(proxy):
    start = trio.current_time()
    response = await local_reply(proxy, "/blackhole")
    assert response.status == 503
    assert response.text == CONNECT_TIMEOUT
    assert trio.current_time() - start >= 0.2


async def test_route_timeout_ut_504(proxy, upstream):
    response = await local_reply(proxy, "/timeout", headers=[("x-mc-behavior", "hang")])
    assert response.status == 504
    assert response.body == b"upstream request timeout"
    assert response.header("content-type") == "text/plain"
    assert [r.target for r in upstream.requests] == ["/timeout", "/live"]


LIVE_COUNTERS = ("upstream_rq_total", "upstream_rq_completed", "upstream_rq_503")


async def live_counters(proxy: Proxy) -> dict[str, int]:
    stats = await trio.to_thread.run_sync(proxy.stats)
    return {name: int(stats.get(f"cluster.live.{name}", "0")) for name in LIVE_COUNTERS}


async def test_upstream_reset_uc_503(proxy, upstream):
    before = await live_counters(proxy)
    response = await local_reply(proxy, "/live", headers=[("x-mc-behavior", "close")])
    assert response.status == 503
    assert response.text == CONNECTION_TERMINATION
    # No retry policy, so no retry: the upstream saw the request once, then the follow-up.
    assert [(r.target, r.header("x-mc-behavior")) for r in upstream.requests] == [
        ("/live", "close"),
        ("/live", None),
    ]
    # As Envoy 1.40, the request the upstream closed on counts as completed, with its 503.
    with trio.move_on_after(2):
        while (await live_counters(proxy))["upstream_rq_completed"] < before[
            "upstream_rq_completed"
        ] + 2:
            await trio.sleep(0.05)
    after = await live_counters(proxy)
    assert {name: after[name] - before[name] for name in LIVE_COUNTERS} == {
        "upstream_rq_total": 2,
        "upstream_rq_completed": 2,
        "upstream_rq_503": 1,
    }


async def test_upstream_error_status_is_passed_through(proxy):
    with trio.fail_after(5):
        response = await get(proxy.port, "/live", headers=[("x-mc-behavior", "status=503")])
    assert response.status == 503
    assert response.upstream == "live"
    assert response.body == b"live"

"""Stream timeouts on real Envoy and meshcore: the HCM's `stream_idle_timeout` and a route's
`idle_timeout` (504 / 408 `stream timeout`, or a reset once the response started), the HCM's
`request_timeout` (408 `request timeout`), retry `per_try_idle_timeout`, the upstream
`max_connection_duration`, and the local rate limit's `x-ratelimit-*` headers on proxied
responses and per-connection buckets."""

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
from tests.support.client import RawConnection
from tests.support.filters import RATELIMIT_NAME, always, bucket, http_filters, ratelimit
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

UPSTREAM_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_keys = itertools.count()
_gates = itertools.count()


@pytest.fixture(scope="module")
def upstream(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("st-main")


def _limit(stat_prefix: str, max_tokens: int, **fields: Any) -> dict[str, Any]:
    return ratelimit(
        stat_prefix,
        token_bucket=bucket(max_tokens),
        filter_enabled={"default_value": always()},
        filter_enforced={"default_value": always()},
        enable_x_ratelimit_headers="DRAFT_VERSION_03",
        **fields,
    )


def stream_config(up: Upstream) -> dict[str, Any]:
    aged_options = {
        "@type": f"type.googleapis.com/{UPSTREAM_OPTIONS}",
        "common_http_protocol_options": {"max_connection_duration": "0.3s"},
        "use_downstream_protocol_config": {"http_protocol_options": {}},
    }
    clusters = [
        static_cluster("main", [("127.0.0.1", up.port)]),
        static_cluster(
            "aged",
            [("127.0.0.1", up.port)],
            typed_extension_protocol_options={UPSTREAM_OPTIONS: aged_options},
        ),
    ]
    manager_idle = http_listener(
        "sit",
        free_port(),
        route_config(
            [
                virtual_host(
                    "all",
                    ["*"],
                    [
                        route({"prefix": "/off"}, cluster="main", idle_timeout="0s"),
                        route({"prefix": "/long"}, cluster="main", idle_timeout="2s"),
                        route({"prefix": "/"}, cluster="main"),
                    ],
                )
            ]
        ),
        stat_prefix="sit",
        stream_idle_timeout="0.3s",
    )
    back_off = {"base_interval": "0.001s", "max_interval": "0.002s"}
    route_idle = http_listener(
        "rit",
        free_port(),
        route_config(
            [
                virtual_host(
                    "all",
                    ["*"],
                    [
                        route(
                            {"prefix": "/pti-once"},
                            cluster="main",
                            retry_policy={"per_try_idle_timeout": "0.2s"},
                        ),
                        route(
                            {"prefix": "/pti"},
                            cluster="main",
                            retry_policy={
                                "retry_on": "5xx",
                                "per_try_idle_timeout": "0.2s",
                                "retry_back_off": back_off,
                            },
                        ),
                        route({"prefix": "/aged"}, cluster="aged"),
                        route({"prefix": "/"}, cluster="main", idle_timeout="0.3s"),
                    ],
                )
            ]
        ),
        stat_prefix="rit",
    )
    request_timeout = http_listener(
        "rqt",
        free_port(),
        route_config([virtual_host("all", ["*"], [route({"prefix": "/"}, cluster="main")])]),
        stat_prefix="rqt",
        request_timeout="0.4s",
    )
    limited = http_listener(
        "rl",
        free_port(),
        route_config(
            [
                virtual_host(
                    "all",
                    ["*"],
                    [
                        {
                            **route({"prefix": "/per-connection"}, cluster="main"),
                            "typed_per_filter_config": {
                                RATELIMIT_NAME: _limit(
                                    "rlc", 2, local_rate_limit_per_downstream_connection=True
                                )
                            },
                        },
                        route({"prefix": "/"}, cluster="main"),
                    ],
                )
            ]
        ),
        stat_prefix="rl",
        http_filters=http_filters((RATELIMIT_NAME, _limit("rl", 3))),
    )
    return bootstrap([manager_idle, route_idle, request_timeout, limited], clusters)


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, upstream, tmp_path_factory) -> Iterator[Proxy]:
    running = start_proxy(request.param, stream_config(upstream), tmp_path_factory)
    yield running
    running.stop()


def _ports(proxy: Proxy) -> dict[str, int]:
    return dict(zip(("sit", "rit", "rqt", "rl"), proxy.listener_ports(), strict=True))


def _get(path: str, behavior: str = "", *, keep_alive: bool = False, key: str = "") -> bytes:
    lines = [f"GET {path} HTTP/1.1", "host: example.com"]
    if behavior:
        lines.append(f"x-mc-behavior: {behavior}")
    if key:
        lines.append(f"x-mc-key: {key}")
    if not keep_alive:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _exchange(port: int, data: bytes, limit: float = 8.0) -> tuple[bytes, float]:
    """Sends `data`, reads until the proxy closes; returns the bytes and the time taken."""
    start = trio.current_time()
    with trio.fail_after(limit):
        async with await RawConnection.open(port) as conn:
            await conn.send(data)
            received = await conn.read_until_closed()
    return received, trio.current_time() - start


def _status_and_body(raw: bytes) -> tuple[int, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _delta(proxy: Proxy, before: dict[str, str], name: str) -> int:
    return int(proxy.stats().get(name, "0")) - int(before.get(name, "0"))


async def test_stream_idle_timeout_before_the_response_is_504(proxy, upstream):
    before = proxy.stats()
    raw, elapsed = await _exchange(_ports(proxy)["sit"], _get("/", "hang"))
    assert _status_and_body(raw) == (504, b"stream timeout")
    assert 0.25 <= elapsed < 3.0
    assert _delta(proxy, before, "http.sit.downstream_rq_idle_timeout") == 1
    assert _delta(proxy, before, "http.sit.downstream_rq_5xx") == 1
    # The upstream request is abandoned: its connection is closed with it.
    assert _delta(proxy, before, "cluster.main.upstream_cx_destroy_local_with_active_rq") == 1
    assert _delta(proxy, before, "cluster.main.upstream_rq_5xx") == 0


async def test_stream_idle_timeout_keeps_a_keep_alive_connection(proxy, upstream):
    port = _ports(proxy)["sit"]
    with trio.fail_after(8):
        async with await RawConnection.open(port) as conn:
            timed_out = await conn.request("GET", "/", headers=[("x-mc-behavior", "hang")])
            assert (timed_out.status, timed_out.body) == (504, b"stream timeout")
            assert not timed_out.closes()
            again = await conn.request("GET", "/")
    assert again.status == 200


async def test_stream_idle_timeout_mid_response_resets_the_connection(proxy, upstream):
    before = proxy.stats()
    gate = f"sit-{next(_gates)}"
    try:
        raw, elapsed = await _exchange(_ports(proxy)["sit"], _get("/", f"gate={gate}"))
    finally:
        upstream.open_gate(gate)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert not raw.endswith(b"0\r\n\r\n"), raw
    assert 0.25 <= elapsed < 3.0
    assert _delta(proxy, before, "http.sit.downstream_rq_idle_timeout") == 1
    assert _delta(proxy, before, "http.sit.downstream_rq_tx_reset") == 1
    assert _delta(proxy, before, "http.sit.downstream_rq_2xx") == 1


async def test_stream_idle_timeout_with_the_request_body_incomplete_is_408(proxy, upstream):
    before = proxy.stats()
    request = b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 10\r\n\r\n12345"
    raw, elapsed = await _exchange(_ports(proxy)["sit"], request)
    assert _status_and_body(raw) == (408, b"stream timeout")
    assert 0.25 <= elapsed < 4.0
    assert _delta(proxy, before, "http.sit.downstream_rq_idle_timeout") == 1
    assert _delta(proxy, before, "http.sit.downstream_rq_rx_reset") == 1
    assert _delta(proxy, before, "http.sit.downstream_rq_4xx") == 1


async def test_stream_idle_timeout_with_the_head_incomplete_is_408(proxy, upstream):
    before = proxy.stats()
    raw, _ = await _exchange(_ports(proxy)["sit"], b"GET / HTTP/1.1\r\nhost: a\r\n")
    assert _status_and_body(raw) == (408, b"stream timeout")
    assert _delta(proxy, before, "http.sit.downstream_rq_idle_timeout") == 1
    assert _delta(proxy, before, "http.sit.downstream_rq_total") == 1


async def test_an_idle_keep_alive_connection_has_no_stream_to_time_out(proxy, upstream):
    port = _ports(proxy)["sit"]
    with trio.fail_after(8):
        async with await RawConnection.open(port) as conn:
            assert (await conn.request("GET", "/")).status == 200
            await trio.sleep(0.6)
            assert (await conn.request("GET", "/")).status == 200


async def test_route_idle_timeout_replaces_the_managers(proxy, upstream):
    ports = _ports(proxy)
    # 0 disables it; a longer one replaces the manager's 0.3 s.
    for path in ("/off", "/long"):
        raw, elapsed = await _exchange(ports["sit"], _get(path, "delay-ms=600"))
        assert _status_and_body(raw) == (200, b"st-main"), path
        assert elapsed >= 0.55
    # A route idle timeout where the manager keeps its default (5 min).
    before = proxy.stats()
    raw, elapsed = await _exchange(ports["rit"], _get("/", "hang"))
    assert _status_and_body(raw) == (504, b"stream timeout")
    assert 0.25 <= elapsed < 3.0
    assert _delta(proxy, before, "http.rit.downstream_rq_idle_timeout") == 1
    # Bytes flowing in time keep it from firing.
    raw, _ = await _exchange(ports["rit"], _get("/", "delay-ms=100"))
    assert _status_and_body(raw) == (200, b"st-main")


async def test_request_timeout_is_408(proxy, upstream):
    before = proxy.stats()
    request = b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 10\r\n\r\n12345"
    raw, elapsed = await _exchange(_ports(proxy)["rqt"], request)
    assert _status_and_body(raw) == (408, b"request timeout")
    assert 0.35 <= elapsed < 4.0
    assert _delta(proxy, before, "http.rqt.downstream_rq_timeout") == 1
    assert _delta(proxy, before, "http.rqt.downstream_rq_4xx") == 1
    # An incomplete head too.
    raw, _ = await _exchange(_ports(proxy)["rqt"], b"GET / HTTP/1.1\r\nhost: a\r\n")
    assert _status_and_body(raw) == (408, b"request timeout")
    assert _delta(proxy, before, "http.rqt.downstream_rq_timeout") == 2


async def test_request_timeout_stops_once_the_request_is_in(proxy, upstream):
    port = _ports(proxy)["rqt"]
    raw, elapsed = await _exchange(port, _get("/", "delay-ms=700"))
    assert _status_and_body(raw) == (200, b"st-main")
    assert elapsed >= 0.65
    # A body that trickles in within the timeout is fine.
    with trio.fail_after(8):
        async with await RawConnection.open(port) as conn:
            await conn.send(b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 10\r\n\r\n12345")
            await trio.sleep(0.15)
            await conn.send(b"67890")
            assert (await conn.read_response()).status == 200


async def test_per_try_idle_timeout_without_a_retry_is_504(proxy, upstream):
    before = proxy.stats()
    raw, elapsed = await _exchange(_ports(proxy)["rit"], _get("/pti-once", "hang"))
    assert _status_and_body(raw) == (504, b"upstream request timeout")
    assert 0.15 <= elapsed < 3.0
    assert _delta(proxy, before, "cluster.main.upstream_rq_per_try_idle_timeout") == 1
    assert _delta(proxy, before, "cluster.main.upstream_rq_504") == 1
    assert _delta(proxy, before, "http.rit.downstream_rq_idle_timeout") == 0


async def test_per_try_idle_timeout_is_retried(proxy, upstream):
    before = proxy.stats()
    key = f"pti{next(_keys)}"
    raw, elapsed = await _exchange(_ports(proxy)["rit"], _get("/pti", "hang-first=1", key=key))
    assert _status_and_body(raw) == (200, b"st-main")
    assert 0.15 <= elapsed < 3.0
    assert sum(1 for r in upstream.requests if r.header("x-mc-key") == key) == 2
    assert _delta(proxy, before, "cluster.main.upstream_rq_per_try_idle_timeout") == 1
    assert _delta(proxy, before, "cluster.main.upstream_rq_retry") == 1
    assert _delta(proxy, before, "cluster.main.upstream_rq_retry_success") == 1


async def test_per_try_idle_timeout_runs_on_while_the_body_streams(proxy, upstream):
    before = proxy.stats()
    gate = f"pti-{next(_gates)}"
    try:
        raw, elapsed = await _exchange(_ports(proxy)["rit"], _get("/pti", f"gate={gate}"))
    finally:
        upstream.open_gate(gate)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert not raw.endswith(b"0\r\n\r\n"), raw
    assert 0.15 <= elapsed < 3.0
    assert _delta(proxy, before, "cluster.main.upstream_rq_per_try_idle_timeout") == 1
    assert _delta(proxy, before, "http.rit.downstream_rq_tx_reset") == 1
    assert _delta(proxy, before, "cluster.main.upstream_rq_retry") == 0


async def test_upstream_max_connection_duration(proxy, upstream):
    before = proxy.stats()
    with trio.fail_after(8):
        async with await RawConnection.open(_ports(proxy)["rit"]) as conn:
            for pause in (0.1, 0.4, 0.0):
                assert (await conn.request("GET", "/aged")).status == 200
                await trio.sleep(pause)
    # The first connection served two requests, then aged out while idle; so did the second.
    await trio.sleep(0.6)
    conns = [r.connection for r in upstream.requests if r.target == "/aged"]
    assert len(conns) == 3 and conns[0] == conns[1] != conns[2]
    assert _delta(proxy, before, "cluster.aged.upstream_cx_max_duration_reached") == 2
    assert _delta(proxy, before, "cluster.aged.upstream_cx_total") == 2


async def test_x_ratelimit_headers_on_proxied_responses(proxy, upstream):
    port = _ports(proxy)["rl"]
    with trio.fail_after(8):
        async with await RawConnection.open(port) as conn:
            answers = [await conn.request("GET", "/shared") for _ in range(4)]
    assert [a.status for a in answers] == [200, 200, 200, 429]
    assert [a.header("x-ratelimit-limit") for a in answers] == ["3"] * 4
    assert [a.header("x-ratelimit-remaining") for a in answers] == ["2", "1", "0", "0"]
    assert [a.header("x-ratelimit-reset") for a in answers[:2]] == ["0", "0"]
    assert 3500 <= int(answers[2].header("x-ratelimit-reset") or "0") <= 3600


async def test_per_connection_buckets(proxy, upstream):
    port = _ports(proxy)["rl"]
    with trio.fail_after(8):
        async with await RawConnection.open(port) as first:
            statuses = [(await first.request("GET", "/per-connection")).status for _ in range(3)]
            async with await RawConnection.open(port) as second:
                fresh = await second.request("GET", "/per-connection")
    assert statuses == [200, 200, 429]
    assert (fresh.status, fresh.header("x-ratelimit-remaining")) == (200, "1")

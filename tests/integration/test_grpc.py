"""gRPC through the proxy, HTTP/2 on both sides (h2c): a grpcio client and server with the
four call kinds, trailers (`grpc-status`, trailing metadata), a 4 MiB message, a deadline
that expires and an error status; the same expectations on Envoy and meshcore."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.grpc_echo import assert_bidi_interleaves, channel, method, start_server
from tests.support.ports import dead_port, free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy

UPSTREAM_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
MIB = 1024 * 1024


def h2_cluster(name: str, port: int, **http2: Any) -> dict[str, Any]:
    return static_cluster(
        name,
        [("127.0.0.1", port)],
        typed_extension_protocol_options={
            UPSTREAM_OPTIONS: {
                "@type": f"type.googleapis.com/{UPSTREAM_OPTIONS}",
                "explicit_http_config": {"http2_protocol_options": http2},
            }
        },
    )


@pytest.fixture(scope="module")
def grpc_port() -> Iterator[int]:
    server, port = start_server()
    yield port
    server.stop(0)


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, grpc_port, tmp_path_factory) -> Iterator[tuple[Proxy, int]]:
    port = free_port()
    retry = {"retry_on": "unavailable", "num_retries": 3}
    routes = [
        route({"path": "/test.Echo/Flaky"}, cluster="grpc", retry_policy=retry),
        route({"prefix": "/test.Echo/"}, cluster="grpc"),
        route({"prefix": "/test.Dead/"}, cluster="dead"),
    ]
    rc = route_config([virtual_host("all", ["*"], routes)])
    config = bootstrap(
        [http_listener("grpc", port, rc, stat_prefix="grpc_in")],
        [h2_cluster("grpc", grpc_port), h2_cluster("dead", dead_port())],
    )
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running, port
    running.stop()


@pytest.fixture
def chan(proxy) -> Iterator[grpc.Channel]:
    with channel(proxy[1]) as c:
        yield c


def test_unary_with_trailing_metadata(chan):
    call = chan.unary_unary(method("Unary"))
    response, outcome = call.with_call(b"hello", timeout=10)
    assert response == b"hello"
    assert outcome.code() == grpc.StatusCode.OK
    assert ("x-echo-len", "5") in tuple(outcome.trailing_metadata())


def test_server_streaming(chan):
    got = list(chan.unary_stream(method("ServerStream"))(b"25", timeout=10))
    assert got == [f"message {i}".encode() for i in range(25)]


def test_client_streaming(chan):
    parts = [b"x" * n for n in (1, 10, 100, 1000, 100_000)]
    assert chan.stream_unary(method("ClientStream"))(iter(parts), timeout=10) == b"101111"


def test_bidi_streaming_interleaves(chan):
    """Each reply comes back before the next request is sent: the stream is not buffered
    in either direction."""
    assert_bidi_interleaves(chan, 10)


def test_four_mib_messages_both_ways(chan):
    big = bytes(range(256)) * (4 * MIB // 256)
    assert chan.unary_unary(method("Unary"))(big, timeout=30) == big
    parts = [big, big[: MIB + 3]]
    total = chan.stream_unary(method("ClientStream"))(iter(parts), timeout=30)
    assert total == str(len(big) + MIB + 3).encode()


def test_deadline_expires(chan):
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        chan.unary_unary(method("Slow"))(b"x", timeout=0.3)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 1.9


def test_error_status_and_message_survive(chan):
    with pytest.raises(grpc.RpcError) as caught:
        chan.unary_unary(method("Fail"))(b"x", timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "no such thing"


def test_concurrent_calls_share_one_upstream_connection(proxy, chan):
    running, _ = proxy
    call = chan.unary_unary(method("Unary"))
    futures = [call.future(f"n{i}".encode(), timeout=10) for i in range(50)]
    assert [f.result() for f in futures] == [f"n{i}".encode() for i in range(50)]
    stats = running.stats()
    assert int(stats["cluster.grpc.upstream_cx_http2_total"]) >= 1
    assert int(stats["cluster.grpc.upstream_cx_http2_total"]) <= 2
    assert int(stats["http.grpc_in.downstream_rq_http2_total"]) >= 50
    assert int(stats["http.grpc_in.downstream_cx_http2_total"]) >= 1
    assert int(stats.get("http.grpc_in.downstream_cx_http1_total", "0")) == 0


def test_local_replies_to_grpc_requests_are_grpc_statuses(chan):
    """No route: UNIMPLEMENTED; upstream connect failure (503 UF): UNAVAILABLE with Envoy's
    reply text as the message; both as HTTP 200 trailers-only responses."""
    with pytest.raises(grpc.RpcError) as caught:
        chan.unary_unary("/test.Nowhere/M")(b"x", timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.RpcError) as caught:
        chan.unary_unary("/test.Dead/M")(b"x", timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert caught.value.details().startswith("upstream connect error or disconnect/reset")


def test_retry_on_a_grpc_status_resends_the_request(proxy, chan):
    """`retry_on: unavailable`: the two UNAVAILABLE trailers-only answers are retried (with
    the request body sent again) and the third attempt succeeds."""
    running, _ = proxy
    key = f"retry-{running.kind}-{time.monotonic()}".encode()
    assert chan.unary_unary(method("Flaky"))(key, timeout=10) == key
    assert running.counter("cluster.grpc.upstream_rq_retry") >= 2

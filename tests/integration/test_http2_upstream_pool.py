"""The upstream HTTP/2 pool on the wire: a burst of first gRPC calls (many streams arriving
before any upstream connection is up) opens one upstream connection, not one per call — the
streams wait for the connection being opened, as in Envoy's pool — and fail with it when it
cannot be opened; the same expectations on Envoy and meshcore."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from tests.integration.test_grpc import h2_cluster
from tests.support.bootstrap import bootstrap, http_listener, route, route_config, virtual_host
from tests.support.grpc_echo import channel, method, start_server
from tests.support.ports import dead_port, free_port
from tests.support.proxy import proxy_kinds, start_proxy

CALLS = 40


@pytest.fixture(scope="module")
def grpc_port() -> Iterator[int]:
    server, port = start_server()
    yield port
    server.stop(0)


def _config(listen: int, upstream: int) -> dict:
    routes = [route({"prefix": "/"}, cluster="grpc")]
    rc = route_config([virtual_host("all", ["*"], routes)])
    return bootstrap(
        [http_listener("grpc", listen, rc, stat_prefix="grpc_in")], [h2_cluster("grpc", upstream)]
    )


def _burst(port: int, calls: int) -> list[bytes]:
    """`calls` unary calls queued before the client's connection is up: they reach the proxy
    together, as the streams of one write."""
    with channel(port) as chan:
        call = chan.unary_unary(method("Unary"))
        futures = [call.future(f"n{i}".encode(), timeout=10) for i in range(calls)]
        return [f.result() for f in futures]


@pytest.mark.parametrize("kind", proxy_kinds())
def test_a_burst_of_first_calls_opens_one_upstream_connection(kind, grpc_port, tmp_path_factory):
    port = free_port()
    running = start_proxy(kind, _config(port, grpc_port), tmp_path_factory)
    try:
        assert _burst(port, CALLS) == [f"n{i}".encode() for i in range(CALLS)]
        stats = running.stats()
        assert int(stats["cluster.grpc.upstream_rq_total"]) == CALLS
        assert int(stats["cluster.grpc.upstream_cx_total"]) == 1
        assert int(stats["cluster.grpc.upstream_cx_http2_total"]) == 1
        # A second burst reuses it.
        assert _burst(port, CALLS) == [f"n{i}".encode() for i in range(CALLS)]
        assert running.counter("cluster.grpc.upstream_cx_total") == 1
    finally:
        running.stop()


@pytest.mark.parametrize("kind", proxy_kinds())
def test_streams_waiting_for_a_failed_connection_fail_with_it(kind, tmp_path_factory):
    """The calls that waited for a connection that could not be opened fail as the opener's
    does (UNAVAILABLE: 503 UF)."""
    port = free_port()
    running = start_proxy(kind, _config(port, dead_port()), tmp_path_factory)
    try:
        with channel(port) as chan:
            call = chan.unary_unary(method("Unary"))
            futures = [call.future(b"x", timeout=10) for _ in range(10)]
            codes = set()
            for f in futures:
                with pytest.raises(grpc.RpcError) as caught:
                    f.result()
                codes.add(caught.value.code())
        assert codes == {grpc.StatusCode.UNAVAILABLE}
        assert running.counter("cluster.grpc.upstream_cx_connect_fail") >= 1
    finally:
        running.stop()

"""`grpc-timeout` and `max_stream_duration` through the proxy with grpcio clients and a
server that ignores deadlines: the route's `grpc_timeout_header_max` / `_offset`, its
`max_stream_duration` (which also turns the route `timeout` off), the connection manager's
`max_stream_duration`, a long server stream cut by it, and the `grpc-timeout` the upstream
sees; the same expectations on Envoy and meshcore (status, message, the
`downstream_rq_max_duration_reached` stat)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from tests.integration.test_grpc import h2_cluster
from tests.support.bootstrap import bootstrap, http_listener, route, route_config, virtual_host
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy

SERVICE = "t.Slow"


def _sleep(request: bytes, context: grpc.ServicerContext) -> bytes:
    time.sleep(1.5)
    return request


def _tick(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    for i in range(50):
        yield b"tick %d" % i
        time.sleep(0.1)


def _remaining(request: bytes, context: grpc.ServicerContext) -> bytes:
    remaining = context.time_remaining()
    return b"none" if remaining is None else f"{remaining:.3f}".encode()


@pytest.fixture(scope="module")
def upstream() -> Iterator[int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    handlers = {
        "Sleep": grpc.unary_unary_rpc_method_handler(_sleep),
        "Tick": grpc.unary_stream_rpc_method_handler(_tick),
        "Remaining": grpc.unary_unary_rpc_method_handler(_remaining),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(0)


def _routes() -> list[dict[str, object]]:
    def on(prefix: str, **action: object) -> dict[str, object]:
        return route({"prefix": prefix}, cluster="slow", prefix_rewrite=f"/{SERVICE}/", **action)

    return [
        on(
            "/offset/",
            max_stream_duration={
                "grpc_timeout_header_max": "0s",
                "grpc_timeout_header_offset": "2.5s",
            },
        ),
        on("/capped/", max_stream_duration={"grpc_timeout_header_max": "0.3s"}),
        on("/limited/", max_stream_duration={"max_stream_duration": "0.5s"}),
        on("/new-timeouts/", timeout="0.5s", max_stream_duration={"max_stream_duration": "10s"}),
        route({"prefix": "/"}, cluster="slow"),
    ]


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, upstream, tmp_path_factory) -> Iterator[tuple[Proxy, int, int]]:
    port, hcm_port = free_port(), free_port()
    rc = route_config([virtual_host("all", ["*"], _routes())])
    config = bootstrap(
        [
            http_listener("routes", port, rc, stat_prefix="routes"),
            http_listener(
                "hcm",
                hcm_port,
                rc,
                stat_prefix="hcm",
                common_http_protocol_options={"max_stream_duration": "0.8s"},
            ),
        ],
        [h2_cluster("slow", upstream)],
    )
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running, port, hcm_port
    running.stop()


def _unary(port: int, path: str, timeout: float | None) -> tuple[grpc.StatusCode, str, float]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as chan:
        start = time.monotonic()
        try:
            reply = chan.unary_unary(path)(b"x", timeout=timeout)
            return grpc.StatusCode.OK, reply.decode(), time.monotonic() - start
        except grpc.RpcError as e:
            return e.code(), e.details() or "", time.monotonic() - start


def _reached(running: Proxy, prefix: str) -> int:
    return running.counter(f"http.{prefix}.downstream_rq_max_duration_reached")


def _expired_by_proxy_deadline(running: Proxy, before: int, message: str) -> None:
    """The proxy's timer answered (its message, its stat), or the upstream did first with the
    same deadline, which the proxy sent it in `grpc-timeout` (as Envoy: the two timers race
    by the time the request takes to reach the upstream)."""
    if message == "downstream duration timeout":
        assert _reached(running, "routes") == before + 1
    else:
        assert message == "Deadline Exceeded"
        assert _reached(running, "routes") == before


def test_the_offset_makes_the_proxy_expire_before_the_client(proxy):
    running, port, _ = proxy
    before = _reached(running, "routes")
    code, message, took = _unary(port, "/offset/Sleep", timeout=3)
    # 3 s from the client less the 2.5 s offset: the proxy answers after about 0.5 s.
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert took < 1.4
    _expired_by_proxy_deadline(running, before, message)


def test_the_upstream_sees_the_deadline_the_proxy_enforces(proxy):
    _, port, _ = proxy
    code, remaining, _ = _unary(port, "/offset/Remaining", timeout=3)
    assert code == grpc.StatusCode.OK
    assert float(remaining) <= 0.55
    # A route without max_stream_duration passes the client's deadline on unchanged.
    code, remaining, _ = _unary(port, "/t.Slow/Remaining", timeout=3)
    assert code == grpc.StatusCode.OK
    assert 2.0 < float(remaining) <= 3.1


def test_grpc_timeout_header_max_caps_the_clients_deadline(proxy):
    running, port, _ = proxy
    before = _reached(running, "routes")
    code, message, took = _unary(port, "/capped/Sleep", timeout=10)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert took < 1.2
    _expired_by_proxy_deadline(running, before, message)


def test_without_grpc_timeout_the_header_max_does_not_apply(proxy):
    _, port, _ = proxy
    code, reply, took = _unary(port, "/capped/Sleep", timeout=None)
    assert (code, reply) == (grpc.StatusCode.OK, "x")
    assert took >= 1.4


def test_the_routes_max_stream_duration_ends_a_call(proxy):
    running, port, _ = proxy
    before = _reached(running, "routes")
    code, message, took = _unary(port, "/limited/Sleep", timeout=None)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert took < 1.2
    _expired_by_proxy_deadline(running, before, message)


def test_max_stream_duration_turns_the_route_timeout_off(proxy):
    _, port, _ = proxy
    # The route `timeout` (0.5 s) is not used once the route sets max_stream_duration.
    code, reply, _ = _unary(port, "/new-timeouts/Sleep", timeout=None)
    assert (code, reply) == (grpc.StatusCode.OK, "x")


def test_max_stream_duration_resets_a_long_server_stream(proxy):
    # The connection manager's limit: no route message, so no `grpc-timeout` goes upstream
    # and the server cannot end the stream itself first.
    running, _, hcm_port = proxy
    before = _reached(running, "hcm")
    got: list[bytes] = []
    with grpc.insecure_channel(f"127.0.0.1:{hcm_port}") as chan:
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as raised:
            for message in chan.unary_stream("/t.Slow/Tick")(b"x"):
                got.append(message)
        took = time.monotonic() - start
    # The response had started: the stream is reset (RST_STREAM INTERNAL_ERROR).
    assert raised.value.code() == grpc.StatusCode.INTERNAL
    assert "RST_STREAM" in (raised.value.details() or "")
    assert 1 <= len(got) < 50
    assert took < 2.5
    assert _reached(running, "hcm") == before + 1


def test_the_connection_managers_max_stream_duration(proxy):
    running, _, hcm_port = proxy
    before = _reached(running, "hcm")
    code, message, took = _unary(hcm_port, "/t.Slow/Sleep", timeout=None)
    assert (code, message) == (grpc.StatusCode.DEADLINE_EXCEEDED, "downstream duration timeout")
    assert took < 1.4
    # A route max_stream_duration replaces it (here a longer one: the call succeeds).
    code, reply, _ = _unary(hcm_port, "/new-timeouts/Sleep", timeout=None)
    assert (code, reply) == (grpc.StatusCode.OK, "x")
    assert _reached(running, "hcm") == before + 1

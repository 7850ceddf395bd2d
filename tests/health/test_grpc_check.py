"""gRPC health checks: against a real grpcio server running the standard health service, and
against a scripted HTTP/2 server (trio + `h2`) for the request Envoy sends and every way an
answer can be wrong."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import pytest
import trio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from meshcore.health.grpc_check import GrpcProbe, grpc_timeout, judge, request_message
from meshcore.health.spec import GrpcCheck, HeaderToAdd
from meshcore.health.state import Failure

from .fakes import spec

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def message(status: int) -> bytes:
    body = health_pb2.HealthCheckResponse(status=status).SerializeToString()
    return b"\0" + len(body).to_bytes(4, "big") + body


def probe_for(port: int, reuse: bool = True, timeout_ms: int = 1000, **grpc_fields) -> GrpcProbe:
    check = GrpcCheck(**grpc_fields)
    return GrpcProbe(
        spec(grpc=check, reuse_connection=reuse, timeout_ms=timeout_ms), check, "127.0.0.1", port
    )


# ---- a real grpcio health server ----------------------------------------------------------


@pytest.fixture
def health_server() -> Iterator[tuple[int, health.HealthServicer]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port, servicer
    server.stop(None)


async def test_a_serving_grpc_server_passes_and_the_connection_is_kept(health_server):
    port, servicer = health_server
    servicer.set("", SERVING)
    probe = probe_for(port)
    for _ in range(3):
        outcome = await probe.check()
        assert outcome.ok, outcome
        assert outcome.detail == "grpc_status=0 service_status=serving"
    link = probe._link
    assert link is not None
    await probe.idle_until(trio.current_time() + 0.05)
    assert probe._link is link  # idle time kept the connection
    assert (await probe.check()).ok
    assert probe._link is link
    probe.close()


async def test_not_serving_and_unknown_services_fail_actively(health_server):
    port, servicer = health_server
    servicer.set("pkg.Down", NOT_SERVING)
    probe = probe_for(port, service_name="pkg.Down")
    outcome = await probe.check()
    assert not outcome.ok and outcome.failure is Failure.ACTIVE
    assert outcome.detail == "grpc_status=0 service_status=not_serving"
    probe.close()
    # The standard service answers NOT_FOUND for a service it does not know.
    probe = probe_for(port, service_name="pkg.Nobody")
    outcome = await probe.check()
    assert not outcome.ok and outcome.failure is Failure.ACTIVE
    assert outcome.detail.startswith("grpc_status=5 ")
    probe.close()
    # The service's status changes are seen at the next check.
    servicer.set("pkg.Down", SERVING)
    probe = probe_for(port, service_name="pkg.Down")
    assert (await probe.check()).ok
    probe.close()


async def test_without_reuse_every_check_connects_again(health_server):
    port, servicer = health_server
    servicer.set("", SERVING)
    probe = probe_for(port, reuse=False)
    assert (await probe.check()).ok
    assert probe._link is None
    probe.close()


async def test_refused_connection_is_a_network_failure():
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    outcome = await probe_for(port).check()
    assert not outcome.ok and outcome.failure is Failure.NETWORK
    assert outcome.detail.startswith("connect:")


# ---- a scripted HTTP/2 server ---------------------------------------------------------------

Answer = Callable[[h2.connection.H2Connection, int], None]


@dataclass
class ScriptedH2:
    """Answers each stream with `answer(conn, stream_id)`; records request headers and
    bodies, and how many connections it accepted."""

    answer: Answer
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def serve(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        conn.initiate_connection()
        await stream.send_all(conn.data_to_send())
        bodies: dict[int, bytearray] = {}
        heads: dict[int, dict[str, str]] = {}
        async with stream:
            while True:
                try:
                    data = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return
                if not data:
                    return
                try:
                    events = conn.receive_data(data)
                except h2.exceptions.ProtocolError:  # e.g. frames after our GOAWAY
                    return
                for event in events:
                    if isinstance(event, h2.events.RequestReceived):
                        heads[event.stream_id] = dict(event.headers)
                        bodies[event.stream_id] = bytearray()
                    elif isinstance(event, h2.events.DataReceived):
                        bodies[event.stream_id] += event.data
                        conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(event, h2.events.StreamEnded):
                        sid = event.stream_id
                        self.requests.append((heads[sid], bytes(bodies[sid])))
                        self.answer(conn, sid)
                out = conn.data_to_send()
                if out:
                    await stream.send_all(out)


def grpc_answer(
    status: str = "200",
    content_type: str = "application/grpc",
    data: bytes | None = None,
    trailers: list[tuple[str, str]] | None = None,
) -> Answer:
    def answer(conn: h2.connection.H2Connection, sid: int) -> None:
        conn.send_headers(sid, [(":status", status), ("content-type", content_type)])
        if data is not None:
            conn.send_data(sid, data)
        if trailers is None:
            conn.end_stream(sid)
        else:
            conn.send_headers(sid, trailers, end_stream=True)

    return answer


async def scripted(nursery, answer: Answer) -> ScriptedH2:
    server = ScriptedH2(answer)
    await nursery.start(server.serve)
    return server


async def test_the_request_looks_like_envoys(nursery):
    server = await scripted(
        nursery, grpc_answer(data=message(SERVING), trailers=[("grpc-status", "0")])
    )
    probe = probe_for(
        server.port,
        timeout_ms=1500,
        service_name="pkg.Svc",
        authority="health.example",
        initial_metadata=(HeaderToAdd("x-token", "secret"),),
    )
    assert (await probe.check()).ok
    ((headers, body),) = server.requests
    assert headers == {
        ":method": "POST",
        ":path": "/grpc.health.v1.Health/Check",
        ":authority": "health.example",
        ":scheme": "http",
        "content-type": "application/grpc",
        "te": "trailers",
        "user-agent": "Envoy/HC",
        "x-token": "secret",
        "grpc-timeout": "1500m",
    }
    request = health_pb2.HealthCheckRequest()
    assert body[:1] == b"\0" and int.from_bytes(body[1:5], "big") == len(body) - 5
    request.ParseFromString(body[5:])
    assert request.service == "pkg.Svc"
    probe.close()


async def test_authority_defaults_to_the_cluster_name(nursery):
    server = await scripted(
        nursery, grpc_answer(data=message(SERVING), trailers=[("grpc-status", "0")])
    )
    probe = probe_for(server.port)
    assert (await probe.check()).ok
    assert server.requests[0][0][":authority"] == "svc"
    assert server.requests[0][1] == request_message(GrpcCheck()) == b"\0\0\0\0\0"
    probe.close()


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (
            grpc_answer(status="503", content_type="text/plain", data=b"down", trailers=None),
            "grpc_status=14 (non-200 HTTP response (503)) service_status=rpc_error",
        ),
        (
            grpc_answer(content_type="text/html", data=b"<html>", trailers=None),
            "grpc_status=13 (not a gRPC request) service_status=rpc_error",
        ),
        (
            grpc_answer(data=message(SERVING), trailers=None),
            "grpc_status=13 (gRPC protocol violation: unexpected stream end) "
            "service_status=rpc_error",
        ),
        (
            grpc_answer(data=message(SERVING) + message(SERVING), trailers=[("grpc-status", "0")]),
            "grpc_status=13 (unexpected streaming) service_status=rpc_error",
        ),
        (
            grpc_answer(data=b"\0\0\0\0\x02\xff\xff", trailers=[("grpc-status", "0")]),
            "grpc_status=13 (invalid grpc.health.v1 RPC payload) service_status=rpc_error",
        ),
        (
            grpc_answer(data=message(SERVING), trailers=[("x-other", "1")]),
            "grpc_status=13 (invalid gRPC status) service_status=rpc_error",
        ),
        (
            grpc_answer(
                data=message(SERVING), trailers=[("grpc-status", "14"), ("grpc-message", "busy")]
            ),
            "grpc_status=14 (busy) service_status=rpc_error",
        ),
        (
            grpc_answer(data=b"", trailers=[("grpc-status", "0")]),
            "grpc_status=0 service_status=rpc_error",
        ),
    ],
)
async def test_wrong_answers_fail_actively(nursery, answer, detail):
    server = await scripted(nursery, answer)
    probe = probe_for(server.port)
    outcome = await probe.check()
    assert not outcome.ok and outcome.failure is Failure.ACTIVE, outcome
    assert outcome.detail == detail
    probe.close()


async def test_a_trailers_only_answer_is_judged_by_its_grpc_status(nursery):
    def trailers_only(conn: h2.connection.H2Connection, sid: int) -> None:
        conn.send_headers(
            sid,
            [(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "12")],
            end_stream=True,
        )

    server = await scripted(nursery, trailers_only)
    outcome = await probe_for(server.port).check()
    assert not outcome.ok and outcome.detail == "grpc_status=12 service_status=rpc_error"


async def test_a_reset_stream_is_a_network_failure_and_drops_the_connection(nursery):
    def reset(conn: h2.connection.H2Connection, sid: int) -> None:
        conn.reset_stream(sid, error_code=2)

    server = await scripted(nursery, reset)
    probe = probe_for(server.port)
    outcome = await probe.check()
    assert not outcome.ok and outcome.failure is Failure.NETWORK
    assert probe._link is None


async def test_a_graceful_goaway_lets_the_check_finish_then_reconnects(nursery):
    def answer_then_goaway(conn: h2.connection.H2Connection, sid: int) -> None:
        # One write: the answer, then the GOAWAY (h2 sends nothing after a GOAWAY).
        grpc_answer(data=message(SERVING), trailers=[("grpc-status", "0")])(conn, sid)
        conn.close_connection(error_code=0, last_stream_id=sid)

    server = await scripted(nursery, answer_then_goaway)
    probe = probe_for(server.port)
    assert (await probe.check()).ok
    assert probe._link is None  # closed after the call, as Envoy does after a GOAWAY
    assert (await probe.check()).ok
    assert server.connections == 2
    probe.close()


def test_judge_maps_http_statuses_like_envoy():
    for status, code in [(400, 13), (401, 16), (403, 7), (404, 12), (429, 14), (504, 14), (500, 2)]:
        outcome = judge(status, {}, b"", None)
        assert outcome.detail.startswith(f"grpc_status={code} "), (status, outcome)


def test_grpc_timeout_uses_at_most_eight_digits():
    assert grpc_timeout(1500) == "1500m"
    assert grpc_timeout(99_999_999) == "99999999m"
    assert grpc_timeout(100_000_000) == "100000S"

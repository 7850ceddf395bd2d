"""A grpcio test service without generated code (raw bytes in and out), for proxying tests:
`/test.Echo/Unary` echoes (and sets trailing metadata `x-echo-len`), `ServerStream` sends
`int(request)` messages, `ClientStream` answers the total length of what it received,
`Bidi` echoes each message, `Slow` sleeps 2 s first, `Fail` ends with NOT_FOUND, `Flaky`
ends with UNAVAILABLE for the first two calls with the same request, then echoes."""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent import futures

import grpc

SERVICE = "test.Echo"
MAX_MESSAGE = 16 * 1024 * 1024
OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
]


def _unary(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.set_trailing_metadata((("x-echo-len", str(len(request))),))
    return request


def _server_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    for i in range(int(request)):
        yield f"message {i}".encode()


def _client_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
    return str(sum(len(r) for r in requests)).encode()


def _bidi(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
    for r in requests:
        yield b"echo " + r


def _slow(request: bytes, context: grpc.ServicerContext) -> bytes:
    time.sleep(2)
    return request


def _fail(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    raise AssertionError("abort returns only by raising")


_flaky_seen: Counter[bytes] = Counter()
_flaky_lock = threading.Lock()


def _flaky(request: bytes, context: grpc.ServicerContext) -> bytes:
    with _flaky_lock:
        _flaky_seen[request] += 1
        seen = _flaky_seen[request]
    if seen <= 2:
        context.abort(grpc.StatusCode.UNAVAILABLE, f"try {seen}")
    return request


def start_server(credentials: grpc.ServerCredentials | None = None) -> tuple[grpc.Server, int]:
    """A started server on 127.0.0.1 and its port: h2c, or TLS with `credentials`."""
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(_unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(_server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(_client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(_bidi),
        "Slow": grpc.unary_unary_rpc_method_handler(_slow),
        "Fail": grpc.unary_unary_rpc_method_handler(_fail),
        "Flaky": grpc.unary_unary_rpc_method_handler(_flaky),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), options=OPTIONS)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    return server, port


def channel(port: int) -> grpc.Channel:
    return grpc.insecure_channel(f"127.0.0.1:{port}", options=OPTIONS)


def method(name: str) -> str:
    return f"/{SERVICE}/{name}"


def assert_bidi_interleaves(chan: grpc.Channel, messages: int) -> None:
    """Each `Bidi` reply comes back before the next request is sent: the stream is not
    buffered in either direction."""
    requests: queue.Queue[bytes | None] = queue.Queue()

    def feed() -> Iterator[bytes]:
        while (item := requests.get()) is not None:
            yield item

    responses = chan.stream_stream(method("Bidi"))(feed(), timeout=10)
    for i in range(messages):
        requests.put(f"m{i}".encode())
        assert next(responses) == f"echo m{i}".encode()
    requests.put(None)
    assert list(responses) == []

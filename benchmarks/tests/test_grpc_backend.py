"""The HTTP/2 benchmark's fast gRPC backend answers real gRPC clients correctly."""

import tempfile
from pathlib import Path

import grpc

from benchmarks import grpc_backend
from benchmarks.procs import free_port


def test_framed_prefixes_the_length_big_endian():
    assert grpc_backend.framed(b"abc") == b"\0\0\0\0\3abc"


def test_a_grpcio_client_gets_the_message_and_status_ok():
    # Not pytest's tmp_path: nginx workers (www-data) must be able to read the directory.
    with tempfile.TemporaryDirectory(prefix="grpc-backend-") as tmp:
        _call_once(Path(tmp))


def _call_once(workdir: Path) -> None:
    port = free_port()
    proc = grpc_backend.start(workdir, port, cpu=None)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(
                "/test.Echo/Unary",
                request_serializer=lambda b: b,
                response_deserializer=lambda b: b,
            )
            reply, outcome = call.with_call(b"ping", timeout=5)
        assert reply == grpc_backend.MESSAGE
        assert outcome.code() == grpc.StatusCode.OK
    finally:
        proc.stop()

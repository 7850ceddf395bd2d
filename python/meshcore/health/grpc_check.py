"""gRPC health checks (`grpc.health.v1.Health/Check` over cleartext HTTP/2, the `h2` state
machine over trio sockets), judged as Envoy's `GrpcHealthCheckerImpl`: the call must end with
grpc-status 0 and one `HealthCheckResponse` saying SERVING. One HTTP/2 connection per host is
kept between checks (`reuse_connection`); each check is a new stream."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import trio
from grpc_health.v1 import health_pb2

from .http_check import USER_AGENT, with_header
from .probe import NETWORK_ERRORS, Link, connect_for_check, describe_error
from .spec import ClusterHealthCheck, GrpcCheck
from .state import Failure, Outcome

PATH = "/grpc.health.v1.Health/Check"
_READ_SIZE = 65536
_SERVING = health_pb2.HealthCheckResponse.SERVING
_STATUS_NAMES = {
    health_pb2.HealthCheckResponse.SERVING: "serving",
    health_pb2.HealthCheckResponse.NOT_SERVING: "not_serving",
    health_pb2.HealthCheckResponse.UNKNOWN: "unknown",
    health_pb2.HealthCheckResponse.SERVICE_UNKNOWN: "service_unknown",
}
# gRPC status codes Envoy uses in its own verdicts.
GRPC_OK, GRPC_UNKNOWN, GRPC_INTERNAL = 0, 2, 13


def http_to_grpc_status(status: int) -> int:
    """Envoy's `Grpc::Utility::httpToGrpcStatus` (gRPC's HTTP-to-gRPC status mapping)."""
    return {400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14}.get(
        status, GRPC_UNKNOWN
    )


def grpc_timeout(timeout_ms: int) -> str:
    """Envoy's `toGrpcTimeout` for a check timeout in milliseconds: at most 8 digits, in the
    smallest unit that fits."""
    value, unit = timeout_ms, "m"
    for bigger, factor in (("S", 1000), ("M", 60), ("H", 60)):
        if value < 100_000_000:
            break
        value, unit = value // factor, bigger
    return f"{value}{unit}"


def request_headers(spec: ClusterHealthCheck, grpc: GrpcCheck) -> list[tuple[str, str]]:
    """Envoy's check request: `Grpc::Common::prepareHeaders` plus `user-agent: Envoy/HC`,
    `initial_metadata` applied, the timeout as `grpc-timeout`, and the scheme."""
    headers = [
        (":method", "POST"),
        (":path", PATH),
        (":authority", grpc.authority or spec.cluster),
        (":scheme", "http"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("user-agent", USER_AGENT),
    ]
    for add in grpc.initial_metadata:
        headers = with_header(headers, add)
    if spec.timeout_ms:
        headers.append(("grpc-timeout", grpc_timeout(spec.timeout_ms)))
    return headers


def request_message(grpc: GrpcCheck) -> bytes:
    """The length-prefixed `HealthCheckRequest` (uncompressed)."""
    request = health_pb2.HealthCheckRequest()
    if grpc.service_name is not None:
        request.service = grpc.service_name
    body: bytes = request.SerializeToString()
    return b"\0" + len(body).to_bytes(4, "big") + body


class _Call:
    """What one check's stream has received so far."""

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        self.status: int | None = None
        self.headers: dict[bytes, bytes] = {}
        self.data = bytearray()
        self.trailers: dict[bytes, bytes] | None = None
        self.ended = False
        self.reset = False
        self.goaway_error: int | None = None
        """The error code of a GOAWAY received during the call (0: graceful)."""
        self.goaway_covers_call = True


class GrpcProbe:
    """Checks one host with the gRPC health checking protocol over HTTP/2."""

    def __init__(self, spec: ClusterHealthCheck, grpc: GrpcCheck, address: str, port: int) -> None:
        self._spec = spec
        self._grpc = grpc
        self._address = address
        self._port = port
        self._headers = request_headers(spec, grpc)
        self._message = request_message(grpc)
        self._link: Link | None = None
        self._conn: h2.connection.H2Connection | None = None
        self._going_away = False

    async def check(self) -> Outcome:
        if self._going_away:
            self.close()
        if self._link is None:
            link = await connect_for_check(
                self._address, self._port, self._spec.connect_timeout_ms / 1000
            )
            if isinstance(link, Outcome):
                return link
            self._link = link
            self._conn = h2.connection.H2Connection(
                h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
            )
            self._conn.initiate_connection()
        link, conn = self._link, self._conn
        assert conn is not None
        try:
            call = _Call(conn.get_next_available_stream_id())
            conn.send_headers(call.stream_id, self._headers)
            conn.send_data(call.stream_id, self._message, end_stream=True)
            await link.stream.send_all(conn.data_to_send())
            while not (call.ended or call.reset):
                data = await link.stream.receive_some(_READ_SIZE)
                if not data:
                    raise trio.BrokenResourceError("connection closed by the host")
                self._receive(conn, data, call)
                await link.stream.send_all(conn.data_to_send())
        except (*NETWORK_ERRORS, h2.exceptions.ProtocolError) as exc:
            self.close()
            return Outcome.fail(Failure.NETWORK, describe_error(exc))
        if call.reset:
            # Envoy's onResetStream (a GOAWAY that does not let the call finish, or a
            # RST_STREAM): a network failure, and the connection is not reused.
            self.close()
            return Outcome.fail(Failure.NETWORK, "stream reset by the host")
        outcome = judge(call.status, call.headers, call.data, call.trailers)
        if not self._spec.reuse_connection or self._going_away:
            self.close()
        return outcome

    def _receive(self, conn: h2.connection.H2Connection, data: bytes, call: _Call) -> None:
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                headers = _header_dict(event.headers)
                call.status = int(headers.get(b":status", b"0"))
                call.headers = headers
            elif isinstance(event, h2.events.TrailersReceived):
                call.trailers = _header_dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                call.data += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id == call.stream_id:
                call.ended = True
            elif isinstance(event, h2.events.StreamReset) and event.stream_id == call.stream_id:
                call.reset = True
            elif isinstance(event, h2.events.ConnectionTerminated):
                # Envoy: a graceful GOAWAY lets the call in progress finish, then the
                # connection closes; any other GOAWAY fails the call at once.
                self._going_away = True
                last = event.last_stream_id
                if event.error_code != 0 or (last is not None and last < call.stream_id):
                    call.reset = True

    async def idle_until(self, deadline: float) -> Outcome | None:
        """Keeps the idle connection serviced (PING and SETTINGS answered by `h2`); a host
        that closes it or sends GOAWAY meanwhile only costs a new connection next time."""
        link, conn = self._link, self._conn
        if link is None or conn is None:
            await trio.sleep_until(deadline)
            return None
        with trio.move_on_at(deadline):
            try:
                while not self._going_away:
                    data = await link.stream.receive_some(_READ_SIZE)
                    if not data:
                        break
                    for event in conn.receive_data(data):
                        if isinstance(event, h2.events.ConnectionTerminated):
                            self._going_away = True
                    await link.stream.send_all(conn.data_to_send())
            except (*NETWORK_ERRORS, h2.exceptions.ProtocolError):
                pass
            self.close()
            await trio.sleep_until(deadline)
        return None

    def close(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None
        self._conn = None
        self._going_away = False


def _header_dict(headers: list[tuple[str, str]] | list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    return {
        (k if isinstance(k, bytes) else k.encode()): (v if isinstance(v, bytes) else v.encode())
        for k, v in headers
    }


def judge(
    status: int | None,
    headers: dict[bytes, bytes],
    data: bytes | bytearray,
    trailers: dict[bytes, bytes] | None,
) -> Outcome:
    """Envoy's `decodeHeaders` / `decodeData` / `decodeTrailers` / `isHealthCheckSucceeded`
    over a finished call. Every answer that is not a SERVING call is an ACTIVE failure."""
    if status != 200:
        if trailers is None and not data and b"grpc-status" in headers:
            return _verdict(_grpc_status(headers), headers, None)
        return _fail(http_to_grpc_status(status or 0), f"non-200 HTTP response ({status})")
    if not headers.get(b"content-type", b"").startswith(b"application/grpc"):
        return _fail(GRPC_INTERNAL, "not a gRPC request")
    if trailers is None:
        if not data and b"grpc-status" in headers:  # trailers-only (e.g. UNIMPLEMENTED)
            return _verdict(_grpc_status(headers), headers, None)
        return _fail(GRPC_INTERNAL, "gRPC protocol violation: unexpected stream end")
    response, problem = _decode(bytes(data))
    if problem:
        return _fail(GRPC_INTERNAL, problem)
    if b"grpc-status" not in trailers:
        return _fail(GRPC_INTERNAL, "invalid gRPC status")
    return _verdict(_grpc_status(trailers), trailers, response)


def _decode(data: bytes) -> tuple[health_pb2.HealthCheckResponse | None, str]:
    """The one length-prefixed message of a unary answer, or a problem naming what is wrong."""
    response: health_pb2.HealthCheckResponse | None = None
    offset = 0
    while offset < len(data):
        if len(data) - offset < 5:
            return None, "gRPC wire protocol decode error"
        flags, length = data[offset], int.from_bytes(data[offset + 1 : offset + 5], "big")
        body = data[offset + 5 : offset + 5 + length]
        if len(body) < length:
            return None, "gRPC wire protocol decode error"
        offset += 5 + length
        if length == 0:
            continue
        if response is not None:
            return None, "unexpected streaming"
        response = health_pb2.HealthCheckResponse()
        try:
            if flags != 0:
                raise ValueError("compressed")
            response.ParseFromString(body)
        except Exception:  # noqa: BLE001 - protobuf raises DecodeError or others
            return None, "invalid grpc.health.v1 RPC payload"
    return response, ""


def _grpc_status(headers: dict[bytes, bytes]) -> int:
    try:
        return int(headers[b"grpc-status"])
    except ValueError:
        return GRPC_INTERNAL


def _verdict(
    code: int, headers: dict[bytes, bytes], response: health_pb2.HealthCheckResponse | None
) -> Outcome:
    serving = "rpc_error" if response is None else _STATUS_NAMES.get(response.status, "unknown")
    if code != GRPC_OK:
        message = headers.get(b"grpc-message", b"").decode(errors="replace")
        return _fail(code, message)
    detail = f"grpc_status=0 service_status={serving}"
    if response is None or response.status != _SERVING:
        return Outcome.fail(Failure.ACTIVE, detail)
    return Outcome.success(detail=detail)


def _fail(code: int, message: str) -> Outcome:
    suffix = f" ({message})" if message else ""
    return Outcome.fail(Failure.ACTIVE, f"grpc_status={code}{suffix} service_status=rpc_error")

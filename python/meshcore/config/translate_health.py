"""A cluster's `health_checks` into the `ClusterHealthCheck` the control layer's health
checker runs (not part of the engine snapshot: health reaches the engine as host flags)."""

from __future__ import annotations

import binascii
from collections.abc import Sequence

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import health_check_pb2
from envoy.type.v3 import range_pb2

from meshcore.health.spec import (
    DEFAULT_EXPECTED_STATUSES,
    DEFAULT_NO_TRAFFIC_INTERVAL_MS,
    DEFAULT_RESPONSE_BUFFER_SIZE,
    ClusterHealthCheck,
    GrpcCheck,
    HeaderToAdd,
    HttpCheck,
    TcpCheck,
)

from . import paths
from .errors import Problems
from .translate_headers import headers_to_add, headers_to_remove
from .values import duration_field_ms, enum_name, wrapped


def health_check(
    config: cluster_pb2.Cluster,
    connect_timeout_ms: int,
    http2: bool,
    path: str,
    problems: Problems,
) -> ClusterHealthCheck | None:
    """The cluster's health check, or None when it has none (or it is unusable: reported).
    `http2`: the cluster speaks HTTP/2 upstream (a gRPC check needs it, as in Envoy)."""
    checks = config.health_checks
    list_path = paths.field(path, "health_checks")
    if not checks:
        return None
    if len(checks) > 1:
        problems.add(paths.item(list_path, 1), "multiple health checks are not supported")
    check = checks[0]
    path = paths.item(list_path, 0)
    if config.HasField("transport_socket"):
        problems.add(
            path, "health checks of a TLS cluster are not supported yet (checks are cleartext)"
        )
        return None
    http = tcp = grpc = None
    kind = check.WhichOneof("health_checker")
    if kind == "http_health_check":
        http = _http(check.http_health_check, paths.field(path, kind), problems)
    elif kind == "tcp_health_check":
        tcp = _tcp(check.tcp_health_check, paths.field(path, kind), problems)
    elif kind == "grpc_health_check":
        if not http2:
            problems.add(
                paths.field(path, kind), "grpc cluster must support HTTP/2 for gRPC healthchecking"
            )
            return None
        grpc = _grpc(check.grpc_health_check, paths.field(path, kind), problems)
    if http is None and tcp is None and grpc is None:
        return None  # no checker, or another kind: reported by PGV or the table
    interval_ms = duration_field_ms(check, "interval", 0)
    no_traffic_ms = duration_field_ms(check, "no_traffic_interval", DEFAULT_NO_TRAFFIC_INTERVAL_MS)
    return ClusterHealthCheck(
        cluster=config.name,
        alt_stat_name=config.alt_stat_name,
        timeout_ms=duration_field_ms(check, "timeout", 0),
        interval_ms=interval_ms,
        unhealthy_threshold=wrapped(check, "unhealthy_threshold", 0),
        healthy_threshold=wrapped(check, "healthy_threshold", 0),
        http=http,
        tcp=tcp,
        grpc=grpc,
        connect_timeout_ms=connect_timeout_ms,
        initial_jitter_ms=duration_field_ms(check, "initial_jitter", 0),
        interval_jitter_ms=duration_field_ms(check, "interval_jitter", 0),
        interval_jitter_percent=check.interval_jitter_percent,
        no_traffic_interval_ms=no_traffic_ms,
        no_traffic_healthy_interval_ms=duration_field_ms(
            check, "no_traffic_healthy_interval", no_traffic_ms
        ),
        unhealthy_interval_ms=duration_field_ms(check, "unhealthy_interval", interval_ms),
        unhealthy_edge_interval_ms=duration_field_ms(check, "unhealthy_edge_interval", 0),
        healthy_edge_interval_ms=duration_field_ms(check, "healthy_edge_interval", interval_ms),
        reuse_connection=wrapped(check, "reuse_connection", True),
        always_log_health_check_failures=check.always_log_health_check_failures,
        always_log_health_check_success=check.always_log_health_check_success,
    )


def _http(
    http: health_check_pb2.HealthCheck.HttpHealthCheck, path: str, problems: Problems
) -> HttpCheck | None:
    ok = True
    expected = _ranges(http.expected_statuses, "expected", path, problems)
    retriable = _ranges(http.retriable_statuses, "retriable", path, problems)
    receive = _payloads(http.receive, paths.field(path, "receive"), problems)
    buffer_size = wrapped(http, "response_buffer_size", DEFAULT_RESPONSE_BUFFER_SIZE)
    if expected is None or retriable is None or receive is None:
        ok = False
    elif buffer_size and sum(len(r) for r in receive) > buffer_size:
        problems.add(
            paths.field(path, "receive"),
            f"the expected response length '{sum(len(r) for r in receive)}' is over the "
            f"response buffer size '{buffer_size}'",
        )
        ok = False
    to_add = headers_to_add(
        http.request_headers_to_add, paths.field(path, "request_headers_to_add"), problems
    )
    to_remove = headers_to_remove(
        http.request_headers_to_remove, paths.field(path, "request_headers_to_remove"), problems
    )
    if not ok or expected is None or retriable is None or receive is None:
        return None
    method = enum_name(http, "method")
    return HttpCheck(
        path=http.path,
        host=http.host,
        method="GET" if method == "METHOD_UNSPECIFIED" else method,
        expected_statuses=expected or DEFAULT_EXPECTED_STATUSES,
        retriable_statuses=retriable,
        receive=receive,
        response_buffer_size=buffer_size,
        headers_to_add=tuple(
            HeaderToAdd(h["key"], h["value"], h["append_action"], h["keep_empty_value"])
            for h in to_add
        ),
        headers_to_remove=tuple(to_remove),
    )


def _grpc(
    grpc: health_check_pb2.HealthCheck.GrpcHealthCheck, path: str, problems: Problems
) -> GrpcCheck | None:
    before = len(problems)
    metadata = headers_to_add(
        grpc.initial_metadata, paths.field(path, "initial_metadata"), problems
    )
    if len(problems) != before:
        return None
    return GrpcCheck(
        # Envoy: an empty service_name is "not set" (the whole server's health).
        service_name=grpc.service_name or None,
        authority=grpc.authority,
        initial_metadata=tuple(
            HeaderToAdd(h["key"], h["value"], h["append_action"], h["keep_empty_value"])
            for h in metadata
        ),
    )


def _ranges(
    ranges: Sequence[range_pb2.Int64Range], kind: str, path: str, problems: Problems
) -> tuple[tuple[int, int], ...] | None:
    """Status ranges, checked as Envoy checks them ([start, end) within [100, 600])."""
    out = []
    ok = True
    for i, status_range in enumerate(ranges):
        start, end = int(status_range.start), int(status_range.end)
        where = paths.item(paths.field(path, f"{kind}_statuses"), i)
        if start >= end:
            problems.add(
                where,
                f"invalid http {kind} status range: expecting start < end, "
                f"but found start={start} and end={end}",
            )
            ok = False
        elif start < 100:
            problems.add(
                where,
                f"invalid http {kind} status range: expecting start >= 100, "
                f"but found start={start}",
            )
            ok = False
        elif end > 600:
            problems.add(
                where,
                f"invalid http {kind} status range: expecting end <= 600, but found end={end}",
            )
            ok = False
        else:
            out.append((start, end))
    return tuple(out) if ok else None


def _tcp(
    tcp: health_check_pb2.HealthCheck.TcpHealthCheck, path: str, problems: Problems
) -> TcpCheck | None:
    send = b""
    if tcp.HasField("send"):
        payload = _payload(tcp.send, paths.field(path, "send"), problems)
        if payload is None:
            return None
        send = payload
    receive = _payloads(tcp.receive, paths.field(path, "receive"), problems)
    if receive is None:
        return None
    return TcpCheck(send=send, receive=receive)


def _payloads(
    payloads: Sequence[health_check_pb2.HealthCheck.Payload], path: str, problems: Problems
) -> tuple[bytes, ...] | None:
    out = [_payload(p, paths.item(path, i), problems) for i, p in enumerate(payloads)]
    if any(p is None for p in out):
        return None
    return tuple(p for p in out if p is not None)


def _payload(
    payload: health_check_pb2.HealthCheck.Payload, path: str, problems: Problems
) -> bytes | None:
    """`text` (hex) or `binary` bytes; bad hex is reported as Envoy reports it (an empty
    payload is reported by PGV)."""
    kind = payload.WhichOneof("payload")
    if kind == "binary":
        return bytes(payload.binary)
    if kind is None or not payload.text:
        return None
    try:
        decoded = binascii.unhexlify(payload.text)
    except (binascii.Error, ValueError):
        decoded = b""
    if not decoded:
        problems.add(paths.field(path, "text"), f"invalid hex string '{payload.text}'")
        return None
    return decoded

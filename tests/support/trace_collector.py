"""A small span collector for tests: a recording upstream (trio, h11) that accepts Zipkin v2
JSON and OTLP/HTTP protobuf reports and hands back the spans it received, as dicts in
Zipkin's shape (OTLP spans are converted: hex ids, `tags` from string attributes)."""

from __future__ import annotations

import threading
import time
from concurrent import futures
from typing import Any

import grpc
import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.support.upstream import RecordedRequest, Upstream, UpstreamServer

_KINDS = {Span.SPAN_KIND_SERVER: "SERVER", Span.SPAN_KIND_CLIENT: "CLIENT"}


def _otlp(body: bytes) -> list[dict[str, Any]]:
    req = ExportTraceServiceRequest()
    req.ParseFromString(body)
    out = []
    for rs in req.resource_spans:
        resource = {a.key: a.value.string_value for a in rs.resource.attributes}
        # xds-protos' OpenTelemetry protos name `scope_spans` by its old name (same field).
        for ss in rs.instrumentation_library_spans:
            for s in ss.spans:
                span: dict[str, Any] = {
                    "traceId": s.trace_id.hex(),
                    "id": s.span_id.hex(),
                    "name": s.name,
                    "kind": _KINDS.get(s.kind, str(s.kind)),
                    "timestamp": s.start_time_unix_nano // 1000,
                    "duration": (s.end_time_unix_nano - s.start_time_unix_nano) // 1000,
                    "tags": {a.key: a.value.string_value for a in s.attributes},
                    "resource": resource,
                    "status": s.status.code,
                }
                if s.parent_span_id:
                    span["parentId"] = s.parent_span_id.hex()
                out.append(span)
    return out


class Collector:
    """Spans posted to one recording upstream."""

    def __init__(self, server: UpstreamServer, name: str = "collector") -> None:
        # 202 Accepted, as a Zipkin collector answers (Envoy counts anything else dropped).
        self.upstream: Upstream = server.start(name, "status=202")

    @property
    def port(self) -> int:
        return self.upstream.port

    def reports(self) -> list[RecordedRequest]:
        return [r for r in self.upstream.requests if r.method == "POST" and r.complete]

    def spans(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for r in self.reports():
            kind = r.header("content-type") or ""
            if "protobuf" in kind:
                out.extend(_otlp(bytes(r.body)))
            else:
                out.extend(orjson.loads(bytes(r.body)))
        return out

    def wait_spans(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        """The spans once at least `count` arrived (asserts they do within `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans()
            if len(spans) >= count or time.monotonic() > deadline:
                assert len(spans) >= count, f"{len(spans)} spans of {count}: {spans}"
                return spans
            time.sleep(0.1)

    def clear(self) -> None:
        self.upstream.clear()


class GrpcCollector:
    """An OTLP/gRPC collector (`TraceService/Export`, raw bytes in and out) on 127.0.0.1."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bodies: list[bytes] = []
        handler = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.trace.v1.TraceService",
            {"Export": grpc.unary_unary_rpc_method_handler(self._export)},
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _export(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self._lock:
            self._bodies.append(request)
        return b""  # an empty ExportTraceServiceResponse

    def spans(self) -> list[dict[str, Any]]:
        with self._lock:
            bodies = list(self._bodies)
        return [s for b in bodies for s in _otlp(b)]

    def wait_spans(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans()
            if len(spans) >= count or time.monotonic() > deadline:
                assert len(spans) >= count, f"{len(spans)} spans of {count}: {spans}"
                return spans
            time.sleep(0.1)

    def stop(self) -> None:
        self.server.stop(0)

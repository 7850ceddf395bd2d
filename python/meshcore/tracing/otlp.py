"""OTLP `ExportTraceServiceRequest` (protobuf) of the engine's spans: one resource
(`service.name`), one scope (`envoy`), ids as bytes, kind, times in nanoseconds, tags as
string attributes, status ERROR when the span has `error: true`.

The message classes are the OpenTelemetry protos that `xds-protos` vendors (Envoy's copy,
under `opentelemetry.proto`; installing PyPI's `opentelemetry-proto` beside it would fight
over the same files). That copy predates the rename of `instrumentation_library_spans` to
`scope_spans` (and `InstrumentationLibrary` to `InstrumentationScope`): same field numbers and
types, so the bytes are today's OTLP."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

_KINDS = {"SERVER": Span.SPAN_KIND_SERVER, "CLIENT": Span.SPAN_KIND_CLIENT}


def _id(hex_id: str, width: int) -> bytes:
    return bytes.fromhex(hex_id.rjust(width * 2, "0"))


def _attr(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def span(raw: dict[str, Any]) -> Span:
    start = raw["timestamp"] * 1000
    out = Span(
        trace_id=_id(raw["traceId"], 16),
        span_id=_id(raw["id"], 8),
        # Envoy's OpenTelemetry spans are named by the operation (Zipkin's by the host).
        name="egress" if raw["kind"] == "CLIENT" else "ingress",
        kind=_KINDS.get(raw["kind"], Span.SPAN_KIND_SERVER),
        start_time_unix_nano=start,
        end_time_unix_nano=start + raw["duration"] * 1000,
        attributes=[_attr(k, v) for k, v in raw["tags"].items()],
    )
    if "parentId" in raw:
        out.parent_span_id = _id(raw["parentId"], 8)
    if raw["tags"].get("error") == "true":
        out.status.code = Status.STATUS_CODE_ERROR
    return out


def request(spans: list[dict[str, Any]], service_name: str) -> bytes:
    """A serialized `ExportTraceServiceRequest` for the spans."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(_attr("service.name", service_name))
    ss = rs.instrumentation_library_spans.add()  # `scope_spans` on the wire (field 2)
    ss.instrumentation_library.name = "envoy"
    ss.spans.extend(span(s) for s in spans)
    data: bytes = req.SerializeToString()
    return data

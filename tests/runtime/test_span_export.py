"""The span exporter: engine span lines grouped by tracer into Zipkin v2 JSON or OTLP reports
POSTed to the collector cluster, with Envoy's report stats for success (202), a collector
that answers otherwise, a refused connection and a cluster without hosts."""

from __future__ import annotations

from typing import Any

import orjson
import trio
from meshcore.lifecycle.control_stats import ControlStats
from meshcore.tracing import otlp, zipkin
from meshcore.tracing.export import SpanExporter

from tests.support.ports import dead_port

SPAN = {
    "tracer": 0,
    "traceId": "463ac35c9f6413ad",
    "id": "463ac35c9f6413ad",
    "kind": "SERVER",
    "shared": True,
    "name": "example.com",
    "timestamp": 1_700_000_000_000_000,
    "duration": 1500,
    "tags": {"http.status_code": "503", "error": "true"},
}


class Engine:
    def __init__(self, spans: list[dict[str, Any]]) -> None:
        self.lines = b"".join(orjson.dumps(s) + b"\n" for s in spans)

    def take_spans(self) -> bytes:
        out, self.lines = self.lines, b""
        return out


def _snapshot(kind: str, cluster: str = "c") -> dict[str, Any]:
    export = {"kind": kind, "cluster": cluster, "path": "/api/v2/spans", "service_name": "s"}
    manager = {"tracing": {"tracer": 0, "export": {**export, "service_cluster": "svc"}}}
    return {
        "local_address": "10.0.0.1",
        "listeners": [{"filter_chains": [{"filter": {"http_connection_manager": manager}}]}],
    }


async def _collector(status: int, got: list[bytes], task_status: Any) -> None:
    async def handle(stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        while len(body) < length:
            body += await stream.receive_some(65536)
        got.append(head + b"\r\n\r\n" + body)
        reason = b"Accepted" if status == 202 else b"OK"
        await stream.send_all(b"HTTP/1.1 %d %s\r\ncontent-length: 0\r\n\r\n" % (status, reason))
        await stream.aclose()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handle, listeners)


def test_zipkin_span_shape() -> None:
    out = zipkin.span(SPAN, "svc", "10.0.0.1")
    assert "tracer" not in out and out["shared"] is True
    assert out["annotations"] == [{"timestamp": 1_700_000_000_001_500, "value": "ss"}]
    assert out["localEndpoint"] == {"serviceName": "svc", "ipv4": "10.0.0.1", "port": 0}


def test_otlp_request_shape() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    req = ExportTraceServiceRequest()
    req.ParseFromString(otlp.request([{**SPAN, "parentId": "00000000000000ff"}], "svc"))
    (rs,) = req.resource_spans
    assert rs.resource.attributes[0].value.string_value == "svc"
    (span,) = rs.instrumentation_library_spans[0].spans
    assert span.trace_id.hex() == "0" * 16 + "463ac35c9f6413ad"
    assert span.parent_span_id.hex() == "00000000000000ff"
    assert span.end_time_unix_nano - span.start_time_unix_nano == 1_500_000
    assert span.status.code == 2  # STATUS_CODE_ERROR


async def test_reports_and_their_stats(nursery: trio.Nursery) -> None:
    got: list[bytes] = []
    accepted = await nursery.start(_collector, 202, got)
    other = await nursery.start(_collector, 200, got)
    control = ControlStats()
    hosts: dict[str, list[dict[str, Any]]] = {"c": [{"address": "127.0.0.1", "port": accepted}]}
    engine = Engine([SPAN, {**SPAN, "id": "1"}])
    exporter = SpanExporter(engine, control, lambda c: hosts.get(c, []))
    exporter.configure(_snapshot("zipkin"))
    await exporter.flush()
    assert control.get("tracing.zipkin.reports_sent") == 1
    assert control.get("tracing.zipkin.spans_sent") == 2
    head, _, body = got[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /api/v2/spans HTTP/1.1") and b"application/json" in head
    spans = orjson.loads(body)
    assert [s["id"] for s in spans] == ["463ac35c9f6413ad", "1"]
    assert spans[0]["localEndpoint"]["ipv4"] == "10.0.0.1"

    # Nothing queued: no report.
    await exporter.flush()
    assert len(got) == 1

    # Zipkin counts anything but 202 as dropped (as Envoy).
    hosts["c"] = [{"address": "127.0.0.1", "port": other}]
    engine.lines = orjson.dumps(SPAN) + b"\n"
    await exporter.flush()
    assert control.get("tracing.zipkin.reports_dropped") == 1

    # A refused connection and a cluster without hosts are failures.
    hosts["c"] = [{"address": "127.0.0.1", "port": dead_port()}]
    engine.lines = orjson.dumps(SPAN) + b"\n"
    await exporter.flush()
    hosts["c"] = []
    engine.lines = orjson.dumps(SPAN) + b"\n"
    await exporter.flush()
    assert control.get("tracing.zipkin.reports_failed") == 2
    assert control.get("tracing.zipkin.timer_flushed") == 4

    # OTLP over HTTP: protobuf, 2xx is sent.
    hosts["c"] = [{"address": "127.0.0.1", "port": other}]
    exporter.configure(_snapshot("opentelemetry"))
    engine.lines = orjson.dumps(SPAN) + b"\n"
    await exporter.flush()
    assert control.get("tracing.opentelemetry.http_reports_sent") == 1
    assert b"application/x-protobuf" in got[-1]

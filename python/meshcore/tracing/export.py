"""The span exporter: every `FLUSH_S` it drains the engine's spans (`Engine.take_spans`,
built with the GIL released), groups them by tracer and POSTs one report per tracer to a
healthy host of its collector cluster (h11 on trio): Zipkin v2 JSON or OTLP/HTTP protobuf.
Counts Envoy's stats: `tracing.zipkin.{spans_sent,reports_sent,reports_failed,
reports_dropped,timer_flushed}`, `tracing.opentelemetry.{spans_sent,timer_flushed,
http_reports_sent,http_reports_failed,http_reports_dropped}` (and `grpc_reports_{sent,failed}`
for OTLP over gRPC, meshcore's names). A report that fails is dropped
(spans are not retried, as in Envoy)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import h11
import orjson
import trio

from meshcore.health.probe import NETWORK_ERRORS, connect, describe_error
from meshcore.lifecycle.control_stats import ControlStats

from . import zipkin

log = logging.getLogger(__name__)

FLUSH_S = 1.0
"""How often spans are drained and reported (Envoy's default flush is 5 s)."""
TIMEOUT_S = 5.0

Endpoint = dict[str, Any]
HostsOf = Callable[[str], list[Endpoint]]


class SpanSource(Protocol):
    def take_spans(self) -> bytes: ...


def exporters(snapshot: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    """The snapshot's exporters by tracer index."""
    found: dict[int, dict[str, Any]] = {}
    for listener in snapshot.get("listeners", ()):
        chains = [*listener.get("filter_chains", ()), listener.get("default_filter_chain")]
        for chain in filter(None, chains):
            manager = chain.get("filter", {}).get("http_connection_manager") or {}
            t = manager.get("tracing")
            if t is not None:
                found[t["tracer"]] = t["export"]
    return found


def _stat_names(kind: str) -> tuple[str, ...]:
    if kind == "zipkin":
        return tuple(
            f"tracing.zipkin.{n}"
            for n in (
                "spans_sent",
                "reports_sent",
                "reports_failed",
                "reports_dropped",
                "timer_flushed",
            )
        )
    return tuple(
        f"tracing.opentelemetry.{n}"
        for n in (
            "spans_sent",
            "timer_flushed",
            "http_reports_sent",
            "http_reports_failed",
            "http_reports_dropped",
        )
    )


async def post(
    address: str, port: int, target: str, host: str, content_type: str, body: bytes
) -> int:
    """POSTs `body`; the response status (raises OSError-like errors from `NETWORK_ERRORS`)."""
    conn = h11.Connection(h11.CLIENT)
    link = await connect(address, port, TIMEOUT_S)
    try:
        request = h11.Request(
            method="POST",
            target=target,
            headers=[
                ("host", host),
                ("content-type", content_type),
                ("content-length", str(len(body))),
            ],
        )
        await link.stream.send_all(
            (conn.send(request) or b"")
            + (conn.send(h11.Data(data=body)) or b"")
            + (conn.send(h11.EndOfMessage()) or b"")
        )
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await link.stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                return int(event.status_code)
            elif isinstance(event, h11.ConnectionClosed):
                raise trio.BrokenResourceError("connection closed by the collector")
    finally:
        link.close()


class SpanExporter:
    """Drains and reports the engine's spans while the config has tracers."""

    def __init__(self, engine: SpanSource, control: ControlStats, hosts: HostsOf) -> None:
        self._engine = engine
        self._control = control
        self._hosts = hosts
        self._address = "127.0.0.1"
        self._exporters: dict[int, dict[str, Any]] = {}
        self._next_host: dict[str, int] = {}

    def configure(self, snapshot: Mapping[str, Any]) -> None:
        """Uses the exporters of a newly applied snapshot."""
        self._exporters = exporters(snapshot)
        self._address = str(snapshot.get("local_address", self._address))
        for e in self._exporters.values():
            self._control.declare(*_stat_names(e["kind"]))

    async def run(self) -> None:
        """Flushes every `FLUSH_S` until cancelled."""
        while True:
            await trio.sleep(FLUSH_S)
            await self.flush()

    async def flush(self) -> None:
        raw = self._engine.take_spans()
        if not raw:
            return
        by_tracer: dict[int, list[dict[str, Any]]] = {}
        for line in raw.splitlines():
            if line:
                s = orjson.loads(line)
                by_tracer.setdefault(s["tracer"], []).append(s)
        for tracer, spans in by_tracer.items():
            export = self._exporters.get(tracer)
            if export is None:
                continue  # a tracer of a replaced config
            await self._report(export, spans)

    async def _report(self, export: dict[str, Any], spans: list[dict[str, Any]]) -> None:
        if export["kind"] == "opentelemetry_grpc":
            await self._report_grpc(export, spans)
            return
        zipkin_kind = export["kind"] == "zipkin"
        prefix = "tracing.zipkin." if zipkin_kind else "tracing.opentelemetry."
        sent, failed, dropped = (
            ("reports_sent", "reports_failed", "reports_dropped")
            if zipkin_kind
            else ("http_reports_sent", "http_reports_failed", "http_reports_dropped")
        )
        self._control.inc(prefix + "timer_flushed")
        if zipkin_kind:
            body = zipkin.report(spans, export.get("service_cluster", ""), self._address)
            content_type, host = "application/json", export["cluster"]
        else:
            # Imported on first use: the protobuf stack stays out of a process without OTLP.
            from . import otlp

            body = otlp.request(spans, export["service_name"])
            content_type, host = (
                "application/x-protobuf",
                export.get("authority") or export["cluster"],
            )
        hosts = [h for h in self._hosts(export["cluster"]) if h.get("healthy", True)]
        if not hosts:
            log.warning("tracing: collector cluster %s has no healthy host", export["cluster"])
            self._control.inc(prefix + failed)
            return
        i = self._next_host.get(export["cluster"], 0) % len(hosts)
        self._next_host[export["cluster"]] = i + 1
        h = hosts[i]
        try:
            with trio.fail_after(TIMEOUT_S):
                status = await post(
                    h["address"], int(h["port"]), export["path"], host, content_type, body
                )
        except (*NETWORK_ERRORS, h11.ProtocolError, trio.TooSlowError) as exc:
            log.warning("tracing: report to %s failed: %s", export["cluster"], describe_error(exc))
            self._control.inc(prefix + failed)
            return
        self._control.inc(prefix + "spans_sent", len(spans))
        # Envoy's Zipkin reporter counts only a 202 (Accepted) as sent; OTLP/HTTP any 2xx.
        if status == 202 or (not zipkin_kind and 200 <= status < 300):
            self._control.inc(prefix + sent)
        else:
            self._control.inc(prefix + dropped)

    async def _report_grpc(self, export: dict[str, Any], spans: list[dict[str, Any]]) -> None:
        """OTLP over gRPC: one unary `TraceService/Export` call to a host of the cluster (the
        blocking grpcio client in a thread: `grpc.aio` does not run under trio)."""
        from . import otlp

        prefix = "tracing.opentelemetry."
        self._control.inc(prefix + "timer_flushed")
        hosts = [h for h in self._hosts(export["cluster"]) if h.get("healthy", True)]
        if not hosts:
            log.warning("tracing: collector cluster %s has no healthy host", export["cluster"])
            self._control.inc(prefix + "grpc_reports_failed")
            return
        i = self._next_host.get(export["cluster"], 0) % len(hosts)
        self._next_host[export["cluster"]] = i + 1
        target = f"{hosts[i]['address']}:{int(hosts[i]['port'])}"
        body = otlp.request(spans, export["service_name"])
        timeout = export.get("timeout_ms", 1000) / 1000
        try:
            await trio.to_thread.run_sync(
                _grpc_export, target, export["path"], body, timeout, abandon_on_cancel=True
            )
        except Exception as exc:  # grpc.RpcError and channel errors: the report is lost
            log.warning("tracing: OTLP export to %s failed: %s", export["cluster"], exc)
            self._control.inc(prefix + "grpc_reports_failed")
            return
        self._control.inc(prefix + "spans_sent", len(spans))
        self._control.inc(prefix + "grpc_reports_sent")


def _grpc_export(target: str, method: str, body: bytes, timeout: float) -> None:
    """One unary call carrying the serialized request (bytes in, response ignored)."""
    import grpc

    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(method)
        call(body, timeout=timeout)

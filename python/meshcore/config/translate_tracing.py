"""The connection manager's `tracing` (Envoy's Zipkin and OpenTelemetry providers) into the
snapshot's `tracing`: sampling in hundredths of a percent, the propagation flavour, custom
tags, and under `export` what the control layer's exporter needs (collector cluster and
path, service name). A connection manager's `tracing` without `provider` uses the bootstrap's
`tracing.http` (`inherit_provider`), as Envoy does. `link_tracers` numbers the distinct
exporters and fills in the node."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import orjson
from envoy.config.trace.v3 import http_tracer_pb2, opentelemetry_pb2, zipkin_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf.message import Message

from . import paths
from .errors import Problems
from .supported import OPENTELEMETRY, ZIPKIN
from .type_urls import type_name, unpack

DEFAULT_MAX_PATH_TAG_LENGTH = 256


def _percent(tracing: Message, name: str) -> int:
    """A `Percent` field in hundredths of a percent (absent: 100%)."""
    if not tracing.HasField(name):
        return 10_000
    value: float = getattr(tracing, name).value
    return round(value * 100)


def _ms(d: Any, default_ms: int) -> int:
    if d.seconds == 0 and d.nanos == 0:
        return default_ms
    return int(d.seconds * 1000 + d.nanos // 1_000_000)


def _export(
    provider: http_tracer_pb2.Tracing.Http, at: str, problems: Problems
) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    """(propagation flavour, snapshot options, exporter config) of the provider at `at`."""
    packed = provider.typed_config
    config = unpack(packed)
    name = type_name(packed.type_url)
    if config is None:
        problems.add(
            paths.field(at, "typed_config"), "a Zipkin or OpenTelemetry config is required"
        )
        return None
    if name == ZIPKIN:
        z = config
        assert isinstance(z, zipkin_pb2.ZipkinConfig)
        if not z.collector_cluster or not z.collector_endpoint:
            problems.add(
                paths.field(at, "typed_config"),
                "`collector_cluster` and `collector_endpoint` are required",
            )
        options = {
            "trace_id_128bit": z.trace_id_128bit,
            "shared_span_context": z.shared_span_context.value
            if z.HasField("shared_span_context")
            else True,
        }
        export = {
            "kind": "zipkin",
            "cluster": z.collector_cluster,
            "path": z.collector_endpoint,
        }
        return "zipkin", options, export
    if name == OPENTELEMETRY:
        o = config
        assert isinstance(o, opentelemetry_pb2.OpenTelemetryConfig)
        if not o.HasField("http_service"):
            grpc = o.grpc_service
            if not grpc.HasField("envoy_grpc"):
                problems.add(
                    paths.field(at, "typed_config"),
                    "`http_service` or `grpc_service.envoy_grpc` is required",
                )
                return None
            export = {
                "kind": "opentelemetry_grpc",
                "cluster": grpc.envoy_grpc.cluster_name,
                "path": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                "timeout_ms": _ms(grpc.timeout, 1000),
                "service_name": o.service_name or "unknown_service:envoy",
            }
            return "opentelemetry", {}, export
        uri = o.http_service.http_uri
        parts = urlsplit(uri.uri)
        export = {
            "kind": "opentelemetry",
            "cluster": uri.cluster,
            "path": (parts.path or "/v1/traces") + (f"?{parts.query}" if parts.query else ""),
            "authority": parts.netloc,
            "timeout_ms": _ms(uri.timeout, 1000),
            "service_name": o.service_name or "unknown_service:envoy",
        }
        return "opentelemetry", {}, export
    return None  # another provider: reported by the supported-field table


def tracing(
    manager: hcm_pb2.HttpConnectionManager, path: str, problems: Problems
) -> dict[str, Any] | None:
    """The snapshot `tracing` of `manager` (None: not configured)."""
    if not manager.HasField("tracing"):
        return None
    t = manager.tracing
    at = paths.field(path, "tracing")
    if t.HasField("spawn_upstream_span") and t.spawn_upstream_span.value:
        problems.add(
            paths.field(at, "spawn_upstream_span"),
            "upstream spans are not supported (meshcore reports one span per request)",
        )
    inherit = not t.HasField("provider")
    found = (
        (None, {}, None) if inherit else _export(t.provider, paths.field(at, "provider"), problems)
    )
    if found is None:
        return None
    provider, options, export = found
    tags: list[dict[str, Any]] = []
    for i, tag in enumerate(t.custom_tags):
        if tag.HasField("literal"):
            tags.append({"tag": tag.tag, "value": {"literal": tag.literal.value}})
        elif tag.HasField("request_header"):
            header: dict[str, Any] = {"name": tag.request_header.name.lower()}
            if tag.request_header.default_value:
                header["default_value"] = tag.request_header.default_value
            tags.append({"tag": tag.tag, "value": {"request_header": header}})
        else:  # environment / metadata: reported by the table
            problems.add(paths.item(paths.field(at, "custom_tags"), i), "unsupported tag kind")
    return {
        "tracer": 0,
        "provider": provider,
        "random_sampling": _percent(t, "random_sampling"),
        "client_sampling": _percent(t, "client_sampling"),
        "overall_sampling": _percent(t, "overall_sampling"),
        "max_path_tag_length": t.max_path_tag_length.value
        if t.HasField("max_path_tag_length")
        else DEFAULT_MAX_PATH_TAG_LENGTH,
        "custom_tags": tags,
        "export": export,
        **options,
        # Filled in from the bootstrap's `tracing.http` by `inherit_provider`.
        **({INHERIT: at} if inherit else {}),
    }


INHERIT = "provider_from_bootstrap"
"""Marks a snapshot `tracing` whose connection manager names no provider (the value: its
path), until `inherit_provider` completes it."""


def inherit_provider(
    listeners: list[dict[str, Any]],
    bootstrap_tracing: http_tracer_pb2.Tracing | None,
    problems: Problems,
) -> None:
    """Completes every connection manager `tracing` without a `provider` with the
    bootstrap's `tracing.http` (Envoy's fallback; a manager's own provider wins), or reports
    it when there is none (`bootstrap_tracing` None: the bootstrap has no `tracing`), for
    static and LDS listeners alike. The bootstrap's provider is checked even when no manager
    uses it."""
    found = None
    has_http = bootstrap_tracing is not None and bootstrap_tracing.HasField("http")
    if bootstrap_tracing is not None and has_http:
        found = _export(bootstrap_tracing.http, "tracing.http", problems)
    for listener in listeners:
        for manager in _managers(listener):
            t = manager.get("tracing")
            if t is None or INHERIT not in t:
                continue
            at = t.pop(INHERIT)
            if found is None:
                if not has_http:
                    problems.add(
                        paths.field(at, "provider"),
                        "a tracing provider is required (here or in the bootstrap's "
                        "`tracing.http`)",
                    )
                del manager["tracing"]
                continue
            provider, options, export = found
            t.update(provider=provider, export=dict(export), **options)


def _managers(listener: dict[str, Any]) -> Iterator[dict[str, Any]]:
    chains = [*listener.get("filter_chains", ()), listener.get("default_filter_chain")]
    for chain in filter(None, chains):
        manager = chain.get("filter", {}).get("http_connection_manager")
        if manager:
            yield manager


def set_direction(listener: dict[str, Any], outbound: bool) -> None:
    """Marks the listener's tracers as egress (`traffic_direction: OUTBOUND`)."""
    for manager in _managers(listener):
        if "tracing" in manager:
            manager["tracing"]["egress"] = outbound


def link_tracers(
    listeners: list[dict[str, Any]], node_id: str, node_cluster: str, zone: str
) -> list[dict[str, Any]]:
    """Numbers the distinct exporters (`tracer`, their index in the returned list, each with
    the node's `service_cluster`) and fills in every tracer's `node_id` and `zone`."""
    exporters: list[dict[str, Any]] = []
    keys: dict[bytes, int] = {}
    for listener in listeners:
        for manager in _managers(listener):
            t = manager.get("tracing")
            if t is None:
                continue
            export = {**t["export"], "service_cluster": node_cluster}
            key = orjson.dumps(export, option=orjson.OPT_SORT_KEYS)
            if key not in keys:
                keys[key] = len(exporters)
                exporters.append(export)
            t["tracer"] = keys[key]
            t["export"] = export
            t["node_id"] = node_id
            t["zone"] = zone
    return exporters


def _chain_with_own_tracing(chain: dict[str, Any]) -> dict[str, Any]:
    manager = chain.get("filter", {}).get("http_connection_manager")
    if not manager or "tracing" not in manager:
        return chain
    copied = {**manager, "tracing": dict(manager["tracing"])}
    return {**chain, "filter": {**chain["filter"], "http_connection_manager": copied}}


def relink_tracers(
    listeners: list[dict[str, Any]], node_id: str, node_cluster: str, zone: str
) -> list[dict[str, Any]]:
    """`link_tracers` over static and LDS listeners together (an LDS listener's tracer gets
    its own number and the node), on copies: the listeners given stay as they are."""
    out: list[dict[str, Any]] = []
    for listener in listeners:
        if any("tracing" in m for m in _managers(listener)):
            listener = {
                **listener,
                "filter_chains": [
                    _chain_with_own_tracing(c) for c in listener.get("filter_chains", ())
                ],
            }
            if listener.get("default_filter_chain"):
                listener["default_filter_chain"] = _chain_with_own_tracing(
                    listener["default_filter_chain"]
                )
        out.append(listener)
    link_tracers(out, node_id, node_cluster, zone)
    return out

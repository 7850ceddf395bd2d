"""Connection limits from `common_http_protocol_options`: downstream (HCM)
`max_requests_per_connection` / `max_connection_duration`, upstream (cluster)
`max_requests_per_connection` / `max_connection_duration`; the HCM's stream timeouts
(`stream_idle_timeout`, `request_timeout`, `max_stream_duration`) and the route's
`max_stream_duration`."""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import protocol_pb2

from . import paths
from .supported import UPSTREAM_HTTP_OPTIONS
from .type_urls import type_name, unpack
from .values import duration_field_ms, wrapped


def connection_limits(manager: Any) -> dict[str, Any]:
    """`{"connection_limits": ...}` for an HCM's snapshot (its common options and
    `request_headers_timeout`), or `{}` when it sets none."""
    common: protocol_pb2.HttpProtocolOptions = manager.common_http_protocol_options
    limits = {
        "max_requests_per_connection": wrapped(common, "max_requests_per_connection", 0),
        "max_connection_duration_ms": duration_field_ms(common, "max_connection_duration", 0),
        "request_headers_timeout_ms": duration_field_ms(manager, "request_headers_timeout", 0),
    }
    return {"connection_limits": limits} if any(limits.values()) else {}


DEFAULT_STREAM_IDLE_TIMEOUT_MS = 300_000


def stream_timeouts(manager: Any) -> dict[str, Any]:
    """`{"stream_timeouts": ...}` for an HCM that sets `stream_idle_timeout` (default 5 min,
    0 disables), `request_timeout` (default 0: none) or
    `common_http_protocol_options.max_stream_duration` (default 0: none), else `{}`."""
    common: protocol_pb2.HttpProtocolOptions = manager.common_http_protocol_options
    timeouts = {
        "stream_idle_timeout_ms": duration_field_ms(
            manager, "stream_idle_timeout", DEFAULT_STREAM_IDLE_TIMEOUT_MS
        ),
        "request_timeout_ms": duration_field_ms(manager, "request_timeout", 0),
        "max_stream_duration_ms": duration_field_ms(common, "max_stream_duration", 0),
    }
    default = {
        "stream_idle_timeout_ms": DEFAULT_STREAM_IDLE_TIMEOUT_MS,
        "request_timeout_ms": 0,
        "max_stream_duration_ms": 0,
    }
    return {"stream_timeouts": timeouts} if timeouts != default else {}


def upstream_common(
    config: cluster_pb2.Cluster, path: str
) -> tuple[protocol_pb2.HttpProtocolOptions | None, str]:
    """The cluster's common HTTP options and their path (conflicts are reported by the idle
    timeout translation)."""
    if config.HasField("common_http_protocol_options"):
        return config.common_http_protocol_options, paths.field(
            path, "common_http_protocol_options"
        )
    packed = config.typed_extension_protocol_options.get(UPSTREAM_HTTP_OPTIONS)
    if packed is not None and type_name(packed.type_url) == UPSTREAM_HTTP_OPTIONS:
        options = unpack(packed)
        if options is not None and options.HasField("common_http_protocol_options"):
            at = paths.item(
                paths.field(path, "typed_extension_protocol_options"), UPSTREAM_HTTP_OPTIONS
            )
            return options.common_http_protocol_options, paths.field(
                at, "common_http_protocol_options"
            )
    return None, ""


def upstream_limits(config: cluster_pb2.Cluster, path: str) -> dict[str, Any]:
    """The cluster's upstream connection limits, only those set: `max_requests_per_connection`
    of the common options, else the deprecated cluster field; `max_connection_duration`."""
    common, _ = upstream_common(config, path)
    out: dict[str, Any] = {}
    max_requests = int(wrapped(config, "max_requests_per_connection", 0))
    if common is not None and common.HasField("max_requests_per_connection"):
        max_requests = int(common.max_requests_per_connection.value)
    if max_requests:
        out["max_requests_per_connection"] = max_requests
    if common is not None:
        duration = duration_field_ms(common, "max_connection_duration", 0)
        if duration:
            out["max_connection_duration_ms"] = duration
    return out


def route_stream_duration(action: Any) -> dict[str, Any]:
    """`{"max_stream_duration": ...}` for a route action that sets the message (its presence
    alone turns off the route `timeout`, as Envoy's "new timeouts"), only the fields set."""
    if not action.HasField("max_stream_duration"):
        return {}
    msd = action.max_stream_duration
    fields = ("max_stream_duration", "grpc_timeout_header_max", "grpc_timeout_header_offset")
    return {
        "max_stream_duration": {
            f"{name}_ms": duration_field_ms(msd, name, 0) for name in fields if msd.HasField(name)
        }
    }

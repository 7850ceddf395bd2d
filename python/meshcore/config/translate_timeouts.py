"""Connection limits from `common_http_protocol_options`: downstream (HCM)
`max_requests_per_connection` / `max_connection_duration`, upstream (cluster)
`max_requests_per_connection`."""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import protocol_pb2

from . import paths
from .errors import Problems
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


def _upstream_common(
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


def upstream_max_requests(config: cluster_pb2.Cluster, path: str, problems: Problems) -> int:
    """`max_requests_per_connection` of the common options, else the deprecated cluster
    field; 0 when unset. `max_connection_duration` is downstream-only in meshcore."""
    common, at = _upstream_common(config, path)
    if common is not None:
        if common.HasField("max_connection_duration"):
            problems.add(
                paths.field(at, "max_connection_duration"),
                "not supported on upstream connections yet",
            )
        if common.HasField("max_requests_per_connection"):
            return int(common.max_requests_per_connection.value)
    return int(wrapped(config, "max_requests_per_connection", 0))

"""What the connection manager does to a request before routing it: `normalize_path`,
`merge_slashes`, `path_with_escaped_slashes_action`, and the common HTTP options
`headers_with_underscores_action` / `max_headers_count` (downstream only; on a cluster they
would apply to upstream responses, which meshcore does not do yet)."""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2

from . import paths
from .errors import Problems
from .translate_timeouts import upstream_common
from .values import enum_name, wrapped

MAX_HEADERS_COUNT = 100
_SNAPSHOT_DEFAULT = {
    "normalize_path": False,
    "merge_slashes": False,
    "path_with_escaped_slashes_action": "keep_unchanged",
    "headers_with_underscores_action": "allow",
    "max_headers_count": MAX_HEADERS_COUNT,
}


def request_normalization(manager: Any, path: str, problems: Problems) -> dict[str, Any]:
    """`{"request_normalization": ...}` for an HCM that changes any of Envoy's defaults, else
    `{}`."""
    common = manager.common_http_protocol_options
    escaped = enum_name(manager, "path_with_escaped_slashes_action").lower()
    if escaped == "implementation_specific_default":
        escaped = "keep_unchanged"
    max_headers = int(wrapped(common, "max_headers_count", MAX_HEADERS_COUNT))
    if max_headers > MAX_HEADERS_COUNT:
        problems.add(
            paths.field(paths.field(path, "common_http_protocol_options"), "max_headers_count"),
            f"{max_headers} is above meshcore's maximum of {MAX_HEADERS_COUNT} header lines",
        )
    out = {
        "normalize_path": bool(wrapped(manager, "normalize_path", False)),
        "merge_slashes": bool(manager.merge_slashes),
        "path_with_escaped_slashes_action": escaped,
        "headers_with_underscores_action": enum_name(
            common, "headers_with_underscores_action"
        ).lower(),
        "max_headers_count": min(max_headers, MAX_HEADERS_COUNT),
    }
    return {"request_normalization": out} if out != _SNAPSHOT_DEFAULT else {}


def check_upstream_header_options(
    config: cluster_pb2.Cluster, path: str, problems: Problems
) -> None:
    """A cluster's common options may not set the response-side header limits."""
    common, at = upstream_common(config, path)
    if common is None:
        return
    set_fields = {
        "headers_with_underscores_action": common.headers_with_underscores_action != 0,
        "max_headers_count": common.HasField("max_headers_count"),
    }
    if common.HasField("max_stream_duration"):
        problems.add(
            paths.field(at, "max_stream_duration"),
            "not supported yet on a cluster (upstream, UMSDR); set it on the "
            "http_connection_manager or the route",
        )
    for name in (n for n, is_set in set_fields.items() if is_set):
        problems.add(
            paths.field(at, name),
            "not supported yet on a cluster (upstream responses); "
            "set it on the http_connection_manager",
        )

"""`envoy.extensions.filters.http.fault.v3.HTTPFault` into the snapshot's `Fault`."""

from __future__ import annotations

from typing import Any

from envoy.extensions.filters.http.fault.v3 import fault_pb2

from . import paths, translate_routes
from .errors import Problems
from .translate_percent import fractional_percent
from .values import duration_ms


def fault(config: fault_pb2.HTTPFault, path: str, problems: Problems) -> dict[str, Any]:
    """The snapshot `Fault` for `config` (at `path`)."""
    out: dict[str, Any] = {}
    if config.HasField("delay"):
        delay = config.delay
        kind: Any
        if delay.HasField("header_delay"):
            kind = "header"
        else:  # fixed_delay (PGV requires one of the two)
            kind = {"fixed_ms": duration_ms(delay.fixed_delay)}
        out["delay"] = {"kind": kind, "percentage": fractional_percent(delay.percentage)}
    if config.HasField("abort"):
        abort = config.abort
        which = abort.WhichOneof("error_type")
        if which == "http_status":
            kind = {"http_status": abort.http_status}
        elif which == "grpc_status":
            kind = {"grpc_status": abort.grpc_status}
        else:  # header_abort (PGV requires one)
            kind = "header"
        out["abort"] = {"kind": kind, "percentage": fractional_percent(abort.percentage)}
    headers_path = paths.field(path, "headers")
    out["headers"] = [
        translate_routes.header_matcher(m, paths.item(headers_path, i), problems)
        for i, m in enumerate(config.headers)
    ]
    if config.upstream_cluster:
        out["upstream_cluster"] = config.upstream_cluster
    if config.HasField("max_active_faults"):
        out["max_active_faults"] = config.max_active_faults.value
    return out

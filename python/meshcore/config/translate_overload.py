"""The bootstrap's `overload_manager`: the one resource monitor meshcore implements is
`envoy.resource_monitors.global_downstream_max_connections` (Envoy's global limit on open
downstream connections; listeners with `ignore_global_conn_limit` are exempt)."""

from __future__ import annotations

from envoy.config.bootstrap.v3 import bootstrap_pb2

from . import paths
from .errors import Problems
from .supported import DOWNSTREAM_CONNECTIONS
from .type_urls import type_name, unpack

MONITOR = "envoy.resource_monitors.global_downstream_max_connections"


def global_connection_limit(bootstrap: bootstrap_pb2.Bootstrap, problems: Problems) -> int | None:
    """`max_active_downstream_connections` of the global connection monitor, if configured."""
    if not bootstrap.HasField("overload_manager"):
        return None
    monitors_path = "overload_manager.resource_monitors"
    limit = None
    for i, monitor in enumerate(bootstrap.overload_manager.resource_monitors):
        at = paths.item(monitors_path, i)
        if type_name(monitor.typed_config.type_url) != DOWNSTREAM_CONNECTIONS:
            continue  # another monitor type: reported by the table
        if monitor.name != MONITOR:
            problems.add(paths.field(at, "name"), f"must be {MONITOR!r} for this config type")
        config = unpack(monitor.typed_config)
        if config is None:
            continue
        value = int(config.max_active_downstream_connections)
        if value <= 0:
            problems.add(
                paths.field(paths.field(at, "typed_config"), "max_active_downstream_connections"),
                "must be greater than 0",
            )
            continue
        if limit is not None:
            problems.add(at, "only one global downstream connection monitor is allowed")
        limit = value
    return limit

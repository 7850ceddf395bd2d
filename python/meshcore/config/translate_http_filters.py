"""The HCM's `http_filters` (fault, local rate limit, JWT, RBAC and grpc_stats before the
router) and the `typed_per_filter_config` of virtual hosts and routes into the snapshot's
filter configs."""

from __future__ import annotations

from typing import Any, cast

from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2 as lrl
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf.message import Message

from . import paths
from .errors import Problems
from .supported import (
    FAULT,
    GRPC_STATS,
    JWT_AUTHN,
    JWT_AUTHN_PER_ROUTE,
    LOCAL_RATELIMIT,
    RBAC,
    RBAC_PER_ROUTE,
)
from .translate_fault import fault
from .translate_local_ratelimit import local_ratelimit
from .translate_rbac import http_rbac, rbac_per_route
from .type_urls import unpack


def filter_config(config: Message | None, path: str, problems: Problems) -> dict[str, Any] | None:
    """The snapshot `HttpFilterConfig` of a typed config (None: not a filter meshcore runs,
    reported by the supported-fields table)."""
    if config is None:
        return None
    name = config.DESCRIPTOR.full_name
    if name == FAULT:
        return {"fault": fault(cast(fault_pb2.HTTPFault, config), path, problems)}
    if name == LOCAL_RATELIMIT:
        translated = local_ratelimit(cast(lrl.LocalRateLimit, config), path, problems)
        return {"local_ratelimit": translated}
    if name in (JWT_AUTHN, JWT_AUTHN_PER_ROUTE):
        from .translate_jwt import jwt_filter_config

        return jwt_filter_config(config, path, problems)
    if name == RBAC:
        return {"rbac": http_rbac(cast(Any, config), path, problems)}
    if name == RBAC_PER_ROUTE:
        return {"rbac_per_route": rbac_per_route(cast(Any, config), path, problems)}
    if name == GRPC_STATS:
        return {"grpc_stats": grpc_stats(config, path, problems)}
    return None


def grpc_stats(config: Any, path: str, problems: Problems) -> dict[str, Any]:
    """The `grpc_stats` filter: per-method stats for the allowlisted methods (the others
    method-less) or for every method, and the upstream time histogram."""
    if config.emit_filter_state:
        problems.add(
            paths.field(path, "emit_filter_state"),
            "true is not supported (meshcore keeps no filter state for access logs)",
        )
    services = config.individual_method_stats_allowlist.services
    return {
        "allowlist": [{"name": s.name, "method_names": list(s.method_names)} for s in services],
        "all_methods": config.HasField("stats_for_all_methods")
        and config.stats_for_all_methods.value,
        "replace_dots": config.replace_dots_in_grpc_service_name,
        "upstream_stats": config.enable_upstream_stats,
    }


def http_filters(
    manager: hcm_pb2.HttpConnectionManager, path: str, problems: Problems
) -> list[dict[str, Any]]:
    """The filters before the router, in order."""
    out = []
    filters_path = paths.field(path, "http_filters")
    for i, http_filter in enumerate(manager.http_filters):
        if not http_filter.HasField("typed_config"):
            continue
        typed_path = paths.field(paths.item(filters_path, i), "typed_config")
        config = filter_config(unpack(http_filter.typed_config), typed_path, problems)
        if config is not None:
            out.append({"name": http_filter.name, "config": config})
    return out


def per_filter_configs(msg: Message, path: str, problems: Problems) -> list[dict[str, Any]]:
    """A virtual host's or route's `typed_per_filter_config`, by filter name."""
    out: list[dict[str, Any]] = []
    configs = getattr(msg, "typed_per_filter_config", {})
    if not configs:  # nearly every one: no path to build
        return out
    map_path = paths.field(path, "typed_per_filter_config")
    for name in sorted(configs):
        config = filter_config(unpack(configs[name]), paths.item(map_path, name), problems)
        if config is not None:
            out.append({"name": name, "config": config})
    return out

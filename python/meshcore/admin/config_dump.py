"""`/config_dump`: the bootstrap, its static listeners, clusters and route configs, and the
resources from xDS, in Envoy's `envoy.admin.v3.*ConfigDump` shapes."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

_ADMIN = "type.googleapis.com/envoy.admin.v3."
_CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
_LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
_ROUTE_CONFIG = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"


def _secrets_config_dump(
    bootstrap: Mapping[str, Any], updated: str, dynamic: Mapping[str, Any]
) -> dict[str, Any]:
    from .secrets_view import static_secrets

    out: dict[str, Any] = {"@type": _ADMIN + "SecretsConfigDump"}
    statics = static_secrets(bootstrap, updated)
    if statics:
        out["static_secrets"] = statics
    out.update(dynamic)
    return out


def timestamp(epoch_s: float) -> str:
    """RFC 3339 in UTC with milliseconds, as protobuf's JSON prints a Timestamp."""
    ms = int(round(epoch_s * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def static_resources(bootstrap: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    """`static_resources.<kind>` of a bootstrap dict (snake_case or camelCase keys)."""
    static = bootstrap.get("static_resources") or bootstrap.get("staticResources") or {}
    return list(static.get(kind) or [])


def _inline_route_configs(listeners: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for listener in listeners:
        for chain in listener.get("filter_chains") or listener.get("filterChains") or []:
            for network_filter in chain.get("filters") or []:
                typed = network_filter.get("typed_config") or network_filter.get("typedConfig")
                if not isinstance(typed, Mapping):
                    continue
                route_config = typed.get("route_config") or typed.get("routeConfig")
                if isinstance(route_config, Mapping):
                    found.append(route_config)
    return found


def config_dump(
    bootstrap: Mapping[str, Any],
    applied_at: float,
    dynamic: Mapping[str, Mapping[str, Any]] | None = None,
    include_eds: bool = False,
) -> dict[str, Any]:
    """`dynamic` (the xDS client's `dump()`) adds `version_info`, `dynamic_active_clusters`,
    `dynamic_listeners`, `dynamic_route_configs` and, with `include_eds`,
    `dynamic_endpoint_configs`."""
    from .secrets_view import redact_bootstrap

    updated = timestamp(applied_at)
    listeners = static_resources(bootstrap, "listeners")
    clusters = static_resources(bootstrap, "clusters")
    routes = _inline_route_configs(listeners)
    dynamic = dynamic or {}
    dump: dict[str, Any] = {
        "configs": [
            {
                "@type": _ADMIN + "BootstrapConfigDump",
                "bootstrap": redact_bootstrap(bootstrap),
                "last_updated": updated,
            },
            {
                "@type": _ADMIN + "ClustersConfigDump",
                "static_clusters": [
                    {"cluster": {"@type": _CLUSTER, **c}, "last_updated": updated} for c in clusters
                ],
            },
            {
                "@type": _ADMIN + "ListenersConfigDump",
                "static_listeners": [
                    {"listener": {"@type": _LISTENER, **lst}, "last_updated": updated}
                    for lst in listeners
                ],
            },
            {"@type": _ADMIN + "ScopedRoutesConfigDump"},
            {
                "@type": _ADMIN + "RoutesConfigDump",
                "static_route_configs": [
                    {"route_config": {"@type": _ROUTE_CONFIG, **r}, "last_updated": updated}
                    for r in routes
                ],
            },
            _secrets_config_dump(bootstrap, updated, dynamic.get("secrets", {})),
        ]
    }
    configs: list[dict[str, Any]] = dump["configs"]
    for index, section in ((1, "clusters"), (2, "listeners"), (4, "routes")):
        configs[index].update(dynamic.get(section, {}))
    if include_eds:
        configs.insert(2, {"@type": _ADMIN + "EndpointsConfigDump", **dynamic.get("endpoints", {})})
    return dump

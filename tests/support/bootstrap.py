"""Builders for Envoy v3 bootstrap dicts (the same file runs on Envoy and meshcore)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

HCM_TYPE = (
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
TLS_INSPECTOR_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
)
# The listener filter that reads SNI and ALPN for filter chain matching.
TLS_INSPECTOR = {
    "name": "envoy.filters.listener.tls_inspector",
    "typed_config": {"@type": TLS_INSPECTOR_TYPE},
}

Json = dict[str, Any]


def bootstrap(listeners: list[Json], clusters: list[Json]) -> Json:
    """A static bootstrap with an admin listener on 127.0.0.1:0 (read it back through
    `--admin-address-path`)."""
    return {
        "admin": {"address": socket_address("127.0.0.1", 0)},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }


def socket_address(address: str, port: int) -> Json:
    return {"socket_address": {"address": address, "port_value": port}}


def http_listener(
    name: str,
    port: int,
    route_config: Json,
    *,
    stat_prefix: str = "ingress",
    **hcm_extra: Any,
) -> Json:
    """A listener on 127.0.0.1:`port` with one http_connection_manager and the router."""
    hcm: Json = {
        "@type": HCM_TYPE,
        "stat_prefix": stat_prefix,
        "route_config": route_config,
        "http_filters": [
            {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}}
        ],
    }
    hcm.update(hcm_extra)
    return {
        "name": name,
        "address": socket_address("127.0.0.1", port),
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }


def route_config(virtual_hosts: list[Json], name: str = "local_route", **extra: Any) -> Json:
    return {"name": name, "virtual_hosts": virtual_hosts, **extra}


def virtual_host(name: str, domains: list[str], routes: list[Json], **extra: Any) -> Json:
    return {"name": name, "domains": domains, "routes": routes, **extra}


ROUTE_LEVEL_KEYS = (
    "name",
    "request_headers_to_add",
    "request_headers_to_remove",
    "response_headers_to_add",
    "response_headers_to_remove",
)
OTHER_ACTIONS = ("direct_response", "redirect")


def route(match: Json, **action: Any) -> Json:
    """`route({"prefix": "/"}, cluster="a", timeout="1s")` builds a forwarding route;
    a `direct_response=...` or `redirect=...` keyword builds that action instead. `name` and
    the header lists (`request_headers_to_add`, ...) go on the route itself."""
    out: Json = {"match": match}
    for key in ROUTE_LEVEL_KEYS:
        if key in action:
            out[key] = action.pop(key)
    for key in OTHER_ACTIONS:
        if key in action:
            out[key] = action.pop(key)
            assert not action, f"{key} takes no route action fields: {sorted(action)}"
            return out
    out["route"] = action
    return out


def header_value(key: str, value: str, append_action: str | None = None) -> Json:
    option: Json = {"header": {"key": key, "value": value}}
    if append_action:
        option["append_action"] = append_action
    return option


def static_cluster(
    name: str,
    endpoints: list[tuple[str, int] | tuple[str, int, int]],
    *,
    lb_policy: str | None = None,
    connect_timeout: str = "1s",
    cluster_type: str = "STATIC",
    **extra: Any,
) -> Json:
    """A cluster of `(address, port)` or `(address, port, load_balancing_weight)`."""
    lb_endpoints = []
    for endpoint in endpoints:
        entry: Json = {"endpoint": {"address": socket_address(endpoint[0], endpoint[1])}}
        if len(endpoint) == 3:
            entry["load_balancing_weight"] = endpoint[2]
        lb_endpoints.append(entry)
    cluster: Json = {
        "name": name,
        "type": cluster_type,
        "connect_timeout": connect_timeout,
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": lb_endpoints}] if lb_endpoints else [],
        },
    }
    if lb_policy:
        cluster["lb_policy"] = lb_policy
    cluster.update(extra)
    return cluster


def write_bootstrap(path: Path, config: Json) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path

"""Synthetic Envoy v3 bootstraps of a sidecar in an N-service mesh, for the micro benchmarks.

One outbound listener (127.0.0.1, port 0) whose route config has one virtual host per
service (`svc-<i>` and `svc-<i>.mesh.local`) with a route or two to that service's cluster,
and one STATIC cluster per service with two endpoints on the loopback range. Nothing here
opens a socket; the endpoints are never dialled by the benchmarks.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

HCM_TYPE = (
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
ENDPOINTS_PER_CLUSTER = 2


def cluster_name(i: int) -> str:
    return f"svc-{i}"


def endpoint_address(i: int, j: int) -> tuple[str, int]:
    """A loopback address for endpoint j of service i (never connected to)."""
    return f"127.{1 + i // 60_000}.{(i // 250) % 240}.{1 + i % 250}", 8000 + j


def _virtual_host(i: int) -> dict[str, Any]:
    name = cluster_name(i)
    routes: list[dict[str, Any]] = []
    if i % 2:
        # Every other service also has an API route with its own timeout and a rewrite.
        routes.append(
            {
                "name": f"{name}-api",
                "match": {"prefix": "/api/"},
                "route": {"cluster": name, "timeout": "3s", "prefix_rewrite": "/"},
            }
        )
    routes.append({"name": f"{name}-default", "match": {"prefix": "/"}, "route": {"cluster": name}})
    return {"name": name, "domains": [name, f"{name}.mesh.local"], "routes": routes}


def _cluster(i: int) -> dict[str, Any]:
    name = cluster_name(i)
    lb_endpoints = []
    for j in range(ENDPOINTS_PER_CLUSTER):
        address, port = endpoint_address(i, j)
        lb_endpoints.append(
            {"endpoint": {"address": {"socket_address": {"address": address, "port_value": port}}}}
        )
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "0.25s",
        "lb_policy": "LEAST_REQUEST" if i % 3 == 0 else "ROUND_ROBIN",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": lb_endpoints}]},
    }


def bootstrap(services: int) -> dict[str, Any]:
    """The bootstrap of a sidecar that routes to `services` services."""
    return {
        "node": {"id": "bench-sidecar", "cluster": "bench"},
        "static_resources": {
            "listeners": [
                {
                    "name": "outbound",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": HCM_TYPE,
                                        "stat_prefix": "outbound",
                                        "route_config": {
                                            "name": "outbound",
                                            "virtual_hosts": [
                                                _virtual_host(i) for i in range(services)
                                            ],
                                        },
                                        "http_filters": [
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {"@type": ROUTER_TYPE},
                                            }
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [_cluster(i) for i in range(services)],
        },
    }


def bootstrap_yaml(services: int) -> str:
    """`bootstrap(services)` as block-style YAML, as a user would write it."""
    text: str = yaml.dump(bootstrap(services), Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))
    return text


def endpoints_json(i: int, healthy: bool) -> bytes:
    """`Engine.update_endpoints` input for service i: its two endpoints, the first one's health
    set to `healthy` (a health-check flap)."""
    hosts = []
    for j in range(ENDPOINTS_PER_CLUSTER):
        address, port = endpoint_address(i, j)
        hosts.append({"address": address, "port": port, "weight": 1, "healthy": healthy or j > 0})
    return orjson.dumps(hosts)

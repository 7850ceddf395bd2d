"""A small valid bootstrap to start each test from, its well-known paths, and load helpers."""

from __future__ import annotations

import copy
from typing import Any

from meshcore.config import MeshConfig
from meshcore.config.loader import load_data

from .snapshot_contract import snapshot_errors

Json = dict[str, Any]

HCM_TYPE = (
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
UPSTREAM_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

LISTENER = "static_resources.listeners[0]"
HCM = f"{LISTENER}.filter_chains[0].filters[0].typed_config"
ROUTES = f"{HCM}.route_config"
VHOST = f"{ROUTES}.virtual_hosts[0]"
ROUTE = f"{VHOST}.routes[0]"
CLUSTER = "static_resources.clusters[0]"
LB_ENDPOINT = f"{CLUSTER}.load_assignment.endpoints[0].lb_endpoints[0]"

NO_HEADERS: Json = {
    "request_headers_to_add": [],
    "request_headers_to_remove": [],
    "response_headers_to_add": [],
    "response_headers_to_remove": [],
}

_BASE: Json = {
    "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9901}}},
    "static_resources": {
        "listeners": [
            {
                "name": "ingress",
                "address": {"socket_address": {"address": "0.0.0.0", "port_value": 10000}},
                "filter_chains": [
                    {
                        "filters": [
                            {
                                "name": "envoy.filters.network.http_connection_manager",
                                "typed_config": {
                                    "@type": HCM_TYPE,
                                    "stat_prefix": "ingress_http",
                                    "route_config": {
                                        "name": "local",
                                        "virtual_hosts": [
                                            {
                                                "name": "all",
                                                "domains": ["*"],
                                                "routes": [
                                                    {
                                                        "match": {"prefix": "/"},
                                                        "route": {"cluster": "backend"},
                                                    }
                                                ],
                                            }
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
        "clusters": [
            {
                "name": "backend",
                "connect_timeout": "0.25s",
                "load_assignment": {
                    "cluster_name": "backend",
                    "endpoints": [
                        {
                            "lb_endpoints": [
                                {
                                    "endpoint": {
                                        "address": {
                                            "socket_address": {
                                                "address": "127.0.0.1",
                                                "port_value": 8081,
                                            }
                                        }
                                    }
                                }
                            ]
                        }
                    ],
                },
            }
        ],
    },
}


def base() -> Json:
    """A fresh copy of the valid bootstrap (one listener, one route, one STATIC cluster)."""
    return copy.deepcopy(_BASE)


def listener(b: Json) -> Json:
    return b["static_resources"]["listeners"][0]


def hcm(b: Json) -> Json:
    return listener(b)["filter_chains"][0]["filters"][0]["typed_config"]


def vhost(b: Json) -> Json:
    return hcm(b)["route_config"]["virtual_hosts"][0]


def route(b: Json, index: int = 0) -> Json:
    return vhost(b)["routes"][index]


def cluster(b: Json, index: int = 0) -> Json:
    return b["static_resources"]["clusters"][index]


def lb_endpoint(b: Json) -> Json:
    return cluster(b)["load_assignment"]["endpoints"][0]["lb_endpoints"][0]


def static_cluster(name: str, port: int, address: str = "127.0.0.1") -> Json:
    return {
        "name": name,
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {"address": address, "port_value": port}
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }


def problems(b: Json) -> list[str]:
    """The problems of bootstrap `b`, as `path: message` strings."""
    config, found = load_data(b)
    assert (config is None) == bool(found)
    return [str(p) for p in found]


def load(b: Json) -> MeshConfig:
    """Loads `b`, which must be valid, and checks its snapshot against snapshot.rs."""
    config, found = load_data(b)
    assert found == [], [str(p) for p in found]
    assert config is not None
    assert snapshot_errors(config.snapshot) == []
    return config


def snapshot_route(b: Json, index: int = 0) -> Json:
    """Route `index` of the first virtual host in `b`'s snapshot."""
    hcm_snapshot = load(b).snapshot["listeners"][0]["filter_chains"][0]["filter"][
        "http_connection_manager"
    ]
    routes: list[Json] = hcm_snapshot["route_config"]["virtual_hosts"][0]["routes"]
    return routes[index]


def snapshot_cluster(b: Json, index: int = 0) -> Json:
    clusters: list[Json] = load(b).snapshot["clusters"]
    return clusters[index]

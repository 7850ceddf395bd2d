"""xDS resources for tests: Envoy-YAML-shaped dicts (as in tests/support/bootstrap) parsed
into the protos a management server sends, and bootstraps that point at an ADS server."""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401 - @type
from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: F401
    http_connection_manager_pb2,
)
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from google.protobuf import json_format
from google.protobuf.message import Message

from tests.support import bootstrap as b

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE_CONFIG = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ASSIGNMENT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
UPSTREAM_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

Json = dict[str, Any]
ADS_SOURCE: Json = {"ads": {}, "resource_api_version": "V3"}


def name_of(type_url: str, message: Any) -> str:
    return str(message.cluster_name if type_url == ASSIGNMENT else message.name)


def parse(cls: type[Message], data: Json) -> Any:
    return json_format.ParseDict(data, cls())


def routes_json(name: str, cluster: str | None = None, *, routes: list[Json] | None = None) -> Json:
    """A route config with one catch-all virtual host: `routes`, or / to `cluster`."""
    chosen = routes if routes is not None else [b.route({"prefix": "/"}, cluster=cluster)]
    return b.route_config([b.virtual_host("all", ["*"], chosen)], name=name)


def route_config(name: str, cluster: str | None = None, *, routes: list[Json] | None = None) -> Any:
    return parse(route_pb2.RouteConfiguration, routes_json(name, cluster, routes=routes))


def listener_json(
    name: str,
    port: int,
    *,
    rds: str | None = None,
    routes: Json | None = None,
    stat_prefix: str = "ingress",
    tracing: Json | None = None,
) -> Json:
    extra = {"tracing": tracing} if tracing is not None else {}
    data = b.http_listener(name, port, routes or {}, stat_prefix=stat_prefix, **extra)
    hcm = data["filter_chains"][0]["filters"][0]["typed_config"]
    if rds is not None:
        del hcm["route_config"]
        hcm["rds"] = {"route_config_name": rds, "config_source": ADS_SOURCE}
    return data


def listener(
    name: str,
    port: int,
    *,
    rds: str | None = None,
    routes: Json | None = None,
    stat_prefix: str = "ingress",
    tracing: Json | None = None,
) -> Any:
    return parse(
        listener_pb2.Listener,
        listener_json(name, port, rds=rds, routes=routes, stat_prefix=stat_prefix, tracing=tracing),
    )


def eds_cluster_json(name: str, service_name: str | None = None, **extra: Any) -> Json:
    eds: Json = {"eds_config": ADS_SOURCE}
    if service_name:
        eds["service_name"] = service_name
    return {
        "name": name,
        "type": "EDS",
        "connect_timeout": "1s",
        "eds_cluster_config": eds,
        **extra,
    }


def eds_cluster(name: str, service_name: str | None = None, **extra: Any) -> Any:
    return parse(cluster_pb2.Cluster, eds_cluster_json(name, service_name, **extra))


def static_cluster(name: str, endpoints: list[tuple[str, int]], **extra: Any) -> Any:
    return parse(cluster_pb2.Cluster, b.static_cluster(name, list(endpoints), **extra))


def assignment_json(name: str, endpoints: list[tuple[str, int]]) -> Json:
    lb_endpoints = [
        {"endpoint": {"address": b.socket_address(address, port)}} for address, port in endpoints
    ]
    return {
        "cluster_name": name,
        "endpoints": [{"lb_endpoints": lb_endpoints}] if lb_endpoints else [],
    }


def assignment(name: str, endpoints: list[tuple[str, int]]) -> Any:
    return parse(endpoint_pb2.ClusterLoadAssignment, assignment_json(name, endpoints))


def xds_cluster(port: int) -> Json:
    """The static cluster of the ADS server (HTTP/2, which Envoy's gRPC client needs)."""
    return b.static_cluster(
        "xds_cluster",
        [("127.0.0.1", port)],
        typed_extension_protocol_options={
            UPSTREAM_OPTIONS: {
                "@type": f"type.googleapis.com/{UPSTREAM_OPTIONS}",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
    )


def xds_bootstrap(
    ads_port: int,
    *,
    node: str,
    delta: bool = False,
    listeners: list[Json] | None = None,
    clusters: list[Json] | None = None,
    initial_fetch_timeout: str | None = None,
    lds: Json | None = None,
    cds: Json | None = None,
    tracing: Json | None = None,
) -> Json:
    """A bootstrap whose listeners and clusters come over ADS from 127.0.0.1:`ads_port`
    (`lds`/`cds` replace the ADS config sources, e.g. with a path_config_source; `tracing`:
    the bootstrap's)."""
    source = dict(ADS_SOURCE)
    if initial_fetch_timeout is not None:
        source["initial_fetch_timeout"] = initial_fetch_timeout
    config = b.bootstrap(listeners or [], [xds_cluster(ads_port), *(clusters or [])])
    config["node"] = {"id": node, "cluster": "test-mesh"}
    config["dynamic_resources"] = {
        "ads_config": {
            "api_type": "DELTA_GRPC" if delta else "GRPC",
            "transport_api_version": "V3",
            "grpc_services": [{"envoy_grpc": {"cluster_name": "xds_cluster"}}],
        },
        "lds_config": lds or dict(source),
        "cds_config": cds or dict(source),
    }
    if tracing is not None:
        config["tracing"] = tracing
    return config

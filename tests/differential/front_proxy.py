"""The front-proxy bootstrap for parity tests: `examples/front-proxy.yaml` made local (its
clusters pointed at test upstreams, its listener and admin on free loopback ports), and the
requests that exercise each of its routes."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.bootstrap import (
    bootstrap,
    header_value,
    http_listener,
    route,
    route_config,
    socket_address,
    static_cluster,
    virtual_host,
)
from tests.support.upstream import Upstream, UpstreamServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "front-proxy.yaml"

Json = dict[str, Any]


def fallback_front_proxy() -> Json:
    """Used only when examples/front-proxy.yaml is absent: an edge proxy of the same shape."""
    routes = [
        route(
            {"path": "/healthz"}, direct_response={"status": 200, "body": {"inline_string": "ok\n"}}
        ),
        route(
            {"path": "/old"},
            redirect={"path_redirect": "/new", "response_code": "PERMANENT_REDIRECT"},
        ),
        route({"prefix": "/v2/"}, cluster="service_v2", prefix_rewrite="/", timeout="5s"),
        route(
            {"prefix": "/", "headers": [{"name": "x-canary", "string_match": {"exact": "true"}}]},
            cluster="service_v2",
            response_headers_to_add=[header_value("x-canary", "true")],
        ),
        route(
            {"prefix": "/"},
            weighted_clusters={
                "clusters": [
                    {"name": "service_v1", "weight": 90},
                    {"name": "service_v2", "weight": 10},
                ]
            },
        ),
    ]
    vhost = virtual_host(
        "services",
        ["*"],
        routes,
        request_headers_to_add=[
            header_value("x-edge", "front-proxy", "OVERWRITE_IF_EXISTS_OR_ADD")
        ],
        response_headers_to_add=[header_value("x-served-by", "meshcore-front-proxy")],
        response_headers_to_remove=["x-internal-debug"],
    )
    return bootstrap(
        [
            http_listener(
                "edge",
                10000,
                route_config([vhost], name="edge_routes"),
                stat_prefix="edge",
                use_remote_address=True,
            )
        ],
        [
            static_cluster("service_v1", [("127.0.0.1", 8081)]),
            static_cluster("service_v2", [("127.0.0.1", 8082)]),
        ],
    )


def load_front_proxy() -> Json:
    if EXAMPLE.exists():
        return yaml.safe_load(EXAMPLE.read_text())
    return fallback_front_proxy()


def cluster_endpoints(cluster: Json) -> list[Json]:
    return [
        lb["endpoint"]["address"]["socket_address"]
        for locality in cluster.get("load_assignment", {}).get("endpoints", [])
        for lb in locality.get("lb_endpoints", [])
    ]


def start_upstreams(config: Json, server: UpstreamServer) -> dict[str, list[Upstream]]:
    """One test upstream per endpoint, named `<cluster>` or `<cluster>#<i>`."""
    out: dict[str, list[Upstream]] = {}
    for cluster in config["static_resources"]["clusters"]:
        endpoints = cluster_endpoints(cluster)
        names = (
            [cluster["name"]]
            if len(endpoints) == 1
            else [f"{cluster['name']}#{i}" for i in range(len(endpoints))]
        )
        out[cluster["name"]] = [server.start(name) for name in names]
    return out


def localize(config: Json, upstreams: dict[str, list[Upstream]], listener_ports: list[int]) -> Json:
    """A copy with admin on 127.0.0.1:0, listeners on 127.0.0.1:`listener_ports`, and every
    endpoint on its test upstream."""
    local = copy.deepcopy(config)
    local["admin"] = {"address": socket_address("127.0.0.1", 0)}
    for listener, port in zip(local["static_resources"]["listeners"], listener_ports, strict=True):
        listener["address"] = socket_address("127.0.0.1", port)
    for cluster in local["static_resources"]["clusters"]:
        for address, upstream in zip(
            cluster_endpoints(cluster), upstreams[cluster["name"]], strict=True
        ):
            address["address"] = "127.0.0.1"
            address["port_value"] = upstream.port
    return local


@dataclass
class Probe:
    """One request, derived from a route (or fixed), sent identically to both proxies."""

    name: str
    method: str = "GET"
    target: str = "/"
    host: str = "parity.test"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    forwards: bool = False
    weighted: bool = False


def host_for(domains: list[str]) -> str:
    domain = domains[0]
    if domain == "*":
        return "parity.test"
    if domain.startswith("*"):
        return "probe" + domain[1:]
    if domain.endswith("*"):
        return domain[:-1] + "test"
    return domain


def headers_for(match: Json) -> list[tuple[str, str]] | None:
    """Headers that satisfy a route's header matchers (None when we cannot derive them)."""
    out = []
    for matcher in match.get("headers", []):
        if matcher.get("invert_match"):
            return None
        if "present_match" in matcher:
            if matcher["present_match"]:
                out.append((matcher["name"], "1"))
            continue
        string = matcher.get("string_match", {})
        value = (
            string.get("exact")
            or string.get("prefix")
            or string.get("suffix")
            or string.get("contains")
        )
        if value is None:
            return None
        out.append((matcher["name"], value))
    return out


def query_for(match: Json) -> str | None:
    parts = []
    for matcher in match.get("query_parameters", []):
        if matcher.get("present_match"):
            parts.append(matcher["name"])
        elif "exact" in matcher.get("string_match", {}):
            parts.append(f"{matcher['name']}={matcher['string_match']['exact']}")
        else:
            return None
    return ("?" + "&".join(parts)) if parts else ""


def route_probes(config: Json) -> list[Probe]:
    probes = []
    for listener in config["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for filt in chain["filters"]:
                rc = filt["typed_config"].get("route_config", {})
                for vhost in rc.get("virtual_hosts", []):
                    host = host_for(vhost["domains"])
                    for index, rt in enumerate(vhost.get("routes", [])):
                        match = rt["match"]
                        if "path" in match:
                            path = match["path"]
                        elif "prefix" in match:
                            path = match["prefix"].rstrip("/") + "/probe"
                        elif "path_separated_prefix" in match:
                            path = match["path_separated_prefix"] + "/probe"
                        else:
                            continue
                        headers, query = headers_for(match), query_for(match)
                        if headers is None or query is None:
                            continue
                        forwards = "route" in rt
                        weighted = "weighted_clusters" in rt.get("route", {})
                        name = f"{vhost['name']}/{rt.get('name', index)}"
                        headers = [*headers, ("x-mc-response-header", "x-internal-debug: leak")]
                        probes.append(
                            Probe(
                                name,
                                target=path + query,
                                host=host,
                                headers=headers,
                                forwards=forwards,
                                weighted=weighted,
                            )
                        )
    return probes


def fixed_probes(deterministic: Probe) -> list[Probe]:
    """HTTP/1.1 behaviours, sent along a route that always picks the same cluster."""

    def variant(name: str, **changes: Any) -> Probe:
        probe = copy.deepcopy(deterministic)
        probe.name = f"{name} via {deterministic.name}"
        extra = changes.pop("extra_headers", [])
        for key, value in changes.items():
            setattr(probe, key, value)
        probe.headers = [*probe.headers, *extra]
        return probe

    return [
        variant("post-body", method="POST", body=b"hello parity" * 100),
        variant("head", method="HEAD"),
        variant("upstream-503", extra_headers=[("x-mc-behavior", "status=503")]),
        variant("upstream-204", extra_headers=[("x-mc-behavior", "status=204")]),
        variant("upstream-chunked", extra_headers=[("x-mc-behavior", "chunked=3,size=3000")]),
        variant("upstream-reset", extra_headers=[("x-mc-behavior", "close")]),
        variant(
            "hop-by-hop",
            extra_headers=[
                ("Connection", "x-nominated"),
                ("X-Nominated", "1"),
                ("Keep-Alive", "timeout=1"),
                ("X-Forwarded-For", "203.0.113.9"),
                ("x-mc-response-header", "keep-alive: timeout=2"),
            ],
        ),
        variant("client-close", extra_headers=[("Connection", "close")]),
        variant("unknown-host", host="unknown.parity.test"),
    ]

"""A bootstrap for the explain tests: filter chains by SNI, several virtual hosts, and routes
with every matcher kind, weighted clusters, rewrites, redirects and a direct response."""

from __future__ import annotations

from typing import Any

from tests.support.bootstrap import (
    HCM_TYPE,
    ROUTER_TYPE,
    TLS_INSPECTOR,
    bootstrap,
    route,
    route_config,
    socket_address,
    static_cluster,
    virtual_host,
)

CLUSTERS = ("a", "b", "c", "fallback")


def _chain(stat_prefix: str, vhosts: list[dict[str, Any]], match: dict[str, Any] | None) -> dict:
    hcm = {
        "@type": HCM_TYPE,
        "stat_prefix": stat_prefix,
        "route_config": route_config(vhosts),
        "http_filters": [
            {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}}
        ],
    }
    chain: dict[str, Any] = {
        "name": stat_prefix,
        "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}],
    }
    if match:
        chain["filter_chain_match"] = match
    return chain


def api_routes() -> list[dict[str, Any]]:
    return [
        route(
            {"prefix": "/v1", "headers": [{"name": "x-canary", "string_match": {"exact": "1"}}]},
            cluster="c",
            name="canary",
        ),
        route(
            {"prefix": "/v1", "query_parameters": [{"name": "debug", "present_match": True}]},
            cluster="b",
            name="debug",
        ),
        route({"path": "/v1/users"}, cluster="a", name="users", prefix_rewrite="/v2/users"),
        route({"safe_regex": {"regex": "/items/[0-9]+"}}, cluster="b", name="item"),
        route(
            {"prefix": "/v1"},
            name="split",
            weighted_clusters={
                "clusters": [{"name": "a", "weight": 75}, {"name": "b", "weight": 25}]
            },
            timeout="2s",
            retry_policy={"retry_on": "5xx,reset", "num_retries": 3, "per_try_timeout": "0.5s"},
        ),
        route(
            {"prefix": "/old/"},
            name="moved",
            redirect={"prefix_rewrite": "/new/", "response_code": "MOVED_PERMANENTLY"},
        ),
        route({"prefix": "/host"}, cluster="a", name="hostrw", host_rewrite_literal="internal.svc"),
    ]


def explain_config(port: int, endpoints: dict[str, int]) -> dict[str, Any]:
    """`endpoints`: cluster name -> upstream port."""
    main = [
        virtual_host("api", ["api.example.com"], api_routes()),
        virtual_host(
            "static",
            ["*.example.org"],
            [
                route(
                    {"prefix": "/"},
                    direct_response={"status": 200, "body": {"inline_string": "hi"}},
                )
            ],
        ),
        virtual_host("fallback", ["*"], [route({"prefix": "/"}, cluster="fallback", name="any")]),
    ]
    secure = [virtual_host("secure", ["*"], [route({"prefix": "/"}, cluster="b", name="secure")])]
    listener = {
        "name": "edge",
        "address": socket_address("127.0.0.1", port),
        "listener_filters": [TLS_INSPECTOR],
        "filter_chains": [
            _chain("secure", secure, {"server_names": ["secure.example.com"]}),
            _chain("main", main, None),
        ],
    }
    clusters = [static_cluster(name, [("127.0.0.1", endpoints[name])]) for name in CLUSTERS]
    return bootstrap([listener], clusters)

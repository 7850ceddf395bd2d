"""A large Istio-like route config translates without the snapshot's empty defaults (header
lists, match and retry lists), the engine compiles it, and it routes as the same snapshot
with every default spelled out."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from meshcore._fastpath import explain

from tests.health.real_engine import engine_class

from .builders import base, hcm, listener, load, static_cluster

HOSTS = 40
NO_HEADERS = {
    "request_headers_to_add": [],
    "request_headers_to_remove": [],
    "response_headers_to_add": [],
    "response_headers_to_remove": [],
}
RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"


def _bootstrap() -> dict[str, Any]:
    """`HOSTS` virtual hosts of three domains and one retried route each (as Istio's
    outbound route configs), a catch-all, and one host that uses every list."""
    b = base()
    address = listener(b)["address"]["socket_address"]
    address.update(address="127.0.0.1", port_value=0)
    b["static_resources"]["clusters"] = [static_cluster("a", 1), static_cluster("b", 2)]
    hosts: list[dict[str, Any]] = []
    for i in range(HOSTS):
        retry = {"retry_on": RETRY_ON, "num_retries": 2}
        route = {"cluster": "a" if i % 2 else "b", "timeout": "0s", "retry_policy": retry}
        hosts.append(
            {
                "name": f"svc{i}",
                "domains": [f"svc{i}.ns.svc.cluster.local", f"svc{i}.ns", f"svc{i}"],
                "routes": [{"name": "default", "match": {"prefix": "/"}, "route": route}],
            }
        )
    hosts.append(
        {
            "name": "full",
            "domains": ["full.ns"],
            "response_headers_to_remove": ["x-host"],
            "routes": [
                {
                    "match": {
                        "prefix": "/",
                        "headers": [{"name": "x-v", "string_match": {"exact": "2"}}],
                        "query_parameters": [{"name": "q", "present_match": True}],
                    },
                    "request_headers_to_remove": ["x-route"],
                    "route": {
                        "weighted_clusters": {
                            "clusters": [
                                {
                                    "name": "a",
                                    "weight": 1,
                                    "request_headers_to_remove": ["x-choice"],
                                },
                                {"name": "b", "weight": 1},
                            ]
                        },
                        "retry_policy": {
                            "retry_on": "retriable-status-codes,retriable-headers",
                            "retriable_status_codes": [503],
                            "retriable_headers": [{"name": "x-retry", "present_match": True}],
                        },
                    },
                },
                {"match": {"prefix": "/"}, "route": {"cluster": "b"}},
            ],
        }
    )
    hosts.append(
        {
            "name": "all",
            "domains": ["*"],
            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "a"}}],
        }
    )
    hcm(b)["route_config"]["virtual_hosts"] = hosts
    return b


def _route_config(snapshot: dict[str, Any]) -> Any:
    chain = snapshot["listeners"][0]["filter_chains"][0]
    return chain["filter"]["http_connection_manager"]["route_config"]


def _empty_defaults(node: Any, path: str = "") -> list[str]:
    """Where `node` (a route config snapshot) spells an empty default."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            at = f"{path}.{key}"
            if key in ("query_parameters", "retriable_status_codes", "retriable_headers"):
                if value == []:
                    found.append(at)
            elif key == "headers" and value in ([], {}, NO_HEADERS):
                found.append(at)
            found += _empty_defaults(value, at)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _empty_defaults(value, f"{path}[{i}]")
    return found


def _spelled_out(routes: dict[str, Any]) -> dict[str, Any]:
    """`routes` with every left-out default written (the snapshot as it was before)."""
    out = copy.deepcopy(routes)
    out.setdefault("headers", NO_HEADERS)
    for host in out["virtual_hosts"]:
        host.setdefault("headers", NO_HEADERS)
        for route in host["routes"]:
            route.setdefault("headers", NO_HEADERS)
            route["match"].setdefault("headers", [])
            route["match"].setdefault("query_parameters", [])
            forward = route["action"].get("route")
            if forward is None:
                continue
            for choice in forward["target"].get("weighted_clusters", []):
                choice.setdefault("headers", NO_HEADERS)
            retry = forward.get("retry_policy")
            if retry is not None:
                retry.setdefault("retriable_status_codes", [])
                retry.setdefault("retriable_headers", [])
    return out


def test_no_empty_defaults_and_the_given_lists_stay() -> None:
    routes = _route_config(load(_bootstrap()).snapshot)
    assert len(routes["virtual_hosts"]) == HOSTS + 2
    assert _empty_defaults(routes) == []
    assert "headers" not in routes
    svc = routes["virtual_hosts"][0]
    assert "headers" not in svc
    assert "headers" not in svc["routes"][0]
    assert svc["routes"][0]["match"] == {"path": {"prefix": "/"}, "case_sensitive": True}
    assert svc["routes"][0]["action"]["route"]["retry_policy"]["num_retries"] == 2
    assert "retriable_status_codes" not in svc["routes"][0]["action"]["route"]["retry_policy"]
    full = routes["virtual_hosts"][HOSTS]
    assert full["headers"] == {**NO_HEADERS, "response_headers_to_remove": ["x-host"]}
    route = full["routes"][0]
    assert route["headers"] == {**NO_HEADERS, "request_headers_to_remove": ["x-route"]}
    assert [m["name"] for m in route["match"]["headers"]] == ["x-v"]
    assert [m["name"] for m in route["match"]["query_parameters"]] == ["q"]
    forward = route["action"]["route"]
    first, second = forward["target"]["weighted_clusters"]
    assert first["headers"] == {**NO_HEADERS, "request_headers_to_remove": ["x-choice"]}
    assert "headers" not in second
    assert forward["retry_policy"]["retriable_status_codes"] == [503]
    assert [m["name"] for m in forward["retry_policy"]["retriable_headers"]] == ["x-retry"]


def _explained(
    snapshot: dict[str, Any], authority: str, path: str, headers: list[list[str]]
) -> Any:
    request = {"method": "GET", "authority": authority, "path": path, "headers": headers}
    return orjson.loads(explain(orjson.dumps(snapshot), orjson.dumps(request)))


def test_the_engine_compiles_it_and_it_routes_as_spelled_out() -> None:
    snapshot = load(_bootstrap()).snapshot
    engine = engine_class()(1)
    try:
        assert engine.apply(orjson.dumps(snapshot)) >= 1
    finally:
        engine.stop()
    before = copy.deepcopy(snapshot)
    chain = before["listeners"][0]["filter_chains"][0]["filter"]["http_connection_manager"]
    chain["route_config"] = _spelled_out(chain["route_config"])
    assert _empty_defaults(chain["route_config"]) != []
    requests = [
        ("svc7.ns", "/x", []),
        ("svc8.ns.svc.cluster.local", "/", []),
        ("full.ns", "/a?q=1", [["x-v", "2"]]),
        ("full.ns", "/a", [["x-v", "2"]]),
        ("other", "/", []),
    ]
    for authority, path, headers in requests:
        trimmed = _explained(snapshot, authority, path, headers)
        assert trimmed == _explained(before, authority, path, headers)
        assert trimmed["action"]
    svc7 = _explained(snapshot, "svc7.ns", "/x", [])
    assert svc7["route"] == {"index": 0, "name": "default", "virtual_host": 7}
    assert svc7["action"]["picked"]["cluster"] == "a"
    assert svc7["action"]["retry_policy"]["num_retries"] == 2
    full = _explained(snapshot, "full.ns", "/a?q=1", [["x-v", "2"]])
    assert full["route"]["index"] == 0
    assert full["action"]["retry_policy"]["retriable_status_codes"] == [503]
    assert _explained(snapshot, "full.ns", "/a", [["x-v", "2"]])["route"]["index"] == 1

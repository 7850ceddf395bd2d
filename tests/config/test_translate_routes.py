"""Route configs, virtual hosts, matchers and actions into the snapshot's `RouteConfig`."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from .builders import (
    NO_HEADERS,
    ROUTE,
    ROUTES,
    VHOST,
    base,
    hcm,
    load,
    problems,
    route,
    snapshot_route,
    static_cluster,
    vhost,
)


def _with_clusters(*names: str) -> dict[str, Any]:
    b = base()
    for i, name in enumerate(names):
        b["static_resources"]["clusters"].append(static_cluster(name, 9000 + i))
    return b


def _set_match(match: dict[str, Any]) -> dict[str, Any]:
    b = base()
    route(b)["match"] = match
    return snapshot_route(b)["match"]


@pytest.mark.parametrize(
    ("match", "path"),
    [
        ({"prefix": "/api"}, {"prefix": "/api"}),
        ({"path": "/exact"}, {"path": "/exact"}),
        ({"safe_regex": {"regex": "/v[0-9]+/.*"}}, {"safe_regex": "/v[0-9]+/.*"}),
        ({"safe_regex": {"google_re2": {}, "regex": "/x"}}, {"safe_regex": "/x"}),
        ({"path_separated_prefix": "/api"}, {"path_separated_prefix": "/api"}),
    ],
)
def test_path_matchers(match: dict[str, Any], path: dict[str, str]) -> None:
    assert _set_match(match)["path"] == path


def test_case_insensitive_prefix() -> None:
    assert _set_match({"prefix": "/API", "case_sensitive": False})["case_sensitive"] is False


def test_case_sensitive_is_ignored_for_safe_regex_as_in_envoy() -> None:
    match = {"safe_regex": {"regex": "/a"}, "case_sensitive": False}
    assert _set_match(match)["case_sensitive"] is True


@pytest.mark.parametrize(
    ("matcher", "rule"),
    [
        (
            {"string_match": {"exact": "v"}},
            {"string": {"pattern": {"exact": "v"}, "ignore_case": False}},
        ),
        (
            {"string_match": {"prefix": "v", "ignore_case": True}},
            {"string": {"pattern": {"prefix": "v"}, "ignore_case": True}},
        ),
        (
            {"string_match": {"suffix": "v"}},
            {"string": {"pattern": {"suffix": "v"}, "ignore_case": False}},
        ),
        (
            {"string_match": {"contains": "v"}},
            {"string": {"pattern": {"contains": "v"}, "ignore_case": False}},
        ),
        (
            {"string_match": {"safe_regex": {"regex": "v.*"}}},
            {"string": {"pattern": {"regex": "v.*"}, "ignore_case": False}},
        ),
        ({"exact_match": "v"}, {"string": {"pattern": {"exact": "v"}, "ignore_case": False}}),
        ({"prefix_match": "v"}, {"string": {"pattern": {"prefix": "v"}, "ignore_case": False}}),
        ({"suffix_match": "v"}, {"string": {"pattern": {"suffix": "v"}, "ignore_case": False}}),
        ({"contains_match": "v"}, {"string": {"pattern": {"contains": "v"}, "ignore_case": False}}),
        (
            {"safe_regex_match": {"regex": "v+"}},
            {"string": {"pattern": {"regex": "v+"}, "ignore_case": False}},
        ),
        ({"present_match": True}, {"present": True}),
        ({"present_match": False}, {"present": False}),
        ({"range_match": {"start": -5, "end": 10}}, {"range": {"start": -5, "end": 10}}),
        ({}, {"present": True}),
    ],
)
def test_header_matchers(matcher: dict[str, Any], rule: dict[str, Any]) -> None:
    match = _set_match({"prefix": "/", "headers": [{"name": "X-Test", **matcher}]})
    assert match["headers"] == [
        {"name": "x-test", "rule": rule, "invert": False, "treat_missing_header_as_empty": False}
    ]


def test_header_matcher_flags() -> None:
    header = {
        "name": "x",
        "string_match": {"exact": "1"},
        "invert_match": True,
        "treat_missing_header_as_empty": True,
    }
    (matcher,) = _set_match({"prefix": "/", "headers": [header]})["headers"]
    assert (matcher["invert"], matcher["treat_missing_header_as_empty"]) == (True, True)


def test_ignore_case_with_safe_regex_is_rejected_as_in_envoy() -> None:
    b = base()
    route(b)["match"]["headers"] = [
        {"name": "x", "string_match": {"safe_regex": {"regex": "a"}, "ignore_case": True}}
    ]
    assert problems(b) == [
        f"{ROUTE}.match.headers[0].string_match.ignore_case: ignore_case has "
        "no effect for safe_regex"
    ]


@pytest.mark.parametrize(
    ("matcher", "rule"),
    [
        (
            {"string_match": {"exact": "1"}},
            {"string": {"pattern": {"exact": "1"}, "ignore_case": False}},
        ),
        ({"present_match": True}, {"present": True}),
        ({"present_match": False}, {"present": False}),
        ({}, {"present": True}),
    ],
)
def test_query_parameter_matchers(matcher: dict[str, Any], rule: dict[str, Any]) -> None:
    match = _set_match({"prefix": "/", "query_parameters": [{"name": "Debug", **matcher}]})
    assert match["query_parameters"] == [{"name": "Debug", "rule": rule}]


@pytest.mark.parametrize(
    ("timeout", "ms"), [(None, 15000), ("0s", 0), ("1.5s", 1500), ("0.0001s", 1), ("60s", 60000)]
)
def test_route_timeout(timeout: str | None, ms: int) -> None:
    b = base()
    if timeout is not None:
        route(b)["route"]["timeout"] = timeout
    assert snapshot_route(b)["action"]["route"]["timeout_ms"] == ms


def test_rewrites() -> None:
    b = base()
    route(b)["route"].update({"prefix_rewrite": "/v1/", "host_rewrite_literal": "svc.local"})
    assert snapshot_route(b)["action"] == {
        "route": {
            "target": {"cluster": "backend"},
            "timeout_ms": 15000,
            "prefix_rewrite": "/v1/",
            "host_rewrite_literal": "svc.local",
        }
    }


def test_weighted_clusters() -> None:
    b = _with_clusters("blue", "green")
    route(b)["route"] = {
        "weighted_clusters": {
            "clusters": [
                {
                    "name": "blue",
                    "weight": 75,
                    "request_headers_to_add": [{"header": {"key": "X-Color", "value": "blue"}}],
                },
                {"name": "green", "weight": 25, "response_headers_to_remove": ["X-Debug"]},
            ],
            "total_weight": 100,
        }
    }
    target = snapshot_route(b)["action"]["route"]["target"]
    assert target == {
        "weighted_clusters": [
            {
                "name": "blue",
                "weight": 75,
                "headers": {
                    **NO_HEADERS,
                    "request_headers_to_add": [
                        {
                            "key": "x-color",
                            "value": "blue",
                            "append_action": "append_if_exists_or_add",
                            "keep_empty_value": False,
                        }
                    ],
                },
            },
            {
                "name": "green",
                "weight": 25,
                "headers": {**NO_HEADERS, "response_headers_to_remove": ["x-debug"]},
            },
        ]
    }


def test_weighted_clusters_total_weight_must_match() -> None:
    b = _with_clusters("blue", "green")
    route(b)["route"] = {
        "weighted_clusters": {
            "clusters": [{"name": "blue", "weight": 70}, {"name": "green", "weight": 20}],
            "total_weight": 100,
        }
    }
    assert problems(b) == [
        f"{ROUTE}.route.weighted_clusters.total_weight: 100 is not the sum of the weights (90)"
    ]


def test_weighted_cluster_needs_a_weight() -> None:
    b = _with_clusters("blue", "green")
    route(b)["route"] = {
        "weighted_clusters": {"clusters": [{"name": "blue", "weight": 1}, {"name": "green"}]}
    }
    assert problems(b) == [f"{ROUTE}.route.weighted_clusters.clusters[1].weight: is required"]


def test_unknown_clusters_are_named_with_their_paths() -> None:
    b = _with_clusters("blue")
    route(b)["route"] = {
        "weighted_clusters": {
            "clusters": [{"name": "blue", "weight": 1}, {"name": "gren", "weight": 1}]
        }
    }
    vhost(b)["routes"].append({"match": {"prefix": "/x"}, "route": {"cluster": "nope"}})
    assert problems(b) == [
        f"{ROUTE}.route.weighted_clusters.clusters[1].name: unknown cluster 'gren' "
        "(not in static_resources.clusters)",
        f"{VHOST}.routes[1].route.cluster: unknown cluster 'nope' "
        "(not in static_resources.clusters)",
    ]


def _direct(body: dict[str, Any] | None, status: int = 200) -> dict[str, Any]:
    b = base()
    del route(b)["route"]
    route(b)["direct_response"] = {"status": status, **({"body": body} if body else {})}
    return b


def test_direct_response_bodies(tmp_path: Path) -> None:
    body_file = tmp_path / "body.txt"
    body_file.write_text("from a file\n")
    assert snapshot_route(_direct({"inline_string": "hello"}))["action"] == {
        "direct_response": {"status": 200, "body": "hello"}
    }
    raw = base64.b64encode(b"bytes!").decode()
    assert snapshot_route(_direct({"inline_bytes": raw}))["action"]["direct_response"] == {
        "status": 200,
        "body": "bytes!",
    }
    assert (
        snapshot_route(_direct({"filename": str(body_file)}))["action"]["direct_response"]["body"]
        == "from a file\n"
    )
    assert snapshot_route(_direct(None, 204))["action"] == {"direct_response": {"status": 204}}


def test_direct_response_body_problems(tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    assert problems(_direct({"filename": str(missing)})) == [
        f"{ROUTE}.direct_response.body.filename: cannot read {str(missing)!r}: No such file or "
        "directory"
    ]
    raw = base64.b64encode(b"\xff\xfe").decode()
    assert problems(_direct({"inline_bytes": raw})) == [
        f"{ROUTE}.direct_response.body.inline_bytes: a body that is not UTF-8 is not supported"
    ]


def test_direct_response_body_size_limit() -> None:
    b = _direct({"inline_string": "x" * 5000})
    assert problems(b) == [
        f"{ROUTE}.direct_response.body: the body is 5000 bytes; the most is "
        "4096 (max_direct_response_body_size_bytes)"
    ]
    hcm(b)["route_config"]["max_direct_response_body_size_bytes"] = 8192
    assert snapshot_route(b)["action"]["direct_response"]["body"] == "x" * 5000


def _redirect(redirect: dict[str, Any]) -> dict[str, Any]:
    b = base()
    del route(b)["route"]
    route(b)["redirect"] = redirect
    action: dict[str, Any] = snapshot_route(b)["action"]["redirect"]
    return action


def test_redirects() -> None:
    assert _redirect({"https_redirect": True}) == {
        "scheme_redirect": "https",
        "response_code": 301,
        "strip_query": False,
    }
    assert _redirect(
        {
            "scheme_redirect": "http",
            "host_redirect": "example.com",
            "port_redirect": 8443,
            "path_redirect": "/new",
            "strip_query": True,
        }
    ) == {
        "scheme_redirect": "http",
        "host_redirect": "example.com",
        "port_redirect": 8443,
        "path_redirect": "/new",
        "response_code": 301,
        "strip_query": True,
    }
    assert _redirect({"prefix_rewrite": "/v2/"}) == {
        "prefix_rewrite": "/v2/",
        "response_code": 301,
        "strip_query": False,
    }


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("MOVED_PERMANENTLY", 301),
        ("FOUND", 302),
        ("SEE_OTHER", 303),
        ("TEMPORARY_REDIRECT", 307),
        ("PERMANENT_REDIRECT", 308),
    ],
)
def test_redirect_codes(code: str, status: int) -> None:
    assert _redirect({"path_redirect": "/", "response_code": code})["response_code"] == status


def test_redirect_port_must_fit() -> None:
    b = base()
    del route(b)["route"]
    route(b)["redirect"] = {"port_redirect": 70000}
    assert problems(b) == [f"{ROUTE}.redirect.port_redirect: 70000 must be at most 65535"]


def test_domains_are_lower_cased_and_unique() -> None:
    b = base()
    vhost(b)["domains"] = ["Example.COM", "*.example.com"]
    hcm(b)["route_config"]["virtual_hosts"].append(
        {"name": "other", "domains": ["example.com", "*"]}
    )
    assert problems(b) == [
        f"{ROUTES}.virtual_hosts[1].domains[0]: duplicate domain 'example.com' "
        f"(also at {VHOST}.domains[0])"
    ]
    hcm(b)["route_config"]["virtual_hosts"][1]["domains"] = ["*"]
    hosts = load(b).snapshot["listeners"][0]["filter_chains"][0]["filter"][
        "http_connection_manager"
    ]["route_config"]["virtual_hosts"]
    assert [h["domains"] for h in hosts] == [["example.com", "*.example.com"], ["*"]]


def test_header_lists_at_every_level() -> None:
    b = base()
    add = [{"header": {"key": "X-Level", "value": "config"}}]
    hcm(b)["route_config"]["request_headers_to_add"] = add
    vhost(b)["response_headers_to_remove"] = ["Server"]
    route(b)["request_headers_to_remove"] = ["X-Secret"]
    route_config = load(b).snapshot["listeners"][0]["filter_chains"][0]["filter"][
        "http_connection_manager"
    ]["route_config"]
    assert route_config["headers"]["request_headers_to_add"] == [
        {
            "key": "x-level",
            "value": "config",
            "append_action": "append_if_exists_or_add",
            "keep_empty_value": False,
        }
    ]
    assert route_config["virtual_hosts"][0]["headers"] == {
        **NO_HEADERS,
        "response_headers_to_remove": ["server"],
    }
    assert route_config["virtual_hosts"][0]["routes"][0]["headers"] == {
        **NO_HEADERS,
        "request_headers_to_remove": ["x-secret"],
    }

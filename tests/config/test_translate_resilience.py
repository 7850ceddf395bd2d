"""Issue 4 config: retry policies (route over virtual host), circuit breakers and request
mirror policies into the snapshot."""

from __future__ import annotations

import copy
from typing import Any

from .builders import (
    CLUSTER,
    ROUTE,
    VHOST,
    base,
    cluster,
    load,
    problems,
    route,
    snapshot_cluster,
    snapshot_route,
    static_cluster,
    vhost,
)

PREVIOUS_HOSTS = {
    "name": "envoy.retry_host_predicates.previous_hosts",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3."
        "PreviousHostsPredicate"
    },
}


def _action(b: dict[str, Any]) -> dict[str, Any]:
    action: dict[str, Any] = snapshot_route(b)["action"]["route"]
    return action


def test_retry_policy_defaults() -> None:
    b = base()
    route(b)["route"]["retry_policy"] = {"retry_on": "5xx"}
    assert _action(b)["retry_policy"] == {
        "retry_on": ["5xx"],
        "num_retries": 1,
        "per_try_timeout_ms": 0,
        "host_selection_retry_max_attempts": 1,
    }


def test_retry_policy_every_field() -> None:
    b = base()
    route(b)["per_request_buffer_limit_bytes"] = 4096
    route(b)["route"]["retry_policy"] = {
        "retry_on": "gateway-error, retriable-status-codes,retriable-headers",
        "num_retries": 4,
        "per_try_timeout": "0.25s",
        "retry_back_off": {"base_interval": "0.01s", "max_interval": "0.05s"},
        "retriable_status_codes": [418],
        "retriable_headers": [{"name": "X-Retry", "exact_match": "yes"}],
        "retry_host_predicate": [PREVIOUS_HOSTS],
        "host_selection_retry_max_attempts": 5,
    }
    assert _action(b)["retry_policy"] == {
        "retry_on": ["gateway-error", "retriable-status-codes", "retriable-headers"],
        "num_retries": 4,
        "per_try_timeout_ms": 250,
        "base_interval_ms": 10,
        "max_interval_ms": 50,
        "retriable_status_codes": [418],
        "retriable_headers": [
            {
                "name": "x-retry",
                "rule": {"string": {"pattern": {"exact": "yes"}, "ignore_case": False}},
                "invert": False,
                "treat_missing_header_as_empty": False,
            }
        ],
        "previous_hosts": True,
        "host_selection_retry_max_attempts": 5,
        "per_request_buffer_limit_bytes": 4096,
    }


def test_route_policy_replaces_the_virtual_hosts() -> None:
    b = base()
    vhost(b)["retry_policy"] = {"retry_on": "reset", "num_retries": 3}
    vhost(b)["per_request_buffer_limit_bytes"] = 100
    vhost(b)["include_request_attempt_count"] = True
    assert _action(b)["retry_policy"]["retry_on"] == ["reset"]
    assert _action(b)["retry_policy"]["num_retries"] == 3
    assert _action(b)["retry_policy"]["per_request_buffer_limit_bytes"] == 100
    assert _action(b)["include_request_attempt_count"] is True
    route(b)["route"]["retry_policy"] = {"retry_on": "5xx"}
    assert _action(b)["retry_policy"]["retry_on"] == ["5xx"]
    assert _action(b)["retry_policy"]["num_retries"] == 1


def test_retry_policy_problems_name_their_paths() -> None:
    b = base()
    route(b)["route"]["retry_policy"] = {
        "retry_on": "5xx,cancelled,envoy-ratelimited",
        "retry_host_predicate": [{"name": "envoy.retry_host_predicates.omit_canary_hosts"}],
        "retry_back_off": {"base_interval": "0.1s", "max_interval": "0.01s"},
    }
    policy = f"{ROUTE}.route.retry_policy"
    assert sorted(problems(b)) == [
        f"{policy}.retry_back_off.max_interval: must not be less than base_interval",
        f"{policy}.retry_host_predicate[0]: retry host predicate "
        "'envoy.retry_host_predicates.omit_canary_hosts' is not supported",
        f"{policy}.retry_on: 'envoy-ratelimited' is not supported",
    ]
    b = base()
    vhost(b)["retry_policy"] = {"retry_on": "bogus"}
    assert problems(b) == [f"{VHOST}.retry_policy.retry_on: 'bogus' is not supported"]


def test_circuit_breakers() -> None:
    b = base()
    assert "circuit_breakers" not in snapshot_cluster(b)
    cluster(b)["circuit_breakers"] = {
        "thresholds": [{"max_connections": 2, "max_retries": 0, "track_remaining": True}]
    }
    assert snapshot_cluster(b)["circuit_breakers"] == {
        "max_connections": 2,
        "max_pending_requests": 1024,
        "max_requests": 1024,
        "max_retries": 0,
        "track_remaining": True,
    }


def test_circuit_breaker_high_priority_is_not_supported() -> None:
    b = base()
    cluster(b)["circuit_breakers"] = {"thresholds": [{"priority": "HIGH", "max_requests": 1}]}
    assert problems(b) == [
        f"{CLUSTER}.circuit_breakers.thresholds[0].priority: HIGH is not supported yet"
    ]


def test_mirror_policies() -> None:
    b = base()
    b["static_resources"]["clusters"].append(static_cluster("shadow", 9100))
    route(b)["route"]["request_mirror_policies"] = [
        {"cluster": "shadow"},
        {
            "cluster": "shadow",
            "runtime_fraction": {"default_value": {"numerator": 25, "denominator": "HUNDRED"}},
        },
    ]
    assert _action(b)["request_mirror_policies"] == [
        {"cluster": "shadow", "fraction_ppm": 1_000_000},
        {"cluster": "shadow", "fraction_ppm": 250_000},
    ]


def test_mirror_cluster_must_exist() -> None:
    b = base()
    route(b)["route"]["request_mirror_policies"] = [{"cluster": "nowhere"}]
    assert problems(b) == [
        f"{ROUTE}.route.request_mirror_policies[0].cluster: unknown cluster 'nowhere' "
        "(not in static_resources.clusters)"
    ]


def test_the_same_retry_on_on_two_routes() -> None:
    """`retry_on` strings are parsed once each: every route still gets its own problem and
    its own list."""
    b = base()
    first = route(b)
    first["route"]["retry_policy"] = {"retry_on": "reset,bogus,5xx"}
    vhost(b)["routes"].append(copy.deepcopy(first))
    assert problems(b) == [
        f"{VHOST}.routes[{i}].route.retry_policy.retry_on: 'bogus' is not supported" for i in (0, 1)
    ]
    del first["route"]["retry_policy"]["retry_on"]
    vhost(b)["routes"][1]["route"]["retry_policy"]["retry_on"] = "reset,5xx"
    vhost(b)["routes"].append(copy.deepcopy(vhost(b)["routes"][1]))
    routes = load(b).snapshot["listeners"][0]["filter_chains"][0]["filter"][
        "http_connection_manager"
    ]["route_config"]["virtual_hosts"][0]["routes"]
    policies = [r["action"]["route"]["retry_policy"] for r in routes]
    assert [p["retry_on"] for p in policies] == [[], ["reset", "5xx"], ["reset", "5xx"]]
    assert policies[1]["retry_on"] is not policies[2]["retry_on"]

"""Clusters into snapshot `Cluster`s and the DNS clusters the control layer resolves."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from meshcore.config import DnsCluster, DnsHost

from .builders import (
    CLUSTER,
    LB_ENDPOINT,
    UPSTREAM_OPTIONS,
    base,
    cluster,
    lb_endpoint,
    load,
    problems,
    snapshot_cluster,
)
from .snapshot_contract import endpoint_errors

GROUPS = f"{CLUSTER}.load_assignment.endpoints"


def _endpoint(address: str, port: int, **extra: Any) -> dict[str, Any]:
    return {
        "endpoint": {"address": {"socket_address": {"address": address, "port_value": port}}},
        **extra,
    }


def test_static_cluster_with_envoy_defaults() -> None:
    b = base()
    del cluster(b)["connect_timeout"]
    assert snapshot_cluster(b) == {
        "name": "backend",
        "connect_timeout_ms": 5000,
        "lb_policy": "round_robin",
        "least_request_choice_count": 2,
        "endpoints": [
            {"address": "127.0.0.1", "port": 8081, "weight": 1, "healthy": True, "priority": 0}
        ],
        "idle_timeout_ms": 3600000,
        "per_connection_buffer_limit_bytes": 1048576,
        "lb": {
            "healthy_panic_threshold_pct": 50,
            "overprovisioning_factor": 140,
            "minimum_ring_size": 1024,
            "maximum_ring_size": 8388608,
            "maglev_table_size": 65537,
        },
    }


def test_cluster_options() -> None:
    b = base()
    cluster(b).update(
        {
            "connect_timeout": "1.5s",
            "lb_policy": "LEAST_REQUEST",
            "least_request_lb_config": {"choice_count": 4},
            "per_connection_buffer_limit_bytes": 65536,
        }
    )
    snapshot = snapshot_cluster(b)
    assert (snapshot["connect_timeout_ms"], snapshot["lb_policy"]) == (1500, "least_request")
    assert snapshot["least_request_choice_count"] == 4
    assert snapshot["per_connection_buffer_limit_bytes"] == 65536
    cluster(b)["lb_policy"] = "RANDOM"
    assert snapshot_cluster(b)["lb_policy"] == "random"


def test_endpoint_weights_and_health() -> None:
    b = base()
    cluster(b)["load_assignment"]["endpoints"] = [
        {
            "lb_endpoints": [
                _endpoint("10.0.0.1", 80, load_balancing_weight=3),
                _endpoint("10.0.0.2", 80, health_status="HEALTHY"),
                _endpoint("10.0.0.3", 80, health_status="UNHEALTHY"),
                _endpoint("10.0.0.4", 80, health_status="DRAINING"),
                _endpoint("10.0.0.5", 80, health_status="TIMEOUT"),
                _endpoint("::1", 81),
            ]
        },
        {"lb_endpoints": [_endpoint("10.0.1.1", 82)]},
    ]
    endpoints = snapshot_cluster(b)["endpoints"]
    assert [(e["address"], e["port"], e["weight"], e["healthy"]) for e in endpoints] == [
        ("10.0.0.1", 80, 3, True),
        ("10.0.0.2", 80, 1, True),
        ("10.0.0.3", 80, 1, False),
        ("10.0.0.4", 80, 1, False),
        ("10.0.0.5", 80, 1, False),
        ("::1", 81, 1, True),
        ("10.0.1.1", 82, 1, True),
    ]
    assert all(endpoint_errors(e) == [] for e in endpoints)


def test_static_endpoints_must_be_ip_literals() -> None:
    b = base()
    lb_endpoint(b)["endpoint"]["address"]["socket_address"]["address"] = "backend.local"
    assert problems(b) == [
        f"{LB_ENDPOINT}.endpoint.address.socket_address.address: malformed IP address: "
        "'backend.local'; STATIC clusters need IP literals (use STRICT_DNS for names)"
    ]


def test_strict_dns_cluster() -> None:
    b = base()
    cluster(b).update(
        {"type": "STRICT_DNS", "dns_refresh_rate": "2.5s", "dns_lookup_family": "V4_ONLY"}
    )
    cluster(b)["load_assignment"]["endpoints"][0]["lb_endpoints"] = [
        _endpoint("backend.local", 8080, load_balancing_weight=2),
        _endpoint("10.0.0.9", 8081),
    ]
    config = load(b)
    assert config.snapshot["clusters"][0]["endpoints"] == []
    assert config.dns_clusters == (
        DnsCluster(
            name="backend",
            hosts=(DnsHost("backend.local", 8080, 2), DnsHost("10.0.0.9", 8081, 1)),
            refresh_rate_s=2.5,
            family="v4",
        ),
    )


@pytest.mark.parametrize(
    ("family", "expected"),
    [
        (None, "auto"),
        ("AUTO", "auto"),
        ("V4_ONLY", "v4"),
        ("V6_ONLY", "v6"),
        ("V4_PREFERRED", "auto"),
    ],
)
def test_dns_lookup_family(family: str | None, expected: str) -> None:
    b = base()
    cluster(b)["type"] = "STRICT_DNS"
    if family is not None:
        cluster(b)["dns_lookup_family"] = family
    (dns,) = load(b).dns_clusters
    assert (dns.family, dns.refresh_rate_s) == (expected, 5.0)


def test_dns_lookup_family_all_is_not_supported() -> None:
    b = base()
    cluster(b).update({"type": "STRICT_DNS", "dns_lookup_family": "ALL"})
    assert problems(b) == [f"{CLUSTER}.dns_lookup_family: ALL is not supported"]


def test_logical_dns_needs_exactly_one_endpoint() -> None:
    b = base()
    cluster(b)["type"] = "LOGICAL_DNS"
    lb_endpoint(b)["endpoint"]["address"]["socket_address"]["address"] = "api.example.com"
    (dns,) = load(b).dns_clusters
    assert dns.hosts == (DnsHost("api.example.com", 8081, 1),)
    endpoints = cluster(b)["load_assignment"]["endpoints"][0]["lb_endpoints"]
    endpoints.append(copy.deepcopy(endpoints[0]))
    assert problems(b) == [
        f"{GROUPS}: LOGICAL_DNS clusters must have a single "
        "locality_lb_endpoint and a single lb_endpoint"
    ]


def test_dns_endpoints_take_no_health_status() -> None:
    b = base()
    cluster(b)["type"] = "STRICT_DNS"
    lb_endpoint(b)["health_status"] = "UNHEALTHY"
    assert problems(b) == [
        f"{LB_ENDPOINT}.health_status: health_status is only supported in STATIC clusters"
    ]


def test_priorities_are_carried_per_endpoint() -> None:
    b = base()
    cluster(b)["load_assignment"]["endpoints"] = [
        {"priority": 1, "lb_endpoints": [_endpoint("10.0.0.2", 80)]},
        {"lb_endpoints": [_endpoint("10.0.0.1", 80)]},
    ]
    endpoints = snapshot_cluster(b)["endpoints"]
    assert [(e["address"], e["priority"]) for e in endpoints] == [
        ("10.0.0.2", 1),
        ("10.0.0.1", 0),
    ]
    assert all(endpoint_errors(e) == [] for e in endpoints)


def test_priorities_must_not_skip_levels() -> None:
    b = base()
    cluster(b)["load_assignment"]["endpoints"][0]["priority"] = 2
    assert problems(b) == [
        f"{GROUPS}: priorities [2] must range from 0 (highest) to N (lowest) without skipping"
    ]


def test_dns_hosts_keep_their_priority() -> None:
    b = base()
    cluster(b)["type"] = "STRICT_DNS"
    cluster(b)["load_assignment"]["endpoints"] = [
        {"lb_endpoints": [_endpoint("a.local", 80)]},
        {"priority": 1, "lb_endpoints": [_endpoint("b.local", 81)]},
    ]
    (dns,) = load(b).dns_clusters
    assert dns.hosts == (DnsHost("a.local", 80, 1, 0), DnsHost("b.local", 81, 1, 1))


def test_alt_stat_name_names_the_stats_of_every_part() -> None:
    b = base()
    cluster(b)["alt_stat_name"] = "backend_stats"
    cluster(b)["health_checks"] = [
        {
            "timeout": "1s",
            "interval": "5s",
            "unhealthy_threshold": 3,
            "healthy_threshold": 2,
            "tcp_health_check": {},
        }
    ]
    config = load(b)
    assert snapshot_cluster(b)["alt_stat_name"] == "backend_stats"
    assert snapshot_cluster(b)["name"] == "backend"
    (check,) = config.health_checks
    assert (check.cluster, check.stat_name) == ("backend", "backend_stats")

    dns = base()
    cluster(dns).update({"type": "STRICT_DNS", "alt_stat_name": "dns_stats"})
    (resolved,) = load(dns).dns_clusters
    assert (resolved.name, resolved.stat_name) == ("backend", "dns_stats")


def test_without_alt_stat_name_stats_use_the_name() -> None:
    b = base()
    assert "alt_stat_name" not in snapshot_cluster(b)
    cluster(b)["type"] = "STRICT_DNS"
    (resolved,) = load(b).dns_clusters
    assert resolved.stat_name == "backend"


def test_duplicate_cluster_names() -> None:
    b = base()
    b["static_resources"]["clusters"].append(copy.deepcopy(cluster(b)))
    assert problems(b) == [
        f"static_resources.clusters[1].name: duplicate cluster 'backend' (also at {CLUSTER})"
    ]


def _options(options: dict[str, Any], key: str = UPSTREAM_OPTIONS) -> dict[str, Any]:
    return {key: {"@type": f"type.googleapis.com/{UPSTREAM_OPTIONS}", **options}}


def test_idle_timeout_from_typed_protocol_options() -> None:
    b = base()
    cluster(b)["typed_extension_protocol_options"] = _options(
        {
            "common_http_protocol_options": {"idle_timeout": "15s"},
            "explicit_http_config": {"http_protocol_options": {}},
        }
    )
    assert snapshot_cluster(b)["idle_timeout_ms"] == 15000


def test_idle_timeout_from_deprecated_cluster_field() -> None:
    b = base()
    cluster(b)["common_http_protocol_options"] = {"idle_timeout": "0s"}
    assert snapshot_cluster(b)["idle_timeout_ms"] == 0


def test_protocol_options_in_both_places() -> None:
    b = base()
    cluster(b)["common_http_protocol_options"] = {"idle_timeout": "1s"}
    cluster(b)["typed_extension_protocol_options"] = _options(
        {"explicit_http_config": {"http_protocol_options": {}}}
    )
    assert problems(b) == [
        f"{CLUSTER}.common_http_protocol_options: cannot be set together "
        "with typed_extension_protocol_options"
    ]


def test_protocol_options_under_an_unknown_key() -> None:
    b = base()
    cluster(b)["typed_extension_protocol_options"] = _options(
        {"explicit_http_config": {"http_protocol_options": {}}},
        key="envoy.filters.network.http_connection_manager",
    )
    assert problems(b) == [
        f"{CLUSTER}.typed_extension_protocol_options[envoy.filters.network."
        f"http_connection_manager]: unknown protocol options key; meshcore knows "
        f"{UPSTREAM_OPTIONS}"
    ]


def test_unsupported_upstream_protocol_option() -> None:
    b = base()
    cluster(b)["typed_extension_protocol_options"] = _options(
        {
            "common_http_protocol_options": {"headers_with_underscores_action": "REJECT_REQUEST"},
            "explicit_http_config": {"http_protocol_options": {"enable_trailers": True}},
        }
    )
    options = f"{CLUSTER}.typed_extension_protocol_options[{UPSTREAM_OPTIONS}]"
    assert problems(b) == [
        f"{options}.explicit_http_config.http_protocol_options.enable_trailers: "
        "enable_trailers is not supported",
        f"{options}.common_http_protocol_options.headers_with_underscores_action: "
        "not supported yet on a cluster (upstream responses); "
        "set it on the http_connection_manager",
    ]


def test_http_10_options_are_accepted_upstream_without_effect() -> None:
    # Envoy reads them only for downstream requests (its HTTP/1 server codec), so in a
    # cluster's options they change nothing there either.
    b = base()
    http1 = {"accept_http_10": True, "default_host_for_http_10": "a.example.com"}
    cluster(b)["typed_extension_protocol_options"] = _options(
        {"explicit_http_config": {"http_protocol_options": http1}}
    )
    before = load(base()).snapshot
    after = load(b).snapshot
    assert after["clusters"] == before["clusters"]
    assert after["listeners"] == before["listeners"]

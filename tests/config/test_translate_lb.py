"""Load-balancing config into the snapshot: panic threshold, overprovisioning factor, ring
hash / Maglev settings, active_request_bias, outlier detection, and route hash policies."""

from __future__ import annotations

import pytest

from .builders import (
    CLUSTER,
    ROUTE,
    base,
    cluster,
    problems,
    route,
    snapshot_cluster,
    snapshot_route,
)


def test_lb_settings_from_envoy_fields() -> None:
    b = base()
    cluster(b).update(
        {
            "lb_policy": "RING_HASH",
            "common_lb_config": {"healthy_panic_threshold": {"value": 0}},
            "ring_hash_lb_config": {"minimum_ring_size": 64, "maximum_ring_size": 4096},
        }
    )
    cluster(b)["load_assignment"]["policy"] = {"overprovisioning_factor": 100}
    snap = snapshot_cluster(b)
    assert snap["lb_policy"] == "ring_hash"
    assert snap["lb"] == {
        "healthy_panic_threshold_pct": 0,
        "overprovisioning_factor": 100,
        "minimum_ring_size": 64,
        "maximum_ring_size": 4096,
        "maglev_table_size": 65537,
    }
    del cluster(b)["ring_hash_lb_config"]
    cluster(b).update({"lb_policy": "MAGLEV", "maglev_lb_config": {"table_size": 5003}})
    snap = snapshot_cluster(b)
    assert (snap["lb_policy"], snap["lb"]["maglev_table_size"]) == ("maglev", 5003)
    del cluster(b)["maglev_lb_config"]
    cluster(b).update(
        {
            "lb_policy": "LEAST_REQUEST",
            "least_request_lb_config": {"active_request_bias": {"default_value": 2.5}},
        }
    )
    assert snapshot_cluster(b)["lb"]["active_request_bias"] == 2.5


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"maglev_lb_config": {"table_size": 65536}},
            f"{CLUSTER}.maglev_lb_config.table_size: 65536 must be a prime number no larger "
            "than 5000011",
        ),
        (
            {"ring_hash_lb_config": {"minimum_ring_size": 10, "maximum_ring_size": 5}},
            f"{CLUSTER}.ring_hash_lb_config.minimum_ring_size: 10 is larger than "
            "maximum_ring_size 5",
        ),
        (
            {"ring_hash_lb_config": {"hash_function": "MURMUR_HASH_2"}},
            f"{CLUSTER}.ring_hash_lb_config.hash_function: MURMUR_HASH_2 is not supported yet",
        ),
        (
            {"common_lb_config": {"healthy_panic_threshold": {"value": 12.5}}},
            f"{CLUSTER}.common_lb_config.healthy_panic_threshold: 12.5: only whole "
            "percentages are supported",
        ),
        (
            {"common_lb_config": {"zone_aware_lb_config": {}}},
            f"{CLUSTER}.common_lb_config.zone_aware_lb_config: zone_aware_lb_config is not "
            "supported yet",
        ),
    ],
)
def test_bad_lb_settings_name_the_field(fields: dict, expected: str) -> None:
    b = base()
    cluster(b).update(fields)
    assert expected in problems(b)


def test_outlier_detection_with_envoy_defaults() -> None:
    b = base()
    cluster(b)["outlier_detection"] = {}
    od = snapshot_cluster(b)["outlier_detection"]
    assert od["consecutive_5xx"] == 5
    assert od["interval_ms"] == 10_000
    assert od["base_ejection_time_ms"] == 30_000
    assert od["max_ejection_time_ms"] == 300_000
    assert od["max_ejection_percent"] == 10
    assert od["enforcing_consecutive_gateway_failure"] == 0
    assert od["enforcing_consecutive_5xx"] == 100
    assert od["split_external_local_origin_errors"] is False
    assert "outlier_detection" not in snapshot_cluster(base())


def test_outlier_detection_fields() -> None:
    b = base()
    cluster(b)["outlier_detection"] = {
        "consecutive_5xx": 3,
        "interval": "0.5s",
        "base_ejection_time": "1s",
        "max_ejection_time": "20s",
        "max_ejection_percent": 50,
        "enforcing_consecutive_gateway_failure": 100,
        "success_rate_stdev_factor": 1000,
        "split_external_local_origin_errors": True,
    }
    od = snapshot_cluster(b)["outlier_detection"]
    assert (od["consecutive_5xx"], od["interval_ms"], od["base_ejection_time_ms"]) == (3, 500, 1000)
    assert (od["max_ejection_time_ms"], od["max_ejection_percent"]) == (20_000, 50)
    assert od["enforcing_consecutive_gateway_failure"] == 100
    assert od["success_rate_stdev_factor"] == 1000
    assert od["split_external_local_origin_errors"] is True


def test_outlier_detection_errors_name_the_field() -> None:
    b = base()
    cluster(b)["outlier_detection"] = {"max_ejection_percent": 150, "monitors": []}
    found = problems(b)
    assert (
        f"{CLUSTER}.outlier_detection.max_ejection_percent: 150 is not a percentage (0..100)"
    ) in found
    b = base()
    cluster(b)["outlier_detection"] = {"always_eject_one_host": True}
    assert problems(b) == [
        f"{CLUSTER}.outlier_detection.always_eject_one_host: always_eject_one_host is not "
        "supported yet"
    ]


def test_route_hash_policies() -> None:
    b = base()
    route(b)["route"]["hash_policy"] = [
        {"header": {"header_name": "X-User"}},
        {"cookie": {"name": "sid"}, "terminal": True},
        {"connection_properties": {"source_ip": True}},
        {"query_parameter": {"name": "u"}},
        {"connection_properties": {"source_ip": False}},
    ]
    action = snapshot_route(b)["action"]["route"]
    assert action["hash_policy"] == [
        {"policy": {"header": "x-user"}, "terminal": False},
        {"policy": {"cookie": "sid"}, "terminal": True},
        {"policy": "source_ip", "terminal": False},
        {"policy": {"query_parameter": "u"}, "terminal": False},
    ]


def test_generated_cookies_are_not_supported() -> None:
    b = base()
    route(b)["route"]["hash_policy"] = [{"cookie": {"name": "sid", "ttl": "10s"}}]
    assert problems(b) == [f"{ROUTE}.route.hash_policy[0].cookie.ttl: ttl is not supported yet"]

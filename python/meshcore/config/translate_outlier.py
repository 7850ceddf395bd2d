"""A cluster's `outlier_detection` into the snapshot's `OutlierDetection` (durations in ms,
wrapped integers unwrapped; Envoy's defaults where unset). Returns `{}` without one."""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2

from . import paths
from .errors import Problems
from .values import duration_field_ms, wrapped

# Wrapped integers: field -> Envoy's default.
_UINTS = {
    "consecutive_5xx": 5,
    "consecutive_gateway_failure": 5,
    "consecutive_local_origin_failure": 5,
    "max_ejection_percent": 10,
    "enforcing_consecutive_5xx": 100,
    "enforcing_consecutive_gateway_failure": 0,
    "enforcing_consecutive_local_origin_failure": 100,
    "enforcing_success_rate": 100,
    "enforcing_local_origin_success_rate": 100,
    "success_rate_minimum_hosts": 5,
    "success_rate_request_volume": 100,
    "success_rate_stdev_factor": 1900,
    "enforcing_failure_percentage": 0,
    "enforcing_failure_percentage_local_origin": 0,
    "failure_percentage_threshold": 85,
    "failure_percentage_minimum_hosts": 5,
    "failure_percentage_request_volume": 50,
}
_PERCENTS = (
    "max_ejection_percent",
    "enforcing_consecutive_5xx",
    "enforcing_consecutive_gateway_failure",
    "enforcing_consecutive_local_origin_failure",
    "enforcing_success_rate",
    "enforcing_local_origin_success_rate",
    "enforcing_failure_percentage",
    "enforcing_failure_percentage_local_origin",
    "failure_percentage_threshold",
)
DEFAULT_INTERVAL_MS = 10_000
DEFAULT_BASE_EJECTION_MS = 30_000
DEFAULT_MAX_EJECTION_MS = 300_000


def outlier_detection(config: cluster_pb2.Cluster, path: str, problems: Problems) -> dict[str, Any]:
    """`{"outlier_detection": {...}}` for the snapshot's `Cluster`, or `{}`."""
    if not config.HasField("outlier_detection"):
        return {}
    od = config.outlier_detection
    od_path = paths.field(path, "outlier_detection")
    out: dict[str, Any] = {name: wrapped(od, name, default) for name, default in _UINTS.items()}
    for name in _PERCENTS:
        if out[name] > 100:
            problems.add(paths.field(od_path, name), f"{out[name]} is not a percentage (0..100)")
    out["split_external_local_origin_errors"] = od.split_external_local_origin_errors
    out["interval_ms"] = duration_field_ms(od, "interval", DEFAULT_INTERVAL_MS)
    out["base_ejection_time_ms"] = duration_field_ms(
        od, "base_ejection_time", DEFAULT_BASE_EJECTION_MS
    )
    out["max_ejection_time_ms"] = duration_field_ms(
        od, "max_ejection_time", DEFAULT_MAX_EJECTION_MS
    )
    for name in ("interval_ms", "base_ejection_time_ms"):
        if out[name] == 0:
            problems.add(paths.field(od_path, name[:-3]), "must be greater than 0")
    return {"outlier_detection": out}

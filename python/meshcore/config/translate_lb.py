"""A cluster's load-balancing settings into the snapshot's `lb`: `common_lb_config`
(healthy panic threshold), the load assignment's overprovisioning factor, LEAST_REQUEST's
`active_request_bias`, RING_HASH's ring sizes and MAGLEV's table size; and the priority checks
of a load assignment."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2

from . import paths
from .errors import Problems
from .values import enum_name, wrapped

DEFAULT_PANIC_THRESHOLD_PCT = 50
DEFAULT_OVERPROVISIONING_FACTOR = 140
DEFAULT_MIN_RING = 1024
DEFAULT_MAX_RING = 8 * 1024 * 1024
RING_LIMIT = 8 * 1024 * 1024
DEFAULT_MAGLEV_TABLE = 65537
MAGLEV_LIMIT = 5000011


def lb_settings(config: cluster_pb2.Cluster, path: str, problems: Problems) -> dict[str, Any]:
    """The snapshot's `Cluster.lb` for `config` at `path`."""
    out: dict[str, Any] = {
        "healthy_panic_threshold_pct": _panic_threshold(config, path, problems),
        "overprovisioning_factor": wrapped(
            config.load_assignment.policy,
            "overprovisioning_factor",
            DEFAULT_OVERPROVISIONING_FACTOR,
        ),
    }
    if config.least_request_lb_config.HasField("active_request_bias"):
        out["active_request_bias"] = (
            config.least_request_lb_config.active_request_bias.default_value
        )
    ring = config.ring_hash_lb_config
    ring_path = paths.field(path, "ring_hash_lb_config")
    minimum = wrapped(ring, "minimum_ring_size", DEFAULT_MIN_RING)
    maximum = wrapped(ring, "maximum_ring_size", DEFAULT_MAX_RING)
    if enum_name(ring, "hash_function") != "XX_HASH":
        problems.add(paths.field(ring_path, "hash_function"), "only XX_HASH is supported")
    if maximum > RING_LIMIT:
        problems.add(paths.field(ring_path, "maximum_ring_size"), f"must be <= {RING_LIMIT}")
    if minimum > maximum:
        problems.add(
            paths.field(ring_path, "minimum_ring_size"),
            f"{minimum} is larger than maximum_ring_size {maximum}",
        )
    out["minimum_ring_size"] = minimum
    out["maximum_ring_size"] = maximum
    table = wrapped(config.maglev_lb_config, "table_size", DEFAULT_MAGLEV_TABLE)
    if table > MAGLEV_LIMIT or not _is_prime(table):
        problems.add(
            paths.field(paths.field(path, "maglev_lb_config"), "table_size"),
            f"{table} must be a prime number no larger than {MAGLEV_LIMIT}",
        )
    out["maglev_table_size"] = table
    return out


def _panic_threshold(config: cluster_pb2.Cluster, path: str, problems: Problems) -> int:
    common = config.common_lb_config
    if not common.HasField("healthy_panic_threshold"):
        return DEFAULT_PANIC_THRESHOLD_PCT
    value = common.healthy_panic_threshold.value
    if value != int(value):
        problems.add(
            paths.field(paths.field(path, "common_lb_config"), "healthy_panic_threshold"),
            f"{value}: only whole percentages are supported",
        )
    return min(100, max(0, int(value)))


@functools.lru_cache(maxsize=64)
def _is_prime(n: int) -> bool:
    """Trial division (~8 µs for the default 65537): kept per size, as every cluster
    translated checks its Maglev table size, set or not."""
    if n < 2:
        return False
    k = 2
    while k * k <= n:
        if n % k == 0:
            return False
        k += 1
    return True


def check_priorities(
    groups: Sequence[endpoint_components_pb2.LocalityLbEndpoints], path: str, problems: Problems
) -> None:
    """Envoy's rule: priorities range from 0 to N without skipping."""
    seen = sorted({g.priority for g in groups})
    if seen and seen != list(range(len(seen))):
        problems.add(
            path,
            f"priorities {seen} must range from 0 (highest) to N (lowest) without skipping",
        )

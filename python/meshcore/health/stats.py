"""The health checker's stats, with Envoy's names: `cluster.<name>.health_check.*` (`<name>`: the
cluster's `alt_stat_name` when set)."""

from __future__ import annotations

from collections.abc import Iterable

from meshcore.lifecycle.control_stats import ControlStats

COUNTERS = ("attempt", "success", "failure", "network_failure", "passive_failure", "verify_cluster")
GAUGES = ("healthy", "degraded")


def stat_name(cluster: str, stat: str) -> str:
    return f"cluster.{cluster}.health_check.{stat}"


class ClusterHealthStats:
    """One cluster's health-check counters and gauges, kept in the control layer's stats.

    `passive_failure` (outlier detection) and `verify_cluster` (`service_name_matcher`) stay
    0: meshcore has neither, and Envoy shows them at 0 too."""

    def __init__(self, control: ControlStats, cluster: str) -> None:
        self._control = control
        self._attempt = stat_name(cluster, "attempt")
        self._success = stat_name(cluster, "success")
        self._failure = stat_name(cluster, "failure")
        self._network_failure = stat_name(cluster, "network_failure")
        self._healthy = stat_name(cluster, "healthy")
        self._degraded = stat_name(cluster, "degraded")
        control.declare(*(stat_name(cluster, s) for s in COUNTERS))

    def attempt(self) -> None:
        self._control.inc(self._attempt)

    def success(self) -> None:
        self._control.inc(self._success)

    def failure(self, network: bool) -> None:
        self._control.inc(self._failure)
        if network:
            self._control.inc(self._network_failure)

    def set_gauges(self, healthy: int, degraded: int) -> None:
        self._control.set_gauge(self._healthy, healthy)
        self._control.set_gauge(self._degraded, degraded)


def drop_gauges(control: ControlStats, clusters: Iterable[str]) -> None:
    """Removes the gauges of clusters no longer health checked."""
    for cluster in clusters:
        for stat in GAUGES:
            control.drop_gauge(stat_name(cluster, stat))

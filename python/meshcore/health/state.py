"""One host's active health state, as Envoy's `ActiveHealthCheckSession` keeps it: the
check outcomes it consumes, its flags, and the transition each outcome causes."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Failure(enum.Enum):
    """Envoy's `HealthCheckFailureType` (PASSIVE failures come from outlier detection)."""

    ACTIVE = "active"
    """The host answered, wrongly (an unexpected HTTP status, a body mismatch)."""
    NETWORK = "network"
    """Connecting or talking to the host failed."""
    NETWORK_TIMEOUT = "network_timeout"
    """No answer within `timeout`."""


class Transition(enum.Enum):
    """Envoy's `HealthTransition`."""

    UNCHANGED = "unchanged"
    CHANGED = "changed"
    CHANGE_PENDING = "change_pending"
    """Moving towards a change, waiting for its threshold."""


@dataclass(frozen=True)
class Outcome:
    """The result of one check (or of an idle connection's event)."""

    ok: bool
    failure: Failure | None = None
    retriable: bool = False
    """HTTP: a `retriable_statuses` answer, which counts towards `unhealthy_threshold`."""
    degraded: bool = False
    """HTTP: the answer carried `x-envoy-degraded`."""
    excluded: bool = False
    """HTTP: a failing answer carried `x-envoy-immediate-health-check-fail`."""
    detail: str = ""

    @staticmethod
    def success(degraded: bool = False, detail: str = "") -> Outcome:
        return Outcome(True, degraded=degraded, detail=detail)

    @staticmethod
    def fail(
        failure: Failure, detail: str, *, retriable: bool = False, excluded: bool = False
    ) -> Outcome:
        return Outcome(False, failure, retriable=retriable, excluded=excluded, detail=detail)


@dataclass
class HostHealth:
    """Health of one host. A host starts failing active health checks until its first check
    passes (Envoy sets FAILED_ACTIVE_HC on every host of a health-checked cluster)."""

    failed: bool = True
    """FAILED_ACTIVE_HC: out of load balancing."""
    degraded: bool = False
    """DEGRADED_ACTIVE_HC."""
    timed_out: bool = False
    """ACTIVE_HC_TIMEOUT: failed, and the last failure was a timeout."""
    excluded: bool = False
    """EXCLUDED_VIA_IMMEDIATE_HC_FAIL."""
    first_check: bool = True
    num_healthy: int = 0
    num_unhealthy: int = 0
    next_at: float | None = None
    """trio time of the next check (None: not scheduled yet)."""

    def succeed(self, outcome: Outcome, healthy_threshold: int) -> Transition:
        """Envoy's `handleSuccess`: the first check ever passes a host at once; otherwise
        `healthy_threshold` passes in a row do."""
        self.num_unhealthy = 0
        transition = Transition.UNCHANGED
        if self.failed:
            if self.first_check or self._count_healthy() == healthy_threshold:
                self.failed = False
                self.timed_out = False
                self.excluded = False
                transition = Transition.CHANGED
            else:
                transition = Transition.CHANGE_PENDING
        if outcome.degraded != self.degraded:
            self.degraded = outcome.degraded
            if transition is Transition.UNCHANGED:
                transition = Transition.CHANGED
        self.first_check = False
        return transition

    def fail(self, outcome: Outcome, unhealthy_threshold: int) -> Transition:
        """Envoy's `setUnhealthy`: a wrong answer fails a healthy host at once; network
        failures, timeouts and retriable statuses need `unhealthy_threshold` in a row."""
        assert outcome.failure is not None
        self.num_healthy = 0
        transition = Transition.UNCHANGED
        network = outcome.failure is not Failure.ACTIVE
        if outcome.excluded:
            self.excluded = True
        if not self.failed:
            if (not network and not outcome.retriable) or (
                self._count_unhealthy() == unhealthy_threshold
            ):
                self.failed = True
                transition = Transition.CHANGED
            else:
                transition = Transition.CHANGE_PENDING
        self.timed_out = outcome.failure is Failure.NETWORK_TIMEOUT and self.failed
        self.first_check = False
        return transition

    def _count_healthy(self) -> int:
        self.num_healthy += 1
        return self.num_healthy

    def _count_unhealthy(self) -> int:
        self.num_unhealthy += 1
        return self.num_unhealthy

    def record(
        self, outcome: Outcome, healthy_threshold: int, unhealthy_threshold: int
    ) -> Transition:
        if outcome.ok:
            return self.succeed(outcome, healthy_threshold)
        return self.fail(outcome, unhealthy_threshold)

    def flags_text(self, eds_healthy: bool = True) -> str:
        """Envoy's `/clusters` `health_flags` (`healthy`, or `/flag` for each flag set, in
        Envoy's order)."""
        flags = [
            ("/failed_active_hc", self.failed),
            ("/failed_eds_health", not eds_healthy),
            ("/degraded_active_hc", self.degraded),
            ("/excluded_via_immediate_hc_fail", self.excluded),
            ("/active_hc_timeout", self.timed_out),
        ]
        text = "".join(name for name, on in flags if on)
        return text or "healthy"

    def health_status_json(self, eds_healthy: bool = True) -> dict[str, Any]:
        """`envoy.admin.v3.HostHealthStatus` as Envoy prints it (false fields omitted)."""
        status: dict[str, Any] = {}
        if self.failed:
            status["failed_active_health_check"] = True
        status["eds_health_status"] = "HEALTHY" if eds_healthy else "UNHEALTHY"
        if self.degraded:
            status["failed_active_degraded_check"] = True
        if self.excluded:
            status["excluded_via_immediate_hc_fail"] = True
        if self.timed_out:
            status["active_hc_timeout"] = True
        return status

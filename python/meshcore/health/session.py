"""One host's check loop: wait for the next check (watching a kept connection), run it under
`timeout`, record the outcome in the host's state and stats, schedule the next."""

from __future__ import annotations

import logging
from typing import Protocol

import trio

from meshcore.net_address import format_host_port

from .probe import Probe
from .spec import ClusterHealthCheck
from .state import Failure, HostHealth, Outcome, Transition
from .stats import ClusterHealthStats

log = logging.getLogger(__name__)

HostKey = tuple[str, int]


class SessionOwner(Protocol):
    """What a session reports to: its cluster's checker."""

    @property
    def spec(self) -> ClusterHealthCheck: ...
    @property
    def stats(self) -> ClusterHealthStats: ...
    def first_wait_ms(self) -> int: ...
    def next_wait_ms(self, passed: bool, transition: Transition) -> int: ...
    def recorded(self, key: HostKey, health: HostHealth, transition: Transition) -> None: ...


class Session:
    """Checks one host until cancelled. `health` may come from a previous config (a reload
    that kept the cluster's health check): its schedule is then kept too."""

    def __init__(self, owner: SessionOwner, key: HostKey, health: HostHealth, probe: Probe) -> None:
        self._owner = owner
        self._key = key
        self.health = health
        self._probe = probe

    async def run(self) -> None:
        spec = self._owner.spec
        health = self.health
        try:
            if health.next_at is None:
                health.next_at = trio.current_time() + self._owner.first_wait_ms() / 1000
            while True:
                idle = await self._probe.idle_until(health.next_at)
                if idle is not None:
                    self._record(idle)
                    continue
                self._owner.stats.attempt()
                with trio.move_on_after(spec.timeout_ms / 1000) as scope:
                    outcome = await self._probe.check()
                if scope.cancelled_caught:
                    self._probe.close()
                    outcome = Outcome.fail(
                        Failure.NETWORK_TIMEOUT, f"no answer within {spec.timeout_ms} ms"
                    )
                self._record(outcome)
        finally:
            self._probe.close()

    def _record(self, outcome: Outcome) -> None:
        spec = self._owner.spec
        health = self.health
        was_failed = health.failed
        transition = health.record(outcome, spec.healthy_threshold, spec.unhealthy_threshold)
        if outcome.ok:
            self._owner.stats.success()
        else:
            self._owner.stats.failure(network=outcome.failure is not Failure.ACTIVE)
        self._log(outcome, was_failed)
        wait_ms = self._owner.next_wait_ms(outcome.ok, transition)
        health.next_at = trio.current_time() + wait_ms / 1000
        self._owner.recorded(self._key, health, transition)

    def _log(self, outcome: Outcome, was_failed: bool) -> None:
        cluster = self._owner.spec.cluster
        host = format_host_port(*self._key)
        if was_failed != self.health.failed:
            state = "unhealthy" if self.health.failed else "healthy"
            log.info("cluster %s: host %s is now %s (%s)", cluster, host, state, outcome.detail)
        elif not outcome.ok:
            level = (
                logging.INFO if self._owner.spec.always_log_health_check_failures else logging.DEBUG
            )
            log.log(level, "cluster %s: host %s failed a check (%s)", cluster, host, outcome.detail)

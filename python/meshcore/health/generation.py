"""Health checking across config reloads. Each applied config gets a `Generation` (its
membership and cluster checkers); a new one checks its new hosts before its snapshot is
applied (Envoy waits for the first checks before a cluster serves), then replaces the old
one, taking over the state of hosts whose cluster kept the same health check. A change of
some clusters only (CDS) gets a `ClusterPatch` instead: new checkers for those clusters,
checked the same way, then moved into the running generation, whose other clusters keep
their checkers and host health as they are."""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio

from meshcore.lifecycle.control_stats import ControlStats
from meshcore.lifecycle.interfaces import EngineApi

from .checker import ClusterChecker, ProbeFactory, make_probe
from .membership import Endpoint, HostKey, Membership, host_key, merge
from .spec import ClusterHealthCheck
from .state import HostHealth
from .stats import ClusterHealthStats, drop_gauges
from .traffic import TrafficWatch


def _checker(
    service: HealthService,
    spec: ClusterHealthCheck,
    changed: Callable[[str], None],
    running: Generation | None,
    keys: Iterable[HostKey],
) -> ClusterChecker:
    """A checker for `spec` (`changed(cluster)` on a health change) that takes over the
    state of hosts `keys` from `running`'s checker of the cluster when it runs the same
    check."""
    checker = ClusterChecker(
        spec,
        ClusterHealthStats(service.control, spec.stat_name),
        service.traffic,
        partial(changed, spec.cluster),
        rng=service.rng,
        probe_factory=service.probe_factory,
    )
    old = running.checkers.get(spec.cluster) if running is not None else None
    if old is not None and old.spec == spec:
        checker.adopt(old, keys)
    return checker


async def _first_rounds(
    nursery: trio.Nursery, checkers: Collection[ClusterChecker], go: trio.Event
) -> None:
    """Starts `checkers` in `nursery` (probing once `go` is set, their first round at
    once) and returns when each had its first round."""
    for checker in checkers:
        nursery.start_soon(checker.run, go)
    for checker in checkers:
        await checker.first_round.wait()


class Generation:
    """The host lists and health checks of one config."""

    def __init__(
        self,
        service: HealthService,
        specs: tuple[ClusterHealthCheck, ...],
        bases: Mapping[str, list[Endpoint]],
        previous: Generation | None,
    ) -> None:
        self.membership = Membership(service.engine, bases)
        self.checkers: dict[str, ClusterChecker] = {}
        self._go = trio.Event()
        self._scope = trio.CancelScope()
        self._patches: list[ClusterPatch] = []
        for spec in specs:
            keys = (host_key(e) for e in self.membership.base(spec.cluster))  # when adopting
            checker = _checker(service, spec, self.membership.changed, previous, keys)
            self.membership.track(spec.cluster, checker)
            self.checkers[spec.cluster] = checker

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Checks until cancelled; reports started once every new host had its first
        check."""
        with self._scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.membership.run)
                await _first_rounds(nursery, self.checkers.values(), self._go)
                task_status.started()

    def commit(self, applied: Mapping[str, list[Endpoint]]) -> None:
        """The engine runs this generation's snapshot (`applied` host lists)."""
        self._go.set()
        for checker in self.checkers.values():
            checker.update_gauges()
        self.membership.attach(applied)

    def take(self, patch: ClusterPatch, applied: Mapping[str, list[Endpoint]]) -> list[str]:
        """The engine runs `patch`'s clusters (`applied` host lists): their checkers and
        hosts replace those of the same clusters, the removed ones go; returns the clusters
        no longer health checked."""
        dropped = []
        for name in (*patch.bases, *patch.removed):
            old = self.checkers.pop(name, None)
            if old is not None:
                old.stop()
                if name not in patch.checkers:
                    dropped.append(name)
        self.checkers.update(patch.checkers)
        self._patches.append(patch)
        for name in patch.removed:
            self.membership.forget(name)
        for name, base in patch.bases.items():
            self.membership.replace(name, base, patch.checkers.get(name), applied[name])
        patch.start(self.membership)
        return dropped

    def cancel(self) -> None:
        self._scope.cancel()
        for patch in self._patches:
            patch.cancel()


class ClusterPatch:
    """Health checking for the clusters an update changes (`bases`: each one's hosts;
    `specs`: the health checks of those that have one) before it is applied: their hosts
    get their first checks as a new generation's do (a checker running the same check as
    the running one takes over its hosts' state); `Generation.take` then moves it in."""

    def __init__(
        self,
        service: HealthService,
        current: Generation,
        specs: tuple[ClusterHealthCheck, ...],
        bases: Mapping[str, list[Endpoint]],
        removed: tuple[str, ...],
    ) -> None:
        self.bases = dict(bases)
        self.removed = removed
        self.checkers: dict[str, ClusterChecker] = {}
        self._membership: Membership | None = None
        self._go = trio.Event()
        self._scope = trio.CancelScope()
        for spec in specs:
            keys = [host_key(e) for e in self.bases.get(spec.cluster, [])]
            checker = _checker(service, spec, self._changed, current, keys)
            checker.sync(keys)
            self.checkers[spec.cluster] = checker

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Checks until cancelled; reports started once every new host had its first
        check."""
        with self._scope:
            async with trio.open_nursery() as nursery:
                await _first_rounds(nursery, self.checkers.values(), self._go)
                task_status.started()

    def merged(self) -> dict[str, list[Endpoint]]:
        """Each changed cluster's hosts with their health, as the engine is to get them."""
        return {name: merge(base, self.checkers.get(name)) for name, base in self.bases.items()}

    def start(self, membership: Membership) -> None:
        """Applied: health changes now go to `membership`, adopted hosts are checked."""
        self._membership = membership
        self._go.set()
        for checker in self.checkers.values():
            checker.update_gauges()

    def _changed(self, cluster: str) -> None:
        if self._membership is not None:
            self._membership.changed(cluster)

    def cancel(self) -> None:
        self._scope.cancel()


@dataclass(frozen=True)
class HostStatus:
    """What `/clusters` shows for a health-checked host."""

    health: HostHealth
    eds_healthy: bool

    def flags_text(self) -> str:
        return self.health.flags_text(self.eds_healthy)

    def health_status_json(self) -> dict[str, Any]:
        return self.health.health_status_json(self.eds_healthy)


class HealthService:
    """The running generation, and the hooks the server and DNS call."""

    def __init__(
        self,
        engine: EngineApi,
        control: ControlStats,
        *,
        rng: random.Random | None = None,
        probe_factory: ProbeFactory = make_probe,
        traffic: TrafficWatch | None = None,
    ) -> None:
        self.engine = engine
        self.control = control
        self.rng = rng or random.Random()
        self.probe_factory = probe_factory
        self.traffic = traffic or TrafficWatch(engine)
        self.current: Generation | None = None

    async def prepare(
        self,
        nursery: trio.Nursery,
        specs: tuple[ClusterHealthCheck, ...],
        bases: Mapping[str, list[Endpoint]],
    ) -> Generation:
        """Starts a generation for a config in `nursery` and returns once its new hosts had
        their first check. Cancel it if its snapshot is not applied."""
        generation = Generation(self, specs, bases, self.current)
        await nursery.start(generation.run)
        return generation

    def commit(self, generation: Generation, applied: Mapping[str, list[Endpoint]]) -> None:
        """`generation`'s snapshot is applied: it replaces the running one."""
        previous, self.current = self.current, generation
        if previous is not None:
            previous.cancel()
            drop_gauges(
                self.control, (c for c in previous.checkers if c not in generation.checkers)
            )
        generation.commit(applied)

    async def prepare_clusters(
        self,
        nursery: trio.Nursery,
        specs: tuple[ClusterHealthCheck, ...],
        bases: Mapping[str, list[Endpoint]],
        removed: tuple[str, ...],
    ) -> ClusterPatch:
        """`prepare` for an update of some clusters only (`bases`: the changed ones' hosts,
        `specs`: their health checks, `removed`: names) over the running generation, whose
        other clusters are left as they are. Cancel it if its snapshot is not applied."""
        assert self.current is not None
        patch = ClusterPatch(self, self.current, specs, bases, removed)
        await nursery.start(patch.run)
        return patch

    def commit_clusters(self, patch: ClusterPatch, applied: Mapping[str, list[Endpoint]]) -> None:
        """`patch`'s clusters are applied (`applied`: their host lists as the engine got
        them): they join the running generation."""
        assert self.current is not None
        drop_gauges(self.control, self.current.take(patch, applied))

    def abandon_clusters(self, patch: ClusterPatch) -> None:
        """`patch`'s snapshot was not applied: it stops, and the running checkers of its
        clusters show their gauges again (the patch's first round set them)."""
        patch.cancel()
        current = self.current
        gone = []
        for name in patch.checkers:
            checker = current.checkers.get(name) if current is not None else None
            if checker is not None:
                checker.update_gauges()
            else:
                gone.append(name)
        drop_gauges(self.control, gone)

    def publish(self, cluster: str, endpoints: list[Endpoint]) -> None:
        """A DNS answer for `cluster` (the `StrictDns` publisher)."""
        if self.current is None:
            raise KeyError(cluster)
        self.current.membership.set_base(cluster, endpoints)

    def host_status(self, cluster: str, address: str, port: int) -> HostStatus | None:
        """The active health of a host, or None if its cluster is not health checked."""
        if self.current is None:
            return None
        checker = self.current.checkers.get(cluster)
        if checker is None:
            return None
        key = (address, port)
        health = checker.hosts.get(key)
        if health is None:
            return None
        return HostStatus(health, self.current.membership.eds_healthy(cluster, key))

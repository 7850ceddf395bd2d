"""One cluster's active health checking: a session per host, the cluster-wide settings
(traffic-dependent intervals, jitter), the `healthy`/`degraded` gauges, and the first round
of checks that a new config waits for before it serves (Envoy's cluster warming).

The first round ends as Envoy's does: after as many check results (from any host of the
cluster) as the cluster had hosts, so a fast host checked twice can stand in for a slow
one that is still connecting."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

import trio

from .http_check import HttpProbe
from .probe import Probe
from .schedule import initial_delay_ms, next_interval_ms
from .session import HostKey, Session
from .spec import ClusterHealthCheck
from .state import HostHealth, Transition
from .stats import ClusterHealthStats
from .tcp_check import TcpProbe
from .traffic import TrafficWatch

ProbeFactory = Callable[[ClusterHealthCheck, str, int], Probe]


def make_probe(spec: ClusterHealthCheck, address: str, port: int) -> Probe:
    """The probe `spec` asks for (the config layer guarantees exactly one kind)."""
    if spec.http is not None:
        return HttpProbe(spec, spec.http, address, port)
    if spec.tcp is not None:
        return TcpProbe(spec, spec.tcp, address, port)
    if spec.grpc is not None:
        # Imported here: it pulls in protobuf, which a proxy without gRPC checks never loads.
        from .grpc_check import GrpcProbe

        return GrpcProbe(spec, spec.grpc, address, port)
    raise ValueError(f"cluster {spec.cluster}: health check has no http, tcp or grpc check")


class ClusterChecker:
    """Checks every host of one cluster. Hosts come and go with `sync` (DNS answers);
    `on_change` runs after any check that changed a host's health."""

    def __init__(
        self,
        spec: ClusterHealthCheck,
        stats: ClusterHealthStats,
        traffic: TrafficWatch,
        on_change: Callable[[], None],
        *,
        rng: random.Random | None = None,
        probe_factory: ProbeFactory = make_probe,
    ) -> None:
        self._spec = spec
        self._stats = stats
        self._traffic = traffic
        self._on_change = on_change
        self._rng = rng or random.Random()
        self._probe_factory = probe_factory
        self.hosts: dict[HostKey, HostHealth] = {}
        self._adopted: set[HostKey] = set()
        self._scopes: dict[HostKey, trio.CancelScope] = {}
        self._first_round_left = 0
        self.first_round = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._go: trio.Event | None = None
        self._stopped = False

    # ---- SessionOwner --------------------------------------------------------------------

    @property
    def spec(self) -> ClusterHealthCheck:
        return self._spec

    @property
    def stats(self) -> ClusterHealthStats:
        return self._stats

    def first_wait_ms(self) -> int:
        return initial_delay_ms(self._spec, self._rng)

    def next_wait_ms(self, passed: bool, transition: Transition) -> int:
        traffic = self._traffic.seen(self._spec.cluster)
        return next_interval_ms(self._spec, passed, transition, traffic, self._rng)

    def recorded(self, key: HostKey, health: HostHealth, transition: Transition) -> None:
        if self._first_round_left > 0:
            self._first_round_left -= 1
            self._check_first_round()
        if transition is Transition.CHANGED:
            self.update_gauges()
            self._on_change()

    # ---- hosts -------------------------------------------------------------------------

    def is_failed(self, key: HostKey) -> bool:
        health = self.hosts.get(key)
        return health is None or health.failed

    def adopt(self, previous: ClusterChecker, keys: Iterable[HostKey]) -> None:
        """Takes over the state (and schedule) of hosts that `previous`, running the same
        health check, already checks. Call before `sync`."""
        for key in keys:
            health = previous.hosts.get(key)
            if health is not None and not health.first_check:
                self.hosts[key] = health
                self._adopted.add(key)

    def sync(self, keys: Iterable[HostKey]) -> None:
        """Makes the checked hosts exactly `keys`: new ones start failing until their first
        check passes (as in Envoy), removed ones stop being checked."""
        wanted = dict.fromkeys(keys)
        for key in [k for k in self.hosts if k not in wanted]:
            removed = self.hosts.pop(key)
            if removed.first_check and key not in self._adopted and self._first_round_left > 0:
                self._first_round_left -= 1  # Envoy reports a removed, never checked host
            self._adopted.discard(key)
            scope = self._scopes.pop(key, None)
            if scope is not None:
                scope.cancel()
        for key in wanted:
            if key not in self.hosts:
                self.hosts[key] = HostHealth()
                if not self.first_round.is_set():
                    self._first_round_left += 1
            if self._nursery is not None and key not in self._scopes:
                self._spawn(key)
        self.update_gauges()
        self._check_first_round()

    def _check_first_round(self) -> None:
        if self._first_round_left == 0:
            self.first_round.set()

    def update_gauges(self) -> None:
        healthy = sum(1 for h in self.hosts.values() if not h.failed)
        degraded = sum(1 for h in self.hosts.values() if h.degraded)
        self._stats.set_gauges(healthy, degraded)

    # ---- running -----------------------------------------------------------------------

    async def run(self, go: trio.Event) -> None:
        """Checks until cancelled. New hosts are checked at once; adopted hosts only once
        `go` is set (until then their previous config's sessions still check them)."""
        self._go = go
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self._stopped:
                nursery.cancel_scope.cancel()
            for key in self.hosts:
                self._spawn(key)
            self._check_first_round()
            await trio.sleep_forever()

    def stop(self) -> None:
        """Stops checking (`run` returns), while the other checkers of its config go on."""
        self._stopped = True
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _spawn(self, key: HostKey) -> None:
        assert self._nursery is not None
        scope = trio.CancelScope()
        self._scopes[key] = scope
        session = Session(self, key, self.hosts[key], self._probe_factory(self._spec, *key))
        wait_for = self._go if key in self._adopted else None
        self._nursery.start_soon(self._run_session, scope, session, wait_for)

    @staticmethod
    async def _run_session(
        scope: trio.CancelScope, session: Session, wait_for: trio.Event | None
    ) -> None:
        with scope:
            if wait_for is not None:
                await wait_for.wait()
            await session.run()

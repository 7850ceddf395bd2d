"""Each cluster's hosts as the engine should have them: the base list (the snapshot's
endpoints, or the latest DNS answer) merged with active health, pushed with
`Engine.update_endpoints` only when the merged list changes. DNS updates and health results
both come through here, so neither overwrites the other.

As in Envoy (`common_lb_config.update_merge_window`, default 1 s), health changes within a
second of a cluster's last update are merged and delivered together when that second ends;
hosts added or removed are delivered at once."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, Protocol

import orjson
import trio

from meshcore.lifecycle.interfaces import EngineApi

log = logging.getLogger(__name__)

Endpoint = dict[str, Any]
HostKey = tuple[str, int]

# Envoy's default `common_lb_config.update_merge_window`.
MERGE_WINDOW_S = 1.0


class HealthSource(Protocol):
    """A health-checked cluster's checker, as membership sees it."""

    def is_failed(self, key: HostKey) -> bool: ...
    def sync(self, keys: list[HostKey]) -> None: ...


def host_key(endpoint: Mapping[str, Any]) -> HostKey:
    return (str(endpoint["address"]), int(endpoint["port"]))


class Membership:
    """The host lists of one config's clusters. Until `attach` (the snapshot carrying them
    is applied) nothing is pushed."""

    def __init__(
        self,
        engine: EngineApi,
        bases: Mapping[str, list[Endpoint]],
        merge_window_s: float = MERGE_WINDOW_S,
    ) -> None:
        self._engine = engine
        self._window = merge_window_s
        self._last_update: dict[str, float] = {}
        # cluster -> when its merged health changes are delivered (in scheduling order, which
        # is also time order: every entry is "then + window").
        self._due: dict[str, float] = {}
        self._wake = trio.Event()
        self._bases: dict[str, list[Endpoint]] = {}
        self._eds: dict[str, dict[HostKey, bool]] = {}
        for name, endpoints in bases.items():
            self._set(name, endpoints)
        self._health: dict[str, HealthSource] = {}
        self._pushed: dict[str, list[Endpoint]] | None = None

    def track(self, cluster: str, health: HealthSource) -> None:
        """Merges `health` into `cluster`'s hosts and has it check the current base."""
        self._health[cluster] = health
        health.sync([host_key(e) for e in self._bases.get(cluster, [])])

    def base(self, cluster: str) -> list[Endpoint]:
        return self._bases.get(cluster, [])

    def eds_healthy(self, cluster: str, key: HostKey) -> bool:
        """The base list's own health for a host (STATIC `health_status`)."""
        return self._eds.get(cluster, {}).get(key, True)

    def _set(self, cluster: str, endpoints: list[Endpoint]) -> list[HostKey]:
        """Stores `endpoints` as `cluster`'s base; returns their host keys, in order."""
        self._bases[cluster] = list(endpoints)
        # `host_key` inlined: one pass over 1,000 endpoints instead of a call each.
        keys = [(str(e["address"]), int(e["port"])) for e in endpoints]
        self._eds[cluster] = dict(
            zip(keys, [bool(e.get("healthy", True)) for e in endpoints], strict=True)
        )
        return keys

    def _rebase(self, cluster: str, endpoints: list[Endpoint]) -> bool | None:
        """`_set` for a list as long as the current base, looking only at the endpoints
        that are not the same objects (an EDS update keeps unchanged hosts' dicts): whether
        the hosts are the same set; None (nothing changed: do the full `_set`) with no
        current base, another length or a duplicate host in either list."""
        old = self._bases.get(cluster)
        eds = self._eds.get(cluster)
        if old is None or eds is None or not len(old) == len(eds) == len(endpoints):
            return None
        changed = [i for i, (a, b) in enumerate(zip(old, endpoints, strict=True)) if a is not b]
        gone = {host_key(old[i]) for i in changed}  # no duplicates in `old`: one each
        came = {host_key(endpoints[i]): bool(endpoints[i].get("healthy", True)) for i in changed}
        new = dict(eds)
        for key in gone:
            del new[key]
        new.update(came)
        if len(new) != len(endpoints):  # a duplicate
            return None
        self._bases[cluster] = list(endpoints)
        self._eds[cluster] = new
        return gone == came.keys()

    def merged(self, cluster: str) -> list[Endpoint]:
        return merge(self._bases.get(cluster, []), self._health.get(cluster))

    def merged_all(self) -> dict[str, list[Endpoint]]:
        return {name: self.merged(name) for name in self._bases}

    def attach(self, applied: Mapping[str, list[Endpoint]]) -> None:
        """The engine now holds `applied`; from here on changes are pushed (including any
        made since `applied` was taken)."""
        self._pushed = {name: list(endpoints) for name, endpoints in applied.items()}
        for name in self._bases:
            if self._pushed.get(name) != self.merged(name):
                self.changed(name)

    def replace(
        self,
        cluster: str,
        endpoints: list[Endpoint],
        health: HealthSource | None,
        applied: list[Endpoint],
    ) -> None:
        """A changed cluster (the engine now holds `applied` for it): its new base list and
        health source (None: not checked); a change since `applied` was taken is pushed.
        The other clusters are not touched."""
        self._set(cluster, endpoints)
        if health is None:
            self._health.pop(cluster, None)
        else:
            self._health[cluster] = health
        self._due.pop(cluster, None)
        if self._pushed is not None:
            self._pushed[cluster] = list(applied)
            if applied != self.merged(cluster):
                self.changed(cluster)

    def forget(self, cluster: str) -> None:
        """A removed cluster: nothing more is pushed for it."""
        for state in (self._bases, self._eds, self._health, self._due, self._last_update):
            state.pop(cluster, None)
        if self._pushed is not None:
            self._pushed.pop(cluster, None)

    def set_base(self, cluster: str, endpoints: list[Endpoint]) -> None:
        """A new base list (DNS): health checking follows it, the merge is pushed (at once if
        hosts were added or removed). KeyError (the engine no longer has the cluster) and
        ValueError (it rejected the list) pass through."""
        health = self._health.get(cluster)
        same_hosts = self._rebase(cluster, endpoints) if health is None else None
        if same_hosts is None:
            before = self._eds.get(cluster, {})
            keys = self._set(cluster, endpoints)
            same_hosts = self._eds[cluster].keys() == before.keys()  # as sets
            if health is not None:
                health.sync(keys)
        if same_hosts:
            self.changed(cluster)
        else:
            self._due.pop(cluster, None)
            self._deliver(cluster)

    def changed(self, cluster: str) -> None:
        """Hosts' health (or weights) changed: deliver now, or at the end of the merge
        window if the cluster was updated less than a window ago."""
        if self._pushed is None or cluster in self._due:
            return
        now = trio.current_time()
        if now - self._last_update.get(cluster, -math.inf) > self._window:
            self._deliver_logged(cluster)
        else:
            self._due[cluster] = now + self._window
            self._wake.set()

    async def run(self) -> None:
        """Delivers merged updates when their window ends, until cancelled."""
        while True:
            while not self._due:
                self._wake = trio.Event()
                await self._wake.wait()
            cluster, at = next(iter(self._due.items()))
            await trio.sleep_until(at)
            if self._due.get(cluster) == at:
                del self._due[cluster]
                self._deliver_logged(cluster)

    def _deliver_logged(self, cluster: str) -> None:
        try:
            self._deliver(cluster)
        except KeyError:
            log.warning("cluster %s: no longer known to the engine", cluster)
        except ValueError as exc:
            log.error("cluster %s: engine rejected endpoints: %s", cluster, exc)

    def _deliver(self, cluster: str) -> None:
        if self._pushed is None:
            return
        self._last_update[cluster] = trio.current_time()
        merged = self.merged(cluster)
        if self._pushed.get(cluster) == merged:
            return
        self._engine.update_endpoints(cluster, orjson.dumps(merged))
        self._pushed[cluster] = merged


def merge(base: list[Endpoint], health: HealthSource | None) -> list[Endpoint]:
    """`base` with active health merged in (`health` None: as it is)."""
    if health is None:
        return base
    return [
        {**e, "healthy": bool(e.get("healthy", True)) and not health.is_failed(host_key(e))}
        for e in base
    ]

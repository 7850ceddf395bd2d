"""The xDS stats under Envoy's names: `control_plane.connected_state`;
`listener_manager.lds.*` and `cluster_manager.cds.*`; per route config
`http.<stat_prefix>.rds.<name>.*`; per EDS cluster `cluster.<name>.*` (its `alt_stat_name` when
set); per SDS secret `sds.<name>.*` (update_attempt,
update_success, update_rejected, update_failure, update_empty, init_fetch_timeout,
version, update_time); and the cluster and listener manager counts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from itertools import chain
from operator import attrgetter
from typing import Any

from meshcore.config.xds_resources import ASSIGNMENT, CLUSTER, LISTENER, ROUTE_CONFIG, SECRET
from meshcore.lifecycle.control_stats import ControlStats

from .resources import ResourceStore, Update

CONNECTED = "control_plane.connected_state"
LDS = "listener_manager.lds"
CDS = "cluster_manager.cds"
COUNTERS = (
    "update_attempt",
    "update_success",
    "update_rejected",
    "update_failure",
    "update_empty",
    "init_fetch_timeout",
)


# How many sets of RDS names `update_scopes` keeps the scopes of (between LDS changes).
_KNOWN_RDS = 64
_NAME = attrgetter("name")


def version_hash(version: str) -> int:
    """The `version` gauge: a 52-bit hash of version_info (Envoy shows an xxHash64 of it;
    only equality between values means anything)."""
    digest = hashlib.blake2b(version.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 12


def _scope(cluster: str, snapshot: Mapping[str, Any]) -> str:
    """A cluster's stats scope: `cluster.<alt_stat_name or name>`."""
    return f"cluster.{snapshot.get('alt_stat_name', cluster)}"


class XdsStats:
    """Counts xDS updates into the control layer's stats."""

    def __init__(self, control: ControlStats, store: ResourceStore) -> None:
        self.control = control
        self.store = store
        self._rds_scopes: tuple[object, dict[tuple[str, ...], list[str]]] = (None, {})
        """The accepted listeners, and the scopes of RDS updates of these names under them
        (worked out again when the listeners change)."""
        self._success: tuple[object, list[tuple[str, str, str, str]]] = (None, [])
        """The scopes `success` counted last (the list, by identity: `update_scopes` gives
        the same one for the next version of a route config) and their update_success,
        update_empty, version and update_time stats."""
        self._totals: tuple[int, int, int, int] | None = None
        """The gauges `totals` set last."""
        control.set_gauge(CONNECTED, 0)
        control.declare(
            *(f"{scope}.{name}" for scope in (LDS, CDS) for name in COUNTERS),
            *(
                f"{manager}.{name}"
                for manager, kind in (
                    ("cluster_manager", "cluster"),
                    ("listener_manager", "listener"),
                )
                for name in (f"{kind}_added", f"{kind}_modified", f"{kind}_removed")
            ),
        )

    def connected(self, up: bool) -> None:
        self.control.set_gauge(CONNECTED, int(up))

    def update_scopes(self, update: Update) -> list[str]:
        """`scopes` of the resources `update` sends and removes (an RDS update's worked
        out once for the accepted listeners: a route config's next version counts in the
        same scopes)."""
        type_url = update.type_url
        if type_url != ROUTE_CONFIG:  # LDS and CDS: their scope, no name read
            return self.scopes(type_url, chain(map(_NAME, update.resources), update.removed))
        names = (*map(_NAME, update.resources), *update.removed)
        listeners, known = self._rds_scopes
        if listeners is not self.store.accepted[LISTENER]:
            listeners, known = self.store.accepted[LISTENER], {}
            self._rds_scopes = (listeners, known)
        scopes = known.get(names)
        if scopes is None:
            if len(known) >= _KNOWN_RDS:
                known.clear()
            scopes = known[names] = self.scopes(type_url, names)
        return scopes

    def scopes(self, type_url: str, names: Iterable[str]) -> list[str]:
        """The stat scopes an update of `names` of `type_url` counts in."""
        if type_url == LISTENER:
            return [LDS]
        if type_url == CLUSTER:
            return [CDS]
        wanted = set(names)
        if type_url == SECRET:
            return [f"sds.{name}" for name in sorted(wanted)]
        if type_url == ROUTE_CONFIG:
            prefixes = {
                (e.checked.stat_prefix, e.checked.rds)
                for e in self.store.accepted[LISTENER].values()
                if e.checked.rds in wanted
            }
            return [f"http.{prefix}.rds.{rds}" for prefix, rds in sorted(prefixes)]
        if type_url == ASSIGNMENT:
            users = self.store.view.users
            if wanted <= users.keys():  # serving clusters: no scan of all of them
                clusters = self.store.view.clusters
                return [_scope(c, clusters[c].snapshot) for name in wanted for c in users[name]]
            return [
                _scope(name, e.checked.snapshot)
                for name, e in self.store.accepted[CLUSTER].items()
                if e.checked.eds in wanted
            ]
        return []

    def inc(self, scopes: Iterable[str], name: str) -> None:
        for scope in scopes:
            self.control.inc(f"{scope}.{name}")

    def success(self, scopes: Iterable[str], version: str, now: float, empty: bool) -> None:
        digest, millis = version_hash(version), int(now * 1000)
        inc, set_gauge = self.control.inc, self.control.set_gauge
        counted, stats = self._success
        if counted is not scopes:
            stats = [
                (
                    f"{scope}.update_success",
                    f"{scope}.update_empty",
                    f"{scope}.version",
                    f"{scope}.update_time",
                )
                for scope in scopes
            ]
            self._success = (scopes, stats)
        for names in stats:
            inc(names[0])
            if empty:
                inc(names[1])
            set_gauge(names[2], digest)
            set_gauge(names[3], millis)

    def changes(self, type_url: str, added: int, removed: int, modified: int) -> None:
        """`cluster_added` / `listener_added` ... for a CDS or LDS update."""
        kind = {CLUSTER: "cluster", LISTENER: "listener"}.get(type_url)
        if kind is None:
            return
        manager = "cluster_manager" if kind == "cluster" else "listener_manager"
        self.control.inc(f"{manager}.{kind}_added", added)
        self.control.inc(f"{manager}.{kind}_removed", removed)
        self.control.inc(f"{manager}.{kind}_modified", modified)

    def totals(self) -> None:
        """Active and warming clusters and listeners (static ones included, as Envoy)."""
        view = self.store.view
        static = self.store.static.snapshot
        totals = (
            len(static.get("clusters", ())) + len(view.clusters),
            len(view.warming_clusters),
            len(static.get("listeners", ())) + len(view.listeners),
            len(view.warming_listeners),
        )
        if totals == self._totals:  # only `totals` sets these gauges
            return
        self._totals = totals
        self.control.set_gauge("cluster_manager.active_clusters", totals[0])
        self.control.set_gauge("cluster_manager.warming_clusters", totals[1])
        self.control.set_gauge("listener_manager.total_listeners_active", totals[2])
        self.control.set_gauge("listener_manager.total_listeners_warming", totals[3])

"""The current xDS resources and what of them serves: each update is checked by the config
layer (one `Problem` per bad field, its path naming the resource), merged into the accepted
resources, and turned into a plan for the engine.

Warming and order (make before break):
- an EDS cluster serves once its ClusterLoadAssignment arrived; until then its previous
  version (if any) keeps serving;
- a route config serves once every cluster it names serves (one not known at all is
  waited for too: a control plane may send RDS before CDS, and a NACK would not be sent
  again once the cluster came); a listener once its route config (RDS) and the clusters
  its routes name serve; until then their previous versions keep serving, or they stay
  out of the snapshot;
- a listener or cluster whose TLS context names an SDS secret serves once the secret
  arrived (its placeholders replaced by the secret's PEM); until then its previous version
  keeps serving, or it stays out; a new secret version makes a new snapshot (new
  handshakes take it, open connections keep theirs);
- a cluster removed by CDS stays in the snapshot while a serving route still names it, so
  that a route change pushed after a cluster removal never sends traffic to nowhere.
An update that only changes endpoints of serving clusters becomes per-cluster endpoint
updates; one that only changes clusters a new config with the changed and removed clusters
named (`ClusterDelta`, for `Engine.apply_clusters`); anything else one whole new
snapshot."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from google.protobuf.message import Message

from meshcore.config.errors import Problem, Problems
from meshcore.config.grpc_tls import static_cluster_tls
from meshcore.config.model import MeshConfig
from meshcore.config.secrets import SecretRef, SecretValue, sds_target, secret_refs
from meshcore.config.xds_resources import (
    ASSIGNMENT,
    CLUSTER,
    LISTENER,
    ROUTE_CONFIG,
    SECRET,
    ClusterResource,
    EndpointsResource,
    ListenerResource,
    RouteResource,
    bootstrap_tracing,
    check_addresses,
    check_assignment,
    check_cluster,
    check_listener,
    check_refs,
    check_route_config,
    check_sds_secret,
    compose,
    compose_clusters,
    compose_listeners,
    resource_path,
    static_names,
    unroutable,
)

from .view import View, build_view, rebuild_clusters, rebuild_listeners, secret_lookup

Endpoint = dict[str, Any]
Checked = ListenerResource | RouteResource | ClusterResource | EndpointsResource

# Order of types on a new stream and of additions: CDS, EDS, LDS, RDS, SDS.
TYPE_ORDER = (CLUSTER, ASSIGNMENT, LISTENER, ROUTE_CONFIG, SECRET)
WILDCARD_TYPES = (CLUSTER, LISTENER)
MESSAGES: dict[str, type[Message]] = {
    LISTENER: listener_pb2.Listener,
    ROUTE_CONFIG: route_pb2.RouteConfiguration,
    CLUSTER: cluster_pb2.Cluster,
    ASSIGNMENT: endpoint_pb2.ClusterLoadAssignment,
    SECRET: secret_pb2.Secret,
}
# Listeners are checked by `ResourceStore._check` (they need the bootstrap's tracing).
_CHECKS: dict[str, Callable[[Any, str], tuple[Any, list[Problem]]]] = {
    ROUTE_CONFIG: check_route_config,
    CLUSTER: check_cluster,
    ASSIGNMENT: check_assignment,
    SECRET: check_sds_secret,
}
# Envoy caps a NACK's error_detail; so do we.
MAX_ERROR_DETAIL = 4096


def short_type(type_url: str) -> str:
    """`type.googleapis.com/envoy.config.cluster.v3.Cluster` -> `Cluster`."""
    return type_url.rsplit(".", 1)[-1]


class Rejected(Exception):
    """An update that is not applied; `detail` becomes the NACK's error_detail."""

    def __init__(self, problems: Iterable[Problem | str]) -> None:
        self.lines = [str(p) for p in problems]
        text = "\n".join(self.lines)
        if len(text) > MAX_ERROR_DETAIL:
            text = text[: MAX_ERROR_DETAIL - 3] + "..."
        self.detail = text
        super().__init__(text)


@dataclass(frozen=True)
class Incoming:
    """One resource as received. `heartbeat`: a TTL refresh without a body; `message`
    None otherwise: the bytes are those of the accepted resource `name` (not decoded)."""

    name: str
    version: str
    message: Message | None
    raw: bytes = b""
    ttl_s: float | None = None
    heartbeat: bool = False


@dataclass(frozen=True)
class Update:
    """One response (or file) of one type. `complete`: resources absent from it are
    removed (SotW LDS/CDS, files)."""

    type_url: str
    version_info: str
    resources: list[Incoming]
    removed: list[str] = field(default_factory=list)
    complete: bool = False


@dataclass(slots=True)
class Entry:
    """An accepted resource: its bytes and its checked translation (the decoded message is
    not kept: with 10,000 clusters that is tens of MiB for /config_dump alone)."""

    name: str
    version: str
    type_url: str
    raw: bytes
    checked: Any
    last_updated: float
    """Wall-clock time it was accepted (for /config_dump)."""
    expires: float | None = None
    """trio time its TTL runs out (None: no TTL)."""

    @property
    def message(self) -> Message:
        return decode(self.type_url, self.raw)


@dataclass(frozen=True)
class ClusterDelta:
    """The clusters a config changes from the applied one, when nothing else on the
    cluster side changed: `changed` (new or different settings or endpoints: their
    snapshots as in the config, EDS endpoints filled in) and `removed` (names)."""

    changed: dict[str, dict[str, Any]]
    removed: tuple[str, ...]


@dataclass
class Plan:
    """What the engine needs: a whole new config, or endpoint updates only (or nothing)."""

    config: MeshConfig | None
    endpoint_updates: dict[str, list[Endpoint]]
    clusters_changed: bool = True
    """With a config: False when only listeners and routes changed (no cluster, endpoint,
    DNS or health check to redo)."""
    clusters: ClusterDelta | None = None
    """With a config whose clusters changed: the changed and removed ones, when the other
    clusters are those applied, as they are (None: every cluster may have changed)."""
    listeners: dict[str, dict[str, Any]] | None = None
    """With a config: its dynamic listeners' snapshots by name (what `commit` keeps as the
    applied ones)."""


@dataclass
class Staged:
    """A checked update (None: the accepted resources as they are), not yet applied."""

    update: Update | None
    accepted: dict[str, Entry]
    view: View
    plan: Plan
    endpoints_only: bool = False
    """Only endpoints of serving clusters changed: subscriptions cannot have. Then
    `accepted` and `view` are the store's own, as they are: `commit` applies `changes`,
    the update's removals and `endpoint_changes` to them in place (no copy of 10,000
    entries for one cluster's change)."""
    changes: dict[str, Entry] = field(default_factory=dict)
    """With `endpoints_only`: the new and refreshed entries."""
    endpoint_changes: dict[str, list[Endpoint] | None] = field(default_factory=dict)
    """With `endpoints_only`: EDS service name -> its new endpoints (None: removed)."""
    names: list[str] | None = None
    """The resources of its type the update adds, changes or removes (None: not known,
    any may have): what the commit's bookkeeping looks at."""


def decode(type_url: str, raw: bytes) -> Message:
    """A resource of `type_url` from its bytes (ValueError when it does not parse)."""
    msg = MESSAGES[type_url]()
    try:
        msg.ParseFromString(raw)
    except Exception as exc:  # DecodeError and friends
        raise ValueError(f"cannot decode {short_type(type_url)}: {exc}") from None
    return msg


def resource_name(type_url: str, msg: Message) -> str:
    """The xDS name of a resource (a ClusterLoadAssignment is named by `cluster_name`)."""
    if type_url == ASSIGNMENT:
        return str(getattr(msg, "cluster_name", ""))
    return str(getattr(msg, "name", ""))


class ResourceStore:
    """The accepted resources per type, the view that serves, and the checks between."""

    def __init__(
        self, static: MeshConfig, *, ads: bool, clock: Callable[[], float] = time.time
    ) -> None:
        self.static = static
        self.static_sds = _static_sds(static)
        self.ads = ads
        self.clock = clock
        self.accepted: dict[str, dict[str, Entry]] = {t: {} for t in TYPE_ORDER}
        self.view = View()
        self.ttl_seen = False
        """Some resource came with a TTL (the expiry timer has work)."""
        self._raw_names: dict[str, tuple[dict[str, Entry], dict[bytes, str]]] = {}
        self.applied: MeshConfig | None = None
        self._applied_listeners: dict[str, dict[str, Any]] = {}
        self._applied_clusters: dict[str, dict[str, Any]] = {}
        self._applied_endpoints: dict[str, list[Endpoint]] = {}
        self._view_current = False
        """`view` was built from the clusters, endpoints and secrets `accepted` holds (and
        is applied): a listener or route update may take its cluster side as it is."""
        self._cluster_refs: _RefCounts | None = None
        """The SDS secrets and EDS names of the accepted and serving clusters, for the
        accepted clusters and the view's clusters they were gathered from (by identity:
        both dicts are replaced, never changed in place, when clusters change)."""
        self._dropped = object()
        """Replaced when `drop` takes listeners or clusters out of `accepted` in place (see
        `refs_inputs`)."""
        self._static_of: tuple[MeshConfig, set[str], set[str]] | None = None
        """`static` with the names of its clusters and the clusters routes may not use
        (worked out once per bootstrap, not per update)."""

    def _static_clusters(self) -> tuple[set[str], set[str]]:
        """The static cluster names (`static_names`) and `unroutable` ones of `static`."""
        cached = self._static_of
        if cached is None or cached[0] is not self.static:
            cached = (self.static, static_names(self.static, "clusters"), unroutable(self.static))
            self._static_of = cached
        return cached[1], cached[2]

    # ---- staging -------------------------------------------------------------------------

    def stage(self, update: Update, now_trio: float | None = None) -> Staged:
        """Checks `update` against the accepted resources and plans it; Rejected when a
        resource is bad (nothing changes then)."""
        type_url = update.type_url
        old = self.accepted[type_url]
        problems = Problems()
        changes: dict[str, Entry] = {}  # new, changed and refreshed entries
        now = self.clock()
        seen: set[str] = set()
        # New or changed (in the order sent): checked against the others below.
        fresh: dict[str, None] = {}
        for incoming in update.resources:
            if incoming.name in seen:
                problems.add(resource_path(type_url, incoming.name), "sent twice in one response")
                continue
            seen.add(incoming.name)
            expires = None
            if incoming.ttl_s is not None and now_trio is not None:
                expires = now_trio + incoming.ttl_s
                self.ttl_seen = True
            previous = old.get(incoming.name)
            if incoming.heartbeat:  # refreshes the TTL of what we have
                if previous is not None:
                    changes[incoming.name] = Entry(
                        previous.name,
                        previous.version,
                        type_url,
                        previous.raw,
                        previous.checked,
                        previous.last_updated,
                        expires,
                    )
                continue
            message = incoming.message
            raw = incoming.raw or (message.SerializeToString() if message is not None else b"")
            if previous is not None and previous.raw == raw:
                checked = previous.checked
                last_updated = previous.last_updated
            else:
                if message is None:
                    message = decode(type_url, raw)
                path = resource_path(type_url, incoming.name)  # only here: 10,000 cost ~15 ms
                checked, found = self._check(type_url, message, path, previous)
                if found:
                    problems.extend(found)
                last_updated = now
                fresh[incoming.name] = None
            if checked is not None:
                changes[incoming.name] = Entry(
                    incoming.name,
                    incoming.version,
                    type_url,
                    raw,
                    checked,
                    last_updated,
                    expires,
                )
        if problems:
            raise Rejected(problems)
        if type_url == ASSIGNMENT and not update.complete:
            fast = self._endpoints_only(update, changes)
            if fast is not None:
                return fast
        accepted = {} if update.complete else dict(old)
        for name in update.removed:
            accepted.pop(name, None)
        accepted.update(changes)
        candidate = {**self.accepted, type_url: accepted}
        self._cross_check(type_url, candidate, fresh, problems)
        if problems:
            raise Rejected(problems)
        view = None
        if type_url in (LISTENER, ROUTE_CONFIG) and self._view_current:
            view = rebuild_listeners(
                candidate,
                self.view,
                self._static_clusters()[0],
                self.static.secrets,
                self.static_sds,
            )
        incremental = view is not None
        # What the update changes: new, changed and removed resources (a state-of-the-world
        # update lists all the others too, unchanged: their bytes matched).
        names = list(fresh)
        if update.removed or update.complete:
            names += [n for n in update.removed if n in old]
            if update.complete:
                names += old.keys() - accepted.keys()
            names = list(dict.fromkeys(names))
        by_clusters = type_url == CLUSTER and self._view_current and self.applied is not None
        if by_clusters:
            view = rebuild_clusters(
                candidate,
                self.view,
                names,
                self._static_clusters()[0],
                self.static.secrets,
                self.static_sds,
            )
        if view is None:
            view = build_view(
                candidate,
                self.view,
                self._static_clusters()[0],
                self.static.secrets,
                self.static_sds,
            )
        check_addresses(map(_SNAPSHOT, view.listeners.values()), self.static, problems)
        if problems:
            raise Rejected(problems)
        if by_clusters:
            plan = self._plan_clusters(view, dict.fromkeys([*names, *self.view.retained]))
        elif incremental:
            plan = self._plan_listeners(view)
        else:
            plan = self._plan(view)
        return Staged(update, accepted, view, plan, names=names)

    def _check(
        self, type_url: str, message: Message, path: str, previous: Entry | None
    ) -> tuple[Any, list[Problem]]:
        """One resource through the config layer's checks and translation, against
        `previous`, its last accepted version: a route config's unchanged virtual hosts and
        an assignment's unchanged endpoints are taken from it."""
        if type_url == LISTENER:
            assert isinstance(message, listener_pb2.Listener)
            return check_listener(message, path, bootstrap_tracing(self.static))
        if type_url == ROUTE_CONFIG and previous is not None:
            assert isinstance(message, route_pb2.RouteConfiguration)
            return check_route_config(message, path, previous.checked)
        if type_url == ASSIGNMENT and previous is not None:
            assert isinstance(message, endpoint_pb2.ClusterLoadAssignment)
            return check_assignment(message, path, previous.checked)
        return _CHECKS[type_url](message, path)

    def _endpoints_only(self, update: Update, changes: dict[str, Entry]) -> Staged | None:
        """An EDS update that only moves hosts of serving clusters (none warms with it): a
        plan of endpoint updates that neither rebuilds the view nor copies the accepted
        resources (`commit` changes them in place), so that one cluster's change costs the
        same with 10 clusters as with 10,000."""
        view = self.view
        if self.applied is None:
            return None
        changed = {r.name for r in update.resources if not r.heartbeat}
        changed |= set(update.removed)
        if any(name not in view.users for name in changed):
            return None  # a warming cluster may be waiting for it: the full rules apply
        endpoints: dict[str, list[Endpoint] | None] = {}
        updates: dict[str, list[Endpoint]] = {}
        for name in changed:
            entry = changes.get(name)  # None: removed (and not sent again)
            hosts = entry.checked.endpoints if entry is not None else []
            endpoints[name] = hosts if entry is not None else None
            for cluster in view.users[name]:
                if self._applied_endpoints.get(cluster) != hosts:
                    updates[cluster] = hosts
        return Staged(
            update,
            self.accepted[update.type_url],
            view,
            Plan(None, updates),
            endpoints_only=True,
            changes=changes,
            endpoint_changes=endpoints,
        )

    def _cross_check(
        self,
        type_url: str,
        candidate: Mapping[str, Mapping[str, Entry]],
        fresh: Collection[str],
        problems: Problems,
    ) -> None:
        """Checks the new and changed resources of the type just updated against the
        others (an unchanged route that still names a cluster CDS removed keeps serving:
        the cluster is kept for it, see `build_view`)."""
        of_type = candidate[type_url]
        if len(fresh) <= 1:  # one change (the usual delta push): no O(resources) scan
            entries = {n: of_type[n] for n in fresh if n in of_type}
        else:  # in the order of `candidate`, the order problems are reported in
            entries = {n: e for n, e in of_type.items() if n in fresh}
        if type_url == LISTENER:
            # Warming listeners too: a port conflict is the LDS update's fault.
            listeners = (e.checked.snapshot for e in candidate[LISTENER].values())
            check_addresses(listeners, self.static, problems)
            statics = static_names(self.static, "listeners")
            for name, entry in entries.items():
                listener: ListenerResource = entry.checked
                path = resource_path(LISTENER, name)
                if name in statics:
                    problems.add(f"{path}.name", "a static listener has this name")
                check_refs(listener.refs, None, problems, self._static_clusters()[1])
                if listener.rds is not None and not self.ads:
                    problems.add(
                        path, "rds needs dynamic_resources.ads_config (RDS comes over ADS)"
                    )
        elif type_url == ROUTE_CONFIG:
            refused = self._static_clusters()[1]
            for entry in entries.values():
                check_refs(entry.checked.refs, None, problems, refused)
        elif type_url == CLUSTER:
            statics = self._static_clusters()[0]
            for name, entry in entries.items():
                path = resource_path(CLUSTER, name)
                if name in statics:
                    problems.add(f"{path}.name", "a static cluster has this name")
                if entry.checked.eds is not None and not self.ads:
                    problems.add(
                        path, "EDS needs dynamic_resources.ads_config (EDS comes over ADS)"
                    )
        if type_url in (LISTENER, CLUSTER):
            for entry in entries.values():
                self._check_secret_refs(entry.checked.secrets, problems)

    def _check_secret_refs(self, secrets: Iterable[SecretRef], problems: Problems) -> None:
        """A name-only secret must be static; one over ADS needs the ADS stream."""
        for ref in secrets:
            if ref.source == "static" and ref.name not in self.static.secrets:
                problems.add(
                    f"{ref.path}.name", f"no secret {ref.name!r} in static_resources.secrets"
                )
            elif ref.source == "ads" and not self.ads:
                problems.add(f"{ref.path}.sds_config.ads", "needs dynamic_resources.ads_config")
            elif ref.source == "api" and sds_target(self.static, ref.cluster or "") is None:
                problems.add(
                    ref.cluster_path,
                    f"unknown cluster {ref.cluster!r} (the SDS cluster must be a static "
                    "cluster with an address)",
                )
            elif ref.source == "api":  # its TLS must suit grpcio (named at the cluster)
                clusters = self.static.snapshot.get("clusters", ())
                static_cluster_tls(clusters, ref.cluster or "", problems)

    def _plan(self, view: View) -> Plan:
        listeners = _snapshots(view.listeners)
        clusters = _snapshots(view.clusters)
        endpoints = {
            name: eps for name in view.clusters if (eps := view.cluster_endpoints(name)) is not None
        }
        if (
            self.applied is not None
            and listeners == self._applied_listeners
            and clusters == self._applied_clusters
        ):
            changed = {
                name: eps
                for name, eps in endpoints.items()
                if self._applied_endpoints.get(name) != eps
            }
            return Plan(None, changed)
        config = compose(
            self.static,
            list(listeners.values()),
            list(view.clusters.values()),
            view.endpoints,
        )
        unchanged = (
            self.applied is not None
            and clusters == self._applied_clusters
            and endpoints == self._applied_endpoints
        )
        return Plan(config, {}, clusters_changed=not unchanged, listeners=listeners)

    def _plan_listeners(self, view: View) -> Plan:
        """`_plan` for a view from `rebuild_listeners`: its clusters and endpoints are those
        applied, so only the listeners are compared, and a new config takes the applied
        one's clusters as they are (O(listeners), not O(clusters))."""
        assert self.applied is not None
        listeners = _snapshots(view.listeners)
        if listeners == self._applied_listeners:
            return Plan(None, {})
        config = compose_listeners(self.applied, self.static, list(listeners.values()))
        return Plan(config, {}, clusters_changed=False, listeners=listeners)

    def _plan_clusters(self, view: View, names: Iterable[str]) -> Plan:
        """`_plan` for a view from `rebuild_clusters`: only the clusters in `names` may
        differ from those applied; a new config takes the applied one's other clusters as
        they are and names the changed and removed ones (O(changed clusters + listeners),
        not O(clusters), save list copies)."""
        assert self.applied is not None
        changed: dict[str, ClusterResource] = {}
        removed: list[str] = []
        for name in names:
            cluster = view.clusters.get(name)
            if cluster is None:
                if name in self._applied_clusters:
                    removed.append(name)
            elif self._applied_clusters.get(name) != cluster.snapshot or (
                self._applied_endpoints.get(name) != view.cluster_endpoints(name)
            ):
                changed[name] = cluster
        if not changed and not removed:
            return self._plan_listeners(view)
        listeners = _snapshots(view.listeners)
        config, snapshots = compose_clusters(
            self.applied, self.static, list(listeners.values()), changed, removed, view.endpoints
        )
        delta = ClusterDelta(snapshots, tuple(sorted(removed)))
        return Plan(config, {}, clusters=delta, listeners=listeners)

    # ---- committing ----------------------------------------------------------------------

    def commit(self, staged: Staged) -> None:
        """`staged` is applied: it becomes the accepted state and the serving view."""
        if staged.endpoints_only:
            self._commit_endpoints(staged)
            return
        if staged.update is not None:
            if staged.plan.clusters is not None and staged.names is not None:
                self._update_cluster_refs(staged, [*staged.names, *self.view.retained])
            if self._raw_names:  # else nothing to carry (a delta stream keeps none)
                self._carry_raw_names(staged)
            self.accepted[staged.update.type_url] = staged.accepted
        view, plan = staged.view, staged.plan
        self.view = view
        if plan.config is not None:
            self.applied = plan.config
            assert plan.listeners is not None  # every plan with a config carries them
            self._applied_listeners = plan.listeners
            if plan.clusters is not None:  # the others equal the applied ones
                for name in plan.clusters.removed:
                    self._applied_clusters.pop(name, None)
                    self._applied_endpoints.pop(name, None)
                for name in plan.clusters.changed:
                    self._applied_clusters[name] = view.clusters[name].snapshot
                    eps = view.cluster_endpoints(name)
                    if eps is None:
                        self._applied_endpoints.pop(name, None)
                    else:
                        self._applied_endpoints[name] = eps
            elif plan.clusters_changed:  # else they equal the applied ones: no O(clusters)
                self._applied_clusters = _snapshots(view.clusters)
                self._applied_endpoints = {
                    n: eps for n in view.clusters if (eps := view.cluster_endpoints(n)) is not None
                }
        else:
            self._applied_endpoints.update(plan.endpoint_updates)
        self._view_current = self.applied is not None

    def _carry_raw_names(self, staged: Staged) -> None:
        """`names_by_raw`'s index of the accepted resources before `staged`, made that of
        those after it by its `names` only (a state-of-the-world update of one cluster among
        10,000 does not index them all again)."""
        assert staged.update is not None
        type_url = staged.update.type_url
        before, after = self.accepted[type_url], staged.accepted
        cached = self._raw_names.get(type_url)
        if cached is None or cached[0] is not before or staged.names is None:
            self._raw_names.pop(type_url, None)
            return
        index = cached[1]
        for name in staged.names:
            old, new = before.get(name), after.get(name)
            if old is not None and index.get(old.raw) == name:
                del index[old.raw]
            if new is not None:
                index[new.raw] = name
        self._raw_names[type_url] = (after, index)

    def _commit_endpoints(self, staged: Staged) -> None:
        """An `endpoints_only` update, applied in place: O(what it changes)."""
        assert staged.update is not None
        type_url = staged.update.type_url
        entries = self.accepted[type_url]
        for name in staged.update.removed:
            entries.pop(name, None)
        entries.update(staged.changes)
        self._raw_names.pop(type_url, None)  # changed in place: its identity says nothing
        endpoints = self.view.endpoints
        for name, hosts in staged.endpoint_changes.items():
            if hosts is None:
                endpoints.pop(name, None)
                # build_view would have its clusters warm (serving their previous version)
                self._view_current = False
            else:
                endpoints[name] = hosts
        self._applied_endpoints.update(staged.plan.endpoint_updates)

    def restage(self) -> Staged:
        """The plan for the accepted resources as they are (after `set_static`, `drop` or
        an expiry); Rejected if they no longer fit together."""
        problems = Problems()
        view = build_view(
            self.accepted,
            self.view,
            self._static_clusters()[0],
            self.static.secrets,
            self.static_sds,
        )
        check_addresses(map(_SNAPSHOT, view.listeners.values()), self.static, problems)
        if problems:
            raise Rejected(problems)
        return Staged(None, {}, view, self._plan(view))

    def set_static(self, static: MeshConfig) -> None:
        """A reloaded bootstrap: the next plan is a whole config."""
        self.static = static
        self.static_sds = _static_sds(static)
        self.applied = None
        self._view_current = False

    def drop(self, type_url: str, names: Iterable[str]) -> None:
        """Forgets resources no longer subscribed to (their dependents keep their last
        serving version until a restage)."""
        entries = self.accepted[type_url]
        for name in names:
            if entries.pop(name, None) is None:
                continue
            if type_url in (LISTENER, CLUSTER):
                self._dropped = object()  # what `refs_inputs` names changed in place
            if type_url in (LISTENER, ROUTE_CONFIG):
                continue
            if type_url == ASSIGNMENT:
                # No accepted or serving cluster names it (`wanted`): the view without it
                # is the one `build_view` would make, so later updates stay incremental
                # (a CDS update that removes an EDS cluster drops its assignment).
                self.view.endpoints.pop(name, None)
            else:
                self._view_current = False  # the view's cluster side no longer matches
        self._raw_names.pop(type_url, None)
        if type_url == CLUSTER:
            self._cluster_refs = None

    # ---- what the client reads -----------------------------------------------------------

    def names_by_raw(self, type_url: str) -> dict[bytes, str]:
        """The accepted resources of `type_url` by their bytes: a state-of-the-world
        response that repeats 10,000 unchanged resources is matched without decoding."""
        cached = self._raw_names.get(type_url)
        if cached is None or cached[0] is not self.accepted[type_url]:
            cached = (
                self.accepted[type_url],
                {e.raw: n for n, e in self.accepted[type_url].items()},
            )
            self._raw_names[type_url] = cached
        return cached[1]

    def _of_clusters(self) -> tuple[frozenset[SecretRef], frozenset[str]]:
        """The SDS secrets and EDS names the accepted and serving clusters name (gathered
        once per change of clusters: a listener or route update does not scan them, a
        cluster-only update counts only its clusters, see `_update_cluster_refs`)."""
        accepted, serving = self.accepted[CLUSTER], self.view.clusters
        cached = self._cluster_refs
        if cached is None or cached.accepted is not accepted or cached.serving is not serving:
            counts = _RefCounts(accepted, serving, Counter(), Counter())
            for cluster in (*(e.checked for e in accepted.values()), *serving.values()):
                counts.add(cluster, 1)
            cached = counts.frozen(None)
            self._cluster_refs = cached
        return cached.secret_set, cached.eds_set

    def _update_cluster_refs(self, staged: Staged, names: Iterable[str]) -> None:
        """`_of_clusters`' counts, from those of the accepted and serving clusters before
        `staged` (a cluster-only update), taking out and putting in only `names`'
        contributions. The EDS names stay the same object when they do not change."""
        cached = self._cluster_refs
        accepted, serving = self.accepted[CLUSTER], self.view.clusters
        if cached is None or cached.accepted is not accepted or cached.serving is not serving:
            return  # no counts to start from: the next `_of_clusters` gathers them
        counts = _RefCounts(staged.accepted, staged.view.clusters, cached.secrets, cached.eds)
        for name in dict.fromkeys(names):
            for before in (accepted.get(name), serving.get(name)):
                if before is not None:
                    counts.add(before.checked if isinstance(before, Entry) else before, -1)
            for after in (staged.accepted.get(name), staged.view.clusters.get(name)):
                if after is not None:
                    counts.add(after.checked if isinstance(after, Entry) else after, 1)
        self._cluster_refs = counts.frozen(cached)

    def refs_inputs(self) -> tuple[object, ...]:
        """What `secret_refs` and `wanted` read: the same objects (identity) give the same
        answers (these dicts are replaced, not changed, by a commit, and `drop` notes when
        it changes the listeners or clusters in place; the serving listeners' sources are
        the checked listeners)."""
        return (
            self._dropped,
            self.static,
            self.accepted[LISTENER],
            self.accepted[CLUSTER],
            self.accepted[SECRET],
            self.view.clusters,
            *map(_SOURCE, self.view.listeners.values()),
        )

    def secret_refs(self) -> set[SecretRef]:
        """The SDS secrets the accepted and serving listeners and clusters name."""
        out: set[SecretRef] = set(self._of_clusters()[0])
        for entry in self.accepted[LISTENER].values():
            out.update(entry.checked.secrets)
        for active in self.view.listeners.values():
            out.update(active.source.secrets)
        for listener in self.static_sds:
            out.update(listener.secrets)
        return out

    def wanted(self, type_url: str, refs: set[SecretRef] | None = None) -> AbstractSet[str]:
        """The RDS, EDS or SDS (over ADS) names the accepted and serving listeners and
        clusters need (EDS: the same object while the clusters do not change; SDS: from
        `refs`, `secret_refs()` when not given)."""
        if type_url == SECRET:
            refs = self.secret_refs() if refs is None else refs
            return {ref.name for ref in refs if ref.source == "ads"}
        if type_url == ROUTE_CONFIG:
            names = {e.checked.rds for e in self.accepted[LISTENER].values()}
            names |= {a.rds for a in self.view.listeners.values()}
            return {n for n in names if n is not None}
        return self._of_clusters()[1]

    def secret_value(self, ref: SecretRef | Mapping[str, Any]) -> SecretValue | None:
        return secret_lookup(self.accepted, self.static.secrets)(
            ref if isinstance(ref, Mapping) else {"name": ref.name, "source": ref.source}
        )

    def warming(self) -> bool:
        return bool(
            self.view.warming_clusters
            or self.view.warming_listeners
            or any(lst.name not in self.view.listeners for lst in self.static_sds)
        )

    def next_expiry(self) -> float | None:
        times = [
            e.expires for entries in self.accepted.values() for e in entries.values() if e.expires
        ]
        return min(times) if times else None

    def expired(self, now_trio: float) -> dict[str, list[str]]:
        """Per type, the resources whose TTL ran out."""
        out: dict[str, list[str]] = {}
        for type_url, entries in self.accepted.items():
            names = [
                n for n, e in entries.items() if e.expires is not None and e.expires <= now_trio
            ]
            if names:
                out[type_url] = names
        return out


_SOURCE = attrgetter("source")
_SNAPSHOT = attrgetter("snapshot")


def _snapshots(serving: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The snapshots of a view's listeners or clusters, by name."""
    return dict(zip(serving, map(_SNAPSHOT, serving.values()), strict=True))


def _static_sds(static: MeshConfig) -> tuple[ListenerResource, ...]:
    """The static listeners that wait for SDS secrets, as listener resources."""
    return tuple(
        ListenerResource(str(lst["name"]), lst, None, "", (), secret_refs(lst))
        for lst in static.sds_listeners
    )


@dataclass
class _RefCounts:
    """How many of the accepted and serving clusters (`accepted`, `serving`: the dicts they
    were counted from, by identity) name each SDS secret and EDS service name."""

    accepted: object
    serving: object
    secrets: Counter[SecretRef]
    eds: Counter[str]
    secret_set: frozenset[SecretRef] = frozenset()
    eds_set: frozenset[str] = frozenset()
    touched: set[str] = field(default_factory=set)
    """EDS names whose count changed since `frozen`."""

    def add(self, cluster: ClusterResource, n: int) -> None:
        for ref in cluster.secrets:
            self.secrets[ref] += n
            if self.secrets[ref] <= 0:
                del self.secrets[ref]
        if cluster.eds is not None:
            self.eds[cluster.eds] += n
            self.touched.add(cluster.eds)

    def frozen(self, before: _RefCounts | None) -> _RefCounts:
        """These counts with their sets (the EDS names those of `before`, the same object,
        when they are the same names)."""
        gone = [name for name in self.touched if self.eds[name] <= 0]
        for name in gone:
            del self.eds[name]
        same = (
            before is not None and not gone and all(name in before.eds_set for name in self.touched)
        )
        self.eds_set = before.eds_set if same and before is not None else frozenset(self.eds)
        self.secret_set = frozenset(self.secrets)
        self.touched = set()
        return self

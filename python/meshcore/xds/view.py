"""What serves, given the accepted xDS resources and what served before (the warming and
make-before-break rules of `resources`): `build_view` from everything,
`rebuild_listeners` for an update of listeners or route configs only, which takes the
cluster side of the previous view as it is, so that a route change costs the same with 10
clusters as with 10,000, and `rebuild_clusters` for an update of clusters only, which
redoes only the clusters it names."""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from meshcore.config.secrets import SecretRef, SecretValue, resolve
from meshcore.config.xds_resources import (
    ASSIGNMENT,
    CLUSTER,
    LISTENER,
    ROUTE_CONFIG,
    SECRET,
    ClusterResource,
    ListenerResource,
    RouteResource,
    resource_path,
)

if TYPE_CHECKING:
    from .resources import Entry

Endpoint = dict[str, Any]
Accepted = Mapping[str, Mapping[str, "Entry"]]
SecretLookup = Callable[[Mapping[str, Any]], SecretValue | None]
_CLUSTER_PATH = resource_path(CLUSTER, "").removesuffix("]")  # `clusters[`
_REF = itemgetter(1)  # the cluster of a (path, cluster) reference


@dataclass(frozen=True)
class ActiveListener:
    snapshot: dict[str, Any]
    refs: frozenset[str]
    rds: str | None
    source: ListenerResource
    routes: RouteResource | None = field(default=None, compare=False)
    """The route config inlined in `snapshot` (RDS)."""


@dataclass
class View:
    """What serves: composed listeners (routes inlined), clusters and endpoints."""

    listeners: dict[str, ActiveListener] = field(default_factory=dict)
    clusters: dict[str, ClusterResource] = field(default_factory=dict)
    routes: dict[str, RouteResource] = field(default_factory=dict)
    warming_listeners: set[str] = field(default_factory=set)
    warming_clusters: set[str] = field(default_factory=set)
    endpoints: dict[str, list[Endpoint]] = field(default_factory=dict)
    """EDS service name -> endpoints."""
    users: dict[str, list[str]] = field(default_factory=dict)
    """EDS service name -> the serving clusters that take their endpoints from it."""
    waiting: dict[str, frozenset[str]] = field(default_factory=dict)
    """`route_configs[r]` / `listeners[l]` -> clusters it names that do not serve yet."""
    waiting_secrets: dict[str, frozenset[str]] = field(default_factory=dict)
    """`listeners[l]` / `clusters[c]` -> SDS secrets it names that have not arrived."""
    retained: frozenset[str] = frozenset()
    """Clusters CDS removed that serve on (in `clusters`) because serving listeners name
    them."""

    def cluster_endpoints(self, name: str) -> list[Endpoint] | None:
        cluster = self.clusters[name]
        return None if cluster.eds is None else self.endpoints.get(cluster.eds, [])


@dataclass(frozen=True)
class _Serving:
    """The cluster names new routes may use: static ones, and dynamic ones that serve but
    not only for the routes that named them before CDS removed them (a membership test
    that does not build a set of 10,000 names)."""

    static: Container[str]
    dynamic: Container[str]
    retained: Container[str]

    def __contains__(self, name: object) -> bool:
        return name in self.static or (name in self.dynamic and name not in self.retained)

    def missing(self, refs: Iterable[tuple[str, str]], kept: Container[str]) -> frozenset[str]:
        """The clusters `refs` name that do not serve, but for those in `kept` (one loop,
        not a call per name)."""
        static, dynamic, retained = self.static, self.dynamic, self.retained
        return frozenset(
            [
                ref
                for _, ref in refs
                if ref not in static and (ref not in dynamic or ref in retained) and ref not in kept
            ]
        )


def secret_lookup(accepted: Accepted, static_secrets: Mapping[str, SecretValue]) -> SecretLookup:
    """Finds a placeholder's secret: static by name, else the SDS secret accepted (one
    namespace for ADS and files, as the names Envoy's secret manager keeps)."""
    dynamic = accepted.get(SECRET, {})

    def lookup(ref: Mapping[str, Any]) -> SecretValue | None:
        if ref["source"] == "static":
            return static_secrets.get(ref["name"])
        entry = dynamic.get(ref["name"])
        return entry.checked.value if entry is not None else None

    return lookup


def _with_secrets(
    snapshot: dict[str, Any],
    secrets: tuple[SecretRef, ...],
    lookup: SecretLookup,
    path: str,
    view: View,
) -> dict[str, Any] | None:
    """`snapshot` with its SDS placeholders resolved; None (and `view.waiting_secrets`
    noted) while a secret is missing."""
    if not secrets:
        return snapshot
    missing: list[dict[str, Any]] = []
    resolved = resolve(snapshot, lookup, missing)
    if missing:
        view.waiting_secrets[path] = frozenset(ref["name"] for ref in missing)
        return None
    out: dict[str, Any] = resolved
    return out


def _serve_cluster(
    view: View, name: str, cluster: ClusterResource, previous: View, lookup: SecretLookup
) -> None:
    """`cluster` serves in `view` once its SDS secrets and EDS endpoints are there; until
    then it warms, and its previous version, if any, serves."""
    snapshot = _with_secrets(
        cluster.snapshot, cluster.secrets, lookup, resource_path(CLUSTER, name), view
    )
    if snapshot is not None and (cluster.eds is None or cluster.eds in view.endpoints):
        view.clusters[name] = (
            cluster if snapshot is cluster.snapshot else replace(cluster, snapshot=snapshot)
        )
    else:
        view.warming_clusters.add(name)
        if name in previous.clusters:
            view.clusters[name] = previous.clusters[name]
        else:
            view.clusters.pop(name, None)


def build_view(
    accepted: Accepted,
    previous: View,
    static_clusters: set[str],
    static_secrets: Mapping[str, SecretValue] | None = None,
    static_sds: Iterable[ListenerResource] = (),
) -> View:
    """What serves given the accepted resources and what served before (see the module
    docstring of `resources` for the rules)."""
    view = View()
    lookup = secret_lookup(accepted, static_secrets or {})
    view.endpoints = {name: entry.checked.endpoints for name, entry in accepted[ASSIGNMENT].items()}
    for name, entry in accepted[CLUSTER].items():
        _serve_cluster(view, name, entry.checked, previous, lookup)
    removed = {n: c for n, c in previous.clusters.items() if n not in accepted[CLUSTER]}
    _serve_routes(view, accepted, previous, static_clusters, removed, lookup, static_sds)
    for name, cluster in view.clusters.items():
        if cluster.eds is not None:
            view.users.setdefault(cluster.eds, []).append(name)
    return view


def rebuild_listeners(
    accepted: Accepted,
    previous: View,
    static_clusters: set[str],
    static_secrets: Mapping[str, SecretValue] | None = None,
    static_sds: Iterable[ListenerResource] = (),
) -> View | None:
    """`build_view` after an update of listeners or route configs only, when `previous`
    was built from the clusters, endpoints and secrets `accepted` holds: the same clusters,
    endpoints and users (shared, not copied: O(listeners and route configs)). None when
    the update changes which removed clusters are kept for routes (build_view then)."""
    view = View(
        clusters=previous.clusters,
        warming_clusters=previous.warming_clusters,
        endpoints=previous.endpoints,
        users=previous.users,
        waiting_secrets=_clusters_waiting(previous) if previous.waiting_secrets else {},
        retained=previous.retained,
    )
    lookup = secret_lookup(accepted, static_secrets or {})
    removed = {n: previous.clusters[n] for n in previous.retained} if previous.retained else {}
    serving = _Serving(static_clusters, previous.clusters, previous.retained)
    retained = _serve_listeners(view, accepted, previous, serving, removed, lookup, static_sds)
    return view if retained == previous.retained else None


def rebuild_clusters(
    accepted: Accepted,
    previous: View,
    names: Iterable[str],
    static_clusters: set[str],
    static_secrets: Mapping[str, SecretValue] | None = None,
    static_sds: Iterable[ListenerResource] = (),
) -> View:
    """`build_view` after an update of clusters only (`names`: the clusters it sent or
    removed, in the order it sent them), when `previous` was built from the endpoints and
    secrets `accepted` holds: only those clusters (and the removed ones kept for routes)
    are redone, the others' entries are taken as they are (copies of the view's dicts, not
    O(clusters) of work),
    and the listeners and route configs are served anew."""
    redone = dict.fromkeys([*names, *previous.retained])
    view = View(
        clusters=dict(previous.clusters),
        warming_clusters=previous.warming_clusters - redone.keys(),
        endpoints=previous.endpoints,
        users=dict(previous.users),
        waiting_secrets=_clusters_waiting(previous),
    )
    lookup = secret_lookup(accepted, static_secrets or {})
    dynamic = accepted[CLUSTER]
    for name in redone:  # out of `users` (put back below for those that still serve)
        before = previous.clusters.get(name)
        if before is not None and before.eds is not None:
            users = [n for n in view.users.get(before.eds, ()) if n != name]
            if users:
                view.users[before.eds] = users
            else:
                view.users.pop(before.eds, None)
        view.waiting_secrets.pop(resource_path(CLUSTER, name), None)
    removed: dict[str, ClusterResource] = {}
    for name in redone:
        entry = dynamic.get(name)
        if entry is None:
            if name in previous.clusters:
                removed[name] = view.clusters.pop(name)
            continue
        _serve_cluster(view, name, entry.checked, previous, lookup)
    if len(removed) > 1:  # kept ones go back in the order they served (as `build_view`)
        order = {name: i for i, name in enumerate(previous.clusters)}
        removed = dict(sorted(removed.items(), key=lambda item: order[item[0]]))
    _serve_routes(view, accepted, previous, static_clusters, removed, lookup, static_sds)
    for name in redone:
        serves = view.clusters.get(name)
        if serves is not None and serves.eds is not None:  # a new list: `previous` keeps its
            view.users[serves.eds] = [*view.users.get(serves.eds, ()), name]
    return view


def _clusters_waiting(previous: View) -> dict[str, frozenset[str]]:
    """The clusters' entries of `previous.waiting_secrets` (the listeners' are redone)."""
    return {
        path: missing
        for path, missing in previous.waiting_secrets.items()
        if path.startswith(_CLUSTER_PATH)
    }


def _serve_routes(
    view: View,
    accepted: Accepted,
    previous: View,
    static_clusters: set[str],
    removed: dict[str, ClusterResource],
    lookup: SecretLookup,
    static_sds: Iterable[ListenerResource],
) -> None:
    """Serves the listeners and route configs over `view`'s clusters; a `removed` cluster a
    serving route still names is kept (make before break), in `removed`'s order."""
    serving = _Serving(static_clusters, view.clusters, ())
    view.retained = _serve_listeners(view, accepted, previous, serving, removed, lookup, static_sds)
    for name, cluster in removed.items():
        if name in view.retained:
            view.clusters[name] = cluster


def _activate(
    name: str,
    listener: ListenerResource,
    routes: RouteResource | None,
    lookup: SecretLookup,
    view: View,
) -> ActiveListener | None:
    """Listener `name` as it serves with `routes` (RDS) and its secrets; None while a secret
    it names is missing (`_with_secrets` notes it in `view`)."""
    snapshot: dict[str, Any] | None = listener.with_routes(routes)
    if listener.secrets and snapshot is not None:  # without secrets: no path to build
        path = resource_path(LISTENER, name)
        snapshot = _with_secrets(snapshot, listener.secrets, lookup, path, view)
    if snapshot is None:
        return None
    refs = frozenset(map(_REF, listener.refs))
    if routes is not None:
        refs = refs.union(map(_REF, routes.refs))
    return ActiveListener(snapshot, refs, listener.rds, listener, routes)


def _serve_listeners(
    view: View,
    accepted: Accepted,
    previous: View,
    serving: _Serving,
    removed: Mapping[str, ClusterResource],
    lookup: SecretLookup,
    static_sds: Iterable[ListenerResource],
) -> frozenset[str]:
    """Fills in the route configs and listeners of `view` whose clusters serve (`serving`;
    an unchanged route config or listener may also keep the `removed` clusters it used);
    returns the removed clusters that serving listeners still name."""
    for name, entry in accepted[ROUTE_CONFIG].items():
        route: RouteResource = entry.checked
        same = previous.routes.get(name) is route
        missing = serving.missing(route.refs, removed if same else ())
        if not missing:
            view.routes[name] = route
        else:
            view.waiting[resource_path(ROUTE_CONFIG, name)] = missing
            if name in previous.routes:
                view.routes[name] = previous.routes[name]
    for name, entry in accepted[LISTENER].items():
        listener: ListenerResource = entry.checked
        routes = None
        before = previous.listeners.get(name)
        same = before is not None and before.source is listener
        missing = serving.missing(listener.refs, removed if same else ())
        if missing:
            view.waiting[resource_path(LISTENER, name)] = missing
        ready = not missing
        if listener.rds is not None:
            routes = view.routes.get(listener.rds) or previous.routes.get(listener.rds)
            ready = ready and routes is not None
        if not ready:
            active = None
        elif same and before is not None and before.routes is routes and not listener.secrets:
            active = before  # built from what it would be built from now: it serves as it is
        else:
            active = _activate(name, listener, routes, lookup, view)
        if active is not None:
            if routes is not None:
                view.routes.setdefault(routes.name, routes)
            view.listeners[name] = active
        else:
            view.warming_listeners.add(name)
            if name in previous.listeners:
                view.listeners[name] = previous.listeners[name]
    for listener in static_sds:  # static listeners waiting for SDS secrets
        path = resource_path(LISTENER, listener.name)
        snapshot = _with_secrets(listener.snapshot, listener.secrets, lookup, path, view)
        if snapshot is not None:
            view.listeners[listener.name] = ActiveListener(snapshot, frozenset(), None, listener)
        else:
            view.warming_listeners.add(listener.name)
            if listener.name in previous.listeners:
                view.listeners[listener.name] = previous.listeners[listener.name]
    if not removed:  # none to keep (the usual case): no set of every listener's refs
        return frozenset()
    referenced = {ref for a in view.listeners.values() for ref in a.refs}
    return frozenset(name for name in referenced if name in removed)

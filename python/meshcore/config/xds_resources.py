"""xDS resources (Listener, RouteConfiguration, Cluster, ClusterLoadAssignment) checked and
translated by the static bootstrap's own code: PGV rules, the supported-field table and the
`translate_*` functions, with every problem's path naming the resource
(`clusters[backend].lb_policy: MAGLEV is not supported`). `translate_resources` turns a set
of them plus the static config into one `MeshConfig`; the xDS client (meshcore/xds) uses the
per-resource checks and `compose` to warm resources one by one."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.config.trace.v3 import http_tracer_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from . import eds_reuse, gc_pause, paths, rds_reuse, rules
from .errors import ConfigError, Problem, Problems
from .model import ClusterHealthCheck, DnsCluster, MeshConfig
from .rds_reuse import RouteMemo
from .secrets import SecretRef, SecretValue, check_secret, secret_refs
from .translate_clusters import assignment_hosts, one_cluster
from .translate_listeners import connection_manager_of, one_listener
from .translate_routes import ClusterRefs, route_config
from .translate_tracing import inherit_provider, relink_tracers

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE_CONFIG = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ASSIGNMENT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

# How problems name a resource of each type: `listeners[ingress].address...`.
KINDS: dict[str, str] = {
    LISTENER: "listeners",
    ROUTE_CONFIG: "route_configs",
    CLUSTER: "clusters",
    ASSIGNMENT: "endpoints",
    SECRET: "secrets",
}

Endpoint = dict[str, Any]
Refs = tuple[tuple[str, str], ...]


def resource_path(type_url: str, name: str) -> str:
    """`clusters[backend]`: the path of resource `name` of `type_url` in problems."""
    return paths.item(KINDS[type_url], name)


@dataclass(frozen=True)
class ListenerResource:
    """A checked LDS Listener: its snapshot listener (with an empty route config when the
    routes come from RDS)."""

    name: str
    snapshot: dict[str, Any]
    rds: str | None
    """The RouteConfiguration it waits for (HCM `rds.route_config_name`)."""
    stat_prefix: str
    refs: Refs
    """Clusters its inline route config names: (path, cluster)."""
    secrets: tuple[SecretRef, ...] = ()
    """The SDS secrets its TLS contexts name (placeholders in `snapshot` until resolved)."""

    def with_routes(self, routes: RouteResource | None) -> dict[str, Any]:
        """The snapshot listener with `routes` inlined (Envoy's RDS; the engine only has
        inline route configs)."""
        if routes is None:
            return self.snapshot
        # An RDS listener has one filter chain (translation rejects RDS on several).
        chain = self.snapshot["filter_chains"][0]
        manager = chain["filter"]["http_connection_manager"]
        routed = {"http_connection_manager": {**manager, "route_config": routes.snapshot}}
        return {**self.snapshot, "filter_chains": [{**chain, "filter": routed}]}


@dataclass(frozen=True)
class RouteResource:
    """A checked RDS RouteConfiguration."""

    name: str
    snapshot: dict[str, Any]
    refs: Refs
    memo: RouteMemo | None = dataclasses.field(default=None, compare=False, repr=False)
    """What its next version may reuse (`rds_reuse`)."""


@dataclass(frozen=True)
class ClusterResource:
    """A checked CDS Cluster; an EDS cluster's snapshot endpoints are filled from its
    ClusterLoadAssignment `eds`."""

    name: str
    snapshot: dict[str, Any]
    eds: str | None
    dns: DnsCluster | None
    health: ClusterHealthCheck | None
    secrets: tuple[SecretRef, ...] = ()
    """The SDS secrets its TLS context names (placeholders in `snapshot` until resolved)."""


@dataclass(frozen=True)
class SecretResource:
    """A checked SDS Secret as its snapshot TLS value."""

    name: str
    value: SecretValue


@dataclass(frozen=True)
class EndpointsResource:
    """A checked EDS ClusterLoadAssignment as snapshot endpoints."""

    name: str
    endpoints: list[Endpoint]
    keys: tuple[bytes, ...] = ()
    """Each endpoint's LbEndpoint as `eds_reuse.endpoint_key` (empty: none to reuse)."""


def _named_rules(
    msg: listener_pb2.Listener | route_pb2.RouteConfiguration, path: str, kind: str
) -> Problems:
    """`rules.check` (what the bootstrap loader checks: PGV rules and the table), after
    checking the `name` that names the `kind` (LDS, RDS) resource."""
    problems = Problems()
    if not msg.name:
        problems.add(paths.field(path, "name"), f"is required (it names the {kind} resource)")
    rules.check(msg, path, problems)
    return problems


def bootstrap_tracing(static: MeshConfig) -> http_tracer_pb2.Tracing | None:
    """The bootstrap's `tracing` (None: it has none), for `check_listener`."""
    return http_tracer_pb2.Tracing.FromString(static.tracing) if static.tracing else None


def check_listener(
    msg: listener_pb2.Listener, path: str, bootstrap_tracing: http_tracer_pb2.Tracing | None
) -> tuple[ListenerResource | None, list[Problem]]:
    """An LDS listener; a connection manager `tracing` without `provider` gets the
    bootstrap's `tracing.http` (`MeshConfig.tracing`), as a static listener's does."""
    problems = _named_rules(msg, path, "LDS")
    refs = ClusterRefs()
    snapshot = one_listener(msg, path, problems, refs)
    if snapshot is not None:
        inherit_provider([snapshot], bootstrap_tracing, problems)
    if problems or snapshot is None:
        return None, problems.as_list() or [Problem(path, "not an HTTP listener")]
    manager = connection_manager_of(msg)
    rds = manager.rds.route_config_name if manager and manager.HasField("rds") else None
    stat_prefix = manager.stat_prefix if manager else ""
    return (
        ListenerResource(
            msg.name, snapshot, rds, stat_prefix, tuple(refs.refs), secret_refs(snapshot)
        ),
        [],
    )


def check_route_config(
    msg: route_pb2.RouteConfiguration, path: str, previous: RouteResource | None = None
) -> tuple[RouteResource | None, list[Problem]]:
    """An RDS route config; the virtual hosts it shares with `previous` (the last accepted
    version of the same resource) are taken from it, unchecked and untranslated."""
    reused = rds_reuse.translate(msg, path, previous.memo if previous is not None else None)
    if reused is not None:
        return RouteResource(msg.name, reused.snapshot, reused.refs, reused.memo), []
    # A first or root-changed version, or a bad one: the whole check, as for a static one.
    with gc_pause.paused():
        problems = _named_rules(msg, path, "RDS")
        refs = ClusterRefs()
        snapshot = route_config(msg, path, problems, refs)
        if problems:
            return None, problems.as_list()
        memo = rds_reuse.remember(msg, path, snapshot, tuple(refs.refs))
    return RouteResource(msg.name, snapshot, tuple(refs.refs), memo), []


def check_cluster(
    msg: cluster_pb2.Cluster, path: str
) -> tuple[ClusterResource | None, list[Problem]]:
    problems = Problems()
    rules.check(msg, path, problems)
    out = one_cluster(msg, path, problems)
    if problems or not out.snapshot:
        return None, problems.as_list()
    return (
        ClusterResource(
            name=msg.name,
            snapshot=out.snapshot[0],
            eds=out.eds.get(msg.name),
            dns=out.dns[0] if out.dns else None,
            health=out.health[0] if out.health else None,
            secrets=secret_refs(out.snapshot[0].get("transport_socket")),
        ),
        [],
    )


def check_sds_secret(
    msg: secret_pb2.Secret, path: str
) -> tuple[SecretResource | None, list[Problem]]:
    value, problems = check_secret(msg, path)
    if value is None:
        return None, problems
    return SecretResource(msg.name, value), []


def check_assignment(
    msg: endpoint_pb2.ClusterLoadAssignment,
    path: str,
    previous: EndpointsResource | None = None,
) -> tuple[EndpointsResource | None, list[Problem]]:
    """With `previous` (the last accepted version of this resource), its unchanged
    endpoints are not checked again (`eds_reuse`)."""
    if previous is not None and previous.keys:
        reused = eds_reuse.reuse_hosts(msg, path, previous.endpoints, previous.keys)
        if reused is not None:
            return EndpointsResource(msg.cluster_name, *reused), []
    problems = Problems()
    rules.check(msg, path, problems)
    hosts = assignment_hosts(msg, "EDS", path, problems)
    if problems:
        return None, problems.as_list()
    return EndpointsResource(msg.cluster_name, hosts, eds_reuse.endpoint_keys(msg, hosts)), []


def static_names(static: MeshConfig, kind: str) -> set[str]:
    """The names of the static `listeners` or `clusters` (xDS may not replace them)."""
    names = {str(item["name"]) for item in static.snapshot.get(kind, ())}
    if kind == "listeners":  # those waiting for SDS secrets too
        names.update(str(item["name"]) for item in static.sds_listeners)
    return names


def unroutable(static: MeshConfig) -> set[str]:
    """Static clusters routes may not use: the xDS cluster when it is HTTP/2 (gRPC)."""
    ads = static.dynamic.ads if static.dynamic is not None else None
    return {ads.cluster} if ads is not None and ads.http2 else set()


def check_refs(
    refs: Iterable[tuple[str, str]],
    known: Iterable[str] | None,
    problems: Problems,
    refused: Iterable[str] = (),
) -> None:
    """A route to the HTTP/2 xDS cluster (`refused`) is rejected, and with `known` (a
    complete set of resources) so is one to a cluster that does not exist."""
    names = set(known) if known is not None else None
    denied = set(refused)
    for path, name in refs:
        if name in denied:
            problems.add(path, f"cluster {name!r} has HTTP/2 options; routes cannot use it yet")
        elif name and names is not None and name not in names:
            problems.add(path, f"unknown cluster {name!r} (not a static cluster, not from CDS)")


def check_addresses(
    listeners: Iterable[dict[str, Any]], static: MeshConfig, problems: Problems
) -> None:
    """Two listeners may not share an address and port (SO_REUSEPORT would split traffic
    between them silently)."""
    seen: dict[tuple[str, int], str] = {
        (str(lst["address"]), int(lst["port"])): str(lst["name"])
        for lst in static.snapshot.get("listeners", ())
        if lst["port"]
    }
    for lst in listeners:
        key = (str(lst["address"]), int(lst["port"]))
        if not key[1]:
            continue
        other = seen.setdefault(key, str(lst["name"]))
        if other != lst["name"]:
            problems.add(
                paths.field(resource_path(LISTENER, str(lst["name"])), "address"),
                f"{key[0]}:{key[1]} is already the address of listener {other!r}",
            )


def compose(
    static: MeshConfig,
    listeners: Sequence[dict[str, Any]],
    clusters: Sequence[ClusterResource],
    endpoints: Mapping[str, list[Endpoint]],
) -> MeshConfig:
    """The static config plus dynamic listeners (routes inlined) and clusters (an EDS
    cluster gets `endpoints[its service name]`, else none) as one `MeshConfig`."""
    dynamic_clusters = [
        {**c.snapshot, "endpoints": endpoints.get(c.eds, [])} if c.eds is not None else c.snapshot
        for c in clusters
    ]
    snapshot = {
        **static.snapshot,
        "listeners": _all_listeners(static, listeners),
        "clusters": [*static.snapshot.get("clusters", ()), *dynamic_clusters],
    }
    return dataclasses.replace(
        static,
        snapshot=snapshot,
        dns_clusters=(*static.dns_clusters, *(c.dns for c in clusters if c.dns is not None)),
        health_checks=(
            *static.health_checks,
            *(c.health for c in clusters if c.health is not None),
        ),
    )


def compose_listeners(
    applied: MeshConfig, static: MeshConfig, listeners: Sequence[dict[str, Any]]
) -> MeshConfig:
    """`compose` with new dynamic listeners and the clusters of `applied` (a config
    `compose` made from `static`) as they are: O(listeners), for a listener or route
    change."""
    snapshot = {**applied.snapshot, "listeners": _all_listeners(static, listeners)}
    return dataclasses.replace(applied, snapshot=snapshot)


def compose_clusters(
    applied: MeshConfig,
    static: MeshConfig,
    listeners: Sequence[dict[str, Any]],
    changed: Mapping[str, ClusterResource],
    removed: Iterable[str],
    endpoints: Mapping[str, list[Endpoint]],
) -> tuple[MeshConfig, dict[str, dict[str, Any]]]:
    """`compose` with new dynamic listeners over the clusters of `applied` (a config
    `compose` made from `static`): the `changed` clusters take the place of those of the
    same name (new ones go last), the `removed` ones go; the others are taken as they are
    (no O(clusters) translation or copying of their snapshots, as `Engine.apply_clusters`).
    Also returns the changed clusters' snapshots as in the config, by name."""
    snapshots = {
        name: {**c.snapshot, "endpoints": endpoints.get(c.eds, [])}
        if c.eds is not None
        else c.snapshot
        for name, c in changed.items()
    }
    touched = {*changed, *removed}
    before = applied.snapshot.get("clusters", ())
    at = _positions(before)
    clusters = list(before)
    added = []
    for name, cluster in snapshots.items():
        if name in at:
            clusters[at[name]] = cluster
        else:
            added.append(cluster)
    gone = sorted((at[name] for name in removed if name in at), reverse=True)
    for i in gone:
        del clusters[i]
    # `at` becomes the index of the new list (`before` is no longer the one kept), unless
    # removals shifted positions: then the next change counts them anew.
    _POSITIONS.clear()
    if not gone:
        for k, cluster in enumerate(added, len(clusters)):
            at[cluster["name"]] = k
        _POSITIONS.append((clusters, at))
    clusters.extend(added)
    snapshot = {
        **applied.snapshot,
        "listeners": _all_listeners(static, listeners),
        "clusters": clusters,
    }
    config = dataclasses.replace(
        applied,
        snapshot=snapshot,
        dns_clusters=(
            *(d for d in applied.dns_clusters if d.name not in touched),
            *(c.dns for c in changed.values() if c.dns is not None),
        ),
        health_checks=(
            *(h for h in applied.health_checks if h.cluster not in touched),
            *(c.health for c in changed.values() if c.health is not None),
        ),
    )
    return config, snapshots


# The cluster list `compose_clusters` made last and its positions by name (the list is
# never changed in place once in a config), so the next change need not count them anew.
_POSITIONS: list[tuple[Sequence[dict[str, Any]], dict[str, int]]] = []


def _positions(clusters: Sequence[dict[str, Any]]) -> dict[str, int]:
    """The positions by name of `clusters` (the kept dict when it is the list kept: the
    caller changes it only after clearing `_POSITIONS`)."""
    if _POSITIONS and _POSITIONS[0][0] is clusters:
        return _POSITIONS[0][1]
    # C-level loops (a Python loop over 10,000 clusters is ~3 ms).
    return dict(zip(map(itemgetter("name"), clusters), range(len(clusters)), strict=True))


def _all_listeners(static: MeshConfig, listeners: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The static listeners and `listeners`, their tracers linked to the node."""
    return relink_tracers(
        [*static.snapshot.get("listeners", ()), *listeners],
        static.node_id,
        static.node_cluster,
        str(static.bootstrap.get("node", {}).get("locality", {}).get("zone", "")),
    )


def translate_resources(
    static: MeshConfig,
    listeners: Sequence[listener_pb2.Listener] = (),
    route_configs: Sequence[route_pb2.RouteConfiguration] = (),
    clusters: Sequence[cluster_pb2.Cluster] = (),
    assignments: Sequence[endpoint_pb2.ClusterLoadAssignment] = (),
) -> MeshConfig:
    """`static` plus a complete set of xDS resources as one `MeshConfig`, through the same
    checks and translation as a static bootstrap. Every listener's RDS route config and
    every EDS cluster's assignment must be among the resources. Raises ConfigError."""
    problems = Problems()
    tracing = bootstrap_tracing(static)
    checked_clusters: list[ClusterResource] = []
    for msg in clusters:
        path = resource_path(CLUSTER, msg.name)
        cluster, found = check_cluster(msg, path)
        problems.extend(found)
        if cluster is not None:
            if cluster.name in static_names(static, "clusters"):
                problems.add(paths.field(path, "name"), "a static cluster has this name")
            checked_clusters.append(cluster)
    known = static_names(static, "clusters") | {c.name for c in checked_clusters}
    routes: dict[str, RouteResource] = {}
    for msg in route_configs:
        route, found = check_route_config(msg, resource_path(ROUTE_CONFIG, msg.name))
        problems.extend(found)
        if route is not None:
            check_refs(route.refs, known, problems, unroutable(static))
            routes[route.name] = route
    assigned: dict[str, list[Endpoint]] = {}
    for msg in assignments:
        assignment, found = check_assignment(msg, resource_path(ASSIGNMENT, msg.cluster_name))
        problems.extend(found)
        if assignment is not None:
            assigned[assignment.name] = assignment.endpoints
    for cluster in checked_clusters:
        if cluster.eds is not None and cluster.eds not in assigned:
            problems.add(
                resource_path(CLUSTER, cluster.name),
                f"no ClusterLoadAssignment {cluster.eds!r} for this EDS cluster",
            )
    composed: list[dict[str, Any]] = []
    for msg in listeners:
        path = resource_path(LISTENER, msg.name)
        listener, found = check_listener(msg, path, tracing)
        problems.extend(found)
        if listener is None:
            continue
        if listener.name in static_names(static, "listeners"):
            problems.add(paths.field(path, "name"), "a static listener has this name")
        check_refs(listener.refs, known, problems, unroutable(static))
        if listener.rds is not None and listener.rds not in routes:
            problems.add(path, f"no RouteConfiguration {listener.rds!r} for this listener's rds")
        composed.append(listener.with_routes(routes.get(listener.rds or "")))
    check_addresses(composed, static, problems)
    if problems:
        raise ConfigError(problems)
    return compose(static, composed, checked_clusters, assigned)

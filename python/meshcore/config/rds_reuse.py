"""An RDS RouteConfiguration checked and translated per virtual host, taking each virtual host
that is byte-identical to one of the last accepted version of the same resource from that
version (its checks passed, its translation as it was) when the route config's own fields
are unchanged: a control plane that changes one virtual host of 1,000 costs one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from google.protobuf.message import Message

from . import paths, rules
from .errors import Problems
from .translate_headers import with_header_mutations
from .translate_routes import ClusterRefs, RouteScope, route_scope, virtual_host
from .walk import is_map

Refs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class HostMemo:
    """A virtual host of an accepted version: its snapshot (shared with the next version
    that reuses it: never changed in place) and the clusters it names, each with its path
    below the virtual host (`.routes[0].route.cluster`)."""

    snapshot: dict[str, Any]
    refs: Refs


@dataclass(frozen=True)
class RouteMemo:
    """What the next version of an accepted route config may reuse."""

    root: bytes
    """The route config's own fields (all but `virtual_hosts`), serialized."""
    hosts: dict[bytes, HostMemo]
    """Its virtual hosts by their serialized bytes."""


@dataclass(frozen=True)
class Reused:
    """A route config translated with `translate`: as `route_config` would translate it."""

    snapshot: dict[str, Any]
    refs: Refs
    memo: RouteMemo
    reused: int
    """How many virtual hosts came from the previous version."""


def _key(msg: Message) -> bytes:
    """What byte-identical means (deterministic: map entries in key order)."""
    key: bytes = msg.SerializeToString(deterministic=True)
    return key


def root_shell(config: route_pb2.RouteConfiguration) -> route_pb2.RouteConfiguration:
    """A copy of `config` without its virtual hosts (its own fields, to check and compare
    without descending into 1,000 virtual hosts; a copy and clear would copy them)."""
    shell = route_pb2.RouteConfiguration()
    for fd, value in config.ListFields():
        if fd.name == "virtual_hosts":
            continue
        target: Any = getattr(shell, fd.name)
        if is_map(fd) and fd.message_type.fields_by_name["value"].message_type is not None:
            for key in value:
                target[key].CopyFrom(value[key])
        elif is_map(fd):
            target.update(value)
        elif fd.is_repeated:
            target.extend(value)
        elif fd.message_type is not None:
            target.CopyFrom(value)
        else:
            setattr(shell, fd.name, value)
    return shell


def translate(
    config: route_pb2.RouteConfiguration, path: str, previous: RouteMemo | None
) -> Reused | None:
    """`config` checked (PGV, the supported-field table, typed configs) and translated per
    virtual host, those byte-identical to one of `previous` taken from it. None when there
    is nothing to reuse (no previous version, or the root's own fields changed: the whole
    check is as fast then) or when anything is wrong: the caller checks the whole route
    config then, whose problems (text, paths, order) are the ones to report."""
    if previous is None or not config.name:
        return None
    problems = Problems()
    shell = root_shell(config)
    if _key(shell) != previous.root:
        return None
    rules.check(shell, path, problems)
    out = with_header_mutations({"name": config.name}, config, path, problems)
    if problems:
        return None
    known = previous.hosts
    scope = route_scope(config, problems, ClusterRefs())
    hosts_path = paths.field(path, "virtual_hosts")
    hosts: list[dict[str, Any]] = []
    memo: dict[bytes, HostMemo] = {}
    all_refs: list[tuple[str, str]] = []
    reused = 0
    for i, host in enumerate(config.virtual_hosts):
        host_path = paths.item(hosts_path, i)
        key = _key(host)
        done = known.get(key)
        if done is not None:
            reused += 1
        else:
            done = _fresh(host, host_path, scope)
            if done is None:
                return None
        hosts.append(done.snapshot)
        for below, cluster in done.refs:  # at the host's new place
            all_refs.append((host_path + below, cluster))
        memo[key] = done
    if _duplicate_domains(hosts):
        return None  # the whole check names both places
    out["virtual_hosts"] = hosts
    return Reused(out, tuple(all_refs), RouteMemo(previous.root, memo), reused)


def _fresh(host: rc.VirtualHost, path: str, scope: RouteScope) -> HostMemo | None:
    """A new or changed virtual host checked and translated (None: it has a problem)."""
    rules.check(host, path, scope.problems)
    refs = scope.refs.refs
    start = len(refs)
    snapshot = virtual_host(host, path, scope)
    if scope.problems:
        return None
    return HostMemo(snapshot, tuple((p[len(path) :], c) for p, c in refs[start:]))


def remember(
    config: route_pb2.RouteConfiguration, path: str, snapshot: dict[str, Any], refs: Refs
) -> RouteMemo | None:
    """The memo of `config`, accepted as translated by `route_config` into `snapshot` and
    `refs` (None: a reference not under a virtual host; nothing is reused then)."""
    hosts_path = paths.item(paths.field(path, "virtual_hosts"), "")[:-1]  # `...virtual_hosts[`
    below: list[list[tuple[str, str]]] = [[] for _ in config.virtual_hosts]
    for ref_path, cluster in refs:
        if not ref_path.startswith(hosts_path):
            return None
        end = ref_path.index("]", len(hosts_path))
        below[int(ref_path[len(hosts_path) : end])].append((ref_path[end + 1 :], cluster))
    hosts = {
        _key(host): HostMemo(translated, tuple(host_refs))
        for host, translated, host_refs in zip(
            config.virtual_hosts, snapshot["virtual_hosts"], below, strict=True
        )
    }
    return RouteMemo(_key(root_shell(config)), hosts)


def _duplicate_domains(hosts: list[dict[str, Any]]) -> bool:
    """A domain (lower-cased, as in the snapshot) twice: in two virtual hosts, or in one."""
    domains = [d for host in hosts for d in host["domains"]]
    return len(set(domains)) != len(domains)

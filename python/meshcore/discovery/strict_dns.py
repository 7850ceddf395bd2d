"""STRICT_DNS clusters: resolve every host, then re-resolve every `refresh_rate_s` and publish
changed endpoint sets (to the engine with `Engine.update_endpoints`, or, in the server, to
the health checker's membership, which merges them with active health before pushing).

As in Envoy, each host of a cluster is a separate resolve target: all its addresses become
endpoints with the host's port and weight, a failed lookup keeps the host's last good
addresses, and the counters `cluster.<name>.update_{attempt,success,failure,no_rebuild}`
count per target (`update_no_rebuild`: resolved to the same addresses as before).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
import trio

from meshcore.lifecycle.control_stats import ControlStats
from meshcore.lifecycle.interfaces import DnsClusterLike, DnsHostLike, EngineApi
from meshcore.net_address import format_host_port

log = logging.getLogger(__name__)

# (hostname, family) -> IP literals. Family is "v4", "v6", "auto" (IPv6, else IPv4, like
# Envoy's AUTO), "v4_preferred" (IPv4, else IPv6) or "all" (both).
Resolver = Callable[[str, str], Awaitable[list[str]]]
Endpoint = dict[str, Any]
# (cluster, endpoints) -> None; raises KeyError for an unknown cluster, ValueError when the
# endpoints are rejected.
Publisher = Callable[[str, list[Endpoint]], None]

# Envoy's c-ares resolver gives up after 5 s per query by default.
RESOLVE_TIMEOUT_S = 5.0

_FAMILY_ORDER: dict[str, tuple[socket.AddressFamily, ...]] = {
    "v4": (socket.AF_INET,),
    "v6": (socket.AF_INET6,),
    "auto": (socket.AF_INET6, socket.AF_INET),
    "v4_preferred": (socket.AF_INET, socket.AF_INET6),
    "all": (socket.AF_UNSPEC,),
}


class DnsError(Exception):
    """A hostname did not resolve to any address of the wanted family."""


async def system_resolver(hostname: str, family: str) -> list[str]:
    """Resolves with the system resolver (`getaddrinfo` in a worker thread)."""
    try:
        order = _FAMILY_ORDER[family]
    except KeyError:
        raise DnsError(f"{hostname}: unknown address family {family!r}") from None
    reason = "no addresses"
    for af in order:
        try:
            infos = await trio.socket.getaddrinfo(hostname, None, af, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            reason = exc.strerror or str(exc)
            continue
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if addresses:
            return addresses
    raise DnsError(f"{hostname}: {reason}")


class StrictDns:
    """Resolution state for every STRICT_DNS cluster of the running config."""

    def __init__(
        self,
        engine: EngineApi,
        stats: ControlStats,
        resolver: Resolver = system_resolver,
        timeout_s: float = RESOLVE_TIMEOUT_S,
        *,
        publish: Publisher | None = None,
    ) -> None:
        self._engine = engine
        self._publish = publish or self._push_to_engine
        self._stats = stats
        self._resolver = resolver
        self._timeout_s = timeout_s
        # Last good addresses per (hostname, family): kept across failures and reloads.
        self._last_good: dict[tuple[str, str], tuple[str, ...]] = {}
        # cluster -> {(address, port): hostname} of its current endpoints, for `/clusters`.
        self._hostnames: dict[str, dict[tuple[str, int], str]] = {}

    def _push_to_engine(self, cluster: str, endpoints: list[Endpoint]) -> None:
        self._engine.update_endpoints(cluster, orjson.dumps(endpoints))

    def hostname_of(self, cluster: str, address: str, port: int) -> str:
        return self._hostnames.get(cluster, {}).get((address, port), "")

    async def _resolve_host(
        self, cluster: str, stat_name: str, host: DnsHostLike, family: str
    ) -> None:
        scope = f"cluster.{stat_name}"
        self._stats.inc(f"{scope}.update_attempt")
        key = (host.hostname, family)
        addresses: tuple[str, ...] | None = None
        with trio.move_on_after(self._timeout_s):
            try:
                addresses = tuple(await self._resolver(host.hostname, family))
            except (DnsError, OSError) as exc:
                log.warning(
                    "cluster %s: DNS resolution of %s failed: %s", cluster, host.hostname, exc
                )
                self._stats.inc(f"{scope}.update_failure")
                return
        if addresses is None:
            log.warning("cluster %s: DNS resolution of %s timed out", cluster, host.hostname)
            self._stats.inc(f"{scope}.update_failure")
        elif not addresses:
            log.warning("cluster %s: %s resolved to no address", cluster, host.hostname)
            self._stats.inc(f"{scope}.update_failure")
        else:
            self._stats.inc(f"{scope}.update_success")
            previous = self._last_good.get(key)
            if previous == addresses:
                self._stats.inc(f"{scope}.update_no_rebuild")
            elif previous is not None:
                log.debug("cluster %s: %s -> %s", cluster, host.hostname, ", ".join(addresses))
            self._last_good[key] = addresses

    async def resolve(self, cluster: DnsClusterLike) -> list[Endpoint] | None:
        """Resolves every host of `cluster` at once and returns its endpoints (failed hosts
        contribute their last good addresses), or None if no host has ever resolved."""
        async with trio.open_nursery() as nursery:
            for host in cluster.hosts:
                nursery.start_soon(
                    self._resolve_host, cluster.name, cluster.stat_name, host, cluster.family
                )
        endpoints: list[Endpoint] = []
        hostnames: dict[tuple[str, int], str] = {}
        known = False
        for host in cluster.hosts:
            addresses = self._last_good.get((host.hostname, cluster.family))
            if addresses is None:
                continue
            known = True
            for address in addresses:
                endpoint: Endpoint = {"address": address, "port": host.port, "weight": host.weight}
                if host.priority:
                    endpoint["priority"] = host.priority  # the engine's default is 0
                endpoints.append(endpoint)
                hostnames[(address, host.port)] = host.hostname
        self._hostnames[cluster.name] = hostnames
        return endpoints if known else None

    async def resolve_all(self, clusters: Iterable[DnsClusterLike]) -> dict[str, list[Endpoint]]:
        """The first resolution of a set of clusters, done before they serve traffic."""
        results: dict[str, list[Endpoint]] = {}

        async def one(cluster: DnsClusterLike) -> None:
            endpoints = await self.resolve(cluster)
            if endpoints is not None:
                results[cluster.name] = endpoints

        async with trio.open_nursery() as nursery:
            for cluster in clusters:
                nursery.start_soon(one, cluster)
        return results

    async def refresh(
        self,
        clusters: tuple[DnsClusterLike, ...],
        pushed: dict[str, list[Endpoint]],
        *,
        task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Re-resolves each cluster every `refresh_rate_s` until the returned cancel scope
        is cancelled (a reload replaces the set). `pushed` holds what the engine already
        has for each cluster."""
        self._forget_all_but(clusters)
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                for cluster in clusters:
                    nursery.start_soon(self._refresh_loop, cluster, pushed.get(cluster.name))
                task_status.started(scope)

    def _forget_all_but(self, clusters: tuple[DnsClusterLike, ...]) -> None:
        """Drops state of clusters and hostnames a reload removed."""
        names = {c.name for c in clusters}
        targets = {(h.hostname, c.family) for c in clusters for h in c.hosts}
        self._hostnames = {n: m for n, m in self._hostnames.items() if n in names}
        self._last_good = {k: v for k, v in self._last_good.items() if k in targets}

    async def _refresh_loop(self, cluster: DnsClusterLike, pushed: list[Endpoint] | None) -> None:
        while True:
            await trio.sleep(cluster.refresh_rate_s)
            endpoints = await self.resolve(cluster)
            if endpoints is None or endpoints == pushed:
                continue
            try:
                self._publish(cluster.name, endpoints)
            except KeyError:
                log.warning("cluster %s: no longer known to the engine; stopping DNS", cluster.name)
                return
            except ValueError as exc:
                log.error("cluster %s: engine rejected endpoints: %s", cluster.name, exc)
                continue
            pushed = endpoints
            log.info("cluster %s: endpoints now %s", cluster.name, describe(endpoints))


def describe(endpoints: list[Endpoint]) -> str:
    """`127.0.0.1:8080, [::1]:8080` for a log line."""
    if not endpoints:
        return "(none)"
    return ", ".join(format_host_port(e["address"], e["port"]) for e in endpoints)

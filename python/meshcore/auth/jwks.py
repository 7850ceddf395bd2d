"""Remote JWKS for jwt_authn providers (`remote_jwks`): fetched over HTTP/1.1 (h11 on trio,
as the health checker talks to hosts) from the named cluster's hosts, pushed into the
engine with `Engine.set_jwks`, refreshed every `cache_duration`, retried after a failure.
Requests never wait for a fetch: until the first one lands, tokens of the provider fail
with `Jwks remote fetch is failed`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import h11
import trio

from meshcore.health.probe import NETWORK_ERRORS, connect, describe_error
from meshcore.lifecycle.control_stats import ControlStats

log = logging.getLogger(__name__)

_READ_SIZE = 65536
MAX_JWKS_BYTES = 1 << 20
"""A key set larger than this is refused (a JWKS is a few KiB)."""

Endpoint = dict[str, Any]
HostsOf = Callable[[str], list[Endpoint]]


class JwksSink(Protocol):
    def set_jwks(self, provider_key: str, jwks_json: bytes) -> None: ...


@dataclass(frozen=True)
class RemoteJwks:
    """One remote key set source, and the connection managers whose stats count its
    fetches (`http.<prefix>.jwt_authn.jwks_fetch_{success,failed}`)."""

    key: str
    uri: str
    cluster: str
    timeout_s: float
    cache_duration_s: float
    failed_refetch_s: float | None
    num_retries: int
    retry_base_s: float
    retry_max_s: float
    stat_prefixes: tuple[str, ...]


def _jwt_configs(snapshot: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(HCM stat prefix, jwt_authn config) of every jwt_authn filter in the snapshot."""
    for listener in snapshot.get("listeners", ()):
        chains = [*listener.get("filter_chains", ()), listener.get("default_filter_chain")]
        for chain in filter(None, chains):
            manager = chain.get("filter", {}).get("http_connection_manager")
            if not manager:
                continue
            for f in manager.get("http_filters", ()):
                config = f.get("config", {}).get("jwt_authn")
                if config is not None:
                    yield manager.get("stat_prefix", ""), config


def remote_sources(snapshot: Mapping[str, Any]) -> list[RemoteJwks]:
    """The distinct remote JWKS sources the snapshot's providers name, by key."""
    found: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
    for prefix, config in _jwt_configs(snapshot):
        for provider in config.get("providers", ()):
            remote = provider.get("jwks", {}).get("remote")
            if remote is None:
                continue
            _, prefixes = found.setdefault(remote["key"], (remote, []))
            if prefix not in prefixes:
                prefixes.append(prefix)
    return [
        RemoteJwks(
            key=key,
            uri=r["uri"],
            cluster=r["cluster"],
            timeout_s=r["timeout_ms"] / 1000,
            cache_duration_s=r["cache_duration_ms"] / 1000,
            failed_refetch_s=None
            if r.get("failed_refetch_ms") is None
            else r["failed_refetch_ms"] / 1000,
            num_retries=r.get("num_retries", 0),
            retry_base_s=r.get("retry_base_ms", 0) / 1000,
            retry_max_s=r.get("retry_max_ms", 0) / 1000,
            stat_prefixes=tuple(prefixes),
        )
        for key, (r, prefixes) in found.items()
    ]


class FetchError(Exception):
    """A fetch that did not produce a key set."""


async def fetch(source: RemoteJwks, address: str, port: int) -> bytes:
    """GETs `source.uri` from one host (Host: the URI's authority), within its timeout;
    the body of a 200, else FetchError."""
    parts = urlsplit(source.uri)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    conn = h11.Connection(h11.CLIENT)
    with trio.move_on_after(source.timeout_s) as scope:
        try:
            link = await connect(address, port, source.timeout_s)
        except OSError as exc:
            raise FetchError(f"connect {address}:{port}: {describe_error(exc)}") from exc
        try:
            request = h11.Request(
                method="GET",
                target=target,
                headers=[("host", parts.netloc), ("accept", "application/json")],
            )
            await link.stream.send_all(
                (conn.send(request) or b"") + (conn.send(h11.EndOfMessage()) or b"")
            )
            status, body = await _read(link.stream, conn)
        except (*NETWORK_ERRORS, h11.ProtocolError) as exc:
            raise FetchError(f"{address}:{port}: {describe_error(exc)}") from exc
        finally:
            link.close()
    if scope.cancelled_caught:
        raise FetchError(f"{address}:{port}: timeout after {source.timeout_s:g}s")
    if status != 200:
        raise FetchError(f"{address}:{port}: HTTP {status}")
    return body


async def _read(stream: trio.SocketStream, conn: h11.Connection) -> tuple[int, bytes]:
    status = 0
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(_READ_SIZE))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_JWKS_BYTES:
                raise FetchError(f"JWKS larger than {MAX_JWKS_BYTES} bytes")
        elif isinstance(event, h11.EndOfMessage):
            return status, bytes(body)
        elif isinstance(event, h11.ConnectionClosed):
            raise trio.BrokenResourceError("connection closed by the host")


class JwksFetcher:
    """Keeps every remote key set of the serving config fresh in the engine."""

    def __init__(self, sink: JwksSink, control: ControlStats, hosts: HostsOf) -> None:
        self._sink = sink
        self._control = control
        self._hosts = hosts
        self._running: dict[RemoteJwks, trio.CancelScope] = {}
        self._next_host: dict[str, int] = {}

    def _count(self, source: RemoteJwks, outcome: str) -> None:
        for prefix in source.stat_prefixes:
            self._control.inc(f"http.{prefix}.jwt_authn.jwks_fetch_{outcome}")

    def declare(self, sources: list[RemoteJwks]) -> None:
        for s in sources:
            for prefix in s.stat_prefixes:
                self._control.declare(
                    f"http.{prefix}.jwt_authn.jwks_fetch_success",
                    f"http.{prefix}.jwt_authn.jwks_fetch_failed",
                )

    async def attempt(self, source: RemoteJwks) -> bool:
        """One fetch from the next healthy host of the cluster (round robin), pushed into
        the engine; counted; False on failure."""
        hosts = [h for h in self._hosts(source.cluster) if h.get("healthy", True)]
        try:
            if not hosts:
                raise FetchError(f"cluster {source.cluster!r} has no healthy host")
            i = self._next_host.get(source.key, 0) % len(hosts)
            self._next_host[source.key] = i + 1
            body = await fetch(source, hosts[i]["address"], int(hosts[i]["port"]))
            self._sink.set_jwks(source.key, body)
        except (FetchError, ValueError, KeyError) as exc:
            log.warning("jwks %s from cluster %s: %s", source.uri, source.cluster, exc)
            self._count(source, "failed")
            return False
        self._count(source, "success")
        return True

    async def keep_fresh(self, source: RemoteJwks) -> None:
        """Fetch, then refresh every `cache_duration`; a failure is retried after
        `failed_refetch_duration` (async_fetch), else with `retry_policy`'s back-off (base
        doubling to max, at most `num_retries` times before waiting a full
        `cache_duration`), else after 1 s."""
        failures = 0
        while True:
            if await self.attempt(source):
                failures = 0
                await trio.sleep(source.cache_duration_s)
                continue
            failures += 1
            if source.failed_refetch_s is not None:
                delay = source.failed_refetch_s
            elif source.num_retries and failures <= source.num_retries:
                delay = min(source.retry_base_s * 2 ** (failures - 1), source.retry_max_s)
            elif source.num_retries:
                failures = 0
                delay = source.cache_duration_s
            else:
                delay = 1.0
            await trio.sleep(delay)

    async def run(
        self,
        sources: list[RemoteJwks],
        task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Keeps `sources` fresh until cancelled (the scope given to `task_status`)."""
        self.declare(sources)
        with trio.CancelScope() as scope:
            task_status.started(scope)
            async with trio.open_nursery() as nursery:
                for s in sources:
                    nursery.start_soon(self.keep_fresh, s)
                await trio.sleep_forever()

    async def _keep(
        self,
        source: RemoteJwks,
        task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            await self.keep_fresh(source)

    async def restart(self, nursery: trio.Nursery, snapshot: Mapping[str, Any]) -> None:
        """Follows a new config: a source it still names keeps fetching on its own schedule
        (a route change does not refetch keys), a source it no longer names stops, a new one
        starts (keys already in the engine stay until a fetch replaces them)."""
        sources = remote_sources(snapshot)
        for gone in [s for s in self._running if s not in sources]:
            self._running.pop(gone).cancel()
        fresh = [s for s in sources if s not in self._running]
        self.declare(fresh)
        for source in fresh:
            self._running[source] = await nursery.start(self._keep, source)

"""The xDS client: keeps the ADS stream to the management server open (reconnecting with
jittered back-off), watches `path_config_source` files, expires resources whose TTL ran
out, and for every update: checks it (config layer), applies it through the server (a whole
new snapshot, or endpoint updates only), then ACKs it, or NACKs it with the problems and
keeps serving what it had. `initialized` is set once the first LDS and CDS updates and
their warming are done, or `initial_fetch_timeout` passed."""

from __future__ import annotations

import logging
import math
import operator
import time
from collections.abc import Awaitable, Callable, Mapping
from collections.abc import Set as AbstractSet
from contextlib import suppress
from typing import Any, Protocol

import trio
from envoy.config.core.v3 import base_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from meshcore import __version__
from meshcore.admin.config_dump import timestamp
from meshcore.config.errors import Problems
from meshcore.config.grpc_tls import static_cluster_tls
from meshcore.config.model import DynamicConfig, MeshConfig, XdsSource
from meshcore.config.secrets import SecretRef, sds_target
from meshcore.config.xds_resources import ASSIGNMENT, CLUSTER, LISTENER, ROUTE_CONFIG, SECRET
from meshcore.lifecycle.control_stats import ControlStats

from . import files
from .backoff import Backoff
from .channel import ChannelFactory, grpc_channel
from .delta import DeltaProtocol
from .heap import release_free_memory
from .resources import (
    ClusterDelta,
    Endpoint,
    Entry,
    Rejected,
    ResourceStore,
    Staged,
    Update,
    short_type,
)
from .sds_streams import SdsLink, SdsServer
from .secret_files import SecretFiles
from .secrets_dump import secrets_dump
from .sotw import SotwProtocol
from .stats import CDS, LDS, XdsStats

log = logging.getLogger(__name__)

# The level of the line logged per applied update: as Envoy, route and endpoint updates
# (the frequent ones) at debug, listener, cluster and secret updates at info.
_APPLIED_LEVEL = {ROUTE_CONFIG: logging.DEBUG, ASSIGNMENT: logging.DEBUG}
# Updates with more resources to check than this are checked in a worker thread.
THREADED_STAGE = 100


class XdsSink(Protocol):
    """Where accepted updates go (the server); errors reject the update."""

    async def apply_xds(
        self,
        config: MeshConfig,
        clusters_changed: bool = True,
        clusters: ClusterDelta | None = None,
    ) -> None:
        """Applies a whole new config (ValueError/OSError: the engine refused it);
        `clusters_changed` False: only listeners and routes differ from the last one;
        `clusters`: only these clusters differ (the others are those applied)."""

    async def update_xds_endpoints(self, updates: Mapping[str, list[Endpoint]]) -> None:
        """Swaps the hosts of serving clusters (KeyError/ValueError: refused)."""


def _node(dynamic: DynamicConfig) -> base_pb2.Node:
    node = base_pb2.Node()
    node.ParseFromString(dynamic.node)
    node.user_agent_name = "meshcore"
    node.user_agent_version = __version__
    return node


class XdsClient:
    """The xDS side of one running server."""

    def __init__(
        self,
        static: MeshConfig,
        sink: XdsSink,
        control: ControlStats,
        *,
        backoff: Backoff | None = None,
        poll_s: float = files.POLL_S,
        channel_factory: ChannelFactory = grpc_channel,
    ) -> None:
        assert static.dynamic is not None
        self.dynamic = static.dynamic
        self.store = ResourceStore(static, ads=self.dynamic.ads is not None)
        self.stats = XdsStats(control, self.store)
        self.sink = sink
        self.backoff = backoff or Backoff()
        self.poll_s = poll_s
        self.channel_factory = channel_factory
        self.initialized = trio.Event()
        self.versions: dict[str, str] = {}
        """Per type: the version_info of the last accepted update."""
        self.rejections: dict[str, tuple[str, float]] = {}
        """Per type: the last rejection's detail and wall time."""
        self.connected = False
        self._channel_ready = False
        # One holder at a time (a semaphore of one: trio.Lock's owner and deadlock-breaker
        # bookkeeping cost more per update than the whole exclusion, and every holder
        # releases it in a `finally`).
        self._lock = trio.Semaphore(1, max_value=1)
        self._stream: Any = None
        self._subscribed: dict[str, AbstractSet[str]] = {
            ROUTE_CONFIG: set(),
            ASSIGNMENT: set(),
            SECRET: set(),
        }
        self.secret_files = SecretFiles(self._reload_secret_file, poll_s)
        self.sds_links: dict[SdsServer, SdsLink] = {}
        """Separate SDS streams (`api_config_source`) by server."""
        self._nursery: trio.Nursery | None = None
        self._secret_timers: set[str] = set()
        """Secrets whose initial_fetch_timeout has been started (once each)."""
        self._pending = {t for source, t in self._sources()}
        self._timed_out = False
        self._initial_done = False
        """`initialized` is set (nothing of the initial fetch is pending any more)."""
        self._followed: tuple[object, ...] = ()
        """What the last `_resubscribe` followed: `ResourceStore.refs_inputs` (by identity)
        and whether the nursery was there."""
        self._clusters_fetched = trio.Event()
        self._ttl_wakeup = trio.Event()
        wildcard = {t for source, t in self._sources() if source.file is None}
        ads = self.dynamic.ads
        self.protocol: SotwProtocol | DeltaProtocol
        if ads is not None and ads.delta:
            self.protocol = DeltaProtocol(_node(self.dynamic), wildcard)
        else:
            self.protocol = SotwProtocol(
                _node(self.dynamic),
                wildcard,
                node_on_first_only=ads.node_on_first_message_only if ads else False,
            )

    def _sources(self) -> list[tuple[XdsSource, str]]:
        pairs = ((self.dynamic.lds, LISTENER), (self.dynamic.cds, CLUSTER))
        return [(source, t) for source, t in pairs if source is not None]

    # ---- running -------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.secret_files.run)
            self._resubscribe()  # static listeners' SDS secrets
            if self.dynamic.ads is not None:
                nursery.start_soon(self._run_ads)
            timeouts = []
            for source, type_url in self._sources():
                if source.file is not None:
                    nursery.start_soon(self._watch_file, source, type_url)
                if source.initial_fetch_timeout_s > 0:
                    nursery.start_soon(self._initial_timeout, source, type_url)
                timeouts.append(source.initial_fetch_timeout_s)
            if timeouts and min(timeouts) > 0:
                nursery.start_soon(self._initial_deadline, max(timeouts))
            nursery.start_soon(self._expire_ttls)
            self._check_initialized()
            task_status.started()

    async def _run_ads(self) -> None:
        ads = self.dynamic.ads
        assert ads is not None
        from .ads_stream import StreamClosed, open_stream

        channel = self.channel_factory(ads.target, ads.tls)
        token = trio.lowlevel.current_trio_token()

        def on_connectivity(state: Any) -> None:  # grpcio calls it from any thread
            self._channel_ready = getattr(state, "name", "") == "READY"
            with suppress(trio.RunFinishedError):
                token.run_sync_soon(self._update_connected)

        channel.subscribe(on_connectivity, try_to_connect=True)
        try:
            while True:
                reason = "stream closed"
                try:
                    async with open_stream(
                        channel, delta=ads.delta, metadata=ads.initial_metadata
                    ) as stream:
                        await self._serve_stream(stream)
                except StreamClosed as exc:
                    reason = str(exc)
                finally:
                    self._stream = None
                    self._update_connected()
                for source, type_url in self._sources():
                    if source.file is None:
                        scopes = self.stats.scopes(type_url, ())
                        self.stats.inc(scopes, "update_attempt")
                        self.stats.inc(scopes, "update_failure")
                delay = self.backoff.next()
                log.warning(
                    "xDS stream to %s (%s) ended: %s; reconnecting in %.2fs",
                    ads.cluster,
                    ads.target,
                    reason,
                    delay,
                )
                await trio.sleep(delay)
        finally:
            channel.unsubscribe(on_connectivity)
            channel.close()

    def _update_connected(self) -> None:
        """`control_plane.connected_state`: a stream is open on a ready channel."""
        up = self._channel_ready and self._stream is not None
        if up != self.connected:
            self.connected = up
            self.stats.connected(up)
            if up:
                log.info("xDS stream established")

    async def _serve_stream(self, stream: Any) -> None:
        async with self._lock:
            self._stream = stream
            self._update_connected()
            for request in self.protocol.new_stream(self._held_versions()):
                stream.send(request)
        first = True
        while True:
            response = await stream.receive()
            if first:  # the server answers: the next failure starts the back-off afresh
                first = False
                self.backoff.reset()
            await self._on_response(response)

    def _held_versions(self) -> dict[str, dict[str, str]]:
        return {
            t: {name: entry.version for name, entry in entries.items()}
            for t, entries in self.store.accepted.items()
        }

    # ---- updates -------------------------------------------------------------------------

    async def _on_response(self, response: Any, link: SdsLink | None = None) -> None:
        """One ADS response (or one of the SDS stream `link`): checked, applied and ACKed,
        or NACKed."""
        try:  # the lock is nearly always free: no scheduling round on the push → ACK path
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            await self._lock.acquire()
        try:
            await self._handle(response, link)
        finally:
            self._lock.release()

    async def _handle(self, response: Any, link: SdsLink | None) -> None:
        protocol = link.protocol if link is not None else self.protocol
        send = link.send if link is not None else self._send
        type_url = response.type_url
        try:
            if link is not None and type_url != SECRET:
                raise Rejected([f"a {short_type(type_url)} response on an SDS stream"])
            # SotW repeats unchanged resources (matched by their bytes); delta does not
            # (and the index would cost O(accepted resources) per update).
            known = (
                self.store.names_by_raw(type_url)
                if not protocol.delta and type_url in self.store.accepted
                else None
            )
            update = protocol.decode(response, known)
        except Exception as exc:  # Rejected, or a response nothing foresaw
            rejected = exc if isinstance(exc, Rejected) else Rejected([repr(exc)])
            self._rejected(type_url, self.stats.scopes(type_url, ()), "", rejected)
            send(protocol.nack(response, rejected.detail))
            return
        scopes = self.stats.update_scopes(update)
        self.stats.inc(scopes, "update_attempt")
        try:
            staged = await self._stage_and_apply(update)
        except Rejected as rejected:
            self._rejected(type_url, scopes, update.version_info, rejected)
            send(protocol.nack(response, rejected.detail))
            return
        # The engine has it: the commit (and its stats and log line), then the ACK, then
        # what may send more requests (subscriptions follow the ACK). Nothing awaits in
        # between, so no other task sees the state before the commit. The bookkeeping goes
        # first because grpcio's thread that sends the ACK needs the GIL, which this thread
        # keeps until it waits again: work after the ACK would delay it as much.
        self._commit(staged, scopes)
        send(protocol.ack(response))
        if not staged.endpoints_only:
            self._resubscribe()
        self._done_initial(type_url)
        if len(update.resources) > THREADED_STAGE:
            _tidy(update)

    def _send(self, request: Message | None) -> None:
        if request is not None and self._stream is not None:
            self._stream.send(request)

    async def _stage_and_apply(self, update: Update | None) -> Staged:
        """Checks and applies an update; Rejected for anything that goes wrong (a bug
        included: whatever a management server sends must not stop the server)."""
        try:
            if update is None:
                staged = self.store.restage()
            elif len(update.resources) > THREADED_STAGE and _to_check(update) > THREADED_STAGE:
                # Thousands of resources take seconds to check: keep the admin API and
                # health checks answering meanwhile (only `commit`, here, changes the store).
                staged = await trio.to_thread.run_sync(
                    self.store.stage, update, trio.current_time()
                )
            else:
                staged = self.store.stage(update, trio.current_time())
        except Rejected:
            raise
        except Exception as exc:
            log.exception("checking an xDS update failed")
            raise Rejected([f"internal error while checking the update: {exc!r}"]) from None
        plan = staged.plan
        try:
            if plan.config is not None:
                await self.sink.apply_xds(plan.config, plan.clusters_changed, plan.clusters)
            elif plan.endpoint_updates:
                await self.sink.update_xds_endpoints(plan.endpoint_updates)
        except (ValueError, OSError, KeyError) as exc:
            raise Rejected([f"the engine refused the update: {exc}"]) from None
        except Exception as exc:
            log.exception("applying an xDS update failed")
            raise Rejected([f"internal error while applying the update: {exc!r}"]) from None
        return staged

    def _commit(self, staged: Staged, scopes: list[str]) -> None:
        update = staged.update
        if update is not None and update.type_url in (CLUSTER, LISTENER):
            before = self.store.accepted[update.type_url]
            after = staged.accepted
            # Only what the update changed, when known (not all 10,000 clusters).
            names = before.keys() | after.keys() if staged.names is None else staged.names
            added = removed = modified = 0
            for name in names:
                old, new = before.get(name), after.get(name)
                if old is None:
                    added += new is not None
                elif new is None:
                    removed += 1
                else:
                    modified += old.raw != new.raw
            self.stats.changes(update.type_url, added, removed, modified)
        waiting = self.store.view.waiting
        self.store.commit(staged)
        for path, missing in self.store.view.waiting.items():
            if waiting.get(path) != missing:
                log.warning("xDS: %s waits for clusters %s", path, ", ".join(sorted(missing)))
        if update is not None:
            self.versions[update.type_url] = update.version_info
            self.stats.success(
                scopes,
                update.version_info,
                time.time(),
                not update.resources and not update.removed,
            )
            self.rejections.pop(update.type_url, None)
            level = _APPLIED_LEVEL.get(update.type_url, logging.INFO)
            if log.isEnabledFor(level):  # route and endpoint updates: debug, usually off
                log.log(
                    level,
                    "xDS %s update %r applied (%d resources, %d removed)",
                    short_type(update.type_url),
                    update.version_info,
                    len(update.resources),
                    len(update.removed),
                )
        self.stats.totals()
        if self.store.ttl_seen:
            self._ttl_wakeup.set()

    def _rejected(self, type_url: str, scopes: list[str], version: str, rejected: Rejected) -> None:
        self.stats.inc(scopes, "update_rejected")
        self.rejections[type_url] = (rejected.detail, time.time())
        log.warning(
            "xDS %s update %r rejected, keeping the running configuration:\n  %s",
            short_type(type_url),
            version,
            "\n  ".join(rejected.lines),
        )
        self._done_initial(type_url)

    def _resubscribe(self) -> None:
        """Follows the RDS, EDS and SDS names (and SDS files) the listeners and clusters
        need now. Nothing to do when what they are read from is what it was at the last
        call (the same objects: a route change keeps the listeners and clusters)."""
        inputs = (self._nursery is None, *self.store.refs_inputs())
        followed = self._followed
        if len(inputs) == len(followed) and all(map(operator.is_, inputs, followed)):
            return
        refs = self.store.secret_refs()
        self.secret_files.follow(
            (ref.file, ref.watched_directory)
            for ref in refs
            if ref.source == "file" and ref.file is not None
        )
        self._follow_sds_servers(refs)
        for type_url in (ROUTE_CONFIG, ASSIGNMENT, SECRET):
            wanted = self.store.wanted(type_url, refs)
            subscribed = self._subscribed[type_url]
            if wanted is subscribed:  # EDS: no comparison of 10,000 names per update
                continue
            if wanted == subscribed:
                self._subscribed[type_url] = wanted  # the same object next time
                continue
            self.store.drop(type_url, self._subscribed[type_url] - wanted)
            self._subscribed[type_url] = wanted
            self._send(self.protocol.set_names(type_url, wanted))
        self._followed = inputs

    # ---- files, TTLs, reloads ------------------------------------------------------------

    async def _watch_file(self, source: XdsSource, type_url: str) -> None:
        assert source.file is not None
        path = source.file
        if type_url == LISTENER:  # as Envoy: clusters first, so listeners find theirs
            await self._clusters_fetched.wait()

        async def reload() -> None:
            async with self._lock:
                scopes = self.stats.scopes(type_url, ())
                self.stats.inc(scopes, "update_attempt")
                update: Update | None = None
                try:
                    update = await trio.to_thread.run_sync(_load_file, path, type_url)
                    staged = await self._stage_and_apply(update)
                except Rejected as rejected:
                    version = update.version_info if update else ""
                    self._rejected(type_url, scopes, version, rejected)
                    return
                self._commit(staged, scopes)
                self._resubscribe()
                self._done_initial(type_url)
                _tidy(update)

        await files.watch(path, source.watched_directory, reload, self.poll_s)

    def _follow_sds_servers(self, refs: set[SecretRef]) -> None:
        """Opens an SDS stream per server listeners and clusters name (`api_config_source`,
        `refs`: `ResourceStore.secret_refs`) and closes those none names; each subscribes to
        the secrets named with it. Secrets nothing names any more are forgotten."""
        wanted: dict[SdsServer, set[str]] = {}
        named: set[str] = set()
        for ref in refs:
            if ref.source != "static":
                named.add(ref.name)
            if ref.source == "api" and ref.cluster is not None:
                wanted.setdefault(SdsServer(ref.cluster, ref.delta), set()).add(ref.name)
        self.store.drop(SECRET, set(self.store.accepted[SECRET]) - named)
        self._start_secret_timers(refs)
        for server in list(self.sds_links):
            if server not in wanted:
                self.sds_links.pop(server).scope.cancel()
        for server, names in wanted.items():
            link = self.sds_links.get(server)
            if link is None:
                target = sds_target(self.store.static, server.cluster)
                if target is None or self._nursery is None:
                    continue  # reported when the resource naming it was checked
                # Its TLS problems were reported when the resource naming it was checked.
                clusters = self.store.static.snapshot.get("clusters", ())
                tls = static_cluster_tls(clusters, server.cluster, Problems())
                link = SdsLink(server, target, _node(self.dynamic), tls)
                self.sds_links[server] = link
                link.set_names(names)
                self._nursery.start_soon(
                    link.run,
                    self.channel_factory,
                    self._held_versions,
                    self._on_response,
                    Backoff(self.backoff.base_s, self.backoff.max_s),
                )
            else:
                link.set_names(names)

    def _start_secret_timers(self, refs: set[SecretRef]) -> None:
        """Each SDS secret's `initial_fetch_timeout` starts when a resource first names it."""
        if self._nursery is None:
            return
        for ref in refs:
            if ref.source in ("static", "unsupported") or ref.name in self._secret_timers:
                continue
            self._secret_timers.add(ref.name)
            if ref.initial_fetch_timeout_s > 0 and ref.name not in self.store.accepted[SECRET]:
                self._nursery.start_soon(
                    self._secret_fetch_timeout, ref.name, ref.initial_fetch_timeout_s
                )

    async def _secret_fetch_timeout(self, name: str, timeout_s: float) -> None:
        """`sds.<name>.init_fetch_timeout` when the secret has not come in time (what
        names it keeps warming: meshcore cannot listen without a certificate)."""
        await trio.sleep(timeout_s)
        if name in self.store.accepted[SECRET]:
            return
        if any(ref.name == name for ref in self.store.secret_refs()):
            log.warning(
                "SDS: secret %r did not arrive within initial_fetch_timeout (%gs); what names "
                "it keeps warming",
                name,
                timeout_s,
            )
            self.stats.inc([f"sds.{name}"], "init_fetch_timeout")
            self._timed_out = True  # initialization does not wait for it any longer
            self._check_initialized()

    async def _reload_secret_file(self, path: str) -> None:
        """A `path_config_source` SDS file (new or changed): its secrets, as an SDS update
        that replaces those of the same names."""
        async with self._lock:
            update: Update | None = None
            scopes: list[str] = []
            try:
                update = await trio.to_thread.run_sync(_load_file, path, SECRET)
                update = Update(SECRET, update.version_info, update.resources)
                scopes = self.stats.scopes(SECRET, [r.name for r in update.resources])
                self.stats.inc(scopes, "update_attempt")
                staged = await self._stage_and_apply(update)
            except Rejected as rejected:
                version = update.version_info if update else ""
                self._rejected(SECRET, scopes, version, rejected)
                return
            self._commit(staged, scopes)
            self._resubscribe()
            self._check_initialized()

    async def _expire_ttls(self) -> None:
        while True:
            wakeup = self._ttl_wakeup = trio.Event()
            deadline = self.store.next_expiry()
            with trio.move_on_at(deadline if deadline is not None else math.inf):
                await wakeup.wait()
                continue
            async with self._lock:
                for type_url, names in self.store.expired(trio.current_time()).items():
                    await self._expire(type_url, names)

    async def _expire(self, type_url: str, names: list[str]) -> None:
        log.warning("xDS %s resources expired (TTL): %s", short_type(type_url), ", ".join(names))
        update = Update(type_url, self.versions.get(type_url, ""), [], removed=names)
        try:
            staged = await self._stage_and_apply(update)
        except Rejected as rejected:
            log.error("removing expired resources failed: %s", rejected.detail)
            for name in names:
                self.store.accepted[type_url][name].expires = None
            return
        self._commit(staged, [])
        self._resubscribe()

    async def reload_static(
        self, static: MeshConfig, apply: Callable[[MeshConfig], Awaitable[None]]
    ) -> MeshConfig:
        """A reloaded bootstrap: its static resources with the current dynamic ones are
        applied with `apply` (and returned); on failure (raised) the previous static
        config stays."""
        async with self._lock:
            previous = self.store.static
            self.store.set_static(static)
            try:
                staged = self.store.restage()
                assert staged.plan.config is not None
                await apply(staged.plan.config)
            except Rejected as rejected:
                self.store.set_static(previous)
                raise ValueError(rejected.detail) from None
            except BaseException:
                self.store.set_static(previous)
                raise
            self._commit(staged, [])
            return staged.plan.config

    # ---- initialization ------------------------------------------------------------------

    def _done_initial(self, type_url: str) -> None:
        if self._initial_done:  # nothing pending, every event set: nothing can change
            return
        self._pending.discard(type_url)
        self._check_initialized()

    def _check_clusters_fetched(self) -> None:
        if CLUSTER not in self._pending:
            self._clusters_fetched.set()

    def _check_initialized(self) -> None:
        self._check_clusters_fetched()
        if not self._pending and (self._timed_out or not self.store.warming()):
            if not self.initialized.is_set():
                log.info("xDS initial fetch done")
            self.initialized.set()
            self._initial_done = True

    async def _initial_timeout(self, source: XdsSource, type_url: str) -> None:
        await trio.sleep(source.initial_fetch_timeout_s)
        self._fetch_timed_out(type_url, source.initial_fetch_timeout_s)

    def _fetch_timed_out(self, type_url: str, timeout_s: float) -> None:
        if type_url in self._pending:
            log.warning(
                "xDS: no %s update within initial_fetch_timeout (%gs); serving without it",
                short_type(type_url),
                timeout_s,
            )
            self.stats.inc([LDS if type_url == LISTENER else CDS], "init_fetch_timeout")
            self._pending.discard(type_url)
            self._timed_out = True
            self._check_initialized()

    async def _initial_deadline(self, timeout_s: float) -> None:
        """Warming resources (an EDS or RDS that never comes) hold initialization back for
        no longer than the longest initial_fetch_timeout."""
        await trio.sleep(timeout_s)
        if not self.initialized.is_set():
            for type_url in list(self._pending):
                self._fetch_timed_out(type_url, timeout_s)
            self._timed_out = True
            self._check_initialized()

    # ---- /config_dump --------------------------------------------------------------------

    def dump(self, include_eds: bool = False) -> dict[str, dict[str, Any]]:
        """The dynamic parts of Envoy's ClustersConfigDump, ListenersConfigDump,
        RoutesConfigDump (and EndpointsConfigDump)."""
        view = self.store.view
        accepted = self.store.accepted
        clusters: dict[str, Any] = {"version_info": self.versions.get(CLUSTER, "")}
        active = [e for n, e in accepted[CLUSTER].items() if n not in view.warming_clusters]
        warming = [e for n, e in accepted[CLUSTER].items() if n in view.warming_clusters]
        if active:
            clusters["dynamic_active_clusters"] = [_dumped(e, "cluster", CLUSTER) for e in active]
        if warming:
            clusters["dynamic_warming_clusters"] = [_dumped(e, "cluster", CLUSTER) for e in warming]
        listeners: dict[str, Any] = {"version_info": self.versions.get(LISTENER, "")}
        dynamic_listeners = []
        for name, entry in accepted[LISTENER].items():
            state = "warming_state" if name in view.warming_listeners else "active_state"
            dynamic_listeners.append({"name": name, state: _dumped(entry, "listener", LISTENER)})
        if dynamic_listeners:
            listeners["dynamic_listeners"] = dynamic_listeners
        routes: dict[str, Any] = {}
        if accepted[ROUTE_CONFIG]:
            routes["dynamic_route_configs"] = [
                _dumped(e, "route_config", ROUTE_CONFIG) for e in accepted[ROUTE_CONFIG].values()
            ]
        out = {
            "clusters": clusters,
            "listeners": listeners,
            "routes": routes,
            "secrets": secrets_dump(self.store),
        }
        if include_eds:
            endpoints: dict[str, Any] = {}
            if accepted[ASSIGNMENT]:
                endpoints["dynamic_endpoint_configs"] = [
                    _dumped(e, "endpoint_config", ASSIGNMENT) for e in accepted[ASSIGNMENT].values()
                ]
            out["endpoints"] = endpoints
        return out


def _to_check(update: Update) -> int:
    """The resources of `update` that need checking: decoded ones (a state-of-the-world
    response's unchanged resources are matched by their bytes and not decoded)."""
    return sum(1 for r in update.resources if r.message is not None)


def _tidy(update: Update) -> None:
    """After a large update (once ACKed): its garbage goes back to the OS."""
    if _to_check(update) > THREADED_STAGE:
        release_free_memory()


def _load_file(path: str, type_url: str) -> Update:
    try:
        return files.load(path, type_url)
    except Rejected:
        raise
    except Exception as exc:
        log.exception("reading %s failed", path)
        raise Rejected([f"{path}: {exc!r}"]) from None


def _dumped(entry: Entry, key: str, type_url: str) -> dict[str, Any]:
    body = json_format.MessageToDict(entry.message, preserving_proto_field_name=True)
    return {
        "version_info": entry.version,
        key: {"@type": type_url, **body},
        "last_updated": timestamp(entry.last_updated),
    }

"""The trio main of `meshcore run` and `meshcore demo`: load the config, resolve DNS
clusters, run the first health checks, apply the snapshot, serve the admin API, reload on
SIGHUP, drain on SIGTERM."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson
import trio

from meshcore import __version__
from meshcore.admin.handlers import AdminApp, AdminContext
from meshcore.admin.listeners_view import bound_listeners
from meshcore.admin.server import bound_address, listen, serve_http
from meshcore.admin.stats_model import StatsCollector
from meshcore.auth.jwks import JwksFetcher
from meshcore.discovery.strict_dns import Endpoint, Resolver, StrictDns, system_resolver
from meshcore.health.generation import HealthService
from meshcore.lifecycle.control_stats import ControlStats
from meshcore.lifecycle.drain import drain_connections
from meshcore.lifecycle.drain_time import drain_time_s
from meshcore.lifecycle.interfaces import EngineApi, MeshConfigLike
from meshcore.lifecycle.signals import watch_signals
from meshcore.lifecycle.state import Phase, ServerOptions, ServerState
from meshcore.net_address import format_host_port
from meshcore.tracing.export import SpanExporter

if TYPE_CHECKING:
    from meshcore.xds.client import XdsClient
    from meshcore.xds.resources import ClusterDelta

log = logging.getLogger(__name__)

ConfigLoader = Callable[[], MeshConfigLike]
EngineFactory = Callable[[int], EngineApi]

RELOAD_ATTEMPT = "config_reload.update_attempt"
RELOAD_SUCCESS = "config_reload.update_success"
RELOAD_REJECTED = "config_reload.update_rejected"


@dataclass(frozen=True)
class ReadyInfo:
    """What is serving once the server is live."""

    listeners: list[tuple[str, str, int]]  # (name, address, bound port)
    admin: tuple[str, int] | None


def snapshot_with_endpoints(
    config: MeshConfigLike, resolved: Mapping[str, list[Endpoint]]
) -> bytes:
    """The config's snapshot with resolved DNS endpoints filled into their clusters."""
    if not resolved:
        return config.snapshot_bytes()
    snapshot: dict[str, Any] = dict(config.snapshot)
    snapshot["clusters"] = [
        {**c, "endpoints": resolved[c["name"]]} if c["name"] in resolved else c
        for c in snapshot.get("clusters", ())
    ]
    return orjson.dumps(snapshot)


def listeners_snapshot(config: MeshConfigLike) -> bytes:
    """The config's snapshot without its clusters, for `Engine.apply_listeners`."""
    return orjson.dumps({**config.snapshot, "clusters": []})


def base_endpoints(
    config: MeshConfigLike, resolved: Mapping[str, list[Endpoint]]
) -> dict[str, list[Endpoint]]:
    """Every cluster's hosts before active health: DNS answers, else the snapshot's."""
    return {
        c["name"]: resolved.get(c["name"], c.get("endpoints", []))
        for c in config.snapshot.get("clusters", ())
    }


def _filter_inputs(snapshot: Mapping[str, Any]) -> list[Any]:
    """What the JWKS fetcher (`remote_sources`) and the span exporter (`exporters`) read
    of a snapshot: its local address and each connection manager's stat prefix, HTTP
    filters and tracing, in order."""
    out: list[Any] = [snapshot.get("local_address")]
    for listener in snapshot.get("listeners", ()):
        for chain in (*listener.get("filter_chains", ()), listener.get("default_filter_chain")):
            manager = chain.get("filter", {}).get("http_connection_manager") if chain else None
            if manager:
                out += (
                    manager.get("stat_prefix", ""),
                    manager.get("http_filters", ()),
                    manager.get("tracing"),
                )
    return out


def problems_text(exc: BaseException) -> list[str]:
    """`path: message` lines of a ConfigError (or the error itself)."""
    problems = getattr(exc, "problems", None)
    if problems:
        return [str(p) for p in problems]
    return [str(exc)]


class Server:
    """One running meshcore: owns the engine's config, the admin API, the DNS tasks and the
    health checks."""

    def __init__(
        self,
        engine: EngineApi,
        load: ConfigLoader,
        options: ServerOptions,
        *,
        resolver: Resolver = system_resolver,
        on_ready: Callable[[ReadyInfo], None] | None = None,
        on_reload: Callable[[bool], None] | None = None,
        make_health: Callable[[EngineApi, ControlStats], HealthService] = HealthService,
    ) -> None:
        self.engine = engine
        self.state = ServerState(options)
        self.control = ControlStats()
        self.control.declare(RELOAD_ATTEMPT, RELOAD_SUCCESS, RELOAD_REJECTED)
        self.health = make_health(engine, self.control)
        self.dns = StrictDns(engine, self.control, resolver, publish=self.health.publish)
        self.stats = StatsCollector(engine, self.state, self.control)
        self.jwks = JwksFetcher(engine, self.control, self._hosts_of)
        self.spans = SpanExporter(engine, self.control, self._hosts_of)
        self._load = load
        self._on_ready = on_ready
        self._on_reload = on_reload
        self._stop_now = trio.Event()
        self._dns_scope = trio.CancelScope()
        self._nursery: trio.Nursery | None = None
        self.xds: XdsClient | None = None
        self._followed: list[Any] | None = None
        """`_filter_inputs` of the snapshot the JWKS fetcher and span exporter follow."""

    async def _apply(self, config: MeshConfigLike) -> dict[str, list[Endpoint]]:
        """Resolves the config's DNS clusters, runs the first round of health checks (as
        Envoy's cluster warming: a check result per host), then applies it with each host's
        health. ValueError/OSError from the engine leave the running snapshot (and its
        health checks) in place."""
        resolved = await self.dns.resolve_all(config.dns_clusters)
        assert self._nursery is not None
        health = await self.health.prepare(
            self._nursery, config.health_checks, base_endpoints(config, resolved)
        )
        endpoints = health.membership.merged_all()
        try:
            generation = self.engine.apply(snapshot_with_endpoints(config, endpoints))
        except BaseException:
            health.cancel()
            raise
        self.health.commit(health, endpoints)
        log.debug("snapshot generation %d applied", generation)
        await self._follow(config.snapshot)
        return resolved

    async def _follow(self, snapshot: Mapping[str, Any]) -> None:
        """The JWKS fetcher and the span exporter follow a newly applied snapshot; unless
        what they read of it is what they read last (a route change keeps the connection
        managers' filters and tracing)."""
        inputs = _filter_inputs(snapshot)
        if inputs == self._followed:
            return
        self._followed = None
        assert self._nursery is not None
        await self.jwks.restart(self._nursery, snapshot)
        self.spans.configure(snapshot)
        self._followed = inputs

    def _hosts_of(self, cluster: str) -> list[Endpoint]:
        """A cluster's current hosts with their health (for the JWKS fetcher)."""
        current = self.health.current
        return current.membership.merged(cluster) if current is not None else []

    async def _start_dns(self, config: MeshConfigLike, resolved: dict[str, list[Endpoint]]) -> None:
        assert self._nursery is not None
        self._dns_scope.cancel()
        self._dns_scope = await self._nursery.start(self.dns.refresh, config.dns_clusters, resolved)

    async def serve(self, config: MeshConfigLike) -> int:
        """Runs until a drain completes (0) or the config cannot start (1)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(
                partial(watch_signals, reopen_logs=self.engine.reopen_access_logs),
                self.reload,
                self.terminate,
            )
            admin = None
            if config.admin is not None:
                try:
                    listeners = await listen(config.admin.address, config.admin.port)
                except OSError as exc:
                    log.critical(
                        "admin: cannot listen on %s:%d: %s",
                        config.admin.address,
                        config.admin.port,
                        exc,
                    )
                    nursery.cancel_scope.cancel()
                    return 1
                admin = bound_address(listeners)
                ctx = AdminContext(
                    self.engine,
                    self.state,
                    self.stats,
                    self.dns.hostname_of,
                    self.health.host_status,
                    xds_dump=self._xds_dump,
                )
                nursery.start_soon(serve_http, AdminApp(ctx), listeners)
                if not self._write_admin_address(admin):
                    nursery.cancel_scope.cancel()
                    return 1

            self.state.phase = Phase.INITIALIZING
            try:
                resolved = await self._apply(config)
            except (ValueError, OSError) as exc:
                log.critical("configuration rejected by the engine: %s", exc)
                nursery.cancel_scope.cancel()
                return 1
            self.state.set_config(config)
            await self._start_dns(config, resolved)
            if getattr(config, "dynamic", None) is not None:
                await self._start_xds(config)
            interval_s = getattr(config, "stats_flush_interval_s", 5.0)
            await nursery.start(self.stats.run_flushes, interval_s)
            await self._start_sinks(config, interval_s)
            nursery.start_soon(self.spans.run)
            self.state.phase = Phase.LIVE
            self._announce(config, admin)

            await self.state.shutdown_requested.wait()
            self.state.phase = Phase.DRAINING
            limit = drain_time_s(self.state.options.drain_time_s)
            await drain_connections(self.engine, limit, self._stop_now)
            nursery.cancel_scope.cancel()
        return 0

    async def _start_sinks(self, config: MeshConfigLike, interval_s: float) -> None:
        """Starts pushing stats to the config's statsd sinks (if any)."""
        targets = getattr(config, "stats_sinks", ())
        if not targets:
            return
        from meshcore.sinks.statsd import StatsdSink, run_sinks

        engine = self.engine

        def export() -> tuple[list[bytes], list[bytes], bytes]:
            # Samples first: their drops are then in this export's counters.
            samples, _dropped = engine.take_histogram_samples()
            snap = self.stats.snapshot()
            return snap.counters.lines, snap.gauges.lines, samples

        assert self._nursery is not None
        sinks = [StatsdSink(t) for t in targets]
        engine.capture_histogram_samples(True)
        await self._nursery.start(run_sinks, sinks, export, interval_s)

    async def _start_xds(self, config: MeshConfigLike) -> None:
        """Starts the xDS client (static resources already serve) and waits for its first
        updates, or their initial_fetch_timeout."""
        from meshcore.xds.client import XdsClient

        assert self._nursery is not None
        self.xds = XdsClient(config, self, self.control)  # type: ignore[arg-type]
        await self._nursery.start(self.xds.run)
        async with trio.open_nursery() as waiting:  # a SIGTERM meanwhile is not held back

            async def until(event: trio.Event) -> None:
                await event.wait()
                waiting.cancel_scope.cancel()

            waiting.start_soon(until, self.xds.initialized)
            waiting.start_soon(until, self.state.shutdown_requested)

    async def _apply_composed(self, config: MeshConfigLike) -> None:
        resolved = await self._apply(config)
        await self._start_dns(config, resolved)

    async def apply_xds(
        self,
        config: MeshConfigLike,
        clusters_changed: bool = True,
        clusters: ClusterDelta | None = None,
    ) -> None:
        """An accepted xDS update as a whole new config (static plus dynamic resources).
        When only listeners and routes changed, the engine keeps its clusters as they are
        (hosts with their health, pools) and compiles only the listeners: no DNS or health
        check to restart, and O(listeners) whatever the number of clusters. When only
        `clusters` changed, only they are resolved, health checked and applied
        (`_apply_clusters`)."""
        if clusters is not None and self.health.current is not None:
            await self._apply_clusters(config, clusters)
        elif clusters_changed or self.health.current is None:
            await self._apply_composed(config)
        else:
            self.engine.apply_listeners(listeners_snapshot(config))
            await self._follow(config.snapshot)  # an LDS listener's jwt_authn, tracer
        self.state.config = config

    async def _apply_clusters(self, config: MeshConfigLike, delta: ClusterDelta) -> None:
        """`_apply` for a config whose clusters are the applied ones but `delta`'s: DNS
        resolution and first health checks for the changed clusters only, then
        `Engine.apply_clusters` with them and the removed names; every other cluster keeps
        its hosts with their health, its checker and its pools. O(changed clusters +
        listeners). ValueError/OSError from the engine leave everything as it was."""
        assert self._nursery is not None
        changed = delta.changed
        dns = tuple(d for d in config.dns_clusters if d.name in changed)
        resolved = await self.dns.resolve_all(dns) if dns else {}
        specs = tuple(h for h in config.health_checks if h.cluster in changed)
        bases = {n: resolved.get(n, c.get("endpoints", [])) for n, c in changed.items()}
        patch = await self.health.prepare_clusters(self._nursery, specs, bases, delta.removed)
        endpoints = patch.merged()
        snapshot = {
            **config.snapshot,
            "clusters": [{**c, "endpoints": endpoints[n]} for n, c in changed.items()],
        }
        try:
            generation = self.engine.apply_clusters(orjson.dumps(snapshot), list(delta.removed))
        except BaseException:
            self.health.abandon_clusters(patch)
            raise
        self.health.commit_clusters(patch, endpoints)
        log.debug("snapshot generation %d applied (%d clusters changed)", generation, len(changed))
        before = self.state.config.dns_clusters if self.state.config is not None else ()
        if dns or any(d.name in changed or d.name in delta.removed for d in before):
            await self._start_dns(config, resolved)  # the DNS clusters' set changed
        await self._follow(config.snapshot)

    async def update_xds_endpoints(self, updates: Mapping[str, list[Endpoint]]) -> None:
        """An accepted EDS update of serving clusters: their hosts only, through the health
        checker's membership (which merges active health) into `Engine.update_endpoints`."""
        for cluster, endpoints in updates.items():
            self.health.publish(cluster, endpoints)

    def _xds_dump(self, include_eds: bool) -> dict[str, Any]:
        return self.xds.dump(include_eds) if self.xds is not None else {}

    async def _apply_reloaded(self, config: MeshConfigLike) -> MeshConfigLike:
        """Applies a reloaded bootstrap (with the current xDS resources, if any); returns
        the config now serving."""
        if self.xds is None:
            await self._apply_composed(config)
            return config
        return await self.xds.reload_static(config, self._apply_composed)  # type: ignore[arg-type]

    def _write_admin_address(self, admin: tuple[str, int]) -> bool:
        """Logs the admin address and writes it to `--admin-address-path` (atomically, so a
        poller never reads half of it); False if the file cannot be written."""
        address = format_host_port(*admin)
        log.info("admin address: %s", address)
        path = self.state.options.admin_address_path
        if not path:
            return True
        try:
            with open(f"{path}.tmp", "w") as f:
                f.write(address)
            os.replace(f"{path}.tmp", path)
        except OSError as exc:
            log.critical("cannot write the admin address to %s: %s", path, exc)
            return False
        return True

    def _announce(self, config: MeshConfigLike, admin: tuple[str, int] | None) -> None:
        # After an xDS initial fetch the state holds the applied config (LDS listeners too).
        applied = self.state.config or config
        listeners = bound_listeners(applied.snapshot, self.engine.listener_ports())
        shown = ", ".join(f"{n}={format_host_port(a, p)}" for n, a, p in listeners) or "none"
        log.info(
            "meshcore %s live: listeners %s; admin %s; concurrency %d",
            __version__,
            shown,
            format_host_port(*admin) if admin else "off",
            self.state.options.concurrency,
        )
        if self._on_ready is not None:
            self._on_ready(ReadyInfo(listeners, admin))

    def terminate(self, reason: str) -> None:
        """First call: drain and exit. A second one while draining: stop at once."""
        if self.state.shutdown_requested.is_set():
            log.info("%s while draining: stopping now", reason)
            self._stop_now.set()
        else:
            self.state.shutdown_requested.set()

    async def reload(self) -> None:
        """Loads the config again; a config that fails to load, translate or apply is logged
        and the running one keeps serving."""
        if self.state.phase is not Phase.LIVE:
            log.warning("not reloading while %s", self.state.phase.name)
            return
        from meshcore.config import ConfigError

        self.control.inc(RELOAD_ATTEMPT)
        path = self.state.options.config_path
        try:
            config = await trio.to_thread.run_sync(self._load)
        except ConfigError as exc:
            self._rejected(f"'{path}' is invalid: " + "; ".join(problems_text(exc)))
            return
        except OSError as exc:
            self._rejected(f"cannot read '{path}': {exc}")
            return
        except Exception as exc:
            log.exception("loading '%s' failed", path)
            self._rejected(f"loading '{path}' failed: {exc!r}")
            return
        try:
            config = await self._apply_reloaded(config)
        except (ValueError, OSError) as exc:
            self._rejected(f"engine rejected '{path}': {exc}")
            return
        previous = self.state.config
        self.state.set_config(config)
        if previous is not None and _admin_address(previous) != _admin_address(config):
            log.warning("admin address changes take effect only after a restart")
        if previous is not None and getattr(previous, "dynamic", None) != getattr(
            config, "dynamic", None
        ):
            log.warning("dynamic_resources changes take effect only after a restart")
        self.control.inc(RELOAD_SUCCESS)
        log.info("configuration '%s' reloaded", path)
        if self._on_reload is not None:
            self._on_reload(True)

    def _rejected(self, why: str) -> None:
        self.control.inc(RELOAD_REJECTED)
        log.error("reload rejected, keeping the running configuration: %s", why)
        if self._on_reload is not None:
            self._on_reload(False)


def _admin_address(config: MeshConfigLike) -> tuple[str, int] | None:
    return (config.admin.address, config.admin.port) if config.admin else None


async def run(
    options: ServerOptions,
    load: ConfigLoader,
    engine_factory: EngineFactory,
    *,
    resolver: Resolver = system_resolver,
    on_ready: Callable[[ReadyInfo], None] | None = None,
) -> int:
    """Loads the config (problems go to stderr, exit status 1), starts the engine and serves
    until drained. The engine is stopped on every way out."""
    from meshcore.config import ConfigError

    try:
        config = await trio.to_thread.run_sync(load)
    except ConfigError as exc:
        for line in problems_text(exc):
            print(line, file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{options.config_path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    try:
        engine = engine_factory(options.concurrency)
    except (ImportError, OSError, ValueError) as exc:
        log.critical("cannot start the engine: %s", exc)
        return 1
    try:
        server = Server(engine, load, options, resolver=resolver, on_ready=on_ready)
        return await server.serve(config)
    finally:
        engine.stop()

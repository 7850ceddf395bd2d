"""The admin endpoints (a subset of Envoy's admin API, same paths, methods and formats)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from meshcore.admin import (
    clusters_view,
    explain_view,
    listeners_view,
    page,
    stats_prometheus,
    stats_text,
    summary,
)
from meshcore.admin.clusters_view import HealthLookup, HostnameLookup, no_health
from meshcore.admin.config_dump import config_dump, static_resources
from meshcore.admin.server import Request, Response
from meshcore.admin.server_info import server_info
from meshcore.admin.stats_model import STAT_TYPES, StatsCollector, select
from meshcore.lifecycle import log_setup
from meshcore.lifecycle.drain_time import drain_time_s
from meshcore.lifecycle.interfaces import EngineApi
from meshcore.lifecycle.state import Phase, ServerState

log = logging.getLogger(__name__)


@dataclass
class AdminContext:
    engine: EngineApi
    state: ServerState
    stats: StatsCollector
    hostname: HostnameLookup
    health: HealthLookup = no_health
    xds_dump: Callable[[bool], Mapping[str, Any]] | None = None
    """The xDS client's dynamic resources for /config_dump (include EDS or not)."""
    summary_cache: summary.SummaryCache = field(default_factory=summary.SummaryCache)


class BadRequest(Exception):
    """A query parameter is wrong; the message becomes the 400 body."""


@dataclass(frozen=True)
class Endpoint:
    path: str
    help: str
    run: Callable[[AdminContext, Request], Response]
    post_only: bool = False
    params: tuple[tuple[str, str], ...] = ()


def _regex(request: Request, param: str = "filter") -> re.Pattern[str] | None:
    pattern = request.query.get(param)
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise BadRequest(f"Invalid regex: {exc}") from None


def _format(request: Request, allowed: tuple[str, ...]) -> str:
    fmt = request.query.get("format", allowed[0])
    if fmt not in allowed:
        raise BadRequest(f"invalid format={fmt}; one of {', '.join(allowed)}")
    return fmt


def _ready(ctx: AdminContext, request: Request) -> Response:
    phase = ctx.state.reported_phase()
    return Response.text(200 if phase is Phase.LIVE else 503, f"{phase.name}\n")


def _stats(ctx: AdminContext, request: Request) -> Response:
    fmt = _format(request, ("text", "json", "prometheus"))
    kind = request.query.get("type", "All")
    if kind not in STAT_TYPES:
        raise BadRequest(f"invalid type={kind}; one of {', '.join(STAT_TYPES)}")
    snap = select(ctx.stats.snapshot(), _regex(request), kind, "usedonly" in request.query)
    if fmt == "json":
        return Response.json(stats_text.render_json(snap))
    if fmt == "prometheus":
        return Response.text(200, stats_prometheus.render_prometheus(snap))
    return Response.text(200, stats_text.render_text(snap))


def _summary(ctx: AdminContext, request: Request) -> Response:
    pattern = _regex(request)
    if pattern is not None:
        return Response.json(summary.render(summary.summarize(ctx.engine, ctx.state, pattern)))

    def build() -> bytes:
        return summary.render(summary.summarize(ctx.engine, ctx.state))

    return Response.json(ctx.summary_cache.get(build))


def _prometheus(ctx: AdminContext, request: Request) -> Response:
    snap = select(ctx.stats.snapshot(), _regex(request), used_only="usedonly" in request.query)
    return Response.text(200, stats_prometheus.render_prometheus(snap))


def _static_cluster_names(ctx: AdminContext) -> set[str]:
    config = ctx.state.config
    if config is None:
        return set()
    return {str(c.get("name")) for c in static_resources(config.bootstrap, "clusters")}


def _clusters(ctx: AdminContext, request: Request) -> Response:
    fmt = _format(request, ("text", "json"))
    clusters = clusters_view.parse_clusters(ctx.engine.clusters(), _regex(request))
    static = _static_cluster_names(ctx)
    if fmt == "json":
        return Response.json(clusters_view.render_json(clusters, static, ctx.hostname, ctx.health))
    return Response.text(200, clusters_view.render_text(clusters, static, ctx.hostname, ctx.health))


def _listeners(ctx: AdminContext, request: Request) -> Response:
    fmt = _format(request, ("text", "json"))
    snapshot = ctx.state.config.snapshot if ctx.state.config else {}
    listeners = listeners_view.bound_listeners(snapshot, ctx.engine.listener_ports())
    if fmt == "json":
        return Response.json(listeners_view.render_json(listeners))
    return Response.text(200, listeners_view.render_text(listeners))


def _config_dump(ctx: AdminContext, request: Request) -> Response:
    config = ctx.state.config
    bootstrap = config.bootstrap if config else {}
    include_eds = "include_eds" in request.query
    dynamic = ctx.xds_dump(include_eds) if ctx.xds_dump is not None else None
    dump = config_dump(bootstrap, ctx.state.config_applied_at, dynamic, include_eds)
    return Response.json(orjson.dumps(dump, option=orjson.OPT_INDENT_2))


def _explain(ctx: AdminContext, request: Request) -> Response:
    snapshot = ctx.state.config.snapshot if ctx.state.config else {}
    try:
        fields = explain_view.parse_fields(request.method, request.query, request.body)
        status, body, content_type = explain_view.explain_running(ctx.engine, snapshot, fields)
    except explain_view.BadExplainRequest as exc:
        raise BadRequest(str(exc)) from None
    return Response(status, body, content_type)


def _server_info(ctx: AdminContext, request: Request) -> Response:
    info = server_info(ctx.state, drain_time_s(ctx.state.options.drain_time_s))
    return Response.json(orjson.dumps(info, option=orjson.OPT_INDENT_2))


def _healthcheck(failed: bool) -> Callable[[AdminContext, Request], Response]:
    def run(ctx: AdminContext, request: Request) -> Response:
        if ctx.state.healthcheck_failed != failed:
            log.info("health check %s via admin", "failing" if failed else "passing")
        ctx.state.healthcheck_failed = failed
        return Response.text(200, "OK\n")

    return run


def _quit(ctx: AdminContext, request: Request) -> Response:
    log.info("shutdown requested via /quitquitquit")
    return Response(200, b"OK\n", after_send=ctx.state.shutdown_requested.set)


def _logging(ctx: AdminContext, request: Request) -> Response:
    level = request.query.get("level")
    if level is not None:
        try:
            log_setup.set_level(level)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        log.info("log level set to %s via admin", level)
    return Response.text(200, f"active loggers:\n  {log_setup.ROOT}: {log_setup.current_level()}\n")


def _help_text() -> str:
    lines = []
    for ep in ENDPOINTS.values():
        lines.append(f"  {ep.path}{' (POST)' if ep.post_only else ''}: {ep.help}")
        lines += [f"      {name}: {text}" for name, text in ep.params]
    return "admin commands are:\n" + "".join(line + "\n" for line in lines)


def _help(ctx: AdminContext, request: Request) -> Response:
    return Response.text(200, _help_text())


def _home(ctx: AdminContext, request: Request) -> Response:
    endpoints = ((ep.path, ep.help, ep.post_only) for ep in ENDPOINTS.values())
    return Response(200, page.home(endpoints), "text/html; charset=UTF-8")


_USED_ONLY = ("usedonly", "only stats that were used (counters and gauges not zero)")
_FILTER = ("filter", "Regular expression (Python re) for filtering by name")
_FORMAT = ("format", "text (default) or json")

ENDPOINTS: dict[str, Endpoint] = {
    ep.path: ep
    for ep in (
        Endpoint("/", "Admin home page: live charts, cluster health, these endpoints", _home),
        Endpoint("/clusters", "upstream cluster status", _clusters, params=(_FILTER, _FORMAT)),
        Endpoint(
            "/config_dump",
            "dump current Envoy configs",
            _config_dump,
            params=(("include_eds", "dump currently loaded EDS configs"),),
        ),
        Endpoint(
            "/healthcheck/fail", "cause the server to fail health checks", _healthcheck(True), True
        ),
        Endpoint(
            "/healthcheck/ok", "cause the server to pass health checks", _healthcheck(False), True
        ),
        Endpoint(
            "/explain",
            "which listener, filter chain, route and cluster a request would get (GET with "
            "these parameters, or POST them as a JSON object)",
            _explain,
            params=explain_view.PARAMS,
        ),
        Endpoint("/help", "print out list of admin commands", _help),
        Endpoint("/listeners", "print listener info", _listeners, params=(_FORMAT,)),
        Endpoint(
            "/logging",
            "query/change logging levels",
            _logging,
            True,
            (("level", "trace, debug, info, warning, error, critical or off"),),
        ),
        Endpoint("/quitquitquit", "exit the server", _quit, True),
        Endpoint("/ready", "print server state, return 200 if LIVE, otherwise return 503", _ready),
        Endpoint("/server_info", "print server version/status information", _server_info),
        Endpoint(
            "/stats",
            "print server stats",
            _stats,
            params=(
                _FILTER,
                ("format", "text (default), json or prometheus"),
                ("type", "All (default), Counters, Gauges or Histograms"),
                _USED_ONLY,
            ),
        ),
        Endpoint(
            "/stats/summary",
            "compact JSON for the admin page and `meshcore top`: per connection manager "
            "and per cluster (one array per field) request counters, health, latency",
            _summary,
            params=(("filter", "Regular expression (Python re) for filtering clusters"),),
        ),
        Endpoint(
            "/stats/prometheus",
            "print server stats in prometheus format",
            _prometheus,
            params=(_FILTER, _USED_ONLY),
        ),
    )
}


class AdminApp:
    """Routes a request to its endpoint; a failing endpoint answers 500 and is logged."""

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx

    async def __call__(self, request: Request) -> Response:
        endpoint = ENDPOINTS.get(request.path)
        if endpoint is None and request.method in ("GET", "HEAD"):
            asset = page.static_file(request.path)
            if asset is not None:
                return Response(200, *asset)
        if endpoint is None:
            return Response.text(404, "invalid path. " + _help_text())
        if endpoint.post_only and request.method != "POST":
            log.error(
                'admin path "%s" mutates state, method=%s rather than POST',
                request.path,
                request.method,
            )
            return Response.text(405, f"Method {request.method} not allowed, POST required.")
        try:
            return endpoint.run(self.ctx, request)
        except BadRequest as exc:
            return Response.text(400, f"{exc}\n")
        except Exception:
            log.exception("admin %s %s failed", request.method, request.path)
            return Response.text(500, "internal error; see the meshcore log\n")

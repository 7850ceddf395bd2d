"""`static_resources.listeners` (one filter chain: network local_ratelimit filters, then an
http_connection_manager or a tcp_proxy) into the snapshot's `Listener`s."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from . import paths, translate_http2
from .errors import Problems
from .supported import HCM, NETWORK_LOCAL_RATELIMIT, ROUTER, TCP_PROXY
from .translate_access_log import access_logs
from .translate_http_filters import http_filters
from .translate_network import connection_rate_limit, tcp_proxy
from .translate_routes import ClusterRefs, route_config
from .translate_timeouts import connection_limits, stream_timeouts
from .type_urls import type_name, unpack
from .values import duration_field_ms, enum_name, is_ip, wrapped

DEFAULT_BUFFER_LIMIT = 1024 * 1024
DEFAULT_IDLE_TIMEOUT_MS = 3_600_000
DEFAULT_DRAIN_TIMEOUT_MS = 5_000
_ROUTER_NAME = "envoy.filters.http.router"


def listeners(
    configs: Sequence[listener_pb2.Listener], path: str, problems: Problems, refs: ClusterRefs
) -> list[dict[str, Any]]:
    out = []
    names: dict[str, str] = {}
    for i, config in enumerate(configs):
        listener_path = paths.item(path, i)
        translated = _listener(config, listener_path, problems, refs)
        if translated is None:
            continue
        name = translated["name"]
        if name in names:
            problems.add(
                paths.field(listener_path, "name"),
                f"duplicate listener name {name!r} (also at {names[name]})",
            )
        names[name] = listener_path
        out.append(translated)
    return out


def _listener(
    config: listener_pb2.Listener, path: str, problems: Problems, refs: ClusterRefs
) -> dict[str, Any] | None:
    address_path = paths.field(paths.field(path, "address"), "socket_address")
    if not config.address.HasField("socket_address"):
        if not config.HasField("address"):
            problems.add(paths.field(path, "address"), "is required")
        return None  # another address kind: reported by the table
    socket = config.address.socket_address
    if not is_ip(socket.address):
        problems.add(
            paths.field(address_path, "address"), f"malformed IP address: {socket.address!r}"
        )
    chain = _filter_chain(config, path, problems, refs)
    if chain is None:
        return None
    terminal, rate_limits = chain
    return {
        "name": config.name or f"{socket.address}:{socket.port_value}",
        "address": socket.address,
        "port": socket.port_value,
        "stat_prefix": config.stat_prefix or None,
        "per_connection_buffer_limit_bytes": wrapped(
            config, "per_connection_buffer_limit_bytes", DEFAULT_BUFFER_LIMIT
        ),
        **({"connection_rate_limits": rate_limits} if rate_limits else {}),
        "filter": terminal,
    }


def _filter_chain(
    config: listener_pb2.Listener, path: str, problems: Problems, refs: ClusterRefs
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The snapshot's terminal `filter` and `connection_rate_limits` of the listener's only
    filter chain (None when it cannot be translated; the problems say why)."""
    chains_path = paths.field(path, "filter_chains")
    if len(config.filter_chains) != 1:
        problems.add(
            chains_path, f"exactly one filter chain is supported, found {len(config.filter_chains)}"
        )
        if not config.filter_chains:
            return None
    filters_path = paths.field(paths.item(chains_path, 0), "filters")
    filters = config.filter_chains[0].filters
    if not filters:
        problems.add(filters_path, "must end with an http_connection_manager or a tcp_proxy filter")
        return None
    terminal: dict[str, Any] | None = None
    rate_limits: list[dict[str, Any]] = []
    last = len(filters) - 1
    for i, network_filter in enumerate(filters):
        filter_path = paths.item(filters_path, i)
        typed_path = paths.field(filter_path, "typed_config")
        if not network_filter.HasField("typed_config"):
            if network_filter.WhichOneof("config_type") is None:
                problems.add(typed_path, "is required")
            return None
        kind = type_name(network_filter.typed_config.type_url)
        inner = unpack(network_filter.typed_config)
        if inner is None or kind not in (HCM, TCP_PROXY, NETWORK_LOCAL_RATELIMIT):
            return None  # reported by the table
        if kind == NETWORK_LOCAL_RATELIMIT:
            if i == last:
                problems.add(
                    filter_path,
                    "local_ratelimit cannot be the last filter: the chain must end with an "
                    "http_connection_manager or a tcp_proxy",
                )
            else:
                rate_limits.append(connection_rate_limit(inner, typed_path, problems))
        elif i != last:
            problems.add(filter_path, f"{kind.rsplit('.', 1)[-1]} must be the last filter")
        elif kind == HCM:
            manager = http_connection_manager(inner, typed_path, problems, refs)
            terminal = {"http_connection_manager": manager}
        else:
            terminal = {"tcp_proxy": tcp_proxy(inner, typed_path, problems)}
    if terminal is None:
        return None
    return terminal, rate_limits


def _check_http_filters(
    manager: hcm_pb2.HttpConnectionManager, path: str, problems: Problems
) -> None:
    """The router must be the last HTTP filter (the filters before it: the table)."""
    filters_path = paths.field(path, "http_filters")
    if not manager.http_filters:
        problems.add(
            filters_path,
            f"must end with the router filter ({_ROUTER_NAME}); Envoy answers nothing without it",
        )
        return
    for i, http_filter in enumerate(manager.http_filters):
        filter_path = paths.item(filters_path, i)
        if not http_filter.HasField("typed_config"):
            if http_filter.WhichOneof("config_type") is None:
                problems.add(paths.field(filter_path, "typed_config"), "is required")
            continue
        is_router = type_name(http_filter.typed_config.type_url) == ROUTER
        if is_router and i != len(manager.http_filters) - 1:
            problems.add(filter_path, "the router must be the last HTTP filter")


def http_connection_manager(
    manager: hcm_pb2.HttpConnectionManager, path: str, problems: Problems, refs: ClusterRefs
) -> dict[str, Any]:
    """The snapshot `HttpConnectionManager` for `manager` (at `path`)."""
    _check_http_filters(manager, path, problems)
    if manager.HasField("route_config"):
        routes = route_config(
            manager.route_config, paths.field(path, "route_config"), problems, refs
        )
    elif manager.HasField("rds"):
        # Filled in from the RouteConfiguration by the xDS client (meshcore/xds).
        routes = {"name": manager.rds.route_config_name, "virtual_hosts": [], "headers": {}}
        if not manager.rds.config_source.HasField("ads"):
            problems.add(
                paths.field(paths.field(path, "rds"), "config_source"),
                "only `ads: {}` is supported (RDS over the ADS stream)",
            )
    else:  # scoped_routes: the table; none: PGV
        routes = {"name": "", "virtual_hosts": [], "headers": {}}
    common = manager.common_http_protocol_options
    http1 = manager.http_protocol_options
    out = {
        "stat_prefix": manager.stat_prefix,
        "route_config": routes,
        "use_remote_address": wrapped(manager, "use_remote_address", False),
        "xff_num_trusted_hops": manager.xff_num_trusted_hops,
        "skip_xff_append": bool(manager.skip_xff_append),
        "generate_request_id": wrapped(manager, "generate_request_id", True),
        "preserve_external_request_id": bool(manager.preserve_external_request_id),
        "server_name": manager.server_name or "envoy",
        "server_header_transformation": enum_name(manager, "server_header_transformation").lower(),
        "max_request_headers_kb": wrapped(manager, "max_request_headers_kb", 60),
        "strip_port_mode": _strip_port_mode(manager, path, problems),
        "accept_http_10": http1.accept_http_10,
        "default_host_for_http_10": _default_host_for_http_10(
            http1.default_host_for_http_10,
            paths.field(paths.field(path, "http_protocol_options"), "default_host_for_http_10"),
            problems,
        ),
        "idle_timeout_ms": duration_field_ms(common, "idle_timeout", DEFAULT_IDLE_TIMEOUT_MS),
        # Envoy's HTTP/2 GOAWAY grace period; the process drain time is `--drain-time-s`.
        "drain_timeout_ms": duration_field_ms(manager, "drain_timeout", DEFAULT_DRAIN_TIMEOUT_MS),
        **connection_limits(manager),
        **stream_timeouts(manager),
        **translate_http2.downstream(manager),
    }
    filters = http_filters(manager, path, problems)
    if filters:
        out["http_filters"] = filters
    logs = access_logs(manager, path, problems)
    if logs:
        out["access_log"] = logs
    return out


def _strip_port_mode(manager: hcm_pb2.HttpConnectionManager, path: str, problems: Problems) -> str:
    """`strip_any_host_port` ("any") or `strip_matching_host_port` ("matching"); Envoy
    rejects both at once."""
    if manager.strip_any_host_port and manager.strip_matching_host_port:
        problems.add(
            paths.field(path, "strip_matching_host_port"),
            "cannot be set together with strip_any_host_port",
        )
    if manager.strip_any_host_port:
        return "any"
    if manager.strip_matching_host_port:
        return "matching"
    return "none"


def _default_host_for_http_10(host: str, path: str, problems: Problems) -> str | None:
    """The Host given to HTTP/1.0 requests that have none (None: unset). It becomes a
    header value, so NUL, CR and LF are refused."""
    if any(c in host for c in "\0\r\n"):
        problems.add(path, f"{host!r} is not a valid Host header value (NUL, CR or LF)")
    return host or None


def one_listener(
    config: listener_pb2.Listener, path: str, problems: Problems, refs: ClusterRefs
) -> dict[str, Any] | None:
    """One listener (an LDS resource at `path`) translated like a static one."""
    return _listener(config, path, problems, refs)


def connection_manager_of(config: listener_pb2.Listener) -> hcm_pb2.HttpConnectionManager | None:
    """The listener's http_connection_manager (None when it has another shape, which
    translation reports)."""
    if len(config.filter_chains) != 1 or not config.filter_chains[0].filters:
        return None
    packed = config.filter_chains[0].filters[-1].typed_config
    if type_name(packed.type_url) != HCM:
        return None
    manager = unpack(packed)
    if manager is None or manager.DESCRIPTOR.full_name != HCM:
        return None
    return cast(hcm_pb2.HttpConnectionManager, manager)


def rds_path(config: listener_pb2.Listener) -> str:
    """Where a listener's `rds` is, relative to the listener (its connection manager is the
    last network filter)."""
    last = max(len(config.filter_chains[0].filters) - 1, 0) if config.filter_chains else 0
    return f"filter_chains[0].filters[{last}].typed_config.rds"

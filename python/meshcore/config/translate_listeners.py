"""`static_resources.listeners` (filter chains of network local_ratelimit, connection_limit
and rbac filters, then an http_connection_manager or a tcp_proxy; their matches and the
listener filters in `translate_filter_chains`) into the snapshot's `Listener`s."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from envoy.config.core.v3 import base_pb2 as core_base_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from . import paths, translate_http2
from .errors import Problems
from .supported import (
    CONNECTION_LIMIT,
    HCM,
    NETWORK_LOCAL_RATELIMIT,
    NETWORK_RBAC,
    ROUTER,
    TCP_PROXY,
)
from .translate_access_log import access_logs
from .translate_filter_chains import filter_chain_match, listener_filters
from .translate_http_filters import http_filters
from .translate_network import connection_limit, connection_rate_limit, tcp_proxy
from .translate_normalization import request_normalization
from .translate_rbac import network_rbac
from .translate_routes import ClusterRefs, route_config
from .translate_timeouts import connection_limits, stream_timeouts
from .translate_tls import downstream as downstream_tls
from .translate_tracing import set_direction, tracing
from .translate_upgrades import upgrade_configs
from .type_urls import type_name, unpack
from .values import duration_field_ms, duration_ms, enum_name, is_ip, wrapped

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
    chains = _filter_chains(config, path, problems, refs)
    if chains is None:
        return None
    out: dict[str, Any] = {
        "name": config.name or f"{socket.address}:{socket.port_value}",
        "address": socket.address,
        "port": socket.port_value,
        "stat_prefix": config.stat_prefix or None,
        "per_connection_buffer_limit_bytes": wrapped(
            config, "per_connection_buffer_limit_bytes", DEFAULT_BUFFER_LIMIT
        ),
        **listener_filters(config, path, problems),
        "filter_chains": chains[0],
    }
    if chains[1] is not None:
        out["default_filter_chain"] = chains[1]
    if config.ignore_global_conn_limit:
        out["ignore_global_conn_limit"] = True
    logs = access_logs(config, path, problems)
    if logs:
        out["access_log"] = logs
    set_direction(out, config.traffic_direction == core_base_pb2.TrafficDirection.OUTBOUND)
    return out


def _filter_chains(
    config: listener_pb2.Listener, path: str, problems: Problems, refs: ClusterRefs
) -> tuple[list[dict[str, Any]], dict[str, Any] | None] | None:
    """The snapshot's `filter_chains` and `default_filter_chain` (None when one cannot be
    translated; the problems say why)."""
    chains_path = paths.field(path, "filter_chains")
    has_default = config.HasField("default_filter_chain")
    if not config.filter_chains and not has_default:
        problems.add(chains_path, "a listener needs a filter chain or a default_filter_chain")
        return None
    out: list[dict[str, Any]] = []
    for i, chain in enumerate(config.filter_chains):
        chain_path = paths.item(chains_path, i)
        translated = _filter_chain(chain, chain_path, problems, refs)
        if translated is None:
            return None
        match = translated.get("filter_chain_match", {})
        same = next(
            (j for j, c in enumerate(out) if c.get("filter_chain_match", {}) == match), None
        )
        if same is not None:
            # Envoy rejects it too (overlapping rules are found when the engine compiles).
            problems.add(
                paths.field(chain_path, "filter_chain_match"),
                f"the same matching rules as {paths.item(chains_path, same)}",
            )
        out.append(translated)
    default = None
    if has_default:
        default_path = paths.field(path, "default_filter_chain")
        default = _filter_chain(config.default_filter_chain, default_path, problems, refs)
        if default is None:
            return None
    if len(config.filter_chains) + has_default > 1:
        _check_single_rds(config, path, problems)
    return out, default


def _chains_with_paths(
    config: listener_pb2.Listener, path: str
) -> list[tuple[str, listener_components_pb2.FilterChain]]:
    """Every chain of the listener (the default one last) with its path."""
    chains_path = paths.field(path, "filter_chains")
    out = [(paths.item(chains_path, i), c) for i, c in enumerate(config.filter_chains)]
    if config.HasField("default_filter_chain"):
        out.append((paths.field(path, "default_filter_chain"), config.default_filter_chain))
    return out


def _check_single_rds(config: listener_pb2.Listener, path: str, problems: Problems) -> None:
    """RDS (routes from the xDS stream) is wired for a listener with one chain only."""
    for chain_path, chain in _chains_with_paths(config, path):
        manager = _manager_of_chain(chain)
        if manager is not None and manager.HasField("rds"):
            problems.add(
                f"{chain_path}.filters[{len(chain.filters) - 1}].typed_config.rds",
                "rds is supported only on a listener with one filter chain (yet)",
            )


def _filter_chain(
    chain: listener_components_pb2.FilterChain, path: str, problems: Problems, refs: ClusterRefs
) -> dict[str, Any] | None:
    """The snapshot `FilterChain` for `chain` at `path` (None when it cannot be translated)."""
    filters = _chain_filters(chain, path, problems, refs)
    if filters is None:
        return None
    terminal, rate_limits, limits, rbac = filters
    out: dict[str, Any] = {"name": chain.name}
    match = filter_chain_match(
        chain.filter_chain_match, paths.field(path, "filter_chain_match"), problems
    )
    if match:
        out["filter_chain_match"] = match
    if rate_limits:
        out["connection_rate_limits"] = rate_limits
    if limits:
        out["connection_limits"] = limits
    if rbac:
        out["rbac"] = rbac
    out.update(downstream_tls(chain, path, problems))
    out["filter"] = terminal
    return out


def _chain_filters(
    chain: listener_components_pb2.FilterChain, path: str, problems: Problems, refs: ClusterRefs
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]] | None:
    """The snapshot's terminal `filter`, `connection_rate_limits`, `connection_limits` and
    `rbac` of one filter chain (None when it cannot be translated; the problems say why)."""
    filters_path = paths.field(path, "filters")
    filters = chain.filters
    if not filters:
        problems.add(filters_path, "must end with an http_connection_manager or a tcp_proxy filter")
        return None
    terminal: dict[str, Any] | None = None
    rate_limits: list[dict[str, Any]] = []
    limits: list[dict[str, Any]] = []
    rbac: list[dict[str, Any]] = []
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
        known = (HCM, TCP_PROXY, NETWORK_LOCAL_RATELIMIT, CONNECTION_LIMIT, NETWORK_RBAC)
        if inner is None or kind not in known:
            return None  # reported by the table
        if kind == NETWORK_RBAC:
            if i == last:
                problems.add(filter_path, "rbac cannot be the last filter")
            else:
                rbac.append(network_rbac(inner, typed_path, problems))
        elif kind == CONNECTION_LIMIT:
            if i == last:
                problems.add(filter_path, "connection_limit cannot be the last filter")
            else:
                limits.append(connection_limit(inner, typed_path, problems))
        elif kind == NETWORK_LOCAL_RATELIMIT:
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
    return terminal, rate_limits, limits, rbac


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
        routes = {"name": manager.rds.route_config_name, "virtual_hosts": []}
        if not manager.rds.config_source.HasField("ads"):
            problems.add(
                paths.field(paths.field(path, "rds"), "config_source"),
                "only `ads: {}` is supported (RDS over the ADS stream)",
            )
    else:  # scoped_routes: the table; none: PGV
        routes = {"name": "", "virtual_hosts": []}
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
        **request_normalization(manager, path, problems),
        **_client_cert_details(manager),
        **translate_http2.downstream(manager),
    }
    upgrades = upgrade_configs(
        manager.upgrade_configs, paths.field(path, "upgrade_configs"), problems
    )
    if upgrades:
        out["upgrade_configs"] = upgrades
    filters = http_filters(manager, path, problems)
    if filters:
        out["http_filters"] = filters
    logs = access_logs(manager, path, problems)
    if logs:
        out["access_log"] = logs
    options = manager.access_log_options
    if options.flush_access_log_on_new_request:
        out["flush_access_log_on_new_request"] = True
    if options.flush_log_on_tunnel_successfully_established:
        out["flush_log_on_tunnel_successfully_established"] = True
    if options.HasField("access_log_flush_interval"):
        out["access_log_flush_interval_ms"] = duration_ms(options.access_log_flush_interval)
    traced = tracing(manager, path, problems)
    if traced is not None:
        out["tracing"] = traced
    return out


def _client_cert_details(manager: hcm_pb2.HttpConnectionManager) -> dict[str, Any]:
    """`forward_client_cert_details` and `set_current_client_cert_details` (XFCC), when
    set (the snapshot's defaults are Envoy's)."""
    if not manager.forward_client_cert_details and not manager.HasField(
        "set_current_client_cert_details"
    ):
        return {}
    details = manager.set_current_client_cert_details
    return {
        "forward_client_cert_details": enum_name(manager, "forward_client_cert_details").lower(),
        "set_current_client_cert_details": {
            "subject": wrapped(details, "subject", False),
            "cert": details.cert,
            "chain": details.chain,
            "dns": details.dns,
            "uri": details.uri,
        },
    }


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


def _manager_of_chain(
    chain: listener_components_pb2.FilterChain,
) -> hcm_pb2.HttpConnectionManager | None:
    """The chain's http_connection_manager (None when it ends with another filter)."""
    if not chain.filters:
        return None
    packed = chain.filters[-1].typed_config
    if type_name(packed.type_url) != HCM:
        return None
    manager = unpack(packed)
    if manager is None or manager.DESCRIPTOR.full_name != HCM:
        return None
    return cast(hcm_pb2.HttpConnectionManager, manager)


def connection_manager_of(config: listener_pb2.Listener) -> hcm_pb2.HttpConnectionManager | None:
    """The http_connection_manager of a listener with one filter chain (None when it has
    another shape; several chains with RDS are reported by translation)."""
    chains = _chains_with_paths(config, "")
    if len(chains) != 1:
        return None
    return _manager_of_chain(chains[0][1])


def rds_path(config: listener_pb2.Listener) -> str:
    """Where the `rds` of a one-chain listener is, relative to the listener (its connection
    manager is the last network filter)."""
    chains = _chains_with_paths(config, "")
    chain_path, chain = chains[0] if chains else ("filter_chains[0]", None)
    last = max(len(chain.filters) - 1, 0) if chain is not None else 0
    return f"{chain_path.lstrip('.')}.filters[{last}].typed_config.rds"

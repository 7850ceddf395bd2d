"""The network filters besides the connection manager: `tcp_proxy` and the network
`local_ratelimit`, into the snapshot's `TcpProxy` and `ConnectionRateLimit`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import paths
from .errors import Problems
from .translate_access_log import access_logs
from .values import duration_field_ms, duration_ms, wrapped

if TYPE_CHECKING:  # the modules are imported on demand, by type URL, when a config uses them
    from envoy.extensions.filters.network.local_ratelimit.v3 import (
        local_rate_limit_pb2 as network_lrl,
    )
    from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

DEFAULT_TCP_IDLE_TIMEOUT_MS = 3_600_000
_MIN_FILL_MS = 50


def tcp_proxy(config: tcp_proxy_pb2.TcpProxy, path: str, problems: Problems) -> dict[str, Any]:
    """The snapshot `TcpProxy` for `config` (at `path`). Cluster names are not checked
    against the cluster list: as in Envoy, a missing cluster closes each connection and
    counts `downstream_cx_no_route`."""
    if config.WhichOneof("cluster_specifier") == "weighted_clusters":
        clusters = [{"name": c.name, "weight": c.weight} for c in config.weighted_clusters.clusters]
        if not clusters:
            problems.add(
                paths.field(paths.field(path, "weighted_clusters"), "clusters"),
                "must name at least one cluster",
            )
    else:
        clusters = [{"name": config.cluster, "weight": 1}]
        if not config.cluster:
            problems.add(path, "one of cluster or weighted_clusters is required")
    hash_source_ip = False
    for i, policy in enumerate(config.hash_policy):
        if policy.HasField("source_ip"):
            hash_source_ip = True
        elif not policy.HasField("filter_state"):  # filter_state: reported by the table
            problems.add(paths.item(paths.field(path, "hash_policy"), i), "is empty")
    out = {
        "stat_prefix": config.stat_prefix,
        "clusters": clusters,
        "idle_timeout_ms": duration_field_ms(config, "idle_timeout", DEFAULT_TCP_IDLE_TIMEOUT_MS),
        "max_connect_attempts": wrapped(config, "max_connect_attempts", 1),
        "hash_source_ip": hash_source_ip,
    }
    logs = access_logs(config, path, problems)
    if logs:
        out["access_log"] = logs
    out.update(_tcp_log_options(config, path, problems))
    return out


def _tcp_log_options(
    config: tcp_proxy_pb2.TcpProxy, path: str, problems: Problems
) -> dict[str, Any]:
    """`access_log_options` (or the deprecated `access_log_flush_interval`, which Envoy 1.40
    still accepts, not together with `access_log_options`)."""
    out: dict[str, Any] = {}
    options = config.access_log_options
    # PGV checks both intervals are at least 1ms.
    if config.HasField("access_log_flush_interval"):
        if config.HasField("access_log_options"):
            problems.add(
                paths.field(path, "access_log_flush_interval"),
                "not allowed together with access_log_options",
            )
        out["access_log_flush_interval_ms"] = duration_ms(config.access_log_flush_interval)
    elif options.HasField("access_log_flush_interval"):
        out["access_log_flush_interval_ms"] = duration_ms(options.access_log_flush_interval)
    if options.flush_access_log_on_connected:
        out["flush_access_log_on_connected"] = True
    return out


def connection_limit(config: Any, path: str, problems: Problems) -> dict[str, Any]:
    """The snapshot `ConnectionLimit` for a network `connection_limit` filter (at `path`)."""
    if not config.stat_prefix:
        problems.add(paths.field(path, "stat_prefix"), "must not be empty")
    return {
        "stat_prefix": config.stat_prefix,
        "max_connections": int(wrapped(config, "max_connections", 0)),
        "delay_ms": duration_field_ms(config, "delay", 0),
    }


def connection_rate_limit(
    config: network_lrl.LocalRateLimit, path: str, problems: Problems
) -> dict[str, Any]:
    """The snapshot `ConnectionRateLimit` for `config` (at `path`)."""
    bucket = config.token_bucket
    fill_ms = duration_ms(bucket.fill_interval)
    if fill_ms < _MIN_FILL_MS:
        problems.add(
            paths.field(paths.field(path, "token_bucket"), "fill_interval"),
            "must be at least 50ms",
        )
    return {
        "stat_prefix": config.stat_prefix,
        "token_bucket": {
            "max_tokens": bucket.max_tokens,
            "tokens_per_fill": wrapped(bucket, "tokens_per_fill", 1),
            "fill_interval_ms": max(fill_ms, _MIN_FILL_MS),
        },
    }

"""The bootstrap's `stats_sinks` (`envoy.stat_sinks.statsd` over UDP) and
`stats_flush_interval` into the `StatsdTarget`s the control layer pushes stats to."""

from __future__ import annotations

from envoy.config.bootstrap.v3 import bootstrap_pb2

from meshcore.sinks.target import DEFAULT_PREFIX, StatsdTarget

from . import paths
from .errors import Problems
from .supported import STATSD_SINK
from .type_urls import type_name, unpack
from .values import duration_ms, is_ip

DEFAULT_FLUSH_INTERVAL_MS = 5_000


def stats_sinks(bootstrap: bootstrap_pb2.Bootstrap, problems: Problems) -> tuple[StatsdTarget, ...]:
    """The statsd sinks of `bootstrap` (other sink types are reported by the table)."""
    out = []
    for i, sink in enumerate(bootstrap.stats_sinks):
        path = paths.item("stats_sinks", i)
        typed_path = paths.field(path, "typed_config")
        if not sink.HasField("typed_config"):
            problems.add(typed_path, "is required")
            continue
        config = unpack(sink.typed_config)
        if config is None or type_name(sink.typed_config.type_url) != STATSD_SINK:
            continue
        if config.WhichOneof("statsd_specifier") != "address":
            if config.WhichOneof("statsd_specifier") is None:
                problems.add(typed_path, "one of address or tcp_cluster_name is required")
            continue  # tcp_cluster_name: reported by the table
        address_path = paths.field(paths.field(typed_path, "address"), "socket_address")
        if not config.address.HasField("socket_address"):
            problems.add(paths.field(typed_path, "address"), "needs a socket_address")
            continue
        socket = config.address.socket_address
        if not is_ip(socket.address):
            problems.add(
                paths.field(address_path, "address"), f"malformed IP address: {socket.address!r}"
            )
            continue
        if not socket.port_value:
            problems.add(paths.field(address_path, "port_value"), "must be set")
            continue
        out.append(StatsdTarget(socket.address, socket.port_value, config.prefix or DEFAULT_PREFIX))
    return tuple(out)


def flush_interval_s(bootstrap: bootstrap_pb2.Bootstrap) -> float:
    """`stats_flush_interval` (Envoy's default 5 s; PGV keeps it within [1 ms, 300 s))."""
    if bootstrap.HasField("stats_flush_interval"):
        return duration_ms(bootstrap.stats_flush_interval) / 1000
    return DEFAULT_FLUSH_INTERVAL_MS / 1000

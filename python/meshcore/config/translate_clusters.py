"""`static_resources.clusters` into the snapshot's `Cluster`s, plus the DNS clusters the
control layer resolves.

LOGICAL_DNS is resolved like STRICT_DNS: its one endpoint (Envoy requires exactly one) is
re-resolved every `dns_refresh_rate` and every address returned is used, where Envoy would
connect to the first address only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2

from . import paths, translate_http2
from .errors import Problems
from .model import ClusterHealthCheck, DnsCluster, DnsFamily, DnsHost
from .supported import UPSTREAM_HTTP_OPTIONS
from .translate_circuit_breakers import circuit_breakers
from .translate_health import health_check
from .translate_lb import check_priorities, lb_settings
from .translate_normalization import check_upstream_header_options
from .translate_outlier import outlier_detection
from .translate_timeouts import upstream_limits
from .translate_tls import upstream as upstream_tls
from .type_urls import type_name, unpack
from .values import duration_field_ms, duration_field_s, enum_name, is_ip, wrapped

DEFAULT_CONNECT_TIMEOUT_MS = 5_000
DEFAULT_IDLE_TIMEOUT_MS = 3_600_000
DEFAULT_BUFFER_LIMIT = 1024 * 1024
DEFAULT_DNS_REFRESH_S = 5.0
_DNS_TYPES = ("STRICT_DNS", "LOGICAL_DNS")
_UNHEALTHY = ("UNHEALTHY", "DRAINING", "TIMEOUT")
_FAMILIES: dict[str, DnsFamily] = {
    "AUTO": "auto",
    "V4_ONLY": "v4",
    "V6_ONLY": "v6",
    "V4_PREFERRED": "auto",
}


@dataclass
class Clusters:
    """The translated clusters."""

    snapshot: list[dict[str, Any]] = field(default_factory=list)
    dns: list[DnsCluster] = field(default_factory=list)
    health: list[ClusterHealthCheck] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    eds: dict[str, str] = field(default_factory=dict)
    """EDS clusters: cluster name -> the ClusterLoadAssignment name (`service_name`)."""
    http2: set[str] = field(default_factory=set)
    """Clusters with HTTP/2 upstream options."""


def clusters(configs: Sequence[cluster_pb2.Cluster], path: str, problems: Problems) -> Clusters:
    out = Clusters()
    where: dict[str, str] = {}
    for i, config in enumerate(configs):
        cluster_path = paths.item(path, i)
        if config.name in where:
            problems.add(
                paths.field(cluster_path, "name"),
                f"duplicate cluster {config.name!r} (also at {where[config.name]})",
            )
            continue
        where[config.name] = cluster_path
        out.names.add(config.name)
        _cluster(config, cluster_path, problems, out)
    return out


def _cluster(config: cluster_pb2.Cluster, path: str, problems: Problems, out: Clusters) -> None:
    kind = enum_name(config, "type")
    hosts = assignment_hosts(
        config.load_assignment, kind, paths.field(path, "load_assignment"), problems
    )
    endpoints: list[dict[str, Any]] = []
    if kind == "EDS":
        _eds(config, path, problems, out)
    http2 = translate_http2.upstream(config)
    follows = http2 is not None and translate_http2.follows_downstream(config)
    auto = translate_http2.negotiates(config)
    if http2 is not None and not auto:
        out.http2.add(config.name)
    if auto and not config.HasField("transport_socket"):
        options_path = paths.item(
            paths.field(path, "typed_extension_protocol_options"), UPSTREAM_HTTP_OPTIONS
        )
        problems.add(
            paths.field(options_path, "auto_config"),
            f"ALPN configured for cluster {config.name} which has a non-ALPN transport socket "
            "(auto_config chooses the protocol by TLS ALPN: set a TLS transport_socket)",
        )
    if kind in _DNS_TYPES:
        out.dns.append(
            DnsCluster(
                name=config.name,
                hosts=tuple(
                    DnsHost(h["address"], h["port"], h["weight"], h["priority"]) for h in hosts
                ),
                refresh_rate_s=duration_field_s(config, "dns_refresh_rate", DEFAULT_DNS_REFRESH_S),
                family=_FAMILIES.get(enum_name(config, "dns_lookup_family"), "auto"),
                alt_stat_name=config.alt_stat_name,
            )
        )
    else:
        endpoints = hosts
    connect_timeout_ms = duration_field_ms(config, "connect_timeout", DEFAULT_CONNECT_TIMEOUT_MS)
    checked = health_check(config, connect_timeout_ms, http2 is not None, path, problems)
    if checked is not None:
        out.health.append(checked)
    resilience: dict[str, Any] = upstream_limits(config, path)
    check_upstream_header_options(config, path, problems)
    if config.HasField("circuit_breakers"):
        at = paths.field(path, "circuit_breakers")
        resilience["circuit_breakers"] = circuit_breakers(config.circuit_breakers, at, problems)
    out.snapshot.append(
        {
            "name": config.name,
            **({"alt_stat_name": config.alt_stat_name} if config.alt_stat_name else {}),
            "connect_timeout_ms": connect_timeout_ms,
            "lb_policy": enum_name(config, "lb_policy").lower(),
            "least_request_choice_count": wrapped(
                config.least_request_lb_config, "choice_count", 2
            ),
            "endpoints": endpoints,
            "idle_timeout_ms": _idle_timeout_ms(config, path, problems),
            "per_connection_buffer_limit_bytes": wrapped(
                config, "per_connection_buffer_limit_bytes", DEFAULT_BUFFER_LIMIT
            ),
            **resilience,
            "lb": lb_settings(config, path, problems),
            **outlier_detection(config, path, problems),
            **upstream_tls(config, path, problems),
            **({"http2": translate_http2.options(http2)} if http2 is not None else {}),
            **({"http2_follows_downstream": True} if follows else {}),
            **({"http_auto": True} if auto else {}),
        }
    )


def _eds(config: cluster_pb2.Cluster, path: str, problems: Problems, out: Clusters) -> None:
    """An EDS cluster: its endpoints come from the ClusterLoadAssignment `service_name`."""
    eds = config.eds_cluster_config
    source_path = paths.field(paths.field(path, "eds_cluster_config"), "eds_config")
    if not eds.eds_config.HasField("ads"):
        problems.add(
            source_path, "EDS clusters need `eds_config: {ads: {}}` (only ADS is supported)"
        )
    if config.HasField("load_assignment"):
        problems.add(
            paths.field(path, "load_assignment"),
            "an EDS cluster takes its endpoints from EDS, not from load_assignment",
        )
    out.eds[config.name] = eds.service_name or config.name


def speaks_http2(config: cluster_pb2.Cluster) -> bool:
    """Whether a cluster sets HTTP/2 upstream options (deprecated field or typed options)."""
    return translate_http2.upstream(config) is not None


def one_cluster(config: cluster_pb2.Cluster, path: str, problems: Problems) -> Clusters:
    """One cluster (a CDS resource at `path`) translated like a static one."""
    out = Clusters()
    out.names.add(config.name)
    _cluster(config, path, problems, out)
    return out


def assignment_hosts(
    assignment: endpoint_pb2.ClusterLoadAssignment, kind: str, path: str, problems: Problems
) -> list[dict[str, Any]]:
    """The endpoints of a `load_assignment` (or of an EDS ClusterLoadAssignment at `path`)
    as snapshot `Endpoint`s (hostnames for DNS)."""
    groups = assignment.endpoints
    groups_path = paths.field(path, "endpoints")
    if kind == "LOGICAL_DNS" and (len(groups) != 1 or len(groups[0].lb_endpoints) != 1):
        problems.add(
            groups_path,
            "LOGICAL_DNS clusters must have a single locality_lb_endpoint and a single lb_endpoint",
        )
    hosts = []
    for i, group in enumerate(groups):
        group_path = paths.item(groups_path, i)
        lb_path = paths.field(group_path, "lb_endpoints")
        for j, lb_endpoint in enumerate(group.lb_endpoints):
            host = endpoint_host(lb_endpoint, kind, paths.item(lb_path, j), problems)
            if host is not None:
                hosts.append({**host, "priority": group.priority})
    check_priorities(groups, groups_path, problems)
    return hosts


def endpoint_host(
    lb_endpoint: endpoint_components_pb2.LbEndpoint, kind: str, path: str, problems: Problems
) -> dict[str, Any] | None:
    """One `lb_endpoint` (at `path`) as a snapshot `Endpoint` without its group's
    `priority`; None when it has no socket address (reported unless another rule does)."""
    endpoint_path = paths.field(path, "endpoint")
    if not lb_endpoint.HasField("endpoint"):
        if lb_endpoint.WhichOneof("host_identifier") is None:
            problems.add(endpoint_path, "is required")
        return None
    address = lb_endpoint.endpoint.address
    address_path = paths.field(endpoint_path, "address")
    if not address.HasField("socket_address"):
        if not lb_endpoint.endpoint.HasField("address"):
            problems.add(address_path, "is required")
        return None  # another address kind: reported by PGV or the table
    socket = address.socket_address
    health = enum_name(lb_endpoint, "health_status")
    if kind in _DNS_TYPES:
        if lb_endpoint.health_status != 0:
            problems.add(
                paths.field(path, "health_status"),
                "health_status is only supported in STATIC clusters",
            )
    elif not is_ip(socket.address):
        problems.add(
            paths.field(paths.field(address_path, "socket_address"), "address"),
            f"malformed IP address: {socket.address!r}; STATIC clusters need IP literals "
            "(use STRICT_DNS for names)",
        )
    return {
        "address": socket.address,
        "port": socket.port_value,
        "weight": wrapped(lb_endpoint, "load_balancing_weight", 1),
        "healthy": health not in _UNHEALTHY,
    }


def _idle_timeout_ms(config: cluster_pb2.Cluster, path: str, problems: Problems) -> int:
    """Upstream idle timeout, from the deprecated `common_http_protocol_options` or from
    `typed_extension_protocol_options[envoy.extensions.upstreams.http.v3.HttpProtocolOptions]`."""
    options_path = paths.field(path, "typed_extension_protocol_options")
    common = None
    for key in sorted(config.typed_extension_protocol_options):
        packed = config.typed_extension_protocol_options[key]
        if key != UPSTREAM_HTTP_OPTIONS:
            problems.add(
                paths.item(options_path, key),
                f"unknown protocol options key; meshcore knows {UPSTREAM_HTTP_OPTIONS}",
            )
            continue
        if type_name(packed.type_url) != UPSTREAM_HTTP_OPTIONS:
            continue  # reported by the table
        options = unpack(packed)
        if options is not None and options.HasField("common_http_protocol_options"):
            common = options.common_http_protocol_options
    if config.HasField("common_http_protocol_options"):
        if config.typed_extension_protocol_options:
            problems.add(
                paths.field(path, "common_http_protocol_options"),
                "cannot be set together with typed_extension_protocol_options",
            )
        common = config.common_http_protocol_options
    if common is None:
        return DEFAULT_IDLE_TIMEOUT_MS
    return duration_field_ms(common, "idle_timeout", DEFAULT_IDLE_TIMEOUT_MS)

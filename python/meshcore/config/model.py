"""What loading a bootstrap yields: the engine snapshot plus what the control layer needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import orjson

from meshcore.health.spec import ClusterHealthCheck
from meshcore.sinks.target import StatsdTarget

if TYPE_CHECKING:
    from .grpc_tls import GrpcTls

__all__ = [
    "AdminConfig",
    "AdsConfig",
    "ClusterHealthCheck",
    "DnsCluster",
    "DnsHost",
    "DynamicConfig",
    "MeshConfig",
    "XdsSource",
]

DnsFamily = Literal["v4", "v6", "auto"]


@dataclass(frozen=True)
class AdminConfig:
    """`admin.address.socket_address`: where the admin API listens."""

    address: str
    port: int


@dataclass(frozen=True)
class DnsHost:
    """One `lb_endpoint` of a DNS cluster: a name to resolve, its port, weight and priority."""

    hostname: str
    port: int
    weight: int
    priority: int = 0


@dataclass(frozen=True)
class DnsCluster:
    """A STRICT_DNS or LOGICAL_DNS cluster that the control layer resolves every
    `refresh_rate_s`; its snapshot endpoints start empty."""

    name: str
    hosts: tuple[DnsHost, ...]
    refresh_rate_s: float
    family: DnsFamily
    alt_stat_name: str = ""

    @property
    def stat_name(self) -> str:
        """The name of its stats (`cluster.<stat_name>.update_*`): `alt_stat_name` or `name`."""
        return self.alt_stat_name or self.name


@dataclass(frozen=True)
class AdsConfig:
    """`dynamic_resources.ads_config`: the ADS stream meshcore opens."""

    cluster: str
    """The static cluster `grpc_services[0].envoy_grpc.cluster_name` names."""
    target: str
    """Its address as a gRPC target (`ipv4:127.0.0.1:18000`, `dns:///xds.local:18000`)."""
    delta: bool
    """`api_type: DELTA_GRPC` (else GRPC, state of the world)."""
    node_on_first_message_only: bool
    initial_metadata: tuple[tuple[str, str], ...] = ()
    http2: bool = False
    """The cluster has HTTP/2 options (for gRPC): routes may not use it."""
    tls: GrpcTls | None = None
    """The cluster's TLS (`transport_socket`), for grpcio's channel; None: plain text."""


@dataclass(frozen=True)
class XdsSource:
    """`lds_config` / `cds_config`: over ADS, or a watched file (`path_config_source`)."""

    path: str
    """Where it is in the bootstrap (`dynamic_resources.lds_config`)."""
    file: str | None
    """`path_config_source.path` (None: ADS)."""
    watched_directory: str | None
    initial_fetch_timeout_s: float
    """0: wait forever."""


@dataclass(frozen=True)
class DynamicConfig:
    """`dynamic_resources`: where listeners and clusters come from."""

    ads: AdsConfig | None
    lds: XdsSource | None
    cds: XdsSource | None
    node: bytes
    """The bootstrap's `node` (a serialized `envoy.config.core.v3.Node`) for the stream."""


@dataclass(frozen=True)
class MeshConfig:
    """A loaded, validated bootstrap."""

    snapshot: dict[str, Any]
    """The engine snapshot (`fastpath/src/config/snapshot.rs`)."""
    admin: AdminConfig | None
    dns_clusters: tuple[DnsCluster, ...]
    node_id: str
    node_cluster: str
    bootstrap: dict[str, Any]
    """The bootstrap as JSON with proto field names, for `/config_dump`."""
    health_checks: tuple[ClusterHealthCheck, ...] = ()
    """Each cluster's active health check (run by the control layer, not in the snapshot)."""
    dynamic: DynamicConfig | None = None
    """`dynamic_resources` (None: a static config; meshcore never imports gRPC)."""
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False)
    """`static_resources.secrets` by name, as snapshot TLS values (config/secrets.py)."""
    stats_sinks: tuple[StatsdTarget, ...] = ()
    """`stats_sinks`: statsd servers the control layer pushes stats to."""
    stats_flush_interval_s: float = 5.0
    """`stats_flush_interval`: how often sinks are flushed and histogram intervals end."""
    sds_listeners: tuple[dict[str, Any], ...] = ()
    """Static listeners whose TLS names an SDS secret from ADS, a stream or a file: not in
    `snapshot` (they warm); the xDS client adds each, resolved, once its secrets came."""
    tracing: bytes = b""
    """The bootstrap's `tracing`, serialized (b"": none; bytes keep protobuf out of the
    serving process): its `http` provider serves the connection managers of LDS listeners
    that name none, as it does static ones (`xds_resources.bootstrap_tracing`)."""

    def snapshot_bytes(self) -> bytes:
        """The snapshot as the JSON `Engine.apply` takes."""
        return orjson.dumps(self.snapshot)

"""What a cluster's `health_checks[0]` asks for, as the config layer translates it (times in
integer milliseconds, Envoy's defaults filled in)."""

from __future__ import annotations

from dataclasses import dataclass

# Envoy's defaults (`HealthCheckerImplBase`): a cluster that has never had traffic is
# checked every 60 s; an HTTP check expects 200; `receive` looks at the first 1024 bytes.
DEFAULT_NO_TRAFFIC_INTERVAL_MS = 60_000
DEFAULT_EXPECTED_STATUSES: tuple[tuple[int, int], ...] = ((200, 201),)
DEFAULT_RESPONSE_BUFFER_SIZE = 1024


@dataclass(frozen=True)
class HeaderToAdd:
    """One `request_headers_to_add` entry (append_action in Envoy's lower-case spelling)."""

    key: str
    value: str
    append_action: str = "append_if_exists_or_add"
    keep_empty_value: bool = False


@dataclass(frozen=True)
class HttpCheck:
    """`http_health_check`: an HTTP/1.1 request whose status (and optionally body) decides."""

    path: str
    host: str = ""
    """Host header; "" means the cluster's name (as Envoy)."""
    method: str = "GET"
    expected_statuses: tuple[tuple[int, int], ...] = DEFAULT_EXPECTED_STATUSES
    """Half-open ranges [start, end)."""
    retriable_statuses: tuple[tuple[int, int], ...] = ()
    receive: tuple[bytes, ...] = ()
    """Segments that must appear, in order, in the first `response_buffer_size` body bytes."""
    response_buffer_size: int = DEFAULT_RESPONSE_BUFFER_SIZE
    headers_to_add: tuple[HeaderToAdd, ...] = ()
    headers_to_remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class TcpCheck:
    """`tcp_health_check`: connect, write `send`, expect each `receive` segment in order (no
    `receive`: connecting is the check)."""

    send: bytes = b""
    receive: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class GrpcCheck:
    """`grpc_health_check`: a `grpc.health.v1.Health/Check` call over HTTP/2 (cleartext);
    the host passes when the call ends with grpc-status 0 and the answer is SERVING."""

    service_name: str | None = None
    """The `service` asked about; None (not set) asks about the whole server."""
    authority: str = ""
    """`:authority`; "" means the cluster's name (as Envoy)."""
    initial_metadata: tuple[HeaderToAdd, ...] = ()


@dataclass(frozen=True)
class ClusterHealthCheck:
    """The active health check of one cluster."""

    cluster: str
    timeout_ms: int
    interval_ms: int
    unhealthy_threshold: int
    healthy_threshold: int
    http: HttpCheck | None = None
    tcp: TcpCheck | None = None
    grpc: GrpcCheck | None = None
    connect_timeout_ms: int = 5_000
    """The cluster's `connect_timeout`, which Envoy also applies to check connections."""
    initial_jitter_ms: int = 0
    interval_jitter_ms: int = 0
    interval_jitter_percent: int = 0
    no_traffic_interval_ms: int = DEFAULT_NO_TRAFFIC_INTERVAL_MS
    no_traffic_healthy_interval_ms: int = 0
    unhealthy_interval_ms: int = 0
    unhealthy_edge_interval_ms: int = 0
    healthy_edge_interval_ms: int = 0
    reuse_connection: bool = True
    always_log_health_check_failures: bool = False
    always_log_health_check_success: bool = False
    alt_stat_name: str = ""

    @property
    def stat_name(self) -> str:
        """The name of its stats (`cluster.<stat_name>.health_check.*`): the cluster's
        `alt_stat_name` or its name."""
        return self.alt_stat_name or self.cluster

    def __post_init__(self) -> None:
        # Envoy's fallbacks: unhealthy_interval -> interval; unhealthy_edge_interval ->
        # unhealthy_interval; healthy_edge_interval -> interval; no_traffic_healthy_interval
        # -> no_traffic_interval. 0 means "not set".
        if not self.no_traffic_healthy_interval_ms:
            object.__setattr__(self, "no_traffic_healthy_interval_ms", self.no_traffic_interval_ms)
        if not self.unhealthy_interval_ms:
            object.__setattr__(self, "unhealthy_interval_ms", self.interval_ms)
        if not self.unhealthy_edge_interval_ms:
            object.__setattr__(self, "unhealthy_edge_interval_ms", self.unhealthy_interval_ms)
        if not self.healthy_edge_interval_ms:
            object.__setattr__(self, "healthy_edge_interval_ms", self.interval_ms)

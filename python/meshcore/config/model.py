"""What loading a bootstrap yields: the engine snapshot plus what the control layer needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

DnsFamily = Literal["v4", "v6", "auto"]


@dataclass(frozen=True)
class AdminConfig:
    """`admin.address.socket_address`: where the admin API listens."""

    address: str
    port: int


@dataclass(frozen=True)
class DnsHost:
    """One `lb_endpoint` of a DNS cluster: a name to resolve, its port and weight."""

    hostname: str
    port: int
    weight: int


@dataclass(frozen=True)
class DnsCluster:
    """A STRICT_DNS or LOGICAL_DNS cluster that the control layer resolves every
    `refresh_rate_s`; its snapshot endpoints start empty."""

    name: str
    hosts: tuple[DnsHost, ...]
    refresh_rate_s: float
    family: DnsFamily


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

    def snapshot_bytes(self) -> bytes:
        """The snapshot as the JSON `Engine.apply` takes."""
        return orjson.dumps(self.snapshot)

"""Server state shared by the lifecycle and the admin API: phase, health-check flag, config."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field

import trio

from meshcore.lifecycle.interfaces import MeshConfigLike


class Phase(enum.IntEnum):
    """Envoy's `envoy.admin.v3.ServerInfo.State` (also the value of the `server.state` gauge)."""

    LIVE = 0
    DRAINING = 1
    PRE_INITIALIZING = 2
    INITIALIZING = 3


@dataclass(frozen=True)
class ServerOptions:
    """The command line as `/server_info` reports it."""

    config_path: str
    concurrency: int
    log_level: str = "info"
    drain_time_s: float | None = None
    admin_address_path: str | None = None


@dataclass
class ServerState:
    options: ServerOptions
    phase: Phase = Phase.PRE_INITIALIZING
    healthcheck_failed: bool = False
    config: MeshConfigLike | None = None
    config_applied_at: float = 0.0
    started_monotonic: float = field(default_factory=time.monotonic)
    shutdown_requested: trio.Event = field(default_factory=trio.Event)

    def reported_phase(self) -> Phase:
        """The state `/ready` and `/server_info` report: like Envoy, a failed health check
        (`/healthcheck/fail`) shows a live server as DRAINING."""
        if self.phase is Phase.LIVE and self.healthcheck_failed:
            return Phase.DRAINING
        return self.phase

    def is_live(self) -> bool:
        """The `server.live` gauge: serving and not failing health checks."""
        return self.reported_phase() is Phase.LIVE

    def uptime_s(self) -> int:
        return int(time.monotonic() - self.started_monotonic)

    def set_config(self, config: MeshConfigLike) -> None:
        self.config = config
        self.config_applied_at = time.time()

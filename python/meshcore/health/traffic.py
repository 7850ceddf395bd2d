"""Whether a cluster has ever had upstream traffic (Envoy picks `no_traffic_interval` until
then), read from the engine's `cluster.<name>.upstream_cx_total` counter."""

from __future__ import annotations

import logging
import re

import trio

from meshcore.lifecycle.interfaces import EngineApi

log = logging.getLogger(__name__)

# Reading `Engine.stats()` exports every stat: at most this often.
REFRESH_S = 1.0
# A used cluster's line in the engine's counters (`name\0value\n`, see `_fastpath.pyi`).
_USED = re.compile(rb"^cluster\.(.+)\.upstream_cx_total\x00[1-9]", re.MULTILINE)


class TrafficWatch:
    """Remembers clusters that have had an upstream connection (once seen, always seen, as
    Envoy's `used()` flag)."""

    def __init__(self, engine: EngineApi, refresh_s: float = REFRESH_S) -> None:
        self._engine = engine
        self._refresh_s = refresh_s
        self._seen: set[str] = set()
        self._next_read = -float("inf")

    def seen(self, cluster: str) -> bool:
        if cluster in self._seen:
            return True
        now = trio.current_time()
        if now >= self._next_read:
            self._next_read = now + self._refresh_s
            self._read()
        return cluster in self._seen

    def _read(self) -> None:
        try:
            counters = self._engine.stats()[0]
        except (ValueError, TypeError, IndexError) as exc:
            log.warning("cannot read engine stats for health check intervals: %s", exc)
            return
        self._seen.update(m.group(1).decode() for m in _USED.finditer(counters))

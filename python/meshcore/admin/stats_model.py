"""All stats the admin shows: the engine's, the control layer's and the `server.*` gauges,
plus the per-flush-interval histogram readings behind Envoy's `P50(interval,cumulative)`."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import orjson
import trio

from meshcore.admin.histogram import Histogram
from meshcore.admin.server_info import version_parts
from meshcore.lifecycle.control_stats import ControlStats
from meshcore.lifecycle.interfaces import EngineApi
from meshcore.lifecycle.state import ServerState

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# Envoy's default `stats_flush_interval`: interval histograms cover the last complete one.
FLUSH_INTERVAL_S = 5.0


@dataclass(frozen=True)
class StatsSnapshot:
    counters: Mapping[str, int]
    gauges: Mapping[str, int]
    histograms: Mapping[str, Histogram]
    # Samples of the last complete flush interval, per histogram name (absent: none yet).
    intervals: Mapping[str, Histogram] = field(default_factory=dict)


def parse_engine_stats(raw: bytes) -> StatsSnapshot:
    """Reads `Engine.stats()` JSON; ValueError names what is malformed."""
    data = orjson.loads(raw)
    try:
        histograms = {
            name: Histogram(
                bounds=tuple(float(b) for b in h["bounds"]),
                counts=tuple(int(c) for c in h["counts"]),
                sum=float(h["sum"]),
                count=int(h["count"]),
            )
            for name, h in data.get("histograms", {}).items()
        }
        counters = {name: int(v) for name, v in data.get("counters", {}).items()}
        gauges = {name: int(v) for name, v in data.get("gauges", {}).items()}
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed engine stats: {exc!r}") from exc
    return StatsSnapshot(counters, gauges, histograms)


def version_number() -> int:
    """The `server.version` gauge: Envoy puts its SCM revision there; we have none, so it is
    major * 10000 + minor * 100 + patch (0.1.0 -> 100)."""
    major, minor, patch = version_parts()
    return major * 10_000 + minor * 100 + patch


def resident_memory_bytes() -> int:
    """Resident set size from /proc/self/statm (0 where there is no /proc)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            resident_pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def server_gauges(state: ServerState, engine: EngineApi) -> dict[str, int]:
    """The `server.*` gauges Envoy has and we can fill truthfully."""
    return {
        "server.live": int(state.is_live()),
        "server.state": int(state.phase),
        "server.uptime": state.uptime_s(),
        "server.concurrency": state.options.concurrency,
        "server.total_connections": engine.active_connections(),
        "server.memory_physical_size": resident_memory_bytes(),
        "server.version": version_number(),
        "server.hot_restart_epoch": 0,
    }


class StatsCollector:
    """Builds `StatsSnapshot`s for the admin; `flush()` (every FLUSH_INTERVAL_S) records the
    histogram samples of the interval that just ended."""

    def __init__(self, engine: EngineApi, state: ServerState, control: ControlStats) -> None:
        self._engine = engine
        self._state = state
        self._control = control
        self._at_last_flush: dict[str, Histogram] = {}
        self._intervals: dict[str, Histogram] = {}

    def snapshot(self) -> StatsSnapshot:
        engine = parse_engine_stats(self._engine.stats())
        # Control-layer names do not overlap the engine's; if one ever did, the engine wins.
        counters = {**self._control.counters(), **engine.counters}
        gauges = {
            **server_gauges(self._state, self._engine),
            **self._control.gauges(),
            **engine.gauges,
        }
        return StatsSnapshot(counters, gauges, engine.histograms, dict(self._intervals))

    def flush(self) -> None:
        histograms = parse_engine_stats(self._engine.stats()).histograms
        self._intervals = {
            name: hist.minus(self._at_last_flush[name]) if name in self._at_last_flush else hist
            for name, hist in histograms.items()
        }
        self._at_last_flush = dict(histograms)

    async def run_flushes(
        self,
        interval_s: float = FLUSH_INTERVAL_S,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        self._at_last_flush = dict(parse_engine_stats(self._engine.stats()).histograms)
        task_status.started()
        while True:
            await trio.sleep(interval_s)
            try:
                # In a worker thread: with 10,000 clusters reading the engine's histograms
                # takes seconds, which must not stall xDS updates and health checks.
                await trio.to_thread.run_sync(self.flush)
            except ValueError as exc:
                log.error("stats flush failed: %s", exc)


# Envoy's `/stats?type=` values.
STAT_TYPES = ("All", "Counters", "Gauges", "Histograms", "TextReadouts")


def select(
    snap: StatsSnapshot, pattern: re.Pattern[str] | None, kind: str = "All"
) -> StatsSnapshot:
    """The stats whose names `pattern` finds (anywhere in the name, as Envoy's `filter`)
    and of type `kind`."""

    def keep(name: str) -> bool:
        return pattern is None or pattern.search(name) is not None

    def pick(stats: Mapping[str, _T], wanted: str) -> dict[str, _T]:
        if kind not in ("All", wanted):
            return {}
        return {name: value for name, value in stats.items() if keep(name)}

    histograms = pick(snap.histograms, "Histograms")
    return StatsSnapshot(
        pick(snap.counters, "Counters"),
        pick(snap.gauges, "Gauges"),
        histograms,
        {name: h for name, h in snap.intervals.items() if name in histograms},
    )

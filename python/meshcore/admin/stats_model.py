"""All stats the admin shows: the engine's, the control layer's and the `server.*` gauges,
with each histogram's reading of the last stats flush interval (Envoy's
`P50(interval,cumulative)`), which the engine keeps (`Engine.flush_histograms`)."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import trio

from meshcore.admin.histogram import ENGINE_BOUNDS_MS, Histogram
from meshcore.admin.server_info import version_parts
from meshcore.admin.stat_lines import (
    SEP,
    Lines,
    encode,
    encode_histogram,
    merge,
    name_of,
    parse_histogram,
    split_lines,
)
from meshcore.lifecycle.control_stats import ControlStats
from meshcore.lifecycle.interfaces import EngineApi
from meshcore.lifecycle.state import ServerState

log = logging.getLogger(__name__)

# Envoy's default `stats_flush_interval`: interval histograms cover the last complete one.
FLUSH_INTERVAL_S = 5.0


@dataclass(frozen=True)
class StatsSnapshot:
    """Sorted `name\0value` lines per kind (`stat_lines`); histogram lines carry their
    cumulative buckets and those of the last flush interval, over `bounds`."""

    counters: Lines
    gauges: Lines
    histograms: Lines
    bounds: tuple[float, ...] = ENGINE_BOUNDS_MS

    @classmethod
    def of(
        cls,
        counters: Mapping[str, int],
        gauges: Mapping[str, int],
        histograms: Mapping[str, Histogram],
        intervals: Mapping[str, Histogram] | None = None,
    ) -> StatsSnapshot:
        """A snapshot of stats given by name (histograms share one set of bounds)."""
        intervals = intervals or {}
        bounds = next(iter(histograms.values())).bounds if histograms else ENGINE_BOUNDS_MS
        lines = sorted(
            encode_histogram(name, hist, intervals.get(name)) for name, hist in histograms.items()
        )
        return cls(Lines(encode(counters)), Lines(encode(gauges)), Lines(lines), bounds)

    def histogram(self, name: str) -> tuple[Histogram, Histogram | None]:
        """(cumulative, last interval or None) of histogram `name`; KeyError if absent."""
        for line in self.histograms.lines:
            if name_of(line) == name:
                return parse_histogram(line, self.bounds)
        raise KeyError(name)


def parse_engine_stats(raw: tuple[bytes, bytes, bytes]) -> StatsSnapshot:
    """`Engine.stats()` as a snapshot (lines are checked when rendered)."""
    counters, gauges, histograms = raw
    return StatsSnapshot(
        Lines(split_lines(counters)), Lines(split_lines(gauges)), Lines(split_lines(histograms))
    )


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
    """Builds `StatsSnapshot`s for the admin; every FLUSH_INTERVAL_S `run_flushes` ends a
    flush interval in the engine (a walk over its histograms in Rust, without the GIL)."""

    def __init__(self, engine: EngineApi, state: ServerState, control: ControlStats) -> None:
        self._engine = engine
        self._state = state
        self._control = control

    def snapshot(self) -> StatsSnapshot:
        engine = parse_engine_stats(self._engine.stats())
        # Control-layer names do not overlap the engine's; if one ever did, the engine wins.
        gauges = {**server_gauges(self._state, self._engine), **self._control.gauges()}
        return StatsSnapshot(
            Lines(merge(engine.counters.lines, self._control.counters())),
            Lines(merge(engine.gauges.lines, gauges)),
            engine.histograms,
        )

    def flush(self) -> None:
        self._engine.flush_histograms()

    async def run_flushes(
        self,
        interval_s: float = FLUSH_INTERVAL_S,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        task_status.started()
        while True:
            await trio.sleep(interval_s)
            # In a worker thread, off the trio loop (the engine releases the GIL).
            await trio.to_thread.run_sync(self.flush)


# Envoy's `/stats?type=` values.
STAT_TYPES = ("All", "Counters", "Gauges", "Histograms", "TextReadouts")


def is_used(line: bytes) -> bool:
    """Envoy's `usedonly`, as far as an export tells: a counter or gauge that is not zero, a
    histogram with samples (a gauge that went back to 0 is not told apart from an unused
    one). A histogram line's first field is its sample count."""
    value = line.partition(SEP)[2]
    return value.split(b" ", 1)[0] != b"0"


def select(
    snap: StatsSnapshot,
    pattern: re.Pattern[str] | None,
    kind: str = "All",
    used_only: bool = False,
) -> StatsSnapshot:
    """The stats whose names `pattern` finds (anywhere in the name, as Envoy's `filter`),
    of type `kind`, and (`used_only`) that were used."""

    def pick(stats: Lines, wanted: str) -> Lines:
        if kind not in ("All", wanted):
            return Lines([])
        if pattern is None and not used_only:
            return stats
        return Lines(
            [
                line
                for line in stats.lines
                if (pattern is None or pattern.search(name_of(line)))
                and (not used_only or is_used(line))
            ]
        )

    return StatsSnapshot(
        pick(snap.counters, "Counters"),
        pick(snap.gauges, "Gauges"),
        pick(snap.histograms, "Histograms"),
        snap.bounds,
    )

"""Envoy's statsd sink (`envoy.stat_sinks.statsd` with a UDP `address`), pushed by the
control layer every `stats_flush_interval`: each used counter as its change since the last
flush (`<prefix>.<name>:<delta>|c`), each used gauge as its value (`|g`) and each histogram
sample recorded since as its own timer in whole milliseconds (`<prefix>.<name>:<ms>|ms`,
captured by the engine: `Engine.take_histogram_samples`), with Envoy's untagged stat names.
Lines are packed into datagrams of at most `MAX_DATAGRAM` bytes (newline-separated, which
statsd servers accept) instead of Envoy's one datagram per line: 10,000 clusters make half
a million lines per flush."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable, Iterator

import trio

from meshcore.admin.stat_lines import SEP
from meshcore.sinks.target import StatsdTarget

log = logging.getLogger(__name__)
# Fits an Ethernet MTU with IP and UDP headers (what statsd clients commonly use).
MAX_DATAGRAM = 1432


class StatsdLines:
    """Turns successive stats exports into statsd lines: counters as deltas since the
    previous flush, gauges as values. As Envoy's "used" flag: a counter is sent once it
    counted something, a gauge once it was ever not zero."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix.encode()
        self._counters: dict[bytes, int] = {}
        self._used_gauges: set[bytes] = set()

    def lines(
        self, counters: Iterable[bytes], gauges: Iterable[bytes], samples: bytes = b""
    ) -> Iterator[bytes]:
        """Statsd lines for one flush; `counters` and `gauges` are `name\\0value` lines,
        `samples` the engine's `name:ms|ms\\n` histogram sample lines."""
        prefix = self._prefix
        previous = self._counters
        current: dict[bytes, int] = {}
        for line in counters:
            name, _, raw = line.partition(SEP)
            value = int(raw)
            current[name] = value
            if value:
                # A counter that went down was reset (a cluster removed and added again).
                delta = value - previous.get(name, 0)
                yield b"%s.%s:%d|c" % (prefix, name, delta if delta >= 0 else value)
        self._counters = current
        used = self._used_gauges
        for line in gauges:
            name, _, raw = line.partition(SEP)
            value = int(raw)
            if value or name in used:
                used.add(name)
                yield b"%s.%s:%d|g" % (prefix, name, value)
        for sample in samples.splitlines():
            yield b"%s.%s" % (prefix, sample)


def datagrams(lines: Iterable[bytes], limit: int = MAX_DATAGRAM) -> Iterator[bytes]:
    """`lines` joined by newlines into datagrams of at most `limit` bytes (a longer line is
    sent alone)."""
    batch: list[bytes] = []
    size = 0
    for line in lines:
        extra = len(line) + (1 if batch else 0)
        if batch and size + extra > limit:
            yield b"\n".join(batch)
            batch, size = [], 0
            extra = len(line)
        batch.append(line)
        size += extra
    if batch:
        yield b"\n".join(batch)


class StatsdSink:
    """Sends every flush's lines to one statsd server over UDP; a send error is logged and
    the flush goes on (statsd is fire-and-forget, as in Envoy)."""

    def __init__(self, target: StatsdTarget) -> None:
        self.target = target
        self._lines = StatsdLines(target.prefix)
        family = socket.AF_INET6 if ":" in target.address else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self.sent_datagrams = 0

    def flush(
        self, counters: Iterable[bytes], gauges: Iterable[bytes], samples: bytes = b""
    ) -> None:
        """Builds and sends one flush (in a worker thread: it is a loop over every stat)."""
        where = (self.target.address, self.target.port)
        for datagram in datagrams(self._lines.lines(counters, gauges, samples)):
            try:
                self._sock.sendto(datagram, where)
                self.sent_datagrams += 1
            except BlockingIOError:
                continue  # the socket buffer is full: this datagram is dropped, as UDP may
            except OSError as exc:
                log.warning("statsd %s:%d: %s", where[0], where[1], exc)
                return

    def close(self) -> None:
        self._sock.close()


async def run_sinks(
    sinks: list[StatsdSink],
    export: Callable[[], tuple[list[bytes], list[bytes], bytes]],
    interval_s: float,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Every `interval_s`: one stats export (`export` gives counter and gauge lines and the
    histogram sample lines), sent to every sink, off the trio loop."""
    task_status.started()
    try:
        while True:
            await trio.sleep(interval_s)

            def flush() -> None:
                counters, gauges, samples = export()
                for sink in sinks:
                    sink.flush(counters, gauges, samples)

            await trio.to_thread.run_sync(flush)
    finally:
        for sink in sinks:
            sink.close()

"""Stats as the engine exports them: sorted `name\\0value` lines (`Engine.stats()`), kept as
bytes so that 500,000 of them are split, merged and rendered by C code, not line by line.

A line sorts where its name does: NUL is below every character a name can hold, so the
order of the lines is the order of the names (UTF-8 bytes keep code point order).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping

from meshcore.admin.histogram import Histogram

SEP = b"\0"


def split_lines(blob: bytes) -> list[bytes]:
    """The lines of an engine export (each ends with a newline)."""
    lines = blob.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def _line(name: str, value: object) -> bytes:
    # NUL and newline are the export's separators; the engine writes them as `_` too.
    clean = name.replace("\0", "_").replace("\n", "_")
    return f"{clean}\0{value}".encode()


def encode(values: Mapping[str, int]) -> list[bytes]:
    """`{name: value}` as sorted lines."""
    return sorted(_line(name, value) for name, value in values.items())


def merge(lines: list[bytes], extra: Mapping[str, int]) -> list[bytes]:
    """`lines` with `extra`'s stats inserted in name order; on a name in both, `lines` wins."""
    if not extra:
        return lines
    inserts = []
    for line in encode(extra):
        key = line[: line.index(SEP) + 1]
        at = bisect_left(lines, key)
        if at < len(lines) and lines[at].startswith(key):
            continue
        inserts.append((at, line))
    out: list[bytes] = []
    done = 0
    for at, line in inserts:
        out += lines[done:at]
        out.append(line)
        done = at
    out += lines[done:]
    return out


def name_of(line: bytes) -> str:
    return line[: line.index(SEP)].decode()


class Lines:
    """Sorted lines of one kind of stat; `stats["name"]` finds a counter's or gauge's value
    by binary search."""

    __slots__ = ("lines",)

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines

    def __len__(self) -> int:
        return len(self.lines)

    def _find(self, name: str) -> bytes | None:
        key = _line(name, "")
        at = bisect_left(self.lines, key)
        if at < len(self.lines) and self.lines[at].startswith(key):
            return self.lines[at][len(key) :]
        return None

    def __iter__(self) -> Iterator[str]:
        """The names, as a mapping's keys."""
        return iter(self.names())

    def __contains__(self, name: str) -> bool:
        return self._find(name) is not None

    def __getitem__(self, name: str) -> int:
        value = self._find(name)
        if value is None:
            raise KeyError(name)
        return int(value)

    def get(self, name: str) -> int | None:
        value = self._find(name)
        return None if value is None else int(value)

    def items(self) -> Iterator[tuple[str, int]]:
        for line in self.lines:
            name, _, value = line.partition(SEP)
            yield name.decode(), int(value)

    def names(self) -> list[str]:
        return [name_of(line) for line in self.lines]


def parse_histogram(line: bytes, bounds: tuple[float, ...]) -> tuple[Histogram, Histogram | None]:
    """(cumulative, last flush interval or None) of a histogram line `name\\0count[ sum_ms
    b0 … bN[ ib0 … ibN]]`; ValueError names the stat when the line is malformed."""
    name, _, rest = line.partition(SEP)
    fields = rest.split(b" ")
    buckets = len(bounds) + 1
    try:
        if len(fields) == 1:
            return Histogram(bounds, (0,) * buckets, 0.0, int(fields[0])), None
        if len(fields) not in (2 + buckets, 2 + 2 * buckets):
            raise ValueError(f"{len(fields) - 2} bucket counts for {len(bounds)} bounds")
        counts = tuple(int(c) for c in fields[2 : 2 + buckets])
        cumulative = Histogram(bounds, counts, float(fields[1]), int(fields[0]))
        if len(fields) == 2 + buckets:
            return cumulative, None
        interval = tuple(int(c) for c in fields[2 + buckets :])
        return cumulative, Histogram(bounds, interval, 0.0, sum(interval))
    except ValueError as exc:
        raise ValueError(f"malformed engine histogram {name.decode()!r}: {exc}") from None


def encode_histogram(name: str, hist: Histogram, interval: Histogram | None = None) -> bytes:
    """The line of `parse_histogram` (for stats kept outside the engine, and tests)."""
    fields: list[object] = [hist.count]
    if hist.count or hist.sum or any(hist.counts):
        fields += [repr(hist.sum), *hist.counts]
        if interval is not None and any(interval.counts):
            fields += interval.counts
    return _line(name, " ".join(str(f) for f in fields))

"""Reads CPU time and resident memory of a process and its descendants from /proc."""

from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def parse_stat(text: str) -> tuple[int, int, int]:
    """(ppid, utime ticks, stime ticks) from the text of /proc/<pid>/stat.

    The command name (field 2) may hold spaces and parentheses, so split after the last ')'.
    """
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[11]), int(fields[12])


def parse_vmrss_kib(status: str) -> int:
    """VmRSS in KiB from the text of /proc/<pid>/status."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError("no VmRSS line (a kernel thread or an exited process?)")


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def descendants(pid: int) -> list[int]:
    """`pid` and every live process below it (nginx's workers, a wrapper's children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        text = _read(f"/proc/{entry}/stat")
        if text is not None:
            children.setdefault(parse_stat(text)[0], []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and its descendants (all threads), in seconds."""
    ticks = 0
    for p in descendants(pid):
        text = _read(f"/proc/{p}/stat")
        if text is not None:
            _, utime, stime = parse_stat(text)
            ticks += utime + stime
    return ticks / _TICK


def rss_kib(pid: int) -> int:
    """Resident set size of `pid` and its descendants, in KiB."""
    total = 0
    for p in descendants(pid):
        text = _read(f"/proc/{p}/status")
        if text is not None:
            total += parse_vmrss_kib(text)
    return total


def parse_core_times(proc_stat: str) -> dict[int, tuple[int, int]]:
    """Per CPU, (busy ticks, total ticks) from the text of /proc/stat; idle and iowait count
    as not busy, steal as busy (the hypervisor took the CPU)."""
    out = {}
    for line in proc_stat.splitlines():
        name, *rest = line.split()
        if not (name.startswith("cpu") and name[3:].isdigit()):
            continue
        ticks = [int(x) for x in rest[:8]]  # user nice system idle iowait irq softirq steal
        total = sum(ticks)
        out[int(name[3:])] = (total - ticks[3] - ticks[4], total)
    return out


def parse_schedstat(text: str) -> tuple[int, int]:
    """(ns on a CPU, ns runnable but waiting for one) from /proc/<pid>/task/<tid>/schedstat."""
    run, wait, _slices = text.split()
    return int(run), int(wait)


def wait_seconds(pid: int) -> float:
    """Time the threads of `pid` and its descendants spent runnable but not running (other
    work held their CPU), in seconds; needs schedstats (/proc/<pid>/task/*/schedstat)."""
    ns = 0
    for p in descendants(pid):
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            text = _read(f"/proc/{p}/task/{tid}/schedstat")
            if text:
                ns += parse_schedstat(text)[1]
    return ns / 1e9


def core_times() -> dict[int, tuple[int, int]]:
    return parse_core_times(Path("/proc/stat").read_text())


def busy_pct(
    before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]], core: int
) -> float | None:
    """How busy `core` was between two core_times() readings, in percent."""
    if core not in before or core not in after:
        return None
    busy = after[core][0] - before[core][0]
    total = after[core][1] - before[core][1]
    return 100.0 * busy / total if total > 0 else None

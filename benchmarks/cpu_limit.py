"""CPU bandwidth limits for benchmark processes: a cgroup with a CFS quota, as a sidecar's
`resources.limits.cpu` gives it in Kubernetes (cgroup v1 `cpu` controller or v2 `cpu.max`)."""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PREFIX = "meshcore-bench-"
PERIOD_US = 100_000  # the kernel's and Kubernetes' default CFS period
CGROUP_ROOT = Path("/sys/fs/cgroup")


class CpuLimitError(RuntimeError):
    """No usable cgroup CPU controller (or no permission to use it)."""


@dataclass(frozen=True)
class Throttling:
    periods: int  # CFS periods in which the group had runnable tasks
    throttled: int  # of those, periods in which the quota ran out
    throttled_s: float  # total time the group's tasks were held back

    def __sub__(self, other: Throttling) -> Throttling:
        return Throttling(
            self.periods - other.periods,
            self.throttled - other.throttled,
            self.throttled_s - other.throttled_s,
        )


@dataclass
class CpuGroup:
    """One cgroup (v1: one directory per hierarchy holding `cpu` and `cpuacct`; v2: one
    directory) that limits its processes to `cores` CPUs' worth of time per period."""

    cores: float
    version: int
    dirs: list[Path]  # v1: [cpu dir, cpuacct dir (if separate)]; v2: [the group]

    def attach(self, pid: int) -> None:
        """Moves process `pid` with all its threads (and so its future children) in."""
        for d in self.dirs:
            (d / "cgroup.procs").write_text(f"{pid}\n")

    def pids(self) -> list[int]:
        return [int(x) for x in (self.dirs[0] / "cgroup.procs").read_text().split()]

    def usage_s(self) -> float:
        """CPU time used by the group's tasks since it was created, in seconds."""
        if self.version == 2:
            return _stat(self.dirs[0])["usage_usec"] / 1e6
        for d in self.dirs:
            if (d / "cpuacct.usage").exists():
                return int((d / "cpuacct.usage").read_text()) / 1e9
        raise CpuLimitError("cgroup v1 without the cpuacct controller: no CPU usage to read")

    def throttling(self) -> Throttling:
        stat = _stat(self.dirs[0])
        if self.version == 2:
            return Throttling(
                stat["nr_periods"], stat["nr_throttled"], stat["throttled_usec"] / 1e6
            )
        return Throttling(stat["nr_periods"], stat["nr_throttled"], stat["throttled_time"] / 1e9)


def _stat(d: Path) -> dict[str, int]:
    out = {}
    for line in (d / "cpu.stat").read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def quota_us(cores: float) -> int:
    """The CFS quota per PERIOD_US period for `cores` CPUs (the kernel's minimum is 1 ms)."""
    if not cores > 0:
        raise ValueError(f"CPU limit must be a positive number of cores, got {cores}")
    return max(1000, round(cores * PERIOD_US))


def _v1_dirs(root: Path, name: str) -> list[Path] | None:
    cpu = root / "cpu"
    if not (cpu / "cpu.cfs_quota_us").exists():
        return None
    dirs = [cpu / name]
    acct = root / "cpuacct"
    separate = acct.resolve() != cpu.resolve()
    if not (cpu / "cpuacct.usage").exists() and (acct / "cpuacct.usage").exists() and separate:
        dirs.append(acct / name)
    return dirs


def _v2_parent(root: Path) -> Path | None:
    """The unified hierarchy's root when it offers the `cpu` controller (the whole of
    /sys/fs/cgroup on a v2-only host, /sys/fs/cgroup/unified on a hybrid one)."""
    for base in (root, root / "unified"):
        controllers = base / "cgroup.controllers"
        if controllers.exists() and "cpu" in controllers.read_text().split():
            return base
    return None


def _create(cores: float, name: str, root: Path) -> CpuGroup:
    quota = quota_us(cores)
    v1 = _v1_dirs(root, name)
    if v1 is not None:
        group = CpuGroup(cores, 1, v1)
        try:
            for d in v1:
                d.mkdir()
            (v1[0] / "cpu.cfs_period_us").write_text(f"{PERIOD_US}\n")
            (v1[0] / "cpu.cfs_quota_us").write_text(f"{quota}\n")
        except BaseException:
            _remove(group)
            raise
        return group
    parent = _v2_parent(root)
    if parent is None:
        raise CpuLimitError(
            f"no cgroup CPU controller under {root}: neither cgroup v1 `cpu` "
            f"({root}/cpu/cpu.cfs_quota_us) nor cgroup v2 with `cpu` in cgroup.controllers"
        )
    subtree = parent / "cgroup.subtree_control"
    if "cpu" not in subtree.read_text().split():
        subtree.write_text("+cpu\n")
    group = CpuGroup(cores, 2, [parent / name])
    group.dirs[0].mkdir()
    try:
        (group.dirs[0] / "cpu.max").write_text(f"{quota} {PERIOD_US}\n")
    except BaseException:
        _remove(group)
        raise
    return group


def _remove(group: CpuGroup) -> None:
    """Moves any process still inside to the parent group, then removes the directories."""
    for d in group.dirs:
        if not d.exists():
            continue
        deadline = time.monotonic() + 5.0
        while True:
            for pid in (d / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError, OSError):
                    (d.parent / "cgroup.procs").write_text(f"{pid}\n")
            try:
                d.rmdir()
                break
            except OSError as e:  # EBUSY while an exiting task is still counted
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@contextlib.contextmanager
def cpu_limit(cores: float, label: str, root: Path = CGROUP_ROOT) -> Iterator[CpuGroup]:
    """A new cgroup `meshcore-bench-<label>-<our pid>` limited to `cores` CPUs, removed on
    leaving the block (also on an exception or Ctrl-C). Needs root (or a delegated tree).

    Raises CpuLimitError when no CPU controller can be used."""
    name = f"{PREFIX}{label}-{os.getpid()}"
    try:
        group = _create(cores, name, root)
    except PermissionError as e:
        raise CpuLimitError(f"cannot create cgroup {name} (needs root): {e}") from e
    try:
        yield group
    finally:
        _remove(group)


def leftovers(root: Path = CGROUP_ROOT) -> list[Path]:
    """Groups this module created and did not remove (a killed run), in every hierarchy."""
    found: list[Path] = []
    for base in (root, root / "cpu", root / "cpuacct", root / "unified"):
        with contextlib.suppress(OSError):
            found.extend(p for p in base.iterdir() if p.name.startswith(PREFIX) and p.is_dir())
    return sorted(set(found))

"""Starting, pinning and stopping the processes a benchmark run needs."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# Ports below the ephemeral range: a proxy's admin listener on port 0 never takes one.
from tests.support.ports import free_port as free_port

# The nice value raise_priority() set, also given to each child's autogroup (see there).
_niceness = 0


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    @classmethod
    def start(cls, name: str, cmd: list[str], *, cpu: int | None, log: Path) -> Proc:
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu), *cmd]
        with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
            popen = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        adjust_priority(popen.pid)
        return cls(name, popen)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait()


def wait_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout_s}s")


def raise_nofile(wanted: int = 65536) -> int:
    """Raises this process's open-file limit towards `wanted` and returns the new soft limit.

    Children (the proxies, wrk) inherit it, so the 5,000-connection scenario fits everywhere.
    Without CAP_SYS_RESOURCE the hard limit caps it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def raise_priority(niceness: int) -> int:
    """Gives every process started later (Proc.start, wrk.run) the nice value `niceness`
    for itself and its session's autogroup; returns the value that took effect (0 if not
    permitted). This process and its session are left alone.

    A negative value keeps other work on a shared machine from taking the pinned CPUs in the
    middle of a measurement; it needs root or CAP_SYS_NICE.
    """
    global _niceness
    _niceness = 0
    if niceness != 0:
        probe = subprocess.Popen(["sleep", "5"], start_new_session=True)
        try:
            adjust_priority(probe.pid, niceness)
            _niceness = os.getpriority(os.PRIO_PROCESS, probe.pid)
        finally:
            probe.kill()
            probe.wait()
    return _niceness


def adjust_priority(pid: int, niceness: int | None = None) -> None:
    """Sets the nice value of `pid` (a session leader started by us) and of its autogroup:
    with sched_autogroup a nice value only ranks a process within its session."""
    value = _niceness if niceness is None else niceness
    if value == 0:
        return
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, pid, value)
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(f"{value}\n")

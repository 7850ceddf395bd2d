"""Describes the machine and the software versions a run measured, for the report header."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import re
import resource
import shutil
import subprocess
from pathlib import Path

from benchmarks import targets
from benchmarks.backend import nginx_binary


def cpu_model(cpuinfo: str) -> str:
    """The `model name` of /proc/cpuinfo text (first CPU), or "unknown"."""
    m = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    return m.group(1).strip() if m else "unknown"


def _output(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout + done.stderr).strip()


def _first_match(pattern: str, text: str) -> str | None:
    m = re.search(pattern, text)
    return m.group(1) if m else None


def version_of(name: str) -> str | None:
    """The version of a tool or target, None when it is not installed."""
    if name == "meshcore":
        try:
            v = importlib.metadata.version("meshcore")
        except importlib.metadata.PackageNotFoundError:
            return None
        root = Path(__file__).resolve().parent.parent
        rev = _output(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])
        dirty = _output(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"])
        if rev and re.fullmatch(r"[0-9a-f]+", rev):
            v += f" ({rev}{', uncommitted changes' if dirty else ''})"
        return v
    probes = {
        "envoy": (targets.envoy_binary(), "--version", r"version: \S+/(\d+\.\d+\.\d+)"),
        "nginx": (nginx_binary(), "-v", r"nginx/(\S+)"),
        "haproxy": (targets.haproxy_binary(), "-v", r"version (\S+)"),
        "wrk": (shutil.which("wrk"), "--version", r"^wrk (\S+)"),
    }
    if name in probes:
        binary, flag, pattern = probes[name]
        return _first_match(pattern, _output([binary, flag])) if binary else None
    raise ValueError(f"no version probe for {name!r}")


def describe() -> dict[str, object]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    return {
        "cpu_model": cpu_model(cpuinfo),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": {n: version_of(n) for n in ("meshcore", "envoy", "nginx", "haproxy", "wrk")},
    }

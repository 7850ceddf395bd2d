"""Runs wrk against a URL and parses requests/s and latency percentiles from its output."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


@dataclass(frozen=True)
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    errors: int


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"unparseable wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse(out: str) -> WrkResult:
    """Parses `wrk --latency` output."""
    pct: dict[str, float] = {}
    for m in re.finditer(r"^\s+(50|75|90|99)(?:\.000)?%\s+(\S+)$", out, re.M):
        pct[m.group(1)] = _ms(m.group(2))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not rps or not total or "99" not in pct:
        raise ValueError(f"unexpected wrk output:\n{out}")
    errors = 0
    for m in re.finditer(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors += sum(int(g) for g in m.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    return WrkResult(
        requests=int(total.group(1)),
        rps=float(rps.group(1)),
        p50_ms=pct["50"],
        p99_ms=pct["99"],
        p999_ms=pct.get("99.9", pct["99"]),
        errors=errors,
    )


def run(
    url: str, *, connections: int, duration_s: float, cpu: int | None, threads: int = 1
) -> WrkResult:
    """Runs wrk (pinned to `cpu` when given) and returns its parsed result."""
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--latency",
        url,
    ]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=duration_s + 30)
    return parse(out.stdout)

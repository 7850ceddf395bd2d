"""Runs wrk with a Lua `done()` reporter and parses throughput, latency percentiles and errors."""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.procs import adjust_priority

LUA_DIR = Path(__file__).resolve().parent / "lua"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    bytes: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    errors: int


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"unparseable wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _text_errors(out: str) -> int:
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(g) for g in m.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    return errors


def parse(out: str) -> WrkResult:
    """Parses wrk's output: the MESHCORE_BENCH line of lua/report.lua when present (it has
    p99.9), otherwise the plain `--latency` table (p99.9 then falls back to p99)."""
    line = re.search(r"^MESHCORE_BENCH (.*)$", out, re.M)
    if line:
        kv = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line.group(1))}
        missing = {"requests", "duration_us", "bytes", "p50_us", "p99_us", "p999_us"} - set(kv)
        if missing:
            raise ValueError(f"MESHCORE_BENCH line lacks {sorted(missing)}: {line.group(0)!r}")
        duration_s = kv["duration_us"] / 1e6
        errors = sum(v for k, v in kv.items() if k.startswith("err_"))
        return WrkResult(
            requests=kv["requests"],
            duration_s=duration_s,
            rps=kv["requests"] / duration_s if duration_s > 0 else 0.0,
            bytes=kv["bytes"],
            p50_ms=kv["p50_us"] / 1000,
            p90_ms=kv.get("p90_us", kv["p99_us"]) / 1000,
            p99_ms=kv["p99_us"] / 1000,
            p999_ms=kv["p999_us"] / 1000,
            max_ms=kv.get("max_us", kv["p999_us"]) / 1000,
            errors=errors,
        )
    pct: dict[str, float] = {}
    for m in re.finditer(r"^\s+(50|75|90|99)(?:\.0+)?%\s+(\S+)\s*$", out, re.M):
        pct[m.group(1)] = _ms(m.group(2))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+)(B|KB|MB|GB) read", out)
    if not rps or not total or "99" not in pct:
        raise ValueError(f"unexpected wrk output:\n{out}")
    scale = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[total.group(5)]
    return WrkResult(
        requests=int(total.group(1)),
        duration_s=_ms(total.group(2) + total.group(3)) / 1000,
        rps=float(rps.group(1)),
        bytes=int(float(total.group(4)) * scale),
        p50_ms=pct["50"],
        p90_ms=pct.get("90", pct["99"]),
        p99_ms=pct["99"],
        p999_ms=pct["99"],
        max_ms=pct["99"],
        errors=_text_errors(out),
    )


def script_text(base: str | None) -> str:
    """The Lua script wrk runs: the scenario's script (a file in lua/) plus the reporter."""
    parts = [(LUA_DIR / base).read_text()] if base else []
    parts.append((LUA_DIR / "report.lua").read_text())
    return "\n".join(parts)


def command(
    url: str,
    *,
    connections: int,
    duration_s: float,
    script: Path,
    headers: tuple[str, ...] = (),
    threads: int = 1,
    cpu: int | None = None,
) -> list[str]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s"]
    cmd += ["--latency", "--timeout", "10s", "-s", str(script)]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(url)
    return ["taskset", "-c", str(cpu), *cmd] if cpu is not None else cmd


def run(
    url: str,
    *,
    connections: int,
    duration_s: float,
    cpu: int | None,
    lua: str | None = None,
    headers: tuple[str, ...] = (),
    threads: int = 1,
) -> WrkResult:
    """Runs wrk (pinned to `cpu` when given) and returns its parsed result."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="wrk-") as f:
        f.write(script_text(lua))
        f.flush()
        cmd = command(
            url,
            connections=connections,
            duration_s=duration_s,
            script=Path(f.name),
            headers=headers,
            threads=threads,
            cpu=cpu,
        )
        child = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own autogroup, so a nice value counts
        )
        adjust_priority(child.pid)
        try:
            out, err = child.communicate(timeout=duration_s + 60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise RuntimeError(f"wrk did not finish within {duration_s + 60:.0f} s") from None
    if child.returncode != 0:
        raise RuntimeError(f"wrk exited {child.returncode}: {err.strip() or out}")
    return parse(out)

"""One measurement: a target under one scenario, as a flat dict of metrics (None = n/a)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from benchmarks import cpu, idle, targets, wrk
from benchmarks.backend import Backend
from benchmarks.scenarios import Scenario

Sample = dict[str, float | None]


def wrk_sample(
    t: targets.Target,
    sc: Scenario,
    backend: Backend,
    duration_s: float,
    load_cpu: int | None,
    proxy_cpu: int | None,
) -> Sample:
    """Runs wrk for `sc` against `t`; the proxy's CPU and the backend's accepts are deltas
    around the run."""
    pid = t.proc.pid if t.proc else None
    cpu_before = cpu.cpu_seconds(pid) if pid else 0.0
    accepts_before = backend.accepts()
    cores_before = cpu.core_times()
    r = wrk.run(
        t.url(sc.path),
        connections=sc.connections,
        duration_s=duration_s,
        cpu=load_cpu,
        lua=sc.lua,
        headers=sc.headers,
    )
    cores_after = cpu.core_times()
    accepts = backend.accepts() - accepts_before - 1  # minus the second scrape itself
    if t.proc is not None and not t.proc.alive():
        raise RuntimeError(f"{t.name} exited during the run (exit {t.proc.popen.returncode})")
    used = (cpu.cpu_seconds(pid) - cpu_before) if pid else None
    ok = r.requests - r.errors
    if ok <= 0:
        raise RuntimeError(f"all {r.requests} requests failed (non-2xx or socket errors)")
    return {
        "rps": r.rps,
        "p50_ms": r.p50_ms,
        "p90_ms": r.p90_ms,
        "p99_ms": r.p99_ms,
        "p999_ms": r.p999_ms,
        "max_ms": r.max_ms,
        "requests": float(r.requests),
        "errors": float(r.errors),
        "cpu_us_per_rq": used * 1e6 / ok if used is not None else None,
        "cpu_us_per_mib": (
            used * 1e6 / (r.bytes / (1 << 20)) if used is not None and sc.per_mib else None
        ),
        "proxy_cpu_pct": used * 100 / r.duration_s if used is not None else None,
        "rss_mib": cpu.rss_kib(pid) / 1024 if pid else None,
        "upstream_conns": float(accepts),
        # whole-core busy %: with the proxy's own % they show what else ran (noise)
        "proxy_core_busy_pct": (
            cpu.busy_pct(cores_before, cores_after, proxy_cpu) if proxy_cpu is not None else None
        ),
        "load_core_busy_pct": (
            cpu.busy_pct(cores_before, cores_after, load_cpu) if load_cpu is not None else None
        ),
    }


def idle_sample(
    name: str,
    workdir: Path,
    backend: Backend,
    proxy_cpu: int | None,
    nofile: int,
    count: int,
) -> Sample:
    """Starts a fresh `name`, reads its idle RSS, opens `count` idle keep-alive connections
    through it (one request each) and reads its RSS again; stops it afterwards."""
    t = targets.start(name, workdir, backend.port, proxy_cpu, nofile)
    assert t.proc is not None
    try:
        time.sleep(1.0)  # let start-up settle (config load, worker threads)
        idle_kib = cpu.rss_kib(t.proc.pid)
        warm = idle.open_idle(t.port, 10)
        warm.close()
        time.sleep(0.5)
        before_kib = cpu.rss_kib(t.proc.pid)
        accepts_before = backend.accepts()
        conns = idle.open_idle(t.port, count)
        try:
            time.sleep(1.0)
            with_kib = cpu.rss_kib(t.proc.pid)
            accepts = backend.accepts() - accepts_before - 1
            opened = len(conns.sockets)
            if not t.proc.alive():
                raise RuntimeError(f"{name} exited with {opened} idle connections open")
        finally:
            conns.close()
        if opened == 0:
            raise RuntimeError(f"no idle connection opened: {conns.first_error}")
        if conns.failed:
            print(
                f"  {name}: {conns.failed} connections failed: {conns.first_error}", file=sys.stderr
            )
        return {
            "rss_idle_mib": idle_kib / 1024,
            "rss_before_mib": before_kib / 1024,
            "rss_with_conns_mib": with_kib / 1024,
            "kib_per_conn": (with_kib - before_kib) / opened,
            "conns_opened": float(opened),
            "conns_failed": float(conns.failed),
            "upstream_conns": float(accepts),
        }
    finally:
        t.stop()

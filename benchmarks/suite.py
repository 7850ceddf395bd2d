"""The full end-to-end run: starts the backend and targets, interleaves them round by round
over the scenarios, and returns every sample with its medians and ranges."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import backend, machine, measure, summary, targets, wrk
from benchmarks.procs import free_port, raise_nofile, raise_priority
from benchmarks.scenarios import Scenario


@dataclass(frozen=True)
class Options:
    scenarios: tuple[Scenario, ...]
    targets: tuple[str, ...]
    rounds: int
    duration_s: float
    idle_connections: int
    proxy_cpu: int | None
    load_cpu: int | None
    niceness: int = -10


def rotated(items: list[str], by: int) -> list[str]:
    """`items` rotated left by `by`, so no target always runs first in a round."""
    if not items:
        return []
    k = by % len(items)
    return items[k:] + items[:k]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _describe(s: measure.Sample) -> str:
    keys = ("rps", "p99_ms", "cpu_us_per_rq", "kib_per_conn", "rss_idle_mib", "errors")
    return " ".join(f"{k}={s[k]:.4g}" for k in keys if s.get(k) is not None)


class _Runner:
    def __init__(self, opts: Options, work: Path, be: backend.Backend, nofile: int) -> None:
        self.opts = opts
        self.work = work
        self.backend = be
        self.nofile = nofile
        self.started: dict[str, targets.Target] = {}
        self.skipped: dict[str, str] = {}
        self.failures: list[dict[str, Any]] = []
        self.samples: dict[str, dict[str, list[measure.Sample]]] = {}

    def start_all(self, names: list[str]) -> None:
        for name in names:
            try:
                self.started[name] = targets.start(
                    name, self.work, self.backend.port, self.opts.proxy_cpu, self.nofile
                )
            except Exception as e:  # a target that cannot start is reported, not fatal
                self.skipped[name] = f"failed to start: {e}"
                log(f"skipping {name}: failed to start: {e}")
        time.sleep(0.5)
        for t in self.started.values():  # warm-up: connections, pools, caches
            try:
                wrk.run(t.url(), connections=10, duration_s=1, cpu=self.opts.load_cpu)
            except RuntimeError as e:
                log(f"warm-up of {t.name} failed: {e}")

    def _fail(self, rnd: int, sc: Scenario, name: str, e: Exception) -> None:
        self.failures.append(
            {"round": rnd + 1, "scenario": sc.name, "target": name, "error": str(e)[:500]}
        )
        log(f"round {rnd + 1} {sc.name} {name}: FAILED: {e}")
        t = self.started.get(name)
        if t is not None and t.proc is not None and not t.proc.alive():
            log(f"restarting {name}")
            try:
                self.started[name] = targets.start(
                    name, self.work, self.backend.port, self.opts.proxy_cpu, self.nofile
                )
            except Exception as e2:
                log(f"could not restart {name}: {e2}")
                del self.started[name]

    def wrk_round(self, rnd: int, sc: Scenario) -> None:
        got: dict[str, measure.Sample] = {}
        for name in rotated(list(self.started), rnd):
            try:
                s = measure.wrk_sample(
                    self.started[name],
                    sc,
                    self.backend,
                    self.opts.duration_s,
                    self.opts.load_cpu,
                    self.opts.proxy_cpu,
                )
            except Exception as e:
                self._fail(rnd, sc, name, e)
                continue
            got[name] = s
            log(f"round {rnd + 1} {sc.name} {name}: {_describe(s)}")
            time.sleep(0.2)
        summary.add_ratios(got)
        for name, s in got.items():
            s["round"] = float(rnd + 1)
            self.samples.setdefault(sc.name, {}).setdefault(name, []).append(s)

    def idle_round(self, rnd: int, sc: Scenario, names: list[str]) -> None:
        for name in rotated(names, rnd):
            try:
                s = measure.idle_sample(
                    name,
                    self.work,
                    self.backend,
                    self.opts.proxy_cpu,
                    self.nofile,
                    self.opts.idle_connections,
                )
            except Exception as e:
                self._fail(rnd, sc, name, e)
                continue
            s["round"] = float(rnd + 1)
            log(f"round {rnd + 1} {sc.name} {name}: {_describe(s)}")
            self.samples.setdefault(sc.name, {}).setdefault(name, []).append(s)

    def stop(self) -> None:
        for t in self.started.values():
            t.stop()
        self.started.clear()


def run(opts: Options) -> dict[str, Any]:
    """Runs the suite and returns the run (machine, settings, samples, results)."""
    nofile = raise_nofile()
    niceness = raise_priority(opts.niceness)
    desc = machine.describe()
    runnable = []
    skipped: dict[str, str] = {}
    for name in opts.targets:
        why = targets.availability(name)
        if why:
            skipped[name] = why
            log(f"skipping {name}: {why}")
        else:
            runnable.append(name)
    with tempfile.TemporaryDirectory(prefix="meshcore-bench-") as tmp:
        work = Path(tmp)
        be = backend.start(work, free_port(), cpu=opts.load_cpu)
        r = _Runner(opts, work, be, nofile)
        r.skipped.update(skipped)
        try:
            if any(s.kind == "wrk" for s in opts.scenarios):
                r.start_all(runnable)
            idle_names = [n for n in runnable if n != "direct" and n not in r.skipped]
            for rnd in range(opts.rounds):
                for sc in opts.scenarios:
                    if sc.kind == "wrk":
                        r.wrk_round(rnd, sc)
                    else:
                        r.idle_round(rnd, sc, idle_names)
        finally:
            r.stop()
            be.stop()
    desc["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    order = {n: i for i, n in enumerate(opts.targets)}
    results = {
        sc: {
            t: summary.summarize_target(ss)
            for t, ss in sorted(per.items(), key=lambda kv: order.get(kv[0], 99))
        }
        for sc, per in r.samples.items()
    }
    return {
        "machine": desc,
        "settings": {
            "rounds": opts.rounds,
            "duration_s": opts.duration_s,
            "idle_connections": opts.idle_connections,
            "proxy_cpu": opts.proxy_cpu,
            "load_cpu": opts.load_cpu,
            "niceness": niceness,
            "targets": list(opts.targets),
            "scenarios": [s.name for s in opts.scenarios],
        },
        "skipped": r.skipped,
        "failures": r.failures,
        "samples": r.samples,
        "results": results,
    }

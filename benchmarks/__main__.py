"""`python -m benchmarks`: wrk through meshcore, Envoy and directly, interleaved, with ratios."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import backend, targets, wrk
from benchmarks.cpu import cpu_seconds
from benchmarks.procs import free_port


def measure(t: targets.Target, connections: int, duration: float, cpu: int) -> dict[str, float]:
    before = cpu_seconds(t.proc.pid) if t.proc else 0.0
    r = wrk.run(t.url(), connections=connections, duration_s=duration, cpu=cpu)
    used = (cpu_seconds(t.proc.pid) - before) if t.proc else 0.0
    return {
        "rps": r.rps,
        "p50_ms": r.p50_ms,
        "p99_ms": r.p99_ms,
        "cpu_us_per_rq": used * 1e6 / r.requests if t.proc else 0.0,
        "errors": r.errors,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per wrk round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, nargs="+", default=[50])
    ap.add_argument("--targets", nargs="+", default=["direct", "meshcore", "envoy"])
    ap.add_argument("--proxy-cpu", type=int, default=1)
    ap.add_argument("--load-cpu", type=int, default=0)
    args = ap.parse_args(argv)
    backend.check_installed()
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="meshcore-bench-") as tmp:
        work = Path(tmp)
        bport = free_port()
        be = backend.start(work, bport, cpu=args.load_cpu)
        started: list[targets.Target] = []
        try:
            for name in args.targets:
                if name == "direct":
                    started.append(targets.direct(bport))
                elif name == "meshcore":
                    started.append(targets.start_meshcore(work, bport, args.proxy_cpu))
                elif name == "envoy":
                    started.append(targets.start_envoy(work, bport, args.proxy_cpu))
                else:
                    raise SystemExit(f"unknown target {name!r}")
            time.sleep(0.5)
            for t in started:  # warm-up
                wrk.run(t.url(), connections=10, duration_s=1, cpu=args.load_cpu)
            for rnd in range(args.rounds):
                for c in args.connections:
                    for t in started:
                        m = measure(t, c, args.duration, args.load_cpu)
                        results.setdefault((t.name, c), []).append(m)
                        print(f"round {rnd + 1} c{c} {t.name}: {m}", file=sys.stderr)
        finally:
            for t in started:
                t.stop()
            be.stop()
    header = ("target", "conns", "req/s", "ratio", "p50 ms", "p99 ms", "cpu us/rq")
    print("{:10} {:>5} {:>10} {:>6} {:>7} {:>7} {:>9}".format(*header))
    for c in args.connections:
        direct_rps = statistics.median(m["rps"] for m in results.get(("direct", c), [{"rps": 0.0}]))
        for name in args.targets:
            ms = results[(name, c)]
            rps = statistics.median(m["rps"] for m in ms)
            ratio = rps / direct_rps if direct_rps else float("nan")
            print(
                f"{name:10} {c:5d} {rps:10.0f} {ratio:6.2f} "
                f"{statistics.median(m['p50_ms'] for m in ms):7.2f} "
                f"{statistics.median(m['p99_ms'] for m in ms):7.2f} "
                f"{statistics.median(m['cpu_us_per_rq'] for m in ms):9.1f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

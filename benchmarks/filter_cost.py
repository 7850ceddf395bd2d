"""`python -m benchmarks filters`: what issue 4's failure-recovery features cost when they are
configured but never trigger. meshcore and Envoy each run twice — the plain bootstrap and the
same bootstrap with retries, timeouts, circuit breakers, outlier detection, an active health
check, the fault filter at 0% and an enforced local rate limit (`with_recovery_features`) —
alternating round by round at c50; the cost is each proxy's with/plain ratio of requests/s and
of CPU per request, medians over rounds."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import backend, machine, measure, targets, wrk
from benchmarks.bootstrap import bootstrap, with_recovery_features
from benchmarks.procs import free_port, raise_nofile, raise_priority
from benchmarks.scenarios import BY_NAME

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "results" / "filter_cost"
SCENARIO = "get_c50"
VARIANTS = (
    ("meshcore", targets.start_meshcore, bootstrap),
    ("meshcore+features", targets.start_meshcore, with_recovery_features),
    ("envoy", targets.start_envoy, bootstrap),
    ("envoy+features", targets.start_envoy, with_recovery_features),
)


def measure_rounds(
    rounds: int,
    duration_s: float,
    proxy_cpu: int,
    load_cpu: int,
    variants: tuple[tuple[str, Any, Any], ...] = VARIANTS,
) -> dict[str, list[measure.Sample]]:
    """Starts the backend and the variants, alternates them for `rounds` rounds (the order
    rotates every round), stops everything; returns the samples per variant."""
    nofile = raise_nofile()
    sc = BY_NAME[SCENARIO]
    samples: dict[str, list[measure.Sample]] = {name: [] for name, _, _ in variants}
    with tempfile.TemporaryDirectory(prefix="meshcore-filters-") as tmp:
        work = Path(tmp)
        be = backend.start(work, free_port(), cpu=load_cpu)
        started: list[targets.Target] = []
        try:
            for name, start, make in variants:
                started.append(start(work, be.port, proxy_cpu, nofile, make, name))
            for t in started:
                wrk.run(t.url(), connections=sc.connections, duration_s=1, cpu=load_cpu)
            for rnd in range(rounds):
                k = rnd % len(started)
                for t in started[k:] + started[:k]:
                    s = measure.wrk_sample(t, sc, be, duration_s, load_cpu, proxy_cpu)
                    samples[t.name].append(s)
                    time.sleep(0.2)
                print(
                    f"filters round {rnd + 1}/{rounds}: "
                    + ", ".join(
                        f"{n} {v[-1]['rps'] or 0:,.0f} req/s {v[-1]['cpu_us_per_rq'] or 0:.1f} µs"
                        for n, v in samples.items()
                    ),
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            for t in started:
                t.stop()
            be.stop()
    return samples


def _per_round_ratio(with_: list[measure.Sample], plain: list[measure.Sample], key: str) -> float:
    return statistics.median(
        float(w[key] or 0) / float(p[key] or 1) for w, p in zip(with_, plain, strict=True)
    )


def summarize(
    samples: dict[str, list[measure.Sample]], suffix: str = "+features"
) -> dict[str, Any]:
    """Medians per variant and, per proxy, the with/plain ratios of requests/s and CPU/req
    (each round's ratio, then the median: both ran in the same round)."""
    out: dict[str, Any] = {"variants": {}, "cost": {}}
    for name, got in samples.items():
        out["variants"][name] = {
            "rps": statistics.median(float(s["rps"] or 0) for s in got),
            "cpu_us_per_rq": statistics.median(float(s["cpu_us_per_rq"] or 0) for s in got),
            "p99_ms": statistics.median(float(s["p99_ms"] or 0) for s in got),
            "errors": sum(float(s["errors"] or 0) for s in got),
        }
    for proxy in ("meshcore", "envoy"):
        if f"{proxy}{suffix}" not in samples:
            continue
        plain, with_ = samples[proxy], samples[f"{proxy}{suffix}"]
        out["cost"][proxy] = {
            "rps_ratio": _per_round_ratio(with_, plain, "rps"),
            "cpu_ratio": _per_round_ratio(with_, plain, "cpu_us_per_rq"),
        }
    return out


def markdown(
    summary: dict[str, Any],
    rounds: int,
    duration_s: float,
    title: str = "Cost of configured, non-triggering failure-recovery features",
    command: str = "python -m benchmarks filters",
) -> str:
    lines = [
        f"# {title}",
        "",
        f"`{command}` — {rounds} rounds of {duration_s:g} s, wrk -c50 small "
        "GETs, one proxy worker on CPU 1, wrk and the nginx backend on CPU 0; medians.",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.describe().items()),
        "",
        "| variant | req/s | CPU µs/req | p99 ms | errors |",
        "|---|---|---|---|---|",
    ]
    for name, v in summary["variants"].items():
        lines.append(
            f"| {name} | {v['rps']:,.0f} | {v['cpu_us_per_rq']:.2f} | {v['p99_ms']:.2f} "
            f"| {v['errors']:.0f} |"
        )
    lines += ["", "| proxy | throughput with ÷ without | CPU/req with ÷ without |", "|---|---|---|"]
    for proxy, c in summary["cost"].items():
        lines.append(f"| {proxy} | {c['rps_ratio']:.3f} | {c['cpu_ratio']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks filters", description=__doc__)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    ap.add_argument("--proxy-cpu", type=int, default=1)
    ap.add_argument("--load-cpu", type=int, default=0)
    ap.add_argument("--nice", type=int, default=-10)
    ap.add_argument("--output", type=Path, default=OUTPUT, help="writes OUTPUT.{json,md}")
    args = ap.parse_args(argv)
    raise_priority(args.nice)
    for name in ("meshcore", "envoy"):
        if why := targets.availability(name):
            print(f"filters: cannot run: {why}", file=sys.stderr)
            return 2
    samples = measure_rounds(args.rounds, args.duration, args.proxy_cpu, args.load_cpu)
    summary = summarize(samples)
    save(args.output, summary, samples, markdown(summary, args.rounds, args.duration))
    return 0


def save(
    output: Path, summary: dict[str, Any], samples: dict[str, list[measure.Sample]], md: str
) -> None:
    """Writes OUTPUT.json (summary and every sample) and OUTPUT.md, and prints the latter."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(
        json.dumps({"summary": summary, "samples": samples}, indent=1) + "\n"
    )
    output.with_suffix(".md").write_text(md)
    print(md)


def feature_variants(
    suffix: str, with_feature: Any, meshcore_only: bool
) -> tuple[tuple[str, Any, Any], ...]:
    """The four runs of a feature-cost benchmark (access log, tracing): each proxy without
    and with the feature (`with_feature` makes its bootstrap), Envoy left out on request."""
    out: tuple[tuple[str, Any, Any], ...] = (
        ("meshcore", targets.start_meshcore, bootstrap),
        (f"meshcore{suffix}", targets.start_meshcore, with_feature),
    )
    if not meshcore_only:
        out += (
            ("envoy", targets.start_envoy, bootstrap),
            (f"envoy{suffix}", targets.start_envoy, with_feature),
        )
    return out


def add_feature_args(ap: argparse.ArgumentParser, output: Path) -> None:
    """The options every feature-cost benchmark takes."""
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    ap.add_argument("--proxy-cpu", type=int, default=1)
    ap.add_argument("--load-cpu", type=int, default=0)
    ap.add_argument("--nice", type=int, default=-10)
    ap.add_argument("--meshcore-only", action="store_true", help="do not run Envoy")
    ap.add_argument("--output", type=Path, default=output, help="writes OUTPUT.{json,md}")


def unavailable(chosen: tuple[tuple[str, Any, Any], ...], label: str) -> bool:
    """Prints why a proxy of `chosen` cannot run (and returns True), if one cannot."""
    for name in {n.split("+")[0] for n, _, _ in chosen}:
        if why := targets.availability(name):
            print(f"{label}: cannot run: {why}", file=sys.stderr)
            return True
    return False

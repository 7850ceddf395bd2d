"""`python -m benchmarks`: the end-to-end suite (meshcore against direct, Envoy, nginx and
HAProxy); `python -m benchmarks guard`: the CI throughput guard; `python -m benchmarks
filters`: the cost of configured, non-triggering failure-recovery features."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks import (
    access_log_cost,
    filter_cost,
    guard,
    output,
    scenarios,
    suite,
    targets,
    tracing_cost,
)


def _names(value: str, known: tuple[str, ...], what: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or '(none given)'}; known: {', '.join(known)}"
        )
    return names


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="End-to-end benchmarks (see benchmarks/README.md). "
        "`python -m benchmarks guard --help` for the CI guard.",
    )
    scenario_names = tuple(s.name for s in scenarios.ALL)
    ap.add_argument(
        "--scenarios",
        type=lambda v: _names(v, scenario_names, "scenario"),
        default=scenario_names,
        help=f"comma-separated (default: all): {','.join(scenario_names)}",
    )
    ap.add_argument(
        "--targets",
        type=lambda v: _names(v, targets.ALL, "target"),
        default=targets.ALL,
        help=f"comma-separated (default: all installed): {','.join(targets.ALL)}",
    )
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    ap.add_argument("--duration", type=float, help="seconds per wrk run (default 10)")
    ap.add_argument("--idle-connections", type=int, help="connections of idle_5k (default 5000)")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 1 round of 1 s, 500 idle connections; writes results/quick.*",
    )
    ap.add_argument("--proxy-cpu", type=int, default=1, help="CPU the proxies run on")
    ap.add_argument("--load-cpu", type=int, default=0, help="CPU of wrk and the backend")
    ap.add_argument(
        "--nice",
        type=int,
        default=-10,
        help="nice value of every process the run starts (default -10: ahead of other work "
        "on the machine; needs root, else ignored; 0 leaves it)",
    )
    ap.add_argument(
        "--no-pin", action="store_true", help="do not pin with taskset (1-CPU machines)"
    )
    ap.add_argument(
        "--from-json",
        type=Path,
        metavar="JSON",
        help="measure nothing: rewrite the Markdown and PNG from a run's JSON (e.g. "
        "benchmarks/results/latest.json) after a change to the report",
    )
    ap.add_argument(
        "--output",
        type=Path,
        help="where to write JSON, Markdown and PNG: DIR/NAME.{json,md,png} "
        "(default: results/latest.json, RESULTS.md, results/chart.png; --quick: results/quick.*)",
    )
    return ap


def options(args: argparse.Namespace) -> suite.Options:
    """The suite's options from the command line (--quick shortens what is not given)."""
    quick = args.quick
    for flag in ("rounds", "duration", "idle_connections"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise SystemExit(f"--{flag.replace('_', '-')} must be positive, got {value}")
    return suite.Options(
        scenarios=tuple(scenarios.BY_NAME[n] for n in args.scenarios),
        targets=args.targets,
        rounds=args.rounds or (1 if quick else 3),
        duration_s=args.duration or (1.0 if quick else 10.0),
        idle_connections=args.idle_connections or (500 if quick else 5000),
        proxy_cpu=None if args.no_pin else args.proxy_cpu,
        load_cpu=None if args.no_pin else args.load_cpu,
        niceness=args.nice,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["guard"]:
        return guard.main(argv[1:])
    if argv[:1] == ["filters"]:
        return filter_cost.main(argv[1:])
    if argv[:1] == ["access-log"]:
        return access_log_cost.main(argv[1:])
    if argv[:1] == ["tracing"]:
        return tracing_cost.main(argv[1:])
    args = parser().parse_args(argv)
    where = output.paths(args.output, args.quick)
    if args.from_json is not None:
        run = json.loads(args.from_json.read_text())
        where = output.paths(args.output, args.quick, json_path=args.from_json.resolve())
    else:
        run = suite.run(options(args))
        run["command"] = " ".join(["python -m benchmarks", *argv])
    text, drawn = output.write(run, where)
    print(text)
    chart_note = f", {where.png}" if drawn else " (matplotlib missing: no chart)"
    print(f"wrote {where.json}, {where.markdown}{chart_note}")
    return 0 if run["results"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

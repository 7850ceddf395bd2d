"""The micro benchmark regression guard: runs the suites and fails (exit 1) when a median is
slower than the committed baseline (`baseline.json`) by more than the suite's margin.

    python -m benchmarks.micro.guard                  # both suites, compare with the baseline
    python -m benchmarks.micro.guard --suite python   # one suite
    python -m benchmarks.micro.guard --repeat 4       # run 4 times, print each benchmark's spread
    python -m benchmarks.micro.guard --repeat 3 --update   # new baseline: median of 3 runs

Python medians are judged relative to a reference workload measured in the same run
(`test_calibration.py`): when the reference ran slower than in the baseline, each median is
divided by that factor, so a slow machine state cancels out. A benchmark over its margin is
measured once more (with the reference) and judged on the better of its two runs, so one
noisy moment on a shared machine does not fail the build.
See benchmarks/micro/README.md for how the margins were chosen.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.micro import suites

BASELINE = Path(__file__).with_name("baseline.json")
SUITES: dict[str, Callable[[Sequence[str]], suites.Medians]] = {
    "python": suites.run_python,
    "rust": lambda ids: suites.run_rust([f"^{re.escape(i)}$" for i in ids]),
}

# Per suite, the benchmark whose slowdown against the baseline is the machine's, not the
# code's (see test_calibration.py); suites without one are compared as measured.
REFERENCES = {"python": "benchmarks/micro/test_calibration.py::test_python_reference"}


def format_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def regressions(baseline: suites.Medians, current: suites.Medians, margin: float) -> list[str]:
    """Names of the baseline's benchmarks slower than `baseline * (1 + margin)`, or not run."""
    return [
        name
        for name, base in baseline.items()
        if name not in current or current[name] > base * (1 + margin)
    ]


def machine_factor(suite: str, baseline: suites.Medians, current: suites.Medians) -> float:
    """How much slower the suite's reference ran than in the baseline; 1.0 without one, and
    never below 1.0: a reference that ran faster does not make the others look slower (the
    reference tracks what the machine does to Python code, not to the engine's threads, so
    it only ever excuses a slowdown it shares)."""
    reference = REFERENCES.get(suite)
    if reference is None or reference not in baseline or reference not in current:
        return 1.0
    return max(1.0, current[reference] / baseline[reference])


def normalized(suite: str, baseline: suites.Medians, current: suites.Medians) -> suites.Medians:
    """`current` divided by the run's machine factor; the reference itself is left out."""
    factor = machine_factor(suite, baseline, current)
    return {n: v / factor for n, v in current.items() if n != REFERENCES.get(suite)}


def compare(suite: str, baseline: dict[str, Any]) -> list[str]:
    """Runs `suite`, re-measures what looks regressed, prints a table; the failure messages."""
    base: suites.Medians = baseline[suite]
    margin: float = baseline["margins"][suite]
    run = SUITES[suite]
    reference = REFERENCES.get(suite)
    measured = run(())
    factor = machine_factor(suite, base, measured)
    current = normalized(suite, base, measured)
    suspects = [n for n in regressions(base, current, margin) if n in current]
    if suspects:
        print(f"\n{suite}: {len(suspects)} over the margin; measuring them once more", flush=True)
        again = run([*suspects, *([reference] if reference in base else [])])
        for name, median in normalized(suite, base, again).items():
            current[name] = min(current.get(name, median), median)
    failures = []
    print(f"\n{suite} micro benchmarks (margin +{margin:.0%} over the baseline median)")
    if reference in base:
        print(
            f"  machine factor x{factor:.2f} (the reference workload against its baseline): "
            "the medians below are divided by it"
        )
    for name, base_median in base.items():
        if name == reference:
            continue
        now = current.get(name)
        if now is None:
            failures.append(
                f"{suite}: {name} is in the baseline but was not measured "
                "(renamed or removed? update the baseline)"
            )
            print(f"  MISSING  {name}")
            continue
        ratio = now / base_median
        bad = ratio > 1 + margin
        print(
            f"  {'SLOWER ' if bad else 'ok     '}  {name}: {format_time(now)} "
            f"(baseline {format_time(base_median)}, x{ratio:.2f})"
        )
        if bad:
            failures.append(
                f"{suite}: {name} regressed: median {format_time(now)} vs baseline "
                f"{format_time(base_median)} (x{ratio:.2f}, margin x{1 + margin:.2f})"
            )
    for name in sorted(set(current) - set(base)):
        print(f"  new      {name}: {format_time(current[name])} (not in the baseline)")
    return failures


def spread(suite: str, repeat: int) -> dict[str, list[float]]:
    """Runs `suite` `repeat` times; each benchmark's medians, printed with max/min."""
    runs = [SUITES[suite](()) for _ in range(repeat)]
    names = sorted(set().union(*runs))
    samples = {n: [r[n] for r in runs if n in r] for n in names}
    print(f"\n{suite}: spread of the median over {repeat} runs (max/min)")
    for name, values in samples.items():
        print(
            f"  {name}: {' '.join(format_time(v) for v in values)}  "
            f"max/min x{max(values) / min(values):.2f}"
        )
    return samples


def load_baseline() -> dict[str, Any]:
    """`baseline.json`: {"margins": {suite: fraction}, "measured": {...}, suite: {name:
    median seconds}}."""
    data: dict[str, Any] = json.loads(BASELINE.read_text())
    return data


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(suites.REPO), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _head_commit() -> str:
    """The commit measured (read-only git queries), "+ changes" when the tree differs."""
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "fastpath", "python")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + changes" if dirty else "")


def update(chosen: Sequence[str], samples: dict[str, dict[str, list[float]]]) -> None:
    data: dict[str, Any] = (
        load_baseline() if BASELINE.exists() else {"margins": {"python": 0.5, "rust": 0.4}}
    )
    for suite in chosen:
        data[suite] = {n: float(f"{statistics.median(v):.4g}") for n, v in samples[suite].items()}
    data["measured"] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        ),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "commit": _head_commit(),
        "runs": len(next(iter(samples[chosen[0]].values()))),
    }
    BASELINE.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"\nwrote {BASELINE}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", choices=[*SUITES, "all"], default="all")
    parser.add_argument("--repeat", type=int, default=0, help="measure the spread over N runs")
    parser.add_argument("--update", action="store_true", help="write the baseline (with --repeat)")
    args = parser.parse_args(argv)
    chosen = list(SUITES) if args.suite == "all" else [args.suite]
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    try:
        if args.repeat or args.update:
            samples = {s: spread(s, max(args.repeat, 1)) for s in chosen}
            if args.update:
                update(chosen, samples)
            return 0
        baseline = load_baseline()
        failures = [f for s in chosen for f in compare(s, baseline)]
    except suites.SuiteError as exc:
        print(f"\nmicro benchmark guard: FAILED: {exc}", file=sys.stderr)
        return 1
    if failures:
        print("\nmicro benchmark guard: FAILED", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    print("\nmicro benchmark guard: ok, no benchmark slower than its margin")
    return 0


if __name__ == "__main__":
    sys.exit(main())

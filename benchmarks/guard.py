"""`python -m benchmarks guard`: the CI throughput guard. meshcore and Envoy alternate for a
few rounds of small GETs at c50 in one run; the guard fails when meshcore's requests/s
relative to Envoy's, or its CPU per request relative to Envoy's, moves past the committed
baseline by more than the noise margin (ratios measured in the same run cancel most of the
machine's speed and noise; medians over rounds drop outliers)."""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import backend, machine, measure, targets, wrk
from benchmarks.procs import free_port, raise_nofile, raise_priority
from benchmarks.scenarios import BY_NAME

HERE = Path(__file__).resolve().parent
BASELINE = HERE / "guard_baseline.json"
SCENARIO = "get_c50"
# Never tighter than these, whatever the calibration runs showed: requests/s also depends on
# the load CPU (wrk and the backend share it with whatever else runs), CPU per request only on
# the proxy's own work.
MIN_MARGIN_RPS = 0.20
MIN_MARGIN_CPU = 0.15
MARGIN_FACTOR = 2.0  # margin = this × the largest deviation seen across calibration runs


@dataclass(frozen=True)
class Measured:
    """One guard run: per-round ratios (meshcore ÷ Envoy) and absolute figures."""

    rps_ratios: list[float]
    cpu_ratios: list[float]
    meshcore_rps: list[float]
    envoy_rps: list[float]
    meshcore_cpu_us: list[float]
    envoy_cpu_us: list[float]
    errors: int
    other_load_pct: list[float] = field(default_factory=list)  # proxy core, not the proxy

    @property
    def rps_ratio(self) -> float:
        return statistics.median(self.rps_ratios)

    @property
    def cpu_ratio(self) -> float:
        return statistics.median(self.cpu_ratios)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rps_ratio": self.rps_ratio,
            "cpu_ratio": self.cpu_ratio,
            "rps_ratios": self.rps_ratios,
            "cpu_ratios": self.cpu_ratios,
            "meshcore_rps": self.meshcore_rps,
            "envoy_rps": self.envoy_rps,
            "meshcore_cpu_us_per_rq": self.meshcore_cpu_us,
            "envoy_cpu_us_per_rq": self.envoy_cpu_us,
            "errors": self.errors,
            "other_load_on_proxy_core_pct": self.other_load_pct,
        }


def from_rounds(rounds: list[tuple[measure.Sample, measure.Sample]]) -> Measured:
    """Builds a Measured from (meshcore, Envoy) sample pairs, one pair per round."""
    if not rounds:
        raise ValueError("no complete round (meshcore and Envoy) was measured")

    def f(s: measure.Sample, k: str) -> float:
        v = s.get(k)
        if v is None:
            raise ValueError(f"sample lacks {k}")
        return float(v)

    return Measured(
        rps_ratios=[f(m, "rps") / f(e, "rps") for m, e in rounds],
        cpu_ratios=[f(m, "cpu_us_per_rq") / f(e, "cpu_us_per_rq") for m, e in rounds],
        meshcore_rps=[f(m, "rps") for m, _ in rounds],
        envoy_rps=[f(e, "rps") for _, e in rounds],
        meshcore_cpu_us=[f(m, "cpu_us_per_rq") for m, _ in rounds],
        envoy_cpu_us=[f(e, "cpu_us_per_rq") for _, e in rounds],
        errors=int(sum(f(m, "errors") + f(e, "errors") for m, e in rounds)),
        other_load_pct=[o for m, e in rounds for s in (m, e) if (o := _other_load(s)) is not None],
    )


def _other_load(s: measure.Sample) -> float | None:
    """How much of the proxy's core other processes used during a run, in percent."""
    busy, own = s.get("proxy_core_busy_pct"), s.get("proxy_cpu_pct")
    return None if busy is None or own is None else max(0.0, busy - own)


def evaluate(got: Measured, baseline: dict[str, Any]) -> tuple[bool, list[str]]:
    """Compares one run with the baseline; returns (passed, one line per check)."""
    rps_floor = baseline["rps_ratio"] * (1 - baseline["margin_rps"])
    cpu_ceiling = baseline["cpu_ratio"] * (1 + baseline["margin_cpu"])
    rps_ok = got.rps_ratio >= rps_floor
    cpu_ok = got.cpu_ratio <= cpu_ceiling
    lines = [
        f"{'ok' if rps_ok else 'REGRESSION'}: meshcore/Envoy requests/s = {got.rps_ratio:.3f} "
        f"(rounds {', '.join(f'{r:.2f}' for r in got.rps_ratios)}); baseline "
        f"{baseline['rps_ratio']:.3f}, fails below {rps_floor:.3f} "
        f"(-{baseline['margin_rps']:.0%})",
        f"{'ok' if cpu_ok else 'REGRESSION'}: meshcore/Envoy CPU per request = "
        f"{got.cpu_ratio:.3f} (rounds {', '.join(f'{r:.2f}' for r in got.cpu_ratios)}); "
        f"baseline {baseline['cpu_ratio']:.3f}, fails above {cpu_ceiling:.3f} "
        f"(+{baseline['margin_cpu']:.0%})",
        f"info: meshcore {statistics.median(got.meshcore_rps):,.0f} req/s, "
        f"{statistics.median(got.meshcore_cpu_us):.1f} µs CPU/req; Envoy "
        f"{statistics.median(got.envoy_rps):,.0f} req/s, "
        f"{statistics.median(got.envoy_cpu_us):.1f} µs CPU/req",
    ]
    if got.other_load_pct:
        lines.append(
            f"info: other processes used {statistics.median(got.other_load_pct):.0f}% of the "
            f"proxy's CPU (median; max {max(got.other_load_pct):.0f}%): a busy machine widens "
            "the spread"
        )
    errors_ok = got.errors == 0
    if not errors_ok:
        lines.append(f"FAILED: {got.errors} wrk errors (socket errors or non-2xx responses)")
    return rps_ok and cpu_ok and errors_ok, lines


def calibrate(runs: list[Measured]) -> dict[str, Any]:
    """A baseline from repeated runs: the median of the run medians, and a margin of
    MARGIN_FACTOR × the largest relative deviation of a run from it (at least MIN_MARGIN_*)."""
    if len(runs) < 2:
        raise ValueError("calibration needs at least two runs")
    rps = [r.rps_ratio for r in runs]
    cpu = [r.cpu_ratio for r in runs]
    rps_mid, cpu_mid = statistics.median(rps), statistics.median(cpu)
    rps_dev = max(abs(x / rps_mid - 1) for x in rps)
    cpu_dev = max(abs(x / cpu_mid - 1) for x in cpu)
    return {
        "scenario": SCENARIO,
        "rps_ratio": rps_mid,
        "cpu_ratio": cpu_mid,
        "margin_rps": round(max(MIN_MARGIN_RPS, MARGIN_FACTOR * rps_dev), 3),
        "margin_cpu": round(max(MIN_MARGIN_CPU, MARGIN_FACTOR * cpu_dev), 3),
        "spread": {
            "rps_ratio_min_max": [min(rps), max(rps)],
            "cpu_ratio_min_max": [min(cpu), max(cpu)],
            "rps_ratio_max_deviation": rps_dev,
            "cpu_ratio_max_deviation": cpu_dev,
        },
        "calibration_runs": [r.as_dict() for r in runs],
    }


def measure_once(rounds: int, duration_s: float, proxy_cpu: int, load_cpu: int) -> Measured:
    """Starts backend, meshcore and Envoy; alternates them for `rounds` rounds; stops all."""
    nofile = raise_nofile()
    sc = BY_NAME[SCENARIO]
    with tempfile.TemporaryDirectory(prefix="meshcore-guard-") as tmp:
        work = Path(tmp)
        be = backend.start(work, free_port(), cpu=load_cpu)
        started: list[targets.Target] = []
        try:
            for name in ("meshcore", "envoy"):
                started.append(targets.start(name, work, be.port, proxy_cpu, nofile))
            for t in started:
                wrk.run(t.url(), connections=sc.connections, duration_s=1, cpu=load_cpu)
            pairs = []
            for rnd in range(rounds):
                order = started if rnd % 2 == 0 else started[::-1]
                got = {}
                for t in order:
                    got[t.name] = measure.wrk_sample(t, sc, be, duration_s, load_cpu, proxy_cpu)
                    time.sleep(0.2)
                pairs.append((got["meshcore"], got["envoy"]))
                m, e = got["meshcore"], got["envoy"]
                print(
                    f"guard round {rnd + 1}/{rounds}: meshcore {m['rps']:,.0f} req/s "
                    f"{m['cpu_us_per_rq']:.1f} µs/req; Envoy {e['rps']:,.0f} req/s "
                    f"{e['cpu_us_per_rq']:.1f} µs/req",
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            for t in started:
                t.stop()
            be.stop()
    return from_rounds(pairs)


def _missing() -> list[str]:
    return [f"{n}: {why}" for n in ("meshcore", "envoy") if (why := targets.availability(n))] + (
        [] if backend.nginx_binary() else ["nginx (the backend): apt-get install -y nginx-light"]
    )


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks guard", description=__doc__)
    ap.add_argument("--rounds", type=int, default=12, help="alternating rounds (default 12)")
    ap.add_argument("--duration", type=float, default=2.0, help="seconds per wrk run (default 2)")
    ap.add_argument("--baseline", type=Path, default=BASELINE)
    ap.add_argument(
        "--calibrate",
        type=int,
        metavar="N",
        help="run the guard N times and write the baseline and margin from their spread",
    )
    ap.add_argument("--json", type=Path, help="also write this run's figures here")
    ap.add_argument("--proxy-cpu", type=int, default=1)
    ap.add_argument("--load-cpu", type=int, default=0)
    ap.add_argument(
        "--nice", type=int, default=-10, help="nice value of the processes (default -10)"
    )
    args = ap.parse_args(argv)
    niceness = raise_priority(args.nice)
    if niceness != args.nice:
        print(
            f"guard: warning: could not set nice {args.nice} (running at {niceness}; needs "
            "root or CAP_SYS_NICE): other work on the machine widens the spread",
            file=sys.stderr,
        )
    missing = _missing()
    if missing:
        print("guard: cannot run, missing " + "; ".join(missing), file=sys.stderr)
        return 2
    if args.calibrate:
        runs = []
        for i in range(args.calibrate):
            print(f"calibration run {i + 1}/{args.calibrate}", file=sys.stderr)
            runs.append(measure_once(args.rounds, args.duration, args.proxy_cpu, args.load_cpu))
            print(f"  rps ratio {runs[-1].rps_ratio:.3f}, cpu ratio {runs[-1].cpu_ratio:.3f}")
        base = calibrate(runs)
        base["settings"] = {"rounds": args.rounds, "duration_s": args.duration}
        base["machine"] = machine.describe()
        base["date"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        args.baseline.write_text(json.dumps(base, indent=1) + "\n")
        print(
            f"wrote {args.baseline}: rps ratio {base['rps_ratio']:.3f} ± {base['margin_rps']:.0%}"
            f", cpu ratio {base['cpu_ratio']:.3f} ± {base['margin_cpu']:.0%}"
        )
        return 0
    if not args.baseline.exists():
        print(f"guard: no baseline at {args.baseline} (create one with --calibrate 5)")
        return 2
    baseline = json.loads(args.baseline.read_text())
    measured_with = baseline.get("settings", {})
    if measured_with and measured_with != {"rounds": args.rounds, "duration_s": args.duration}:
        print(
            f"guard: warning: the baseline was measured with {measured_with}, this run uses "
            f"rounds={args.rounds} duration_s={args.duration}: ratios may not compare",
            file=sys.stderr,
        )
    got = measure_once(args.rounds, args.duration, args.proxy_cpu, args.load_cpu)
    ok, lines = evaluate(got, baseline)
    for line in lines:
        print(f"guard: {line}")
    if args.json:
        args.json.write_text(json.dumps(got.as_dict(), indent=1) + "\n")
    print("guard: passed" if ok else "guard: FAILED (see REGRESSION lines above)")
    return 0 if ok else 1

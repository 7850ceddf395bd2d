"""Runs the two micro benchmark suites and reads back each benchmark's median (seconds):
the Python control path (pytest-benchmark JSON) and the Rust hot path (criterion's
`estimates.json` files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYTHON_SUITE = "benchmarks/micro"
FASTPATH = REPO / "fastpath"
RUST_BENCHES = ("http1_parse", "router_select", "lb_pick")

Medians = dict[str, float]


class SuiteError(RuntimeError):
    """A suite did not run to completion (a benchmark's own assertion failed, or the build)."""


def _run(cmd: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    print("+ " + " ".join(cmd), flush=True)
    done = subprocess.run(cmd, cwd=cwd, env=env, check=False)
    if done.returncode != 0:
        raise SuiteError(f"`{' '.join(cmd)}` exited with {done.returncode}")


def run_python(node_ids: Sequence[str] = ()) -> Medians:
    """Runs the pytest-benchmark suite (or only `node_ids`) timing CPU time; medians by test
    node id."""
    with tempfile.TemporaryDirectory(prefix="meshcore-micro-") as tmp:
        out = Path(tmp) / "python.json"
        _run(
            [
                sys.executable,
                "-m",
                "pytest",
                *(node_ids or [PYTHON_SUITE]),
                "--benchmark-only",
                # CPU time of this process, not wall time: see README.md.
                "--benchmark-timer=time.process_time",
                f"--benchmark-json={out}",
                "--benchmark-columns=min,median,max,rounds",
                "--benchmark-sort=fullname",
                "-p",
                "no:cacheprovider",
                "-q",
            ],
            REPO,
        )
        report = json.loads(out.read_text())
    return {b["fullname"]: float(b["stats"]["median"]) for b in report["benchmarks"]}


def _criterion_medians(home: Path) -> Medians:
    medians: Medians = {}
    for meta in home.glob("**/new/benchmark.json"):
        estimates = json.loads((meta.parent / "estimates.json").read_text())
        full_id = json.loads(meta.read_text())["full_id"]
        medians[full_id] = float(estimates["median"]["point_estimate"]) * 1e-9
    return medians


def run_rust(filters: Sequence[str] = ()) -> Medians:
    """Builds and runs the criterion benches (`cargo bench`; `filters` are criterion regexes
    of benchmark ids); medians by criterion id. Results go to a fresh directory, so nothing
    from an earlier run is read back."""
    with tempfile.TemporaryDirectory(prefix="meshcore-criterion-") as home:
        env = {**os.environ, "CRITERION_HOME": home}
        benches = [arg for name in RUST_BENCHES for arg in ("--bench", name)]
        if not filters:
            _run(["cargo", "bench", *benches], FASTPATH, env)
        for pattern in filters:
            _run(["cargo", "bench", *benches, "--", pattern], FASTPATH, env)
        medians = _criterion_medians(Path(home))
    if not medians:
        raise SuiteError("cargo bench ran but criterion wrote no results")
    return medians

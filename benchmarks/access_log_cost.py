"""`python -m benchmarks access-log`: what a file access log with Envoy's default format costs.
meshcore (and Envoy, unless `--meshcore-only`) each run twice — the plain bootstrap and the
same bootstrap with `envoy.access_loggers.file` writing every request to a file — alternating
round by round at c50; the cost is each proxy's with/plain ratio of requests/s and of CPU per
request (the writer thread's CPU included), medians over rounds."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import filter_cost
from benchmarks.bootstrap import bootstrap
from benchmarks.procs import raise_priority

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "results" / "access_log_cost"
FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
LOG_DIR = Path(tempfile.gettempdir())


def log_path(listen_port: int) -> Path:
    return LOG_DIR / f"meshcore-bench-access-{os.getpid()}-{listen_port}.log"


def with_access_log(listen_port: int, admin_port: int, backend_port: int) -> dict[str, Any]:
    """`bootstrap` plus a file access log in Envoy's default format."""
    cfg: dict[str, Any] = bootstrap(listen_port, admin_port, backend_port)
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    hcm["typed_config"]["access_log"] = [
        {
            "name": "envoy.access_loggers.file",
            "typed_config": {"@type": FILE_LOG, "path": str(log_path(listen_port))},
        }
    ]
    return cfg


def variants(meshcore_only: bool) -> tuple[tuple[str, Any, Any], ...]:
    return filter_cost.feature_variants("+access_log", with_access_log, meshcore_only)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks access-log", description=__doc__)
    filter_cost.add_feature_args(ap, OUTPUT)
    args = ap.parse_args(argv)
    raise_priority(args.nice)
    chosen = variants(args.meshcore_only)
    if filter_cost.unavailable(chosen, "access-log"):
        return 2
    try:
        samples = filter_cost.measure_rounds(
            args.rounds, args.duration, args.proxy_cpu, args.load_cpu, chosen
        )
    finally:
        for stale in LOG_DIR.glob(f"meshcore-bench-access-{os.getpid()}-*.log"):
            stale.unlink(missing_ok=True)
    summary = filter_cost.summarize(samples, suffix="+access_log")
    md = filter_cost.markdown(
        summary,
        args.rounds,
        args.duration,
        title="Cost of a file access log (Envoy's default format)",
        command="python -m benchmarks access-log",
    )
    filter_cost.save(args.output, summary, samples, md)
    return 0

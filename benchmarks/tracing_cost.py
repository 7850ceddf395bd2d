"""`python -m benchmarks tracing`: what tracing every request costs. meshcore (and Envoy,
unless `--meshcore-only`) each run twice — the plain bootstrap and the same bootstrap with
HCM `tracing` at 100 % `random_sampling` and the Zipkin provider reporting to the backend
cluster (nginx answers the reports) — alternating round by round at c50; the cost is each
proxy's with/plain ratio of requests/s and of CPU per request (span export by the control
layer included: the whole process is measured), medians over rounds."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmarks import filter_cost
from benchmarks.bootstrap import bootstrap
from benchmarks.procs import raise_priority

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "results" / "tracing_cost"
ZIPKIN = "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig"
PERCENT = [100.0]
"""`random_sampling` of the traced variant (`--percent`)."""


def with_tracing(listen_port: int, admin_port: int, backend_port: int) -> dict[str, Any]:
    """`bootstrap` plus Zipkin tracing of every request."""
    cfg: dict[str, Any] = bootstrap(listen_port, admin_port, backend_port)
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    hcm["typed_config"]["tracing"] = {
        "random_sampling": {"value": PERCENT[0]},
        "provider": {
            "name": "envoy.tracers.zipkin",
            "typed_config": {
                "@type": ZIPKIN,
                "collector_cluster": "backend",
                "collector_endpoint": "/api/v2/spans",
                "collector_endpoint_version": "HTTP_JSON",
            },
        },
    }
    return cfg


def variants(meshcore_only: bool) -> tuple[tuple[str, Any, Any], ...]:
    return filter_cost.feature_variants("+tracing", with_tracing, meshcore_only)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks tracing", description=__doc__)
    filter_cost.add_feature_args(ap, OUTPUT)
    ap.add_argument("--percent", type=float, default=100.0, help="random_sampling (default 100)")
    args = ap.parse_args(argv)
    PERCENT[0] = args.percent
    raise_priority(args.nice)
    chosen = variants(args.meshcore_only)
    if filter_cost.unavailable(chosen, "tracing"):
        return 2
    samples = filter_cost.measure_rounds(
        args.rounds, args.duration, args.proxy_cpu, args.load_cpu, chosen
    )
    summary = filter_cost.summarize(samples, suffix="+tracing")
    md = filter_cost.markdown(
        summary,
        args.rounds,
        args.duration,
        title=f"Cost of tracing (Zipkin, {args.percent:g} % sampling)",
        command="python -m benchmarks tracing",
    )
    filter_cost.save(args.output, summary, samples, md)
    return 0

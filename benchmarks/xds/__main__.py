"""`python -m benchmarks.xds`: xDS push latency and 10,000-cluster scale, meshcore against
Envoy in the same run (needs the installed package and real Envoy, see benchmarks/README.md)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import trio

from . import eds_change, push_latency, scale


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.xds", description=__doc__)
    ap.add_argument("--proxies", default="meshcore,envoy", help="comma-separated")
    ap.add_argument("--rounds", type=int, default=100, help="route changes (default 100)")
    ap.add_argument("--clusters", type=int, default=10_000, help="for the scale run")
    ap.add_argument("--changes", type=int, default=10, help="endpoint changes at scale")
    ap.add_argument(
        "--route-changes",
        type=int,
        default=20,
        help="route changes timed at scale, with all clusters loaded (default 20)",
    )
    ap.add_argument(
        "--cluster-changes",
        type=int,
        default=20,
        help="one cluster's settings changes timed at scale, all loaded (default 20)",
    )
    ap.add_argument(
        "--vhosts",
        type=int,
        default=0,
        help="Istio-like service virtual hosts in the changed route config (default 0)",
    )
    ap.add_argument(
        "--root-change",
        action="store_true",
        help="each route change also flips a field of the route config itself (checked whole)",
    )
    ap.add_argument(
        "--eds-endpoints",
        type=int,
        default=0,
        help="also time one endpoint's change in an assignment of N endpoints (--rounds times)",
    )
    ap.add_argument("--delta", action="store_true", help="DELTA_GRPC instead of GRPC")
    ap.add_argument("--skip", default="", help="latency and/or scale")
    ap.add_argument("--json", type=Path, help="write the results here")
    return ap


async def main(args: argparse.Namespace) -> dict[str, Any]:
    kinds = [k.strip() for k in args.proxies.split(",") if k.strip()]
    skip = set(args.skip.split(","))
    out: dict[str, Any] = {"delta": args.delta}
    with tempfile.TemporaryDirectory(prefix="meshcore-xds-bench-") as tmp:
        if "latency" not in skip:
            out["route_change"] = await push_latency.run(
                kinds, args.rounds, Path(tmp), args.delta, args.vhosts, args.root_change
            )
            print(json.dumps({"route_change": out["route_change"]}, indent=2), flush=True)
        if args.eds_endpoints:
            out["eds_change"] = await eds_change.run(
                kinds, args.eds_endpoints, args.rounds, Path(tmp) / "eds", args.delta
            )
            print(json.dumps({"eds_change": out["eds_change"]}, indent=2), flush=True)
        if "scale" not in skip:
            out["scale"] = await scale.run(
                kinds,
                args.clusters,
                Path(tmp) / "scale",
                args.delta,
                args.changes,
                args.route_changes,
                args.cluster_changes,
            )
            print(json.dumps({"scale": out["scale"]}, indent=2), flush=True)
    return out


if __name__ == "__main__":
    arguments = parser().parse_args()
    results = trio.run(main, arguments)
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2) + "\n")
    sys.exit(0)

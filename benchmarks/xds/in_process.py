"""Thread CPU time of one xDS update inside the process: a delta stream's response handed to
`XdsClient._on_response` with the real `Server` and engine (one worker), warm (back to back)
and cold (after 20 ms of sleep, while the rest of the machine runs: caches evicted, as
between pushes in a real sidecar). No gRPC, no test server: only the client's own work
from decoded response to ACK queued, which is what the push → ACK benchmark's "Python work"
rows add up to.

  python -m benchmarks.xds.in_process route        # a one-route config flips its cluster
  python -m benchmarks.xds.in_process vhosts 1000  # one of 1,000 virtual hosts changes
  python -m benchmarks.xds.in_process root 1000    # its root changes: checked whole
  python -m benchmarks.xds.in_process eds 1000     # one endpoint of 1,000 changes

Needs the source tree (it drives the client with `tests/xds`' harness)."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import trio

from tests.xds.builders import ASSIGNMENT, CLUSTER, ROUTE_CONFIG, assignment, eds_cluster
from tests.xds.incremental import response
from tests.xds.real_server import real_server
from tests.xds.test_routes_engine import _load

from .push_latency import routes

Make = Callable[[int], Any]


def _updates(kind: str, size: int) -> tuple[Make, list[Any]]:
    """The response of change `n` and what to push first (after the harness's load)."""
    if kind == "eds":

        def endpoints(n: int) -> list[tuple[str, int]]:
            out = [("127.0.0.1", 20000 + i) for i in range(size)]
            out[size // 2] = ("127.0.0.1", 40000 + n % 2)
            return out

        def eds(n: int) -> Any:
            return response(ASSIGNMENT, [assignment("s1", endpoints(n))], f"x{n}")

        return eds, []
    vhosts = size if kind in ("vhosts", "root") else 0
    root = kind == "root"

    def route(n: int) -> Any:
        pair = ("a", "b") if vhosts else ("s0", "s1")  # `routes` flips the root on "a"
        config = routes("r", pair[n % 2], vhosts, root)
        return response(ROUTE_CONFIG, [config], f"x{n}")

    # the clusters the service virtual hosts name (`push_latency._service`)
    first = [
        response(CLUSTER, [eds_cluster(n) for n in "ab"], "c2"),
        response(ASSIGNMENT, [assignment(n, [("127.0.0.1", 1003)]) for n in "ab"], "e2"),
    ]
    return route, first if vhosts else []


async def _measure(kind: str, size: int, rounds: int) -> dict[str, float]:
    make, first = _updates(kind, size)
    async with real_server(delta=True) as (_server, client, stream):
        await _load(client, "s0")
        for update in first:
            await client._on_response(update)
            assert stream.acked(update.nonce), stream.sent[-1]
        prepared = [make(n) for n in range(10 + 2 * rounds)]

        async def push(n: int) -> float:
            start = time.thread_time()
            await client._on_response(prepared[n])
            spent = time.thread_time() - start
            assert stream.acked(prepared[n].nonce), stream.sent[-1]
            return spent * 1000

        for n in range(10):
            await push(n)
        warm = [await push(10 + n) for n in range(rounds)]
        cold = []
        for n in range(rounds):
            time.sleep(0.02)
            cold.append(await push(10 + rounds + n))
    return {
        "warm_p50_ms": statistics.median(warm),
        "cold_p50_ms": statistics.median(cold),
        "cold_max_ms": max(cold),
    }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.xds.in_process", description=__doc__)
    ap.add_argument("kind", choices=["route", "vhosts", "root", "eds"])
    ap.add_argument("size", type=int, nargs="?", default=1000)
    ap.add_argument("--rounds", type=int, default=100)
    args = ap.parse_args()
    out = trio.run(_measure, args.kind, args.size, args.rounds)
    label = args.kind if args.kind == "route" else f"{args.kind} {args.size}"
    print(label + ": " + ", ".join(f"{k} {v:.3f}" for k, v in out.items()))


if __name__ == "__main__":
    main()

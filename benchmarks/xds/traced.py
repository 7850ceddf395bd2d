"""Where a push → ACK goes inside meshcore: runs `push_latency` (or `scale`'s endpoint
changes) for meshcore alone with the hooks of `trace_hooks/sitecustomize.py` in the
process, joins their time stamps with the test server's (send, ACK recorded; the same
monotonic clock) by nonce, and prints the p50 of each step in ms.

`python -m benchmarks.xds.traced [--rounds 100] [--delta] [--no-flood] [--scale]`
- `--no-flood`: no back-to-back requests during a route change (`push_latency` sends them
  to time "push → routed", on both proxies in the benchmark);
- `--scale`: one cluster's endpoint change with 10,000 clusters loaded (delta), 20 changes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from tests.xds.ads_server import AdsServer

from . import push_latency, scale

HOOKS = Path(__file__).parent / "trace_hooks"
STEPS = [
    ("sent", "poll_start", "server send → grpcio's polling thread runs the deserializer"),
    ("poll_start", "posted", "parse, hand to trio"),
    ("posted", "trio_cb", "→ trio runs the callback"),
    ("trio_cb", "task", "→ the xDS task runs"),
    ("task", "stage_start", "decode, stats scopes, lock"),
    ("stage_start", "stage_end", "stage: check and plan"),
    ("apply_start", "apply_end", "apply"),
    ("commit_start", "commit_end", "commit"),
    ("commit_end", "ack_queued", "ACK built and queued"),
    ("ack_queued", "sender_has", "→ grpcio's sending thread has it"),
    ("sender_has", "ack", "→ the test server recorded the ACK"),
    ("sent", "ack", "server send → ACK"),
]


class _Recording(AdsServer):
    """Keeps what the join needs when the benchmark stops it."""

    last: _Recording | None = None

    def stop(self) -> None:
        self.sent = dict(self.sent_at)
        self.acks = {r.nonce: r.at for r in self.recorded if r.is_ack()}
        _Recording.last = self
        super().stop()


def _no_flood() -> None:
    """`routed_at` only waits for the first routing (before the rounds)."""
    real = push_latency.routed_at
    calls = [0]

    async def routed_at(port: int, expected: str, timeout: float = 10.0) -> float:
        calls[0] += 1
        if calls[0] == 1:
            return await real(port, expected, timeout)
        return time.monotonic()

    push_latency.routed_at = routed_at  # type: ignore[assignment]


async def _run(args: argparse.Namespace, workdir: Path) -> None:
    if args.scale:
        out = await scale.run(["meshcore"], 10_000, workdir, True, 20, 0)
        print(json.dumps({"endpoint_change_ms": out["meshcore"]["endpoint_change_ms"]}))
    else:
        out = await push_latency.run(["meshcore"], args.rounds, workdir, args.delta)
        print(json.dumps({"route_change": out["meshcore"]}))


def report(lines: list[dict[str, Any]], server: _Recording) -> list[str]:
    kept = []
    for record in lines:
        nonce = record["nonce"]
        if nonce not in server.sent or nonce not in server.acks or "stage_end" not in record:
            continue
        if record["stage_end"] - record["stage_start"] > 0.005:
            continue  # loading 10,000 clusters, not a change
        kept.append({**record, "sent": server.sent[nonce], "ack": server.acks[nonce]})
    rows = [f"{len(kept)} responses, p50 ms"]
    for first, last, label in STEPS:
        values = [(r[last] - r[first]) * 1000 for r in kept if first in r and last in r]
        if values:
            rows.append(f"{label:<62} {statistics.median(values):.3f}")
    for key in sorted({k for r in kept for k in r if k.startswith("d_")}):
        values = [r[key] * 1000 for r in kept if key in r]
        calls = statistics.median(r.get("n" + key[1:], 0) for r in kept if key in r)
        label = f"{key[2:]} ({calls:g}×)"
        rows.append(f"  {label:<60} {statistics.median(values):.3f}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.xds.traced", description=__doc__)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--delta", action="store_true")
    ap.add_argument("--no-flood", action="store_true")
    ap.add_argument("--scale", action="store_true")
    args = ap.parse_args()
    if args.no_flood:
        _no_flood()
    push_latency.AdsServer = _Recording  # type: ignore[misc]
    scale.AdsServer = _Recording  # type: ignore[misc]
    with tempfile.TemporaryDirectory(prefix="meshcore-xds-traced-") as tmp:
        trace = Path(tmp) / "trace.jsonl"
        os.environ["XDS_TRACE"] = str(trace)  # the proxy inherits the environment
        paths = [str(HOOKS), os.environ.get("PYTHONPATH", "")]
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        trio.run(_run, args, Path(tmp) / "work")
        lines = [json.loads(line) for line in trace.read_text().splitlines()]
    assert _Recording.last is not None
    print("\n".join(report(lines, _Recording.last)))


if __name__ == "__main__":
    main()

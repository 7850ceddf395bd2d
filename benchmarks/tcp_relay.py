"""`python -m benchmarks.tcp_relay`: TCP relay throughput through a `tcp_proxy` listener
against a direct connection, in the same run. iperf3 (Debian `iperf3`) sends one stream
for `--duration` seconds: client and server pinned to CPU 1, the proxy under test (meshcore
or Envoy, one worker) to CPU 0. Prints MiB/s, the ratio to direct and the proxy's CPU per
MiB; interleaved rounds, medians."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from benchmarks.cpu import cpu_seconds
from benchmarks.procs import Proc, free_port, wait_port
from benchmarks.targets import envoy_binary

TCP_PROXY_TYPE = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
MIB = 1024 * 1024


def _addr(port: int) -> dict[str, object]:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def tcp_bootstrap(listen_port: int, admin_port: int, sink_port: int) -> dict[str, object]:
    """One tcp_proxy listener to one STATIC cluster (the sink)."""
    proxy = {"@type": TCP_PROXY_TYPE, "stat_prefix": "bench", "cluster": "sink"}
    listener = {
        "name": "bench",
        "address": _addr(listen_port),
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": proxy}]}
        ],
    }
    cluster = {
        "name": "sink",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": "sink",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _addr(sink_port)}}]}],
        },
    }
    return {
        "admin": {"address": _addr(admin_port)},
        "static_resources": {"listeners": [listener], "clusters": [cluster]},
    }


def command(kind: str, config: Path) -> list[str]:
    if kind == "meshcore":
        return [sys.executable, "-m", "meshcore", "run", "-c", str(config), "--concurrency", "1"]
    binary = envoy_binary()
    if binary is None:
        raise SystemExit("Envoy not found (set MESHCORE_ENVOY_BIN)")
    return [binary, "-c", str(config), "--concurrency", "1", "--disable-hot-restart"]


def iperf(port: int, duration: float) -> float:
    """MiB/s the iperf3 server received from one client stream to 127.0.0.1:`port`."""
    out = subprocess.run(
        ["taskset", "-c", "1", "iperf3", "-c", "127.0.0.1", "-p", str(port),
         "-t", str(duration), "-J"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 8 / MIB


def measure(kind: str, proc: Proc | None, port: int, duration: float) -> tuple[float, float]:
    """(MiB/s, proxy CPU µs per MiB; 0 for direct) of one iperf3 run."""
    cpu0 = cpu_seconds(proc.pid) if proc else 0.0
    rate = iperf(port, duration)
    cpu = (cpu_seconds(proc.pid) - cpu0) if proc else 0.0
    return rate, cpu / (rate * duration) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.tcp_relay", description=__doc__)
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per run (default 3)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--targets", default="direct,meshcore,envoy")
    args = ap.parse_args()
    if shutil.which("iperf3") is None:
        raise SystemExit("iperf3 not found (apt-get install iperf3)")
    kinds = [k.strip() for k in args.targets.split(",") if k.strip()]
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="tcp-relay-") as tmp:
        workdir = Path(tmp)
        sink = free_port()
        server = Proc.start(
            "iperf3", ["iperf3", "-s", "-p", str(sink)], cpu=1, log=workdir / "iperf3.log"
        )
        procs: dict[str, tuple[Proc | None, int]] = {}
        try:
            wait_port(sink)
            for kind in kinds:
                if kind == "direct":
                    procs[kind] = (None, sink)
                    continue
                port = free_port()
                config = workdir / f"{kind}.yaml"
                config.write_text(yaml.safe_dump(tcp_bootstrap(port, free_port(), sink)))
                proc = Proc.start(kind, command(kind, config), cpu=0, log=workdir / f"{kind}.log")
                procs[kind] = (proc, port)
                wait_port(port)
            for _ in range(args.rounds):
                for kind in kinds:
                    proc, port = procs[kind]
                    results[kind].append(measure(kind, proc, port, args.duration))
        finally:
            for proc, _ in procs.values():
                if proc is not None:
                    proc.stop()
            server.stop()
    report(results)


def report(results: dict[str, list[tuple[float, float]]]) -> None:
    direct = sorted(r[0] for r in results.get("direct", [(0.0, 0.0)]))
    base = direct[len(direct) // 2]
    print("| path | MiB/s | of direct | proxy CPU per MiB |")
    print("|---|---|---|---|")
    for kind, runs in results.items():
        rate = sorted(r[0] for r in runs)[len(runs) // 2]
        cpu = sorted(r[1] for r in runs)[len(runs) // 2]
        ratio = f"{rate / base:.2f}" if base else "–"
        cpu_text = f"{cpu:.0f} µs" if kind != "direct" else "–"
        print(f"| {kind} | {rate:.0f} | {ratio} | {cpu_text} |", file=sys.stdout)


if __name__ == "__main__":
    main()

"""`python -m benchmarks.tcp_relay`: proxy CPU per MiB relayed through a `tcp_proxy`
listener (meshcore against Envoy, one worker each, pinned to CPU 0; the bulk sender and the
sink run in this process on CPU 1). One direction, client → proxy → sink, interleaved
rounds."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from benchmarks.cpu import cpu_seconds
from benchmarks.procs import Proc, free_port, wait_port
from benchmarks.targets import envoy_binary

TCP_PROXY_TYPE = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
MIB = 1024 * 1024
BLOCK = b"\0" * MIB


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


def start_sink() -> int:
    """A server that reads and discards everything (one thread per connection)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def drain(conn: socket.socket) -> None:
        buf = bytearray(MIB)
        with conn:
            while conn.recv_into(buf):
                pass

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=drain, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return int(listener.getsockname()[1])


def command(kind: str, config: Path) -> list[str]:
    if kind == "meshcore":
        return [sys.executable, "-m", "meshcore", "run", "-c", str(config), "--concurrency", "1"]
    binary = envoy_binary()
    if binary is None:
        raise SystemExit("Envoy not found (set MESHCORE_ENVOY_BIN)")
    return [binary, "-c", str(config), "--concurrency", "1", "--disable-hot-restart"]


def send(port: int, mib: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(mib):
            sock.sendall(BLOCK)
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1)  # EOF once the proxy passed the FIN on and the sink closed


def measure(kind: str, sink: int, mib: int, workdir: Path) -> tuple[float, float]:
    """(proxy CPU µs per MiB, MiB/s) for one transfer of `mib` MiB."""
    port = free_port()
    config = workdir / f"{kind}.yaml"
    config.write_text(yaml.safe_dump(tcp_bootstrap(port, free_port(), sink)))
    proc = Proc.start(kind, command(kind, config), cpu=0, log=workdir / f"{kind}.log")
    try:
        wait_port(port)
        time.sleep(0.3)
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        send(port, mib)
        cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
    finally:
        proc.stop()
    return (cpu1 - cpu0) / mib * 1e6, mib / (t1 - t0)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.tcp_relay", description=__doc__)
    ap.add_argument("--mib", type=int, default=2048, help="MiB per transfer (default 2048)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--targets", default="meshcore,envoy")
    args = ap.parse_args()
    os.sched_setaffinity(0, {1})
    sink = start_sink()
    kinds = [k.strip() for k in args.targets.split(",") if k.strip()]
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="tcp-relay-") as tmp:
        for _ in range(args.rounds):
            for kind in kinds:
                results[kind].append(measure(kind, sink, args.mib, Path(tmp)))
    for kind, runs in results.items():
        cpu = sorted(r[0] for r in runs)[len(runs) // 2]
        rate = sorted(r[1] for r in runs)[len(runs) // 2]
        print(f"{kind:9} proxy CPU {cpu:6.0f} µs/MiB (median of {len(runs)}), {rate:6.0f} MiB/s")


if __name__ == "__main__":
    main()

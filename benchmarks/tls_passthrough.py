"""`python -m benchmarks.tls_passthrough`: TLS passthrough (TLS inspector, a `server_names`
filter chain ending in `tcp_proxy`, the still-encrypted stream relayed to the TLS server)
against a direct connection to that server, in the same run: MiB/s of 1 MiB HTTPS downloads
(wrk, 10 connections) and the proxy's CPU per MiB, for meshcore and Envoy. The TLS server
(nginx terminating TLS in front of the suite's nginx backend), wrk and the backend run on
CPU 0; the proxy under test on CPU 1 with one worker; interleaved rounds, medians."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks import backend
from benchmarks.procs import Proc, free_port, wait_port
from benchmarks.targets import start_on_bootstrap
from benchmarks.tls_termination import make_cert, nginx_tls_conf, timed_wrk

TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
INSPECTOR = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
MIB = 1 << 20


def passthrough_bootstrap(port: int, tls_port: int) -> dict[str, object]:
    """A listener whose `localhost` chain relays the encrypted stream to 127.0.0.1:`tls_port`."""
    proxy = {"@type": TCP_PROXY, "stat_prefix": "pass", "cluster": "tls"}
    listener = {
        "name": "pass",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "listener_filters": [
            {"name": "envoy.filters.listener.tls_inspector", "typed_config": {"@type": INSPECTOR}}
        ],
        "filter_chains": [
            {
                "filter_chain_match": {"server_names": ["localhost"]},
                "filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": proxy}],
            }
        ],
    }
    endpoint = {
        "endpoint": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": tls_port}}
        }
    }
    cluster = {
        "name": "tls",
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": "tls", "endpoints": [{"lb_endpoints": [endpoint]}]},
    }
    return {"static_resources": {"listeners": [listener], "clusters": [cluster]}}


def start_tls_server(workdir: Path, backend_port: int, cert: Path, key: Path) -> tuple[Proc, int]:
    """nginx terminating TLS (CPU 0) in front of the backend."""
    port = free_port()
    conf = nginx_tls_conf(workdir, port, backend_port, cert, key)
    path = workdir / "nginx-tls-server.conf"
    path.write_text(conf)
    cmd = [backend.nginx_binary() or "nginx", "-c", str(path), "-e", str(workdir / "tls.err")]
    proc = Proc.start("tls-server", cmd, cpu=0, log=workdir / "tls-server.log")
    wait_port(port)
    return proc, port


def start_proxy(kind: str, workdir: Path, tls_port: int) -> tuple[Proc, int]:
    port = free_port()
    config = passthrough_bootstrap(port, tls_port)
    return start_on_bootstrap(kind, config, port, workdir, cpu=1, tag="-pass"), port


def measure(
    kind: str, workdir: Path, tls_port: int, args: argparse.Namespace
) -> tuple[float, float]:
    """(MiB/s, proxy CPU µs per MiB; 0 for direct) of one wrk run."""
    proc = None
    port = tls_port
    if kind != "direct":
        proc, port = start_proxy(kind, workdir, tls_port)
    r, cpu = timed_wrk(kind, proc, f"https://localhost:{port}{backend.DOWNLOAD_PATH}", args)
    mib = r.requests * backend.DOWNLOAD_BYTES / MIB
    return mib / r.duration_s, cpu / mib * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.tls_passthrough", description=__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=10)
    ap.add_argument("--targets", default="direct,meshcore,envoy")
    args = ap.parse_args()
    kinds = [k.strip() for k in args.targets.split(",") if k.strip()]
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="tls-pass-") as tmp:
        work = Path(tmp)
        cert, key = make_cert(work)
        be = backend.start(work, free_port(), cpu=0)
        server, tls_port = start_tls_server(work, be.port, cert, key)
        try:
            for _ in range(args.rounds):
                for kind in kinds:
                    results[kind].append(measure(kind, work, tls_port, args))
        finally:
            server.stop()
            be.stop()
    print(f"TLS passthrough, 1 MiB downloads, c{args.connections}, {args.rounds} rounds")
    direct = sorted(r[0] for r in results.get("direct", [(0.0, 0.0)]))
    base = direct[len(direct) // 2]
    for kind, runs in results.items():
        mibs = sorted(r[0] for r in runs)[len(runs) // 2]
        cpu = sorted(r[1] for r in runs)[len(runs) // 2]
        ratio = f"{mibs / base:5.2f} of direct" if base else ""
        print(f"{kind:9} {mibs:8.1f} MiB/s  {ratio}  {cpu:7.1f} µs proxy CPU per MiB (medians)")


if __name__ == "__main__":
    main()

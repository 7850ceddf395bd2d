"""`python -m benchmarks.tcp_relay`: TCP relay throughput through a `tcp_proxy` listener
against a direct connection, in the same run. iperf3 (Debian `iperf3`) sends one stream
for `--duration` seconds: client and server pinned to CPU 1, the proxy under test (meshcore
or Envoy, one worker) to CPU 0. Prints MiB/s, the ratio to direct, the proxy's CPU per MiB,
how busy each CPU was and how long the proxy waited for its CPU (other work on the shared
machine); interleaved rounds, medians.

With `--link-rate 1gbit,5gbit,10gbit` the bytes cross a shaped link instead (benchmarks.tcp_link:
a client and a server network namespace joined by a veth pair, tc tbf at each rate): direct
is the client to the server across the link; proxied, the proxy runs as a sidecar in the
client's namespace (client -> 127.0.0.1 -> proxy -> link -> server). Same pinning, or with
`--link-layout hosts` the client and the proxy on CPU 0 and the server on CPU 1."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks import tcp_link
from benchmarks.cpu import busy_pct, core_times, cpu_seconds, wait_seconds
from benchmarks.procs import Proc, adjust_priority, free_port, raise_priority, wait_port
from benchmarks.targets import envoy_binary

TCP_PROXY_TYPE = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
MIB = 1024 * 1024


def _addr(port: int, address: str = "127.0.0.1") -> dict[str, object]:
    return {"socket_address": {"address": address, "port_value": port}}


def tcp_bootstrap(
    listen_port: int, admin_port: int, sink_port: int, sink_address: str = "127.0.0.1"
) -> dict[str, object]:
    """One tcp_proxy listener on 127.0.0.1 to one STATIC cluster (the sink)."""
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
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": _addr(sink_port, sink_address)}}]}
            ],
        },
    }
    return {
        "admin": {"address": _addr(admin_port)},
        "static_resources": {"listeners": [listener], "clusters": [cluster]},
    }


#: The Python whose meshcore the `meshcore-b` target runs (`--meshcore-b`): a second build,
#: to compare a relay change against the unchanged one in the same run.
MESHCORE_B: dict[str, str] = {}


def command(kind: str, config: Path) -> list[str]:
    if kind in ("meshcore", "meshcore-b"):
        python = sys.executable if kind == "meshcore" else MESHCORE_B.get("python")
        if python is None:
            raise SystemExit("target meshcore-b needs --meshcore-b PYTHON")
        return [python, "-m", "meshcore", "run", "-c", str(config), "--concurrency", "1"]
    binary = envoy_binary()
    if binary is None:
        raise SystemExit("Envoy not found (set MESHCORE_ENVOY_BIN)")
    return [binary, "-c", str(config), "--concurrency", "1", "--disable-hot-restart"]


def iperf(
    port: int,
    duration: float,
    host: str = "127.0.0.1",
    netns: str | None = None,
    cpu: int = 1,
) -> float:
    """MiB/s the iperf3 server received from one client stream to `host`:`port` (the client
    pinned to `cpu`, in network namespace `netns` when given)."""
    inside = ["ip", "netns", "exec", netns] if netns else []
    client = subprocess.Popen(
        ["taskset", "-c", str(cpu), *inside, "iperf3", "-c", host, "-p", str(port),
         "-t", str(duration), "-J"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    adjust_priority(client.pid)
    out, err = client.communicate()
    if client.returncode != 0:
        raise SystemExit(f"iperf3 client failed: {err.decode(errors='replace')}")
    return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 8 / MIB


@dataclass
class Run:
    """One iperf3 run through one path."""

    mib_s: float
    #: The proxy's CPU (all threads) per MiB relayed, µs; 0 for direct.
    cpu_us_per_mib: float
    #: How busy CPU 0 (the proxy's) and CPU 1 (client and server) were, percent; None when
    #: /proc/stat has no such CPU.
    busy0: float | None
    busy1: float | None
    #: Milliseconds per second the proxy was runnable but waited for its CPU.
    wait_ms_s: float


def measure(
    proc: Proc | None,
    port: int,
    duration: float,
    host: str = "127.0.0.1",
    netns: str | None = None,
    client_cpu: int = 1,
) -> Run:
    cpu0 = cpu_seconds(proc.pid) if proc else 0.0
    wait0 = wait_seconds(proc.pid) if proc else 0.0
    cores0 = core_times()
    rate = iperf(port, duration, host, netns, client_cpu)
    cores1 = core_times()
    cpu = (cpu_seconds(proc.pid) - cpu0) if proc else 0.0
    wait = (wait_seconds(proc.pid) - wait0) if proc else 0.0
    return Run(
        mib_s=rate,
        cpu_us_per_mib=cpu / (rate * duration) * 1e6,
        busy0=busy_pct(cores0, cores1, 0),
        busy1=busy_pct(cores0, cores1, 1),
        wait_ms_s=wait / duration * 1e3,
    )


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.tcp_relay", description=__doc__)
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per run (default 3)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--targets", default="direct,meshcore,envoy")
    ap.add_argument(
        "--nice",
        type=int,
        default=-10,
        help="nice value of the proxies, iperf3 client and server (default -10; needs root)",
    )
    ap.add_argument(
        "--link-rate",
        default="",
        help="comma-separated link rates (e.g. 1gbit,5gbit,10gbit): measure across a shaped "
        "veth link between two network namespaces instead of loopback (needs root)",
    )
    ap.add_argument(
        "--meshcore-b",
        metavar="PYTHON",
        help="interpreter of a second meshcore build, measured as target meshcore-b",
    )
    ap.add_argument(
        "--link-layout",
        choices=sorted(LAYOUTS),
        default="shared",
        help="with --link-rate: shared = pinned as on loopback (proxy CPU 0, client and server "
        "CPU 1); hosts = CPU 0 is the client's host (client and proxy), CPU 1 the server's, "
        "each veth end's receive processing steered to its host's CPU (default shared)",
    )
    args = ap.parse_args()
    if args.meshcore_b:
        MESHCORE_B["python"] = args.meshcore_b
    if shutil.which("iperf3") is None:
        raise SystemExit("iperf3 not found (apt-get install iperf3)")
    kinds = [k.strip() for k in args.targets.split(",") if k.strip()]
    rates = [r.strip() for r in args.link_rate.split(",") if r.strip()]
    try:
        for rate in rates:
            tcp_link.parse_rate(rate)
    except tcp_link.LinkError as e:
        raise SystemExit(str(e)) from None
    raise_priority(args.nice)
    if rates:
        with tcp_link.terminate_raises():
            layout = LAYOUTS[args.link_layout]
            print(link_report(run_link(kinds, rates, args.rounds, args.duration, layout)))
    else:
        print(report(run_loopback(kinds, args.rounds, args.duration)))


def run_loopback(kinds: list[str], rounds: int, duration: float) -> dict[str, list[Run]]:
    """Everything over 127.0.0.1: the iperf3 server, the proxies and the client."""
    results: dict[str, list[Run]] = {k: [] for k in kinds}
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
                log = workdir / f"{kind}.log"
                started = Proc.start(kind, command(kind, config), cpu=0, log=log)
                procs[kind] = (started, port)
                wait_port(port)
            for _ in range(rounds):
                for kind in kinds:
                    proc, port = procs[kind]
                    results[kind].append(measure(proc, port, duration))
        finally:
            for proc, _ in procs.values():
                if proc is not None:
                    proc.stop()
            server.stop()
    return results


@dataclass(frozen=True)
class Layout:
    """Where the link scenario's processes run; `steer`: RPS sends each veth end's received
    packets to its namespace's CPU (client_cpu, server_cpu)."""

    proxy_cpu: int
    client_cpu: int
    server_cpu: int
    steer: bool


LAYOUTS = {
    "shared": Layout(proxy_cpu=0, client_cpu=1, server_cpu=1, steer=False),
    "hosts": Layout(proxy_cpu=0, client_cpu=0, server_cpu=1, steer=True),
}

#: Ports inside the fresh namespaces (nothing else listens there).
LINK_SINK_PORT = 5201
LINK_PROXY_PORT = 10000
LINK_ADMIN_PORT = 19000


def run_link(
    kinds: list[str],
    rates: list[str],
    rounds: int,
    duration: float,
    layout: Layout = LAYOUTS["shared"],
) -> dict[str, dict[str, list[Run]]]:
    """Per link rate, `rounds` interleaved runs of each kind across the shaped veth link: the
    iperf3 server in the server namespace, the client and the proxies (sidecars) in the
    client namespace. The namespaces and every process in them are gone on return, also on
    an error or Ctrl-C."""
    results: dict[str, dict[str, list[Run]]] = {r: {k: [] for k in kinds} for r in rates}
    with (
        tempfile.TemporaryDirectory(prefix="tcp-relay-link-") as tmp,
        tcp_link.link() as net,
    ):
        workdir = Path(tmp)
        client_ns, server_ns = net.client_ns, net.server_ns
        procs: dict[str, tuple[Proc | None, str, int]] = {}
        if layout.steer:
            net.steer(client_ns, layout.client_cpu)
            net.steer(server_ns, layout.server_cpu)
        server = Proc.start(
            "iperf3",
            [*net.exec_prefix(server_ns), "iperf3", "-s", "-p", str(LINK_SINK_PORT)],
            cpu=layout.server_cpu,
            log=workdir / "iperf3.log",
        )
        try:
            net.wait_port(server_ns, LINK_SINK_PORT)
            for i, kind in enumerate(kinds):
                if kind == "direct":
                    procs[kind] = (None, net.server_addr, LINK_SINK_PORT)
                    continue
                port, admin = LINK_PROXY_PORT + i, LINK_ADMIN_PORT + i
                config = workdir / f"{kind}.yaml"
                boot = tcp_bootstrap(port, admin, LINK_SINK_PORT, net.server_addr)
                config.write_text(yaml.safe_dump(boot))
                cmd = [*net.exec_prefix(client_ns), *command(kind, config)]
                log = workdir / f"{kind}.log"
                started = Proc.start(kind, cmd, cpu=layout.proxy_cpu, log=log)
                procs[kind] = (started, "127.0.0.1", port)
                net.wait_port(client_ns, port)
            for rate in rates:
                net.shape(rate)
                for _ in range(rounds):
                    for kind in kinds:
                        proc, host, port = procs[kind]
                        run = measure(proc, port, duration, host, client_ns, layout.client_cpu)
                        results[rate][kind].append(run)
        finally:
            for proc, _, _ in procs.values():
                if proc is not None:
                    proc.stop()
            server.stop()
    return results


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _pct(v: float | None) -> str:
    return "?" if v is None else f"{v:.0f}%"


def _cells(kind: str, runs: list[Run], base: float) -> list[str]:
    """MiB/s, of direct, proxy CPU per MiB, CPU busy, proxy waited: medians over `runs`."""
    rate = _median([r.mib_s for r in runs]) or 0.0
    ratio = f"{rate / base:.2f}" if base else "–"
    proxy = kind != "direct"
    cpu = f"{_median([r.cpu_us_per_mib for r in runs]) or 0:.0f} µs" if proxy else "–"
    busy0, busy1 = _median([r.busy0 for r in runs]), _median([r.busy1 for r in runs])
    wait = f"{_median([r.wait_ms_s for r in runs]) or 0:.0f} ms/s" if proxy else "–"
    return [f"{rate:.0f}", ratio, cpu, f"{_pct(busy0)} / {_pct(busy1)}", wait]


def report(results: dict[str, list[Run]]) -> str:
    """The table of medians; the ratio is to direct's median (– without a direct run)."""
    base = _median([r.mib_s for r in results.get("direct", [])]) or 0.0
    lines = [
        "| path | MiB/s | of direct | proxy CPU per MiB | CPU 0 / CPU 1 busy | proxy waited |",
        "|---|---|---|---|---|---|",
    ]
    for kind, runs in results.items():
        lines.append("| " + " | ".join([kind, *_cells(kind, runs, base)]) + " |")
    return "\n".join(lines)


def link_report(results: dict[str, dict[str, list[Run]]]) -> str:
    """One table for every link rate: the link's rate in MiB/s, then per path the medians,
    the share of the link's raw rate (TCP over a 1500-byte MTU carries at most 1448/1514 =
    0.96 of it) and the ratio to direct over the same link."""
    lines = [
        "| link | path | MiB/s | of link | of direct | proxy CPU per MiB "
        "| CPU 0 / CPU 1 busy | proxy waited |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rate, by_kind in results.items():
        link_mib_s = tcp_link.parse_rate(rate) / 8 / MIB
        base = _median([r.mib_s for r in by_kind.get("direct", [])]) or 0.0
        for kind, runs in by_kind.items():
            cells = _cells(kind, runs, base)
            of_link = f"{(_median([r.mib_s for r in runs]) or 0.0) / link_mib_s:.2f}"
            label = f"{rate} ({link_mib_s:.0f} MiB/s)"
            lines.append("| " + " | ".join([label, kind, cells[0], of_link, *cells[1:]]) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

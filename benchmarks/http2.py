"""`python -m benchmarks.http2`: HTTP/2 through the proxy, meshcore against Envoy in the same
run (one worker each, pinned to CPU 0; h2load and the backends on CPU 1), interleaved rounds:

- `h2c`: h2load with prior knowledge, multiplexed (`-c 10 -m 10`), GET to an nginx HTTP/1.1
  backend;
- `grpc`: unary gRPC calls (h2load POSTs a framed message with gRPC headers) to a grpcio
  server over an HTTP/2 cluster;
- `grpc-nginx`: the same calls to a backend that answers them in C (`grpc_backend.py`:
  nginx over h2c with the `grpc-status` trailer), so that the proxy, not the Python gRPC
  server, sets the rate.

Prints requests/s and the proxy's CPU per request (with the grpcio backend the backend bounds
the rate on a busy 2-core machine; CPU per request is the proxy's own cost), and each
scenario's meshcore/Envoy requests/s ratio.

`--meshcore-b PYTHON` adds target `meshcore-b`, the meshcore installed for that interpreter (a
second build, e.g. main's), measured in the same interleaved rounds.

`--proxy-cpu CORES` runs each proxy in a cgroup with that CFS quota (a sidecar's CPU limit),
so that the proxy, not CPU 1, bounds the rate; each round then also prints the share of CFS
periods in which the proxy was throttled and how busy CPU 1 was."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from benchmarks import backend as nginx_backend
from benchmarks import grpc_backend
from benchmarks.cpu import busy_pct, core_times, cpu_seconds
from benchmarks.cpu_limit import CpuGroup, CpuLimitError, cpu_limit
from benchmarks.procs import Proc, free_port, wait_port
from benchmarks.targets import envoy_binary

HCM_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
    "HttpConnectionManager"
)
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
UPSTREAM_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
GRPC_PATH = "/test.Echo/Unary"


def _addr(port: int) -> dict[str, Any]:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def _cluster(name: str, port: int, http2: bool) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _addr(port)}}]}],
        },
    }
    if http2:
        cluster["typed_extension_protocol_options"] = {
            UPSTREAM_OPTIONS: {
                "@type": f"type.googleapis.com/{UPSTREAM_OPTIONS}",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        }
    return cluster


def bootstrap(listen: int, admin: int, web: int, grpc_port: int) -> dict[str, Any]:
    """One listener (codec AUTO): `/test.Echo/` to the gRPC cluster, the rest to nginx."""
    routes = [
        {"match": {"prefix": "/test.Echo/"}, "route": {"cluster": "grpc"}},
        {"match": {"prefix": "/"}, "route": {"cluster": "web"}},
    ]
    hcm = {
        "@type": HCM_TYPE,
        "stat_prefix": "bench",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]},
        "http_filters": [
            {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}}
        ],
    }
    listener = {
        "name": "bench",
        "address": _addr(listen),
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }
    return {
        "admin": {"address": _addr(admin)},
        "static_resources": {
            "listeners": [listener],
            "clusters": [_cluster("web", web, False), _cluster("grpc", grpc_port, True)],
        },
    }


#: The Python whose meshcore the `meshcore-b` target runs (`--meshcore-b`): a second build,
#: to compare a change against the unchanged build in the same run.
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


def h2load(url: str, requests: int, extra: list[str]) -> float:
    """Runs h2load (pinned to CPU 1); returns requests/s. Fails on any failed request."""
    cmd = ["taskset", "-c", "1", "h2load", "-c", "10", "-m", "10", "-n", str(requests), *extra, url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    done = re.search(
        r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed", out
    )
    if not done or int(done.group(3)) != 0 or int(done.group(1)) != requests:
        raise SystemExit(f"h2load: requests failed:\n{out}")
    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    if not rate:
        raise SystemExit(f"h2load: no rate in:\n{out}")
    return float(rate.group(1))


def grpc_payload(workdir: Path) -> Path:
    """A gRPC length-prefixed message (uncompressed, 16 bytes) for h2load's `-d`."""
    path = workdir / "grpc.bin"
    path.write_bytes(grpc_backend.framed(b"x" * 16))
    return path


def grpc_server() -> tuple[Any, int]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.grpc_echo import start_server

    return start_server()


class Run(NamedTuple):
    rate: float  # requests/s
    cpu_us: float  # proxy CPU µs per request
    cpu1_busy: float | None  # % of CPU 1 (h2load + backends) busy during the run
    throttled: float | None  # share of the proxy's CFS periods that ran out of quota


def measure(
    kind: str,
    scenario: str,
    ports: dict[str, int],
    workdir: Path,
    requests: int,
    proxy_cpu: float | None = None,
) -> Run:
    """One run; `ports` maps each backend (`web`, `grpc`, `grpc-nginx`) to its port;
    `proxy_cpu` (cores) puts the proxy in a cgroup with that CPU quota."""
    limit: AbstractContextManager[CpuGroup | None] = (
        nullcontext() if proxy_cpu is None else cpu_limit(proxy_cpu, kind)
    )
    with limit as group:
        return _measure(kind, scenario, ports, workdir, requests, group)


def _measure(
    kind: str,
    scenario: str,
    ports: dict[str, int],
    workdir: Path,
    requests: int,
    group: CpuGroup | None,
) -> Run:
    port = free_port()
    config = workdir / f"{kind}.yaml"
    grpc_port = ports["grpc-nginx" if scenario == "grpc-nginx" else "grpc"]
    config.write_text(yaml.safe_dump(bootstrap(port, free_port(), ports["web"], grpc_port)))
    proc = Proc.start(kind, command(kind, config), cpu=0, log=workdir / f"{kind}.log")
    try:
        if group is not None:
            group.attach(proc.pid)
        wait_port(port)
        time.sleep(0.3)
        if scenario == "h2c":
            url, extra = f"http://127.0.0.1:{port}/", []
        else:
            url = f"http://127.0.0.1:{port}{GRPC_PATH}"
            extra = [
                "-d",
                str(grpc_payload(workdir)),
                "-H",
                "content-type: application/grpc",
                "-H",
                "te: trailers",
            ]
        h2load(url, 500, extra)  # warm-up
        # The cgroup counts in ns; /proc in clock ticks (10 ms), fine for long runs only.
        used = group.usage_s if group is not None else lambda: cpu_seconds(proc.pid)
        cpu0, cores0 = used(), core_times()
        thr0 = group.throttling() if group is not None else None
        rate = h2load(url, requests, extra)
        cpu1, cores1 = used(), core_times()
        throttled = None
        if group is not None and thr0 is not None:
            thr = group.throttling() - thr0
            throttled = thr.throttled / thr.periods if thr.periods else 0.0
    finally:
        proc.stop()
    return Run(rate, (cpu1 - cpu0) / requests * 1e6, busy_pct(cores0, cores1, 1), throttled)


def _round_line(
    i: int,
    scenario: str,
    kinds: list[str],
    results: dict[tuple[str, str], list[Run]],
) -> str:
    """One round's figures for `scenario` (and its meshcore/Envoy ratio): the machine is
    shared, so the spread between rounds is part of the result."""
    runs = {kind: results[(scenario, kind)][-1] for kind in kinds}
    parts = []
    for kind, run in runs.items():
        part = f"{kind} {run.rate:.0f} req/s {run.cpu_us:.1f} µs"
        if run.throttled is not None:
            part += f" (throttled {run.throttled:.0%}"
            part += f", CPU 1 {run.cpu1_busy:.0f}%)" if run.cpu1_busy is not None else ")"
        parts.append(part)
    line = f"round {i + 1} {scenario:10} " + "  ".join(parts)
    for ours in ("meshcore", "meshcore-b"):
        if ours in runs and "envoy" in runs:
            line += f"  {ours}/Envoy {runs[ours].rate / runs['envoy'].rate:.2f}"
    return line


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.http2", description=__doc__)
    ap.add_argument("--requests", type=int, default=20000, help="requests per run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scenarios", default="h2c,grpc,grpc-nginx")
    ap.add_argument("--targets", default="meshcore,envoy")
    ap.add_argument(
        "--proxy-cpu",
        type=float,
        metavar="CORES",
        help="run each proxy in a cgroup with this CPU quota (e.g. 0.5, a sidecar's "
        "limits.cpu of 500m); needs root and the cgroup v1 `cpu` or v2 `cpu.max` controller",
    )
    ap.add_argument(
        "--meshcore-b",
        metavar="PYTHON",
        help="interpreter of a second meshcore build, measured as target meshcore-b (e.g. "
        "--targets meshcore-b,meshcore,envoy to compare a change against main's build)",
    )
    args = ap.parse_args()
    if args.meshcore_b:
        MESHCORE_B["python"] = args.meshcore_b
    if args.proxy_cpu is not None and not args.proxy_cpu > 0:
        ap.error("--proxy-cpu must be a positive number of cores")
    if shutil.which("h2load") is None:
        raise SystemExit("h2load not found: apt-get install -y nghttp2-client")
    os.sched_setaffinity(0, {1})
    kinds = [k.strip() for k in args.targets.split(",") if k.strip()]
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    results: dict[tuple[str, str], list[Run]] = {}
    with tempfile.TemporaryDirectory(prefix="http2-bench-") as tmp:
        workdir = Path(tmp)
        web = nginx_backend.start(workdir, free_port(), cpu=1)
        fast_port = free_port()
        fast = grpc_backend.start(workdir, fast_port, cpu=1)
        server, grpc_port = grpc_server()
        ports = {"web": web.port, "grpc": grpc_port, "grpc-nginx": fast_port}
        try:
            for i in range(args.rounds):
                for scenario in scenarios:
                    for kind in kinds:
                        try:
                            run = measure(
                                kind, scenario, ports, workdir, args.requests, args.proxy_cpu
                            )
                        except CpuLimitError as e:
                            raise SystemExit(f"--proxy-cpu: {e}") from e
                        results.setdefault((scenario, kind), []).append(run)
                    print(_round_line(i, scenario, kinds, results), flush=True)
        finally:
            server.stop(0)
            fast.stop()
            web.stop()
    medians: dict[tuple[str, str], float] = {}
    limit = "" if args.proxy_cpu is None else f" (proxy limited to {args.proxy_cpu:g} CPU)"
    for (scenario, kind), runs in results.items():
        rate = sorted(r.rate for r in runs)[len(runs) // 2]
        cpu = sorted(r.cpu_us for r in runs)[len(runs) // 2]
        medians[(scenario, kind)] = rate
        print(
            f"{scenario:10} {kind:9} {rate:8.0f} req/s  proxy CPU {cpu:6.1f} µs/request"
            f" (median of {len(runs)}){limit}"
        )
    for scenario in scenarios:
        for kind in ("meshcore", "meshcore-b"):
            ours, theirs = medians.get((scenario, kind)), medians.get((scenario, "envoy"))
            if ours and theirs:
                print(f"{scenario:10} {kind}/Envoy requests/s {ours / theirs:.2f}")


if __name__ == "__main__":
    main()

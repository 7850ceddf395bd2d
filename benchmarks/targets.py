"""The proxies under test, each started with one worker on the same Envoy v3 bootstrap."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

from benchmarks.procs import Proc, free_port, wait_port

ENVOY_CANDIDATES = (
    os.environ.get("MESHCORE_ENVOY_BIN", ""),
    ".venv-envoy/lib/python3.11/site-packages/envoy/_bin/envoy",
    "/opt/envoy-venv/lib/python3.11/site-packages/envoy/_bin/envoy",
)


def envoy_binary() -> str:
    for c in ENVOY_CANDIDATES:
        if c and Path(c).exists():
            return str(Path(c).resolve())
    raise SystemExit("Envoy not found: set MESHCORE_ENVOY_BIN or run scripts/test once")


HCM_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.network."
    "http_connection_manager.v3.HttpConnectionManager"
)
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"


def _addr(port: int) -> dict[str, object]:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def bootstrap(listen_port: int, admin_port: int, backend_port: int) -> dict[str, object]:
    """One listener routing everything to one STATIC cluster with upstream keep-alive."""
    hcm = {
        "@type": HCM_TYPE,
        "stat_prefix": "bench",
        "route_config": {
            "name": "local",
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "backend"}}],
                }
            ],
        },
        "http_filters": [
            {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}}
        ],
    }
    listener = {
        "name": "bench",
        "address": _addr(listen_port),
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }
    cluster = {
        "name": "backend",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": "backend",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _addr(backend_port)}}]}],
        },
    }
    return {
        "admin": {"address": _addr(admin_port)},
        "static_resources": {"listeners": [listener], "clusters": [cluster]},
    }


class Target:
    """A named way to reach the backend: `url` to load, `proc` to measure (None = direct)."""

    def __init__(self, name: str, port: int, proc: Proc | None) -> None:
        self.name = name
        self.port = port
        self.proc = proc

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def start_meshcore(workdir: Path, backend_port: int, cpu: int | None) -> Target:
    port, admin = free_port(), free_port()
    cfg = workdir / "meshcore.yaml"
    cfg.write_text(yaml.safe_dump(bootstrap(port, admin, backend_port)))
    cmd = [
        sys.executable,
        "-m",
        "meshcore",
        "run",
        "-c",
        str(cfg),
        "--concurrency",
        "1",
        "--log-level",
        "warning",
    ]
    proc = Proc.start("meshcore", cmd, cpu=cpu, log=workdir / "meshcore.log")
    wait_port(port)
    return Target("meshcore", port, proc)


def start_envoy(workdir: Path, backend_port: int, cpu: int | None) -> Target:
    port, admin = free_port(), free_port()
    cfg = workdir / "envoy.yaml"
    cfg.write_text(yaml.safe_dump(bootstrap(port, admin, backend_port)))
    cmd = [
        envoy_binary(),
        "-c",
        str(cfg),
        "--concurrency",
        "1",
        "--disable-hot-restart",
        "-l",
        "warning",
        "--base-id",
        str(os.getpid() % 10000),
    ]
    proc = Proc.start("envoy", cmd, cpu=cpu, log=workdir / "envoy.log")
    wait_port(port)
    return Target("envoy", port, proc)


def direct(backend_port: int) -> Target:
    return Target("direct", backend_port, None)

"""`meshcore demo`: the embedded demo.yaml (a 90/10 canary split over two upstreams the
engine serves itself) on chosen ports, run like `meshcore run`."""

from __future__ import annotations

import socket
import sys
from importlib import resources
from typing import Any

import yaml

from meshcore.app import ReadyInfo

MAIN_LISTENER = "main"
# Upstream listener -> the cluster that points at it.
UPSTREAMS = {"service_v1_upstream": "service_v1", "service_v2_upstream": "service_v2"}


def template() -> str:
    return str(resources.files("meshcore").joinpath("demo.yaml").read_text(encoding="utf-8"))


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now. Another process could take it before the engine binds it;
    the engine then fails to bind and the demo exits with that error."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _socket_address(node: dict[str, Any]) -> dict[str, Any]:
    return node["address"]["socket_address"]  # type: ignore[no-any-return]


def demo_yaml(port: int, admin_port: int, upstream_ports: dict[str, int]) -> str:
    """demo.yaml with the main listener on `port`, admin on `admin_port` and each upstream
    listener (and the cluster pointing at it) on `upstream_ports[listener name]`."""
    doc: dict[str, Any] = yaml.safe_load(template())
    _socket_address(doc["admin"])["port_value"] = admin_port
    static = doc["static_resources"]
    cluster_ports = {UPSTREAMS[name]: p for name, p in upstream_ports.items()}
    for listener in static["listeners"]:
        name = listener["name"]
        _socket_address(listener)["port_value"] = (
            port if name == MAIN_LISTENER else upstream_ports[name]
        )
    for cluster in static["clusters"]:
        for locality in cluster["load_assignment"]["endpoints"]:
            for lb_endpoint in locality["lb_endpoints"]:
                _socket_address(lb_endpoint["endpoint"])["port_value"] = cluster_ports[
                    cluster["name"]
                ]
    return str(yaml.safe_dump(doc, sort_keys=False))


def instructions(ready: ReadyInfo) -> str:
    ports = {name: (address, port) for name, address, port in ready.listeners}
    host, main_port = ports[MAIN_LISTENER]
    lines = [
        "meshcore demo is running:",
        f"  http://{host}:{main_port}/  routes 90% to service_v1, 10% to service_v2,",
        "  and requests with 'x-canary: true' to service_v2.",
    ]
    for listener, cluster in UPSTREAMS.items():
        a, p = ports[listener]
        lines.append(f"  {cluster} is served by the engine itself on {a}:{p}.")
    lines += ["", "Try:", f"  for i in $(seq 20); do curl -s {host}:{main_port}/; done"]
    lines.append(f"  curl -s -H 'x-canary: true' {host}:{main_port}/")
    if ready.admin is not None:
        admin = f"{ready.admin[0]}:{ready.admin[1]}"
        lines += [
            f"  curl -s {admin}/stats | grep upstream_rq",
            f"  curl -s {admin}/clusters",
            f"  curl -s {admin}/stats/prometheus | grep envoy_cluster_upstream_rq_total",
        ]
    lines += ["", "Ctrl-C stops it (after draining open connections)."]
    return "\n".join(lines)


def print_instructions(ready: ReadyInfo) -> None:
    print(instructions(ready), file=sys.stdout, flush=True)

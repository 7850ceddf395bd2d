"""A large Istio-like route config changed one virtual host at a time (meshcore reuses the
others from the last accepted version, see `config/rds_reuse.py`): real Envoy and meshcore,
driven by one ADS server, route every host the same after each push, and both NACK a bad
virtual host and keep routing as before."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from envoy.config.route.v3 import route_pb2

from tests.support.proxy import Proxy, proxy_kinds
from tests.support.upstream import Upstream

from .ads_server import AdsServer
from .builders import ROUTE_CONFIG, parse
from .harness import WAIT_S, request
from .test_interop import Mesh, nack_from, start_all
from .traffic import answer

HOSTS = 300
ASKED = ["svc0", "svc7", "svc299", "new", "elsewhere"]


def _host(name: str, cluster: str, **route: Any) -> dict[str, Any]:
    match = route.pop("match", {"prefix": "/"})
    return {
        "name": name,
        "domains": [f"{name}.ns.svc.cluster.local", f"{name}.ns", name],
        "routes": [
            {
                "name": "default",
                "match": match,
                "route": {
                    "cluster": cluster,
                    "timeout": "0s",
                    "retry_policy": {"retry_on": "connect-failure", "num_retries": 2},
                },
            }
        ],
    }


def _hosts(changed: dict[int, str] | None = None) -> list[dict[str, Any]]:
    changed = changed or {}
    return [_host(f"svc{i}", changed.get(i, "ab"[i % 2])) for i in range(HOSTS)]


def _push(mesh: Mesh, hosts: list[dict[str, Any]], catch_all: str = "a") -> None:
    every = [*hosts, _host("all", catch_all) | {"domains": ["*"]}]
    data = {"name": "r", "virtual_hosts": every}
    mesh.server.set_resources(ROUTE_CONFIG, [parse(route_pb2.RouteConfiguration, data)])


async def _expect(mesh: Mesh, expected: list[str]) -> None:
    """Every proxy answers the hosts of `ASKED` with `expected` (polled until it does)."""
    for port in mesh.ports.values():
        got: list[str] = []
        with trio.move_on_after(WAIT_S):
            while got != expected:
                got = [await answer(port, "/", host=h) for h in ASKED]
                if got != expected:
                    await trio.sleep(0.05)
        assert got == expected, f"port {port}: {ASKED} answered {got}"


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_one_host_changes_in_a_large_route_config(
    ads_server: AdsServer,
    upstreams: dict[str, Upstream],
    proxies_by_kind: dict[str, Proxy],
    tmp_path_factory: Any,
    delta: bool,
) -> None:
    mesh = Mesh(ads_server, upstreams, proxy_kinds())
    mesh.clusters("a", "b", "c")
    mesh.endpoints(a="a", b="b", c="c")
    mesh.listeners()
    _push(mesh, _hosts())
    await start_all(mesh, proxies_by_kind, tmp_path_factory, delta)
    await _expect(mesh, ["a", "b", "b", "a", "a"])

    _push(mesh, _hosts({7: "c"}))  # one virtual host changed
    await _expect(mesh, ["a", "c", "b", "a", "a"])

    moved = [_host("new", "c"), *_hosts({7: "c", 299: "c"})]  # every index shifts by one
    _push(mesh, moved, catch_all="b")
    await _expect(mesh, ["a", "c", "c", "c", "b"])

    mark = len(ads_server.recorded)
    bad = [*moved]
    bad[5] = _host("svc4", "a", match={"safe_regex": {"regex": "(unclosed"}})
    _push(mesh, bad, catch_all="c")
    for kind in mesh.ports:
        nack = await request(ads_server, nack_from(kind, ROUTE_CONFIG), after=mark)
        assert nack.error
        if kind == "meshcore":
            assert "virtual_hosts[5].routes[0].match.safe_regex" in nack.error
    await _expect(mesh, ["a", "c", "c", "c", "b"])

    _push(mesh, moved[:-1], catch_all="a")  # the bad one fixed (and svc299 gone)
    await _expect(mesh, ["a", "c", "a", "c", "a"])

"""`meshcore run` over SotW and delta ADS: one endpoint changed in a large assignment (the
update checked as a diff against the accepted version) moves traffic to the right upstream,
and a bad endpoint in the next version is NACKed with its path while traffic keeps going
(needs the installed package or PYTHONPATH, like test_meshcore_run)."""

from __future__ import annotations

import pytest
import trio
from envoy.config.endpoint.v3 import endpoint_pb2

from tests.support.ports import free_port
from tests.support.proxy import Proxy, start_proxy
from tests.support.upstream import Upstream

from .ads_server import AdsServer
from .builders import (
    ASSIGNMENT,
    CLUSTER,
    LISTENER,
    ROUTE_CONFIG,
    Json,
    eds_cluster,
    listener,
    parse,
    route_config,
    xds_bootstrap,
)
from .harness import request
from .traffic import answer, until_answers

pytestmark = pytest.mark.meshcore_only

SPARE = 400
"""Priority-1 endpoints (never used while the priority-0 one is healthy)."""


def _endpoint(address: str, port: int) -> Json:
    return {"endpoint": {"address": {"socket_address": {"address": address, "port_value": port}}}}


def _assignment(
    primary_port: int, spare_port: int = 80, bad: str = ""
) -> endpoint_pb2.ClusterLoadAssignment:
    spares = [_endpoint(f"10.255.{i // 200}.{1 + i % 200}", 80) for i in range(SPARE)]
    spares[SPARE // 2] = _endpoint("10.255.9.9", spare_port)
    if bad:
        spares[7] = _endpoint(bad, 80)
    data = {
        "cluster_name": "a",
        "endpoints": [
            {"priority": 0, "lb_endpoints": [_endpoint("127.0.0.1", primary_port)]},
            {"priority": 1, "lb_endpoints": spares},
        ],
    }
    return parse(endpoint_pb2.ClusterLoadAssignment, data)


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_one_endpoint_changed_in_a_large_assignment_moves_traffic(
    ads_server: AdsServer,
    upstreams: dict[str, Upstream],
    proxies: list[Proxy],
    tmp_path_factory: pytest.TempPathFactory,
    delta: bool,
) -> None:
    a, b = upstreams["a"], upstreams["b"]
    port = free_port()
    ads_server.set_resources(CLUSTER, [eds_cluster("a")])
    ads_server.set_resources(ASSIGNMENT, [_assignment(a.port)])
    ads_server.set_resources(LISTENER, [listener("ingress", port, rds="r")])
    ads_server.set_resources(ROUTE_CONFIG, [route_config("r", "a")])
    config = xds_bootstrap(ads_server.port, node="meshcore", delta=delta)
    proxies.append(await trio.to_thread.run_sync(start_proxy, "meshcore", config, tmp_path_factory))
    assert await answer(port) == "a"

    # One endpoint of 401 changed: the priority-0 one, now upstream b. Its ACK awaited too:
    # traffic moves when the engine has the hosts, just before the ACK goes out, and a late
    # ACK would be taken for the next change's answer.
    mark = len(ads_server.recorded)
    ads_server.set_resources(ASSIGNMENT, [_assignment(b.port)])
    ack = await request(
        ads_server, lambda r: r.type_url == ASSIGNMENT and bool(r.nonce), after=mark
    )
    assert ack.is_ack()
    await until_answers(port, ["/"], ["b"])
    # One spare changed: ACKed, traffic unchanged.
    mark = len(ads_server.recorded)
    ads_server.set_resources(ASSIGNMENT, [_assignment(b.port, spare_port=81)])
    ack = await request(
        ads_server, lambda r: r.type_url == ASSIGNMENT and bool(r.nonce), after=mark
    )
    assert ack.is_ack()
    assert await answer(port) == "b"

    # A bad spare beside a good change of the primary: NACKed, nothing of it applied.
    mark = len(ads_server.recorded)
    ads_server.set_resources(ASSIGNMENT, [_assignment(a.port, spare_port=81, bad="10.1.1")])
    nack = await request(
        ads_server, lambda r: r.type_url == ASSIGNMENT and bool(r.nonce), after=mark
    )
    assert nack.is_nack()
    assert nack.error == (
        "endpoints[a].endpoints[1].lb_endpoints[7].endpoint.address.socket_address.address:"
        " malformed IP address: '10.1.1'; STATIC clusters need IP literals"
        " (use STRICT_DNS for names)"
    )
    for _ in range(3):
        assert await answer(port) == "b"

    # Fixed: diffed against the last accepted version, not the NACKed one.
    ads_server.set_resources(ASSIGNMENT, [_assignment(a.port, spare_port=81)])
    await until_answers(port, ["/"], ["a"])

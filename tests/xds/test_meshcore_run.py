"""`meshcore run` on a bootstrap with dynamic_resources, driven by the test ADS server:
every behaviour asserted on real traffic through the engine, on the admin stats and on
/config_dump (needs the installed package: `pip install --no-build-isolation .`)."""

from __future__ import annotations

import signal
from typing import Any

import orjson
import pytest
import trio

from tests.support.bootstrap import http_listener, route, virtual_host
from tests.support.bootstrap import route_config as route_config_json
from tests.support.ports import free_port
from tests.support.proxy import Proxy, start_proxy
from tests.support.upstream import Upstream

from .ads_server import AdsServer
from .builders import (
    ASSIGNMENT,
    CLUSTER,
    LISTENER,
    ROUTE_CONFIG,
    assignment,
    eds_cluster,
    listener,
    route_config,
    xds_bootstrap,
)
from .harness import request
from .traffic import answer, config_dump_section, until_answers

pytestmark = pytest.mark.meshcore_only


async def start(
    proxies: list[Proxy], config: dict[str, Any], tmp_path_factory: Any, kind: str = "meshcore"
) -> Proxy:
    proxy = await trio.to_thread.run_sync(start_proxy, kind, config, tmp_path_factory)
    proxies.append(proxy)
    return proxy


def serve(server: AdsServer, port: int, upstreams: dict[str, Upstream]) -> None:
    server.set_resources(CLUSTER, [eds_cluster("a"), eds_cluster("b")])
    server.set_resources(
        ASSIGNMENT,
        [
            assignment("a", [("127.0.0.1", upstreams["a"].port)]),
            assignment("b", [("127.0.0.1", upstreams["b"].port)]),
        ],
    )
    server.set_resources(LISTENER, [listener("ingress", port, rds="r")])
    server.set_resources(ROUTE_CONFIG, [route_config("r", "a")])


async def test_pushes_route_traffic_and_a_nacked_push_keeps_the_old_config(
    ads_server: AdsServer, upstreams: dict[str, Upstream], proxies: list[Proxy], tmp_path_factory
) -> None:
    port = free_port()
    serve(ads_server, port, upstreams)
    proxy = await start(proxies, xds_bootstrap(ads_server.port, node="meshcore"), tmp_path_factory)
    assert await answer(port) == "a"  # ready means the initial fetch and warming are done
    # The "live" line names the listener LDS brought, not only the bootstrap's (none here).
    assert f"live: listeners ingress=127.0.0.1:{port};" in proxy.log_path.read_text()

    good = ads_server.set_resources(ROUTE_CONFIG, [route_config("r", "b")])
    await until_answers(port, ["/"], ["b"])

    bad = route_config("r", "a")
    bad.virtual_hosts[0].routes[0].match.grpc.SetInParent()
    ads_server.set_resources(ROUTE_CONFIG, [bad])
    nack = await request(ads_server, lambda r: r.type_url == ROUTE_CONFIG and r.is_nack())
    assert nack.error == (
        "route_configs[r].virtual_hosts[0].routes[0].match.grpc: grpc is not supported"
    )
    assert nack.request.version_info == good
    for _ in range(5):
        assert await answer(port) == "b"

    ads_server.set_resources(
        CLUSTER, [eds_cluster("a"), eds_cluster("b", lb_policy="CLUSTER_PROVIDED")]
    )
    nack = await request(ads_server, lambda r: r.type_url == CLUSTER and r.is_nack())
    assert nack.error == "clusters[b].lb_policy: CLUSTER_PROVIDED is not supported"
    assert await answer(port) == "b"

    # An endpoint change of a serving cluster: b's host becomes upstream c.
    ads_server.set_resources(
        ASSIGNMENT,
        [
            assignment("a", [("127.0.0.1", upstreams["a"].port)]),
            assignment("b", [("127.0.0.1", upstreams["c"].port)]),
        ],
    )
    await until_answers(port, ["/"], ["c"])

    stats = await trio.to_thread.run_sync(proxy.stats)
    assert stats["control_plane.connected_state"] == "1"
    assert stats["http.ingress.rds.r.update_rejected"] == "1"
    assert stats["http.ingress.rds.r.update_success"] == "2"
    assert stats["cluster_manager.cds.update_rejected"] == "1"
    assert stats["cluster_manager.cds.update_success"] == "1"
    assert stats["listener_manager.lds.update_success"] == "1"
    assert stats["cluster.b.update_success"] == "2"
    assert stats["cluster_manager.active_clusters"] == "3"

    status, body = await trio.to_thread.run_sync(proxy.admin, "GET", "/config_dump?include_eds")
    assert status == 200
    routes = config_dump_section(body, "Routes")["dynamic_route_configs"]
    assert [(r["route_config"]["name"], r["version_info"]) for r in routes] == [("r", good)]
    clusters = config_dump_section(body, "Clusters")
    assert [c["cluster"]["name"] for c in clusters["dynamic_active_clusters"]] == ["a", "b"]
    assert clusters["static_clusters"][0]["cluster"]["name"] == "xds_cluster"
    listeners = config_dump_section(body, "Listeners")["dynamic_listeners"]
    assert listeners[0]["name"] == "ingress"
    assert listeners[0]["active_state"]["listener"]["name"] == "ingress"
    endpoints = config_dump_section(body, "Endpoints")["dynamic_endpoint_configs"]
    by_name = {e["endpoint_config"]["cluster_name"]: e for e in endpoints}
    [host] = by_name["b"]["endpoint_config"]["endpoints"][0]["lb_endpoints"]
    assert host["endpoint"]["address"]["socket_address"]["port_value"] == upstreams["c"].port

    status, body = await trio.to_thread.run_sync(proxy.admin, "GET", "/clusters?format=json")
    dynamic = [c for c in orjson.loads(body)["cluster_statuses"] if c.get("added_via_api")]
    assert sorted(c["name"] for c in dynamic) == ["a", "b"]


async def test_delta_reconnect_removal_and_listener_removal(
    ads_server: AdsServer, upstreams: dict[str, Upstream], proxies: list[Proxy], tmp_path_factory
) -> None:
    port = free_port()
    serve(ads_server, port, upstreams)
    await start(
        proxies, xds_bootstrap(ads_server.port, node="meshcore", delta=True), tmp_path_factory
    )
    assert await answer(port) == "a"

    mark = len(ads_server.recorded)
    ads_server.close_streams()
    again = await request(
        ads_server, lambda r: r.type_url == CLUSTER and not r.nonce and r.delta, after=mark
    )
    assert sorted(again.request.initial_resource_versions) == ["a", "b"]
    for _ in range(5):
        assert await answer(port) == "a"

    mark = len(ads_server.recorded)
    ads_server.set_resources(CLUSTER, [eds_cluster("a")])
    await request(
        ads_server,
        lambda r: r.type_url == ASSIGNMENT and list(r.request.resource_names_unsubscribe) == ["b"],
        after=mark,
    )
    ads_server.set_resources(LISTENER, [])
    await until_answers(port, ["/"], ["error:OSError"])  # connection refused


async def test_initial_fetch_timeout_serves_the_static_listener(
    ads_server: AdsServer, proxies: list[Proxy], tmp_path_factory
) -> None:
    ads_server.auto_respond = False  # a management server that never answers
    port = free_port()
    static = http_listener(
        "static",
        port,
        route_config_json(
            [
                virtual_host(
                    "all",
                    ["*"],
                    [
                        route(
                            {"prefix": "/"},
                            direct_response={"status": 200, "body": {"inline_string": "static"}},
                        )
                    ],
                )
            ]
        ),
    )
    config = xds_bootstrap(
        ads_server.port, node="meshcore", listeners=[static], initial_fetch_timeout="0.5s"
    )
    proxy = await start(proxies, config, tmp_path_factory)
    assert await answer(port) == "status:200"
    stats = await trio.to_thread.run_sync(proxy.stats)
    assert stats["cluster_manager.cds.init_fetch_timeout"] == "1"
    assert stats["control_plane.connected_state"] == "1"


async def test_sighup_reload_keeps_the_dynamic_resources(
    ads_server: AdsServer, upstreams: dict[str, Upstream], proxies: list[Proxy], tmp_path_factory
) -> None:
    port, static_port = free_port(), free_port()
    serve(ads_server, port, upstreams)
    config = xds_bootstrap(ads_server.port, node="meshcore")
    proxy = await start(proxies, config, tmp_path_factory)
    assert await answer(port) == "a"
    direct = route({"prefix": "/"}, direct_response={"status": 204})
    static = http_listener(
        "static", static_port, route_config_json([virtual_host("all", ["*"], [direct])])
    )
    config["static_resources"]["listeners"] = [static]
    proxy.replace_config(config)
    proxy.send_signal(signal.SIGHUP)
    await until_answers(static_port, ["/"], ["status:204"])
    assert await answer(port) == "a"
    ads_server.set_resources(ROUTE_CONFIG, [route_config("r", "b")])
    await until_answers(port, ["/"], ["b"])
    stats = await trio.to_thread.run_sync(proxy.stats)
    assert stats["config_reload.update_success"] == "1"

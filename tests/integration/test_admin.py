"""The admin API: readiness, server info, clusters, config dump, stats, health check
fail/ok, quitquitquit — as Envoy answers them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import orjson
import pytest
import trio

from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.client import get
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer


@pytest.fixture(scope="module")
def upstream(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("adm")


def admin_config(upstream: Upstream) -> dict:
    rc = route_config(
        [virtual_host("all", ["*"], [route({"prefix": "/"}, cluster="svc")])], name="rc-main"
    )
    return bootstrap(
        [http_listener("main", free_port(), rc)],
        [
            static_cluster("svc", [("127.0.0.1", upstream.port, 7)]),
            static_cluster("spare", [("127.0.0.1", 1)]),
        ],
    )


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, upstream, tmp_path_factory) -> Iterator[Proxy]:
    running = start_proxy(request.param, admin_config(upstream), tmp_path_factory)
    yield running
    running.stop()


async def admin(proxy: Proxy, method: str, path: str) -> tuple[int, str]:
    return await trio.to_thread.run_sync(proxy.admin, method, path)


async def test_ready(proxy):
    assert await admin(proxy, "GET", "/ready") == (200, "LIVE\n")


async def test_admin_address_path_written(proxy):
    host, _, port = proxy.admin_address_path.read_text().strip().rpartition(":")
    assert host == "127.0.0.1"
    assert int(port) > 0


async def test_server_info(proxy):
    status, body = await admin(proxy, "GET", "/server_info")
    assert status == 200
    info = json.loads(body)
    assert info["state"] == "LIVE"
    assert isinstance(info["version"], str) and info["version"]
    assert info["command_line_options"]["concurrency"] == 1


async def test_clusters(proxy, upstream):
    with trio.fail_after(5):
        for _ in range(3):
            assert (await get(proxy.port, "/")).status == 200
    status, body = await admin(proxy, "GET", "/clusters")
    assert status == 200
    lines = set(body.splitlines())
    host = f"svc::127.0.0.1:{upstream.port}"
    for expected in (
        f"{host}::cx_total::1",
        f"{host}::cx_active::1",
        f"{host}::rq_total::3",
        f"{host}::rq_active::0",
        f"{host}::rq_error::0",
        f"{host}::weight::7",
        f"{host}::health_flags::healthy",
        "spare::127.0.0.1:1::cx_total::0",
    ):
        assert expected in lines, expected


async def test_config_dump(proxy, upstream):
    status, body = await admin(proxy, "GET", "/config_dump")
    assert status == 200
    configs = {c["@type"].rsplit(".", 1)[1]: c for c in json.loads(body)["configs"]}
    boot = configs["BootstrapConfigDump"]["bootstrap"]["static_resources"]
    assert [c["name"] for c in boot["clusters"]] == ["svc", "spare"]
    dumped = [c["cluster"]["name"] for c in configs["ClustersConfigDump"]["static_clusters"]]
    assert sorted(dumped) == ["spare", "svc"]
    listeners = configs["ListenersConfigDump"]["static_listeners"]
    assert [entry["listener"]["name"] for entry in listeners] == ["main"]
    assert listeners[0]["listener"]["address"]["socket_address"]["port_value"] == proxy.port


async def test_stats_text(proxy):
    with trio.fail_after(5):
        await get(proxy.port, "/")
    status, body = await admin(proxy, "GET", "/stats")
    assert status == 200
    stats = dict(line.split(": ", 1) for line in body.splitlines() if ": " in line)
    assert int(stats["cluster.svc.upstream_rq_total"]) >= 1
    assert int(stats["http.ingress.downstream_rq_total"]) >= 1
    assert stats["cluster.spare.upstream_cx_total"] == "0"


async def test_stats_usedonly(proxy):
    with trio.fail_after(5):
        await get(proxy.port, "/")
    status, body = await admin(proxy, "GET", "/stats?usedonly&filter=^cluster\\.(svc|spare)\\.")
    assert status == 200
    stats = dict(line.split(": ", 1) for line in body.splitlines() if ": " in line)
    assert int(stats["cluster.svc.upstream_rq_total"]) >= 1
    # Never counted: left out, in both proxies.
    assert "cluster.spare.upstream_cx_total" not in stats
    assert "cluster.svc.upstream_rq_timeout" not in stats
    status, body = await admin(proxy, "GET", "/stats?usedonly&format=json&filter=spare")
    assert status == 200
    names = {s["name"] for s in orjson.loads(body)["stats"] if "name" in s}
    assert "cluster.spare.upstream_cx_total" not in names


async def test_stats_prometheus(proxy):
    status, body = await admin(proxy, "GET", "/stats/prometheus")
    assert status == 200
    assert "# TYPE envoy_cluster_upstream_cx_total counter" in body.splitlines()
    assert 'envoy_cluster_upstream_cx_total{envoy_cluster_name="spare"} 0' in body.splitlines()


@pytest.mark.parametrize("path", ["/healthcheck/fail", "/healthcheck/ok", "/quitquitquit"])
async def test_mutations_require_post(proxy, path):
    status, _ = await admin(proxy, "GET", path)
    assert status == 405
    assert await admin(proxy, "GET", "/ready") == (200, "LIVE\n")


async def test_unknown_admin_path(proxy):
    status, _ = await admin(proxy, "GET", "/no-such-endpoint")
    assert status == 404


async def test_healthcheck_fail_and_ok(proxy):
    try:
        assert await admin(proxy, "POST", "/healthcheck/fail") == (200, "OK\n")
        assert await admin(proxy, "GET", "/ready") == (503, "DRAINING\n")
        status, body = await admin(proxy, "GET", "/server_info")
        assert json.loads(body)["state"] == "DRAINING"
        with trio.fail_after(5):
            assert (await get(proxy.port, "/")).status == 200
    finally:
        assert await admin(proxy, "POST", "/healthcheck/ok") == (200, "OK\n")
    assert await admin(proxy, "GET", "/ready") == (200, "LIVE\n")


@pytest.mark.parametrize("kind", proxy_kinds())
async def test_quitquitquit(kind, upstream, tmp_path_factory):
    running = start_proxy(kind, admin_config(upstream), tmp_path_factory)
    try:
        assert running.admin("POST", "/quitquitquit") == (200, "OK\n")
        assert await trio.to_thread.run_sync(running.wait, 10) == 0
    finally:
        running.stop()

"""Active health checks on real Envoy and meshcore with the same config: traffic goes only to
hosts passing their HTTP check and returns when they recover; TCP checks (connect refused,
connect timing out); gRPC checks against grpcio's standard health service; `/clusters`
health flags and `health_check.*` stats.

Health changes within a second of a cluster's previous update reach the load balancer when
that second ends (Envoy's default `update_merge_window`), so traffic is counted a merge
window after the flags change."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
import trio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.load import count_upstreams
from tests.support.ports import Blackhole, dead_port, free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

CHECK = {
    "timeout": "0.5s",
    "interval": "0.1s",
    "no_traffic_interval": "0.1s",
    "unhealthy_threshold": 1,
    "healthy_threshold": 1,
}


@pytest.fixture
def upstreams(upstream_server: UpstreamServer) -> Iterator[dict[str, Upstream]]:
    ups = {
        "good": upstream_server.start("good"),
        "bad": upstream_server.start("bad", default_behavior="status=503"),
        "open": upstream_server.start("open"),
    }
    yield ups
    for up in ups.values():
        upstream_server.stop_upstream(up)


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    yield hole
    hole.close()


def health_config(port: int, ups: dict[str, Upstream], hole_port: int, closed_port: int) -> dict:
    http_check = {**CHECK, "http_health_check": {"path": "/healthz"}}
    tcp_check = {**CHECK, "tcp_health_check": {}}
    clusters = [
        static_cluster(
            "svc",
            [("127.0.0.1", ups["good"].port), ("127.0.0.1", ups["bad"].port)],
            health_checks=[http_check],
        ),
        static_cluster(
            "tcp",
            [("127.0.0.1", ups["open"].port), ("127.0.0.1", closed_port),
             ("127.0.0.1", hole_port)],
            connect_timeout="5s",
            health_checks=[tcp_check],
        ),
    ]  # fmt: skip
    routes = [route({"prefix": "/"}, cluster="svc")]
    rc = route_config([virtual_host("all", ["*"], routes)])
    return bootstrap([http_listener("main", port, rc)], clusters)


@pytest.fixture(params=proxy_kinds())
def proxy(request, upstreams, blackhole, tmp_path_factory) -> Iterator[Proxy]:
    config = health_config(free_port(), upstreams, blackhole.port, dead_port())
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running
    running.stop()


def health_flags(proxy: Proxy) -> dict[str, str]:
    """`cluster::host:port` -> health_flags, from the text `/clusters`."""
    status, body = proxy.admin("GET", "/clusters")
    assert status == 200, body
    flags = {}
    for line in body.splitlines():
        match = re.fullmatch(r"(\w+)::([\d.]+:\d+)::health_flags::(.*)", line)
        if match:
            flags[f"{match[1]}::{match[2]}"] = match[3]
    return flags


MERGE_WINDOW_S = 1.0


async def wait_for_flags(proxy: Proxy, host: str, wanted: str, timeout: float = 10) -> None:
    """Until `/clusters` shows `wanted` for `host`, then one merge window more."""
    with trio.fail_after(timeout):
        while health_flags(proxy).get(host) != wanted:
            await trio.sleep(0.05)
    await trio.sleep(MERGE_WINDOW_S + 0.2)


async def test_traffic_goes_only_to_hosts_passing_their_check(proxy, upstreams):
    good, bad = upstreams["good"], upstreams["bad"]
    bad_host = f"svc::127.0.0.1:{bad.port}"
    # Ready means the first round of checks is done: the failing host is already out.
    flags = health_flags(proxy)
    assert flags[f"svc::127.0.0.1:{good.port}"] == "healthy"
    assert flags[bad_host] == "/failed_active_hc"
    with trio.fail_after(30):
        assert await count_upstreams(proxy.port, 40) == {"good": 40}
    # The failing host saw only health checks, as Envoy sends them.
    assert bad.requests
    assert {
        (r.method, r.target, r.header("host"), r.header("user-agent")) for r in bad.requests
    } == {("GET", "/healthz", "svc", "Envoy/HC")}

    bad.default_behavior = ""  # recovers
    await wait_for_flags(proxy, bad_host, "healthy")
    with trio.fail_after(30):
        counts = await count_upstreams(proxy.port, 40)
    assert set(counts) == {"good", "bad"} and min(counts.values()) >= 10, counts

    bad.default_behavior = "status=500"  # fails again: out at its next check
    await wait_for_flags(proxy, bad_host, "/failed_active_hc")
    with trio.fail_after(30):
        assert await count_upstreams(proxy.port, 20) == {"good": 20}

    stats = proxy.stats()
    assert stats["cluster.svc.health_check.healthy"] == "1"
    assert int(stats["cluster.svc.health_check.failure"]) >= 2
    assert int(stats["cluster.svc.health_check.success"]) >= 3
    assert int(stats["cluster.svc.health_check.attempt"]) >= 5
    for name in ("passive_failure", "verify_cluster", "degraded", "network_failure"):
        assert stats[f"cluster.svc.health_check.{name}"] == "0", name


async def test_tcp_checks_refused_and_timing_out(proxy, upstreams, blackhole):
    # The first round may end before the blackholed connect times out (Envoy counts check
    # results, from any host): wait for its timeout.
    await wait_for_flags(
        proxy, f"tcp::127.0.0.1:{blackhole.port}", "/failed_active_hc/active_hc_timeout"
    )
    flags = health_flags(proxy)
    open_port = upstreams["open"].port
    tcp = {host: flag for host, flag in flags.items() if host.startswith("tcp::")}
    assert tcp.pop(f"tcp::127.0.0.1:{open_port}") == "healthy"
    assert tcp.pop(f"tcp::127.0.0.1:{blackhole.port}") == "/failed_active_hc/active_hc_timeout"
    assert list(tcp.values()) == ["/failed_active_hc"]  # connection refused
    stats = proxy.stats()
    assert stats["cluster.tcp.health_check.healthy"] == "1"
    assert int(stats["cluster.tcp.health_check.network_failure"]) >= 2
    # A connect-only check writes nothing: the open upstream never saw a request.
    assert upstreams["open"].requests == []


# ---- gRPC health checks --------------------------------------------------------------------


@pytest.fixture
def grpc_health() -> Iterator[dict[str, tuple[int, health.HealthServicer]]]:
    """Two grpcio servers running the standard health service: "up" serves, "down" not."""
    servers, out = [], {}
    for name, status in (("up", SERVING), ("down", NOT_SERVING)):
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        servicer = health.HealthServicer()
        servicer.set("", status)
        servicer.set("pkg.Svc", status)
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        out[name] = (port, servicer)
    yield out
    for server in servers:
        server.stop(None)


@pytest.fixture(params=proxy_kinds())
def grpc_proxy(request, grpc_health, tmp_path_factory) -> Iterator[Proxy]:
    check = {**CHECK, "grpc_health_check": {"service_name": "pkg.Svc"}}
    ports = [port for port, _ in grpc_health.values()]
    clusters = [
        static_cluster(
            "grpc",
            [("127.0.0.1", p) for p in ports],
            health_checks=[check],
            typed_extension_protocol_options={
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3."
                    "HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}},
                }
            },
        ),
        static_cluster("svc", [("127.0.0.1", dead_port())]),
    ]
    rc = route_config([virtual_host("all", ["*"], [route({"prefix": "/"}, cluster="svc")])])
    running = start_proxy(
        request.param, bootstrap([http_listener("main", free_port(), rc)], clusters),
        tmp_path_factory,
    )  # fmt: skip
    yield running
    running.stop()


async def test_grpc_checks_follow_the_serving_status(grpc_proxy, grpc_health):
    up_port, _ = grpc_health["up"]
    down_port, down = grpc_health["down"]
    up_host, down_host = f"grpc::127.0.0.1:{up_port}", f"grpc::127.0.0.1:{down_port}"
    flags = health_flags(grpc_proxy)
    assert flags[up_host] == "healthy"
    assert flags[down_host] == "/failed_active_hc"

    down.set("pkg.Svc", SERVING)  # recovers at its next check
    await wait_for_flags(grpc_proxy, down_host, "healthy")
    down.set("pkg.Svc", NOT_SERVING)
    await wait_for_flags(grpc_proxy, down_host, "/failed_active_hc")

    stats = grpc_proxy.stats()
    assert stats["cluster.grpc.health_check.healthy"] == "1"
    assert int(stats["cluster.grpc.health_check.failure"]) >= 2
    assert int(stats["cluster.grpc.health_check.success"]) >= 3
    assert stats["cluster.grpc.health_check.network_failure"] == "0"

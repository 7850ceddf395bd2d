"""The tcp_proxy network filter and the network local_ratelimit over real sockets, on Envoy
and meshcore with the same bootstrap: 64 MiB both ways byte-exact, half-close, idle timeout,
weighted clusters, `max_connect_attempts`, the `max_connections` breaker, a missing cluster,
connection rate limits before tcp_proxy and before the HTTP connection manager; Envoy's
`tcp.<stat_prefix>.*`, `local_rate_limit.<stat_prefix>.*` and cluster stats."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.bootstrap import (
    HCM_TYPE,
    ROUTER_TYPE,
    bootstrap,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.ports import dead_port, free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.tcp import (
    TcpUpstream,
    closed_without_data,
    connect,
    connection_limit_filter,
    exchange,
    network_listener,
    pattern,
    tcp_proxy_filter,
)

MIB = 1024 * 1024
LISTENERS = (
    "bulk",
    "half",
    "idle",
    "weighted",
    "attempts",
    "exhausted",
    "cb",
    "rl",
    "noroute",
    "hashed",
)


class Upstreams:
    def __init__(self) -> None:
        self.echo = TcpUpstream()
        self.after_eof = TcpUpstream(echo=False)
        self.a = TcpUpstream()
        self.b = TcpUpstream()

    def close(self) -> None:
        for up in (self.echo, self.after_eof, self.a, self.b):
            up.close()


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    ups = Upstreams()
    yield ups
    ups.close()


def config(ports: dict[str, int], ups: Upstreams) -> dict[str, Any]:
    def tcp(name: str, *before: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return network_listener(name, ports[name], [*before, tcp_proxy_filter(name, **fields)])

    http_rc = route_config([virtual_host("all", ["*"], [route({"prefix": "/"}, cluster="echo")])])
    hcm = {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": HCM_TYPE,
            "stat_prefix": "http_rl",
            "route_config": http_rc,
            "http_filters": [
                {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}}
            ],
        },
    }
    listeners = [
        tcp("bulk", cluster="echo"),
        tcp("half", cluster="after_eof"),
        tcp("idle", cluster="echo", idle_timeout="0.3s"),
        tcp(
            "weighted",
            weighted_clusters={
                "clusters": [{"name": "a", "weight": 1}, {"name": "b", "weight": 3}]
            },
        ),
        tcp("attempts", cluster="half_dead", max_connect_attempts=2),
        tcp("exhausted", cluster="dead", max_connect_attempts=3),
        tcp("cb", cluster="one_cx"),
        tcp("rl", connection_limit_filter("conns", 2), cluster="echo"),
        tcp("noroute", cluster="missing"),
        tcp("hashed", cluster="ring", hash_policy=[{"source_ip": {}}]),
        network_listener(
            "http_rl", ports["http_rl"], [connection_limit_filter("http_conns", 1), hcm]
        ),
    ]
    clusters = [
        static_cluster("echo", [("127.0.0.1", ups.echo.port)]),
        static_cluster("after_eof", [("127.0.0.1", ups.after_eof.port)]),
        static_cluster("a", [("127.0.0.1", ups.a.port)]),
        static_cluster("b", [("127.0.0.1", ups.b.port)]),
        # Round robin alternates: an attempt that hit the dead host is followed by the live one.
        static_cluster("half_dead", [("127.0.0.1", dead_port()), ("127.0.0.1", ups.echo.port)]),
        static_cluster("dead", [("127.0.0.1", dead_port())]),
        static_cluster(
            "ring", [("127.0.0.1", ups.a.port), ("127.0.0.1", ups.b.port)], lb_policy="RING_HASH"
        ),
        static_cluster(
            "one_cx",
            [("127.0.0.1", ups.echo.port)],
            circuit_breakers={"thresholds": [{"max_connections": 1}]},
        ),
    ]
    return bootstrap(listeners, clusters)


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, upstreams, tmp_path_factory) -> Iterator[tuple[Proxy, dict[str, int]]]:
    ports = {name: free_port() for name in (*LISTENERS, "http_rl")}
    running = start_proxy(request.param, config(ports, upstreams), tmp_path_factory)
    yield running, ports
    running.stop()


def wait_stat(proxy: Proxy, name: str, want: int, timeout: float = 5.0) -> int:
    """The counter once it reached `want` (or its value after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = proxy.counter(name)
        if value >= want or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def test_64_mib_both_ways_byte_exact(proxy):
    running, ports = proxy
    data = pattern(64 * MIB)
    got = exchange(ports["bulk"], data, timeout=60)
    assert len(got) == len(data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert wait_stat(running, "tcp.bulk.downstream_cx_tx_bytes_total", len(data)) == len(data)
    stats = running.stats()
    assert int(stats["tcp.bulk.downstream_cx_total"]) == 1
    assert int(stats["tcp.bulk.downstream_cx_rx_bytes_total"]) == len(data)
    # The echo cluster's bytes (shared with other listeners; this test runs first).
    assert int(stats["cluster.echo.upstream_cx_tx_bytes_total"]) >= len(data)
    assert int(stats["cluster.echo.upstream_cx_rx_bytes_total"]) >= len(data)


def test_half_close_keeps_relaying_the_other_way(proxy):
    _, ports = proxy
    data = pattern(3 * MIB + 17)
    answer = exchange(ports["half"], data)
    assert answer == f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode()


def test_idle_timeout_closes_the_connection(proxy):
    running, ports = proxy
    with connect(ports["idle"]) as sock:
        sock.sendall(b"hello")
        assert sock.recv(16) == b"hello"
        started = time.monotonic()
        sock.settimeout(10)
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(16) == b""
        assert time.monotonic() - started < 5
    assert wait_stat(running, "tcp.idle.idle_timeout", 1) == 1


def test_weighted_clusters_split_connections(proxy):
    running, ports = proxy
    for _ in range(200):
        assert exchange(ports["weighted"], b"x") == b"x"
    to_a = running.counter("cluster.a.upstream_cx_total")
    to_b = running.counter("cluster.b.upstream_cx_total")
    assert to_a + to_b == 200
    assert 20 <= to_a <= 85, f"cluster a got {to_a} of 200 connections (weight 1 of 4)"


def test_max_connect_attempts_tries_another_host(proxy):
    running, ports = proxy
    for _ in range(10):
        assert exchange(ports["attempts"], b"again") == b"again"
    assert running.counter("cluster.half_dead.upstream_cx_connect_fail") >= 9
    assert running.counter("cluster.half_dead.upstream_cx_connect_attempts_exceeded") == 0


def test_exhausted_connect_attempts_close_the_downstream(proxy):
    running, ports = proxy
    assert closed_without_data(ports["exhausted"])
    assert wait_stat(running, "cluster.dead.upstream_cx_connect_attempts_exceeded", 1) == 1
    assert wait_stat(running, "cluster.dead.upstream_cx_connect_fail", 3) == 3


def test_max_connections_breaker_refuses_and_counts_overflow(proxy):
    running, ports = proxy
    with connect(ports["cb"]) as held:
        held.sendall(b"one")
        assert held.recv(16) == b"one"
        assert closed_without_data(ports["cb"])
        assert wait_stat(running, "cluster.one_cx.upstream_cx_overflow", 1) == 1
    # Once the first connection is gone, a new one gets through.
    assert wait_until_gauge(running, "cluster.one_cx.upstream_cx_active", 0)
    assert exchange(ports["cb"], b"two") == b"two"


def wait_until_gauge(proxy: Proxy, name: str, want: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if int(proxy.stats().get(name, "-1")) == want:
            return True
        time.sleep(0.02)
    return False


def test_network_ratelimit_closes_connections_without_a_token(proxy):
    running, ports = proxy
    assert exchange(ports["rl"], b"1") == b"1"
    assert exchange(ports["rl"], b"2") == b"2"
    assert closed_without_data(ports["rl"])
    assert closed_without_data(ports["rl"])
    assert wait_stat(running, "local_rate_limit.conns.rate_limited", 2) == 2
    # As in Envoy, tcp_proxy counted every connection, also those closed before it ran.
    assert running.counter("tcp.rl.downstream_cx_total") == 4
    assert running.counter("cluster.echo.upstream_cx_overflow") == 0


def test_network_ratelimit_before_the_connection_manager(proxy):
    running, ports = proxy
    with connect(ports["http_rl"]) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        assert b"\r\n" in sock.recv(4096)  # an HTTP answer (the echo upstream is not HTTP)
    assert closed_without_data(ports["http_rl"])
    assert wait_stat(running, "local_rate_limit.http_conns.rate_limited", 1) == 1
    # As in Envoy, the connection manager counted both connections, one as HTTP/1.
    stats = running.stats()
    assert int(stats["http.http_rl.downstream_cx_total"]) == 2
    assert int(stats["http.http_rl.downstream_cx_http1_total"]) == 1
    assert wait_stat(running, "http.http_rl.downstream_cx_destroy_local", 2) == 2


def test_missing_cluster_is_no_route(proxy):
    running, ports = proxy
    assert closed_without_data(ports["noroute"])
    assert wait_stat(running, "tcp.noroute.downstream_cx_no_route", 1) == 1


def test_source_ip_hash_keeps_a_client_on_one_host(proxy, upstreams):
    _, ports = proxy
    before = (upstreams.a.accepted, upstreams.b.accepted)
    for _ in range(30):
        assert exchange(ports["hashed"], b"h") == b"h"
    added = sorted((upstreams.a.accepted - before[0], upstreams.b.accepted - before[1]))
    assert added == [0, 30]


def test_tcp_stats_have_envoy_names(proxy):
    running, _ = proxy
    names = set(running.stats())
    for stat in (
        "tcp.bulk.downstream_cx_total",
        "tcp.bulk.downstream_cx_no_route",
        "tcp.bulk.downstream_cx_rx_bytes_total",
        "tcp.bulk.downstream_cx_tx_bytes_total",
        "tcp.bulk.idle_timeout",
        "tcp.bulk.upstream_flush_total",
        "tcp.bulk.upstream_flush_active",
        "local_rate_limit.conns.rate_limited",
    ):
        assert stat in names, stat

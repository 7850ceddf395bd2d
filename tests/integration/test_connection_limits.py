"""Connection limits on both proxies with the same config: the network `connection_limit`
filter (per filter chain, over all workers) and the overload manager's global downstream
connection limit (`ignore_global_conn_limit` exempts a listener). A refused connection is
closed without an answer; a freed place takes a new connection again; the stats count both."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

CONNECTION_LIMIT = (
    "type.googleapis.com/envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit"
)
DOWNSTREAM_CONNECTIONS = (
    "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3."
    "DownstreamConnectionsConfig"
)


def limited(listener: dict[str, Any], max_connections: int) -> dict[str, Any]:
    """`listener` with a connection_limit filter in front of its connection manager."""
    chain = listener["filter_chains"][0]
    chain["filters"].insert(
        0,
        {
            "name": "envoy.filters.network.connection_limit",
            "typed_config": {
                "@type": CONNECTION_LIMIT,
                "stat_prefix": "cl",
                "max_connections": max_connections,
            },
        },
    )
    return listener


@pytest.fixture(scope="module")
def backend(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("backend")


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, backend, tmp_path_factory) -> Iterator[tuple[Proxy, dict[str, int]]]:
    ports = {"limited": free_port(), "global": free_port(), "exempt": free_port()}
    rc = route_config([virtual_host("all", ["*"], [route({"prefix": "/"}, cluster="backend")])])
    exempt = http_listener("exempt", ports["exempt"], rc, stat_prefix="exempt")
    exempt["ignore_global_conn_limit"] = True
    listeners = [
        limited(http_listener("limited", ports["limited"], rc, stat_prefix="limited"), 2),
        http_listener("global", ports["global"], rc, stat_prefix="global"),
        exempt,
    ]
    listeners[1]["stat_prefix"] = "global_l"
    config = bootstrap(listeners, [static_cluster("backend", [("127.0.0.1", backend.port)])])
    # Envoy counts admin connections too unless told not to; meshcore's admin never counts.
    config["admin"]["ignore_global_conn_limit"] = True
    config["overload_manager"] = {
        "resource_monitors": [
            {
                "name": "envoy.resource_monitors.global_downstream_max_connections",
                "typed_config": {
                    "@type": DOWNSTREAM_CONNECTIONS,
                    "max_active_downstream_connections": 4,
                },
            }
        ]
    }
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running, ports
    running.stop()


def connect_and_get(port: int) -> socket.socket | None:
    """A keep-alive connection that got a 200, or None when the proxy closed it unanswered."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        data = s.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        data = b""
    if not data:
        s.close()
        return None
    assert data.startswith(b"HTTP/1.1 200"), data
    return s


def wait_stat(proxy: Proxy, name: str, want: int) -> int:
    deadline = time.monotonic() + 5
    while True:
        value = int(proxy.stats().get(name, "0"))
        if value == want or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_connection_limit_filter(proxy: tuple[Proxy, dict[str, int]]) -> None:
    running, ports = proxy
    held = [connect_and_get(ports["limited"]) for _ in range(2)]
    assert all(held)
    assert wait_stat(running, "connection_limit.cl.active_connections", 2) == 2
    assert connect_and_get(ports["limited"]) is None
    assert wait_stat(running, "connection_limit.cl.limited_connections", 1) == 1
    first = held.pop()
    assert first is not None
    first.close()
    assert wait_stat(running, "connection_limit.cl.active_connections", 1) == 1
    again = connect_and_get(ports["limited"])
    assert again is not None
    for s in [again, *held]:
        if s is not None:
            s.close()
    assert wait_stat(running, "connection_limit.cl.active_connections", 0) == 0


def test_global_downstream_connection_limit(proxy: tuple[Proxy, dict[str, int]]) -> None:
    running, ports = proxy
    assert wait_stat(running, "connection_limit.cl.active_connections", 0) == 0
    held = [connect_and_get(ports["global"]) for _ in range(4)]
    assert all(held)
    # The fifth connection anywhere is over the global limit...
    assert connect_and_get(ports["global"]) is None
    assert connect_and_get(ports["limited"]) is None
    assert wait_stat(running, "listener.global_l.downstream_global_cx_overflow", 1) == 1
    # ...except on a listener that ignores it.
    exempt = connect_and_get(ports["exempt"])
    assert exempt is not None
    exempt.close()
    for s in held:
        if s is not None:
            s.close()
    time.sleep(0.3)
    fresh = connect_and_get(ports["global"])
    assert fresh is not None
    fresh.close()

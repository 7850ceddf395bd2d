"""RBAC over real sockets, on Envoy and meshcore with the same bootstrap: the HTTP filter
allowing and denying by header, path, remote IP (with and without x-forwarded-for,
`use_remote_address` and `xff_num_trusted_hops`) and destination port, per-route
`RBACPerRoute` (replace and disable), shadow rules, the 403 and its response code details;
the network filter closing tcp_proxy and HTTP connections; Envoy's stat names and values."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.support.bootstrap import (
    HCM_TYPE,
    ROUTER_TYPE,
    Json,
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.client import RawConnection, get
from tests.support.filters import http_filters
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.tcp import (
    TcpUpstream,
    closed_without_data,
    exchange,
    network_listener,
    tcp_proxy_filter,
)
from tests.support.upstream import Upstream, UpstreamServer

RBAC_NAME = "envoy.filters.http.rbac"
RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
PER_ROUTE_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute"
NETWORK_RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
DENIED = b"RBAC: access denied"


def exact(value: str) -> Json:
    return {"exact": value}


def cidr(address: str, prefix_len: int) -> Json:
    return {"address_prefix": address, "prefix_len": prefix_len}


def policy(permissions: list[Json], principals: list[Json] | None = None) -> Json:
    return {"permissions": permissions, "principals": principals or [{"any": True}]}


def rules(action: str, **policies: Json) -> Json:
    return {"action": action, "policies": policies}


def network_rbac(stat_prefix: str, rbac_rules: Json, **extra: Any) -> Json:
    return {
        "name": "envoy.filters.network.rbac",
        "typed_config": {
            "@type": NETWORK_RBAC_TYPE,
            "stat_prefix": stat_prefix,
            "rules": rbac_rules,
            **extra,
        },
    }


@dataclass
class Ports:
    http: int
    edge: int
    tcp_deny: int
    tcp_allow: int
    http_deny: int
    chained: int


def main_listener(ports: Ports, log: Path) -> Json:
    """The HTTP filter: allow by header, path prefix, remote IP, destination port; a shadow
    DENY that matches every loopback client; per-route replace and disable."""
    main_rules = rules(
        "ALLOW",
        **{
            "admin header": policy(
                [{"header": {"name": "x-role", "string_match": exact("admin")}}]
            ),
            "public": policy([{"url_path": {"path": {"prefix": "/public/"}}}]),
            "trusted client": policy([{"any": True}], [{"remote_ip": cidr("203.0.113.0", 24)}]),
            "own port": policy(
                [
                    {
                        "and_rules": {
                            "rules": [
                                {"destination_port": ports.http},
                                {"url_path": {"path": exact("/port-check")}},
                            ]
                        }
                    }
                ]
            ),
        },
    )
    shadow = rules(
        "DENY", loopback=policy([{"any": True}], [{"direct_remote_ip": cidr("127.0.0.0", 8)}])
    )
    swap = {
        "@type": PER_ROUTE_TYPE,
        "rbac": {
            "rules": rules(
                "DENY",
                blocked=policy([{"header": {"name": "x-block", "present_match": True}}]),
            )
        },
    }
    routes = [
        route({"prefix": "/off"}, cluster="live")
        | {"typed_per_filter_config": {RBAC_NAME: {"@type": PER_ROUTE_TYPE}}},
        route({"prefix": "/swap"}, cluster="live") | {"typed_per_filter_config": {RBAC_NAME: swap}},
        route({"prefix": "/"}, cluster="live"),
    ]
    rbac = {
        "@type": RBAC_TYPE,
        "rules": main_rules,
        "rules_stat_prefix": "edge.",
        "shadow_rules": shadow,
        "shadow_rules_stat_prefix": "trial",
    }
    access_log = {
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": FILE_LOG,
            "path": str(log),
            "log_format": {
                "text_format_source": {
                    "inline_string": "%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% "
                    "%RESPONSE_CODE_DETAILS%\n"
                }
            },
        },
    }
    return http_listener(
        "main",
        ports.http,
        route_config([virtual_host("all", ["*"], routes)]),
        http_filters=http_filters((RBAC_NAME, rbac)),
        access_log=[access_log],
    )


def edge_listener(ports: Ports) -> Json:
    """`use_remote_address` with one trusted hop: the client is the last x-forwarded-for
    entry."""
    rbac = {
        "@type": RBAC_TYPE,
        "rules": rules(
            "ALLOW", clients=policy([{"any": True}], [{"remote_ip": cidr("198.51.100.0", 24)}])
        ),
    }
    return http_listener(
        "edge",
        ports.edge,
        route_config([virtual_host("all", ["*"], [route({"prefix": "/"}, cluster="live")])]),
        stat_prefix="edge",
        use_remote_address=True,
        xff_num_trusted_hops=1,
        http_filters=http_filters((RBAC_NAME, rbac)),
    )


def chained_listener(ports: Ports) -> Json:
    """Three RBAC filters: a shadow DENY of `x-suspect` requests, a LOG engine, and a DENY
    engine that reads the first filter's dynamic metadata (`shadow_engine_result`)."""
    suspect = rules(
        "DENY", suspect=policy([{"header": {"name": "x-suspect", "present_match": True}}])
    )
    first = {"@type": RBAC_TYPE, "shadow_rules": suspect}
    log = {"@type": RBAC_TYPE, "rules": rules("LOG", everything=policy([{"any": True}]))}
    shadow_said_no = {
        "metadata": {
            "filter": "envoy.filters.http.rbac",
            "path": [{"key": "shadow_engine_result"}],
            "value": {"string_match": exact("denied")},
        }
    }
    follow = {
        "@type": RBAC_TYPE,
        "rules": rules("DENY", **{"follow shadow": policy([{"any": True}], [shadow_said_no])}),
        "rules_stat_prefix": "follow.",
    }
    return http_listener(
        "chained",
        ports.chained,
        route_config([virtual_host("all", ["*"], [route({"prefix": "/"}, cluster="live")])]),
        stat_prefix="chained",
        http_filters=http_filters(
            ("shadow.rbac", first), ("log.rbac", log), ("follow.rbac", follow)
        ),
    )


def http_deny_listener(ports: Ports) -> Json:
    """A network RBAC before the connection manager that denies every connection."""
    manager = {
        "@type": HCM_TYPE,
        "stat_prefix": "closed",
        "route_config": route_config(
            [virtual_host("all", ["*"], [route({"prefix": "/"}, cluster="live")])]
        ),
        "http_filters": [
            {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}}
        ],
    }
    deny_all = rules("ALLOW", nobody=policy([{"destination_port": 1}]))
    return network_listener(
        "http-deny",
        ports.http_deny,
        [
            network_rbac("httpnet", deny_all),
            {"name": "envoy.filters.network.http_connection_manager", "typed_config": manager},
        ],
    )


def tcp_listeners(ports: Ports) -> list[Json]:
    loopback = [{"direct_remote_ip": cidr("127.0.0.1", 32)}]
    deny_loopback = rules("DENY", loopback=policy([{"any": True}], loopback))
    allow_own_port = rules("ALLOW", port=policy([{"destination_port": ports.tcp_allow}]))
    shadow = {
        "shadow_rules": rules("ALLOW", never=policy([{"destination_port": 1}])),
        "shadow_rules_stat_prefix": "try.",
    }
    return [
        network_listener(
            "tcp-deny",
            ports.tcp_deny,
            [network_rbac("tcpdeny", deny_loopback), tcp_proxy_filter("td", cluster="echo")],
        ),
        network_listener(
            "tcp-allow",
            ports.tcp_allow,
            [
                network_rbac("tcpallow.", allow_own_port, **shadow),
                tcp_proxy_filter("ta", cluster="echo"),
            ],
        ),
    ]


@dataclass
class Setup:
    proxy: Proxy
    ports: Ports
    log: Path


@pytest.fixture(scope="module")
def upstream(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("live")


@pytest.fixture(scope="module")
def echo() -> Iterator[TcpUpstream]:
    server = TcpUpstream()
    yield server
    server.close()


@pytest.fixture(scope="module", params=proxy_kinds())
def setup(request, upstream, echo, tmp_path_factory) -> Iterator[Setup]:
    ports = Ports(free_port(), free_port(), free_port(), free_port(), free_port(), free_port())
    log = tmp_path_factory.mktemp(f"rbac-log-{request.param}") / "access.log"
    config = bootstrap(
        [
            main_listener(ports, log),
            edge_listener(ports),
            http_deny_listener(ports),
            chained_listener(ports),
            *tcp_listeners(ports),
        ],
        [
            static_cluster("live", [("127.0.0.1", upstream.port)]),
            static_cluster("echo", [("127.0.0.1", echo.port)]),
        ],
    )
    flush = ("--file-flush-interval-msec", "100") if request.param == "envoy" else ()
    running = start_proxy(request.param, config, tmp_path_factory, extra_args=flush)
    yield Setup(running, ports, log)
    running.stop()


async def status(port: int, target: str, headers: list[tuple[str, str]] | None = None) -> int:
    with trio.fail_after(5):
        response = await get(port, target, headers=headers)
    if response.status == 403:
        assert response.body == DENIED
        assert response.upstream is None
    return response.status


async def test_header_and_path_permissions(setup, upstream):
    port = setup.ports.http
    assert await status(port, "/x", [("x-role", "admin")]) == 200
    assert await status(port, "/x", [("x-role", "user")]) == 403
    assert await status(port, "/x") == 403
    # url_path matches the path without the query string.
    assert await status(port, "/public/a?token=1") == 200
    assert await status(port, "/Public/a") == 403
    assert [r.target for r in upstream.requests] == ["/x", "/public/a?token=1"]


async def test_denial_is_envoys_403(setup):
    with trio.fail_after(5):
        async with await RawConnection.open(setup.ports.http) as conn:
            denied = await conn.request("GET", "/private")
            assert (denied.status, denied.body) == (403, DENIED)
            assert denied.header("content-type") == "text/plain"
            assert denied.header("content-length") == str(len(DENIED))
            # The connection stays open for the next request.
            allowed = await conn.request("GET", "/public/ok")
            assert allowed.upstream == "live"


async def test_remote_ip_comes_from_x_forwarded_for(setup):
    port = setup.ports.http
    # Without use_remote_address: the last x-forwarded-for entry is the client.
    assert await status(port, "/x", [("x-forwarded-for", "203.0.113.5")]) == 200
    assert await status(port, "/x", [("x-forwarded-for", "203.0.113.5, 10.0.0.1")]) == 403
    assert await status(port, "/x", [("x-forwarded-for", "10.0.0.1, 203.0.113.9")]) == 200


async def test_remote_ip_with_use_remote_address_and_a_trusted_hop(setup):
    port = setup.ports.edge
    assert await status(port, "/", [("x-forwarded-for", "198.51.100.7")]) == 200
    assert await status(port, "/", [("x-forwarded-for", "198.51.100.7, 10.0.0.2")]) == 403
    # No x-forwarded-for: the client is the peer (127.0.0.1).
    assert await status(port, "/") == 403


async def test_destination_port_permission(setup):
    assert await status(setup.ports.http, "/port-check") == 200
    assert await status(setup.ports.http, "/port-check/x") == 403


async def test_per_route_disable_and_replace(setup):
    port = setup.ports.http
    # RBACPerRoute without `rbac`: the filter is off on /off.
    assert await status(port, "/off/anything") == 200
    # /swap: the route's DENY rules replace the filter's ALLOW rules.
    assert await status(port, "/swap") == 200
    assert await status(port, "/swap", [("x-block", "1")]) == 403


async def test_stats_follow_envoys_names(setup):
    proxy = setup.proxy
    before = proxy.stats()

    def delta(name: str) -> int:
        return int(proxy.stats().get(name, "0")) - int(before.get(name, "0"))

    for target in ("/public/1", "/public/2", "/nope"):
        await status(setup.ports.http, target)
    await status(setup.ports.http, "/off/x")
    assert delta("http.ingress.rbac.edge.allowed") == 2
    assert delta("http.ingress.rbac.edge.denied") == 1
    # The shadow DENY matches every loopback client; the disabled route counts nothing.
    assert delta("http.ingress.rbac.trial.shadow_denied") == 3
    assert delta("http.ingress.rbac.trial.shadow_allowed") == 0
    names = set(proxy.stats())
    assert "http.ingress.rbac.allowed" not in names


async def test_access_log_names_the_policy(setup):
    await status(setup.ports.http, "/logged-denied")
    await status(setup.ports.http, "/swap/logged", [("x-block", "1")])
    deadline = time.monotonic() + 5
    wanted = {
        "/logged-denied 403 - rbac_access_denied_matched_policy[none]",
        "/swap/logged 403 - rbac_access_denied_matched_policy[blocked]",
    }
    lines: set[str] = set()
    while time.monotonic() < deadline and not wanted <= lines:
        if setup.log.exists():
            lines = set(setup.log.read_text().splitlines())
        await trio.sleep(0.05)
    assert wanted <= lines, lines


def test_network_rbac_closes_a_tcp_proxy_connection(setup):
    proxy = setup.proxy
    before = proxy.counter("tcpdeny.rbac.denied")
    assert closed_without_data(setup.ports.tcp_deny)
    deadline = time.monotonic() + 5
    while proxy.counter("tcpdeny.rbac.denied") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proxy.counter("tcpdeny.rbac.denied") == before + 1
    assert proxy.counter("tcpdeny.rbac.allowed") == 0


def test_network_rbac_allows_and_counts_shadow_rules(setup):
    proxy = setup.proxy
    allowed = proxy.counter("tcpallow.rbac.allowed")
    shadow = proxy.counter("tcpallow.rbac.try.shadow_denied")
    assert exchange(setup.ports.tcp_allow, b"hello rbac") == b"hello rbac"
    assert proxy.counter("tcpallow.rbac.allowed") == allowed + 1
    assert proxy.counter("tcpallow.rbac.try.shadow_denied") == shadow + 1
    assert proxy.counter("tcpallow.rbac.denied") == 0


def test_network_rbac_closes_an_http_connection(setup, upstream):
    before = setup.proxy.counter("httpnet.rbac.denied")
    with socket.create_connection(("127.0.0.1", setup.ports.http_deny), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        try:
            data = sock.recv(1024)
        except ConnectionResetError:
            data = b""
    assert data == b""
    assert setup.proxy.counter("httpnet.rbac.denied") == before + 1
    assert upstream.requests == []


async def test_a_later_filter_reads_the_shadow_result(setup):
    proxy = setup.proxy
    before = proxy.stats()

    def delta(name: str) -> int:
        return int(proxy.stats().get(name, "0")) - int(before.get(name, "0"))

    assert await status(setup.ports.chained, "/calm") == 200
    assert await status(setup.ports.chained, "/suspect", [("x-suspect", "1")]) == 403
    assert delta("http.chained.rbac.shadow_denied") == 1
    assert delta("http.chained.rbac.shadow_allowed") == 1
    # The LOG engine allows (and counts) both requests.
    assert delta("http.chained.rbac.allowed") == 2
    assert delta("http.chained.rbac.follow.allowed") == 1
    assert delta("http.chained.rbac.follow.denied") == 1

"""The `grpc_stats` HTTP filter with grpcio calls through the proxy: per-method counters for
the allowlisted methods, the method-less `cluster.<c>.grpc.*` bucket for the others, error
statuses from trailers-only responses and from the proxy's own gRPC local replies, and
`replace_dots_in_grpc_service_name` (no effect on allowlisted names); a cluster's
`alt_stat_name` names its `grpc.*` scope; the same counters on Envoy and meshcore."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from tests.integration.test_grpc import h2_cluster
from tests.support.bootstrap import (
    ROUTER_TYPE,
    bootstrap,
    http_listener,
    route,
    route_config,
    virtual_host,
)
from tests.support.grpc_echo import channel, method, start_server
from tests.support.ports import dead_port, free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy

GRPC_STATS = "envoy.extensions.filters.http.grpc_stats.v3.FilterConfig"


def _filters(**config: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": "envoy.filters.http.grpc_stats",
            "typed_config": {"@type": f"type.googleapis.com/{GRPC_STATS}", **config},
        },
        {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}},
    ]


@pytest.fixture(scope="module")
def grpc_port() -> Iterator[int]:
    server, port = start_server()
    yield port
    server.stop(0)


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, grpc_port, tmp_path_factory) -> Iterator[tuple[Proxy, int, int]]:
    port, dots_port = free_port(), free_port()
    routes = [
        route({"prefix": "/test.Echo/"}, cluster="grpc"),
        route({"prefix": "/test.Dead/"}, cluster="dead"),
    ]
    rc = route_config([virtual_host("all", ["*"], routes)])
    allowlist = {"services": [{"name": "test.Echo", "method_names": ["Unary", "Fail"]}]}
    dots = {"services": [{"name": "test.Echo", "method_names": ["Bidi"]}]}
    config = bootstrap(
        [
            http_listener(
                "stats",
                port,
                rc,
                stat_prefix="stats",
                http_filters=_filters(individual_method_stats_allowlist=allowlist),
            ),
            http_listener(
                "dots",
                dots_port,
                rc,
                stat_prefix="dots",
                http_filters=_filters(
                    individual_method_stats_allowlist=dots,
                    replace_dots_in_grpc_service_name=True,
                ),
            ),
        ],
        [
            h2_cluster("grpc", grpc_port),
            {**h2_cluster("dead", dead_port()), "alt_stat_name": "gone"},
        ],
    )
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running, port, dots_port
    running.stop()


def _code(call: Any) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def test_counters_match_the_calls_made(proxy):
    running, port, _ = proxy
    with channel(port) as chan:
        for _ in range(3):
            assert chan.unary_unary(method("Unary"))(b"hi", timeout=10) == b"hi"
        for _ in range(2):
            assert _code(lambda: chan.unary_unary(method("Fail"))(b"x", timeout=10)) == (
                grpc.StatusCode.NOT_FOUND
            )
        # Not allowlisted: the method-less bucket.
        assert len(list(chan.unary_stream(method("ServerStream"))(b"4", timeout=10))) == 4
        # The proxy's own reply (connect failure) in gRPC form: UNAVAILABLE.
        dead = chan.unary_unary("/test.Dead/Call")
        assert _code(lambda: dead(b"x", timeout=10)) == grpc.StatusCode.UNAVAILABLE
    stats = running.stats()

    def count(name: str) -> int:
        return int(stats.get(name, "0"))

    unary = "cluster.grpc.grpc.test.Echo.Unary"
    assert (count(f"{unary}.success"), count(f"{unary}.failure")) == (3, 0)
    assert (count(f"{unary}.total"), count(f"{unary}.0")) == (3, 3)
    fail = "cluster.grpc.grpc.test.Echo.Fail"
    assert (count(f"{fail}.success"), count(f"{fail}.failure")) == (0, 2)
    assert (count(f"{fail}.total"), count(f"{fail}.5")) == (2, 2)
    plain = "cluster.grpc.grpc"
    assert (count(f"{plain}.success"), count(f"{plain}.total"), count(f"{plain}.0")) == (1, 1, 1)
    assert count(f"{plain}.failure") == 0
    assert "cluster.grpc.grpc.test.Echo.ServerStream.total" not in stats
    dead_stats = "cluster.gone.grpc"  # the cluster's alt_stat_name
    assert not any(name.startswith("cluster.dead.") for name in stats)
    assert (count(f"{dead_stats}.failure"), count(f"{dead_stats}.14")) == (1, 1)
    assert count(f"{dead_stats}.total") == 1


def test_replacing_dots_does_not_touch_allowlisted_names(proxy):
    running, _, dots_port = proxy
    with channel(dots_port) as chan:
        call = chan.stream_stream(method("Bidi"))
        assert list(call(iter([b"a", b"b"]), timeout=10)) == [b"echo a", b"echo b"]
    # Envoy replaces dots only in the names `stats_for_all_methods` makes up.
    assert running.counter("cluster.grpc.grpc.test.Echo.Bidi.success") == 1
    assert running.counter("cluster.grpc.grpc.test.Echo.Bidi.total") == 1
    assert "cluster.grpc.grpc.test_Echo.Bidi.total" not in running.stats()

"""Retries (`retry_policy` on routes and virtual hosts) against upstreams that fail on
purpose, on real Envoy and meshcore: which conditions retry, how many attempts each upstream
sees, request bodies, hosts already tried, the attempt-count header and the retry stats."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

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

PREVIOUS_HOSTS = {
    "name": "envoy.retry_host_predicates.previous_hosts",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3."
        "PreviousHostsPredicate"
    },
}
FAST_BACK_OFF = {"base_interval": "0.001s", "max_interval": "0.002s"}
_keys = itertools.count()


@pytest.fixture(scope="module")
def upstreams(upstream_server: UpstreamServer) -> dict[str, Upstream]:
    return {name: upstream_server.start(name) for name in ("r-main", "r-a", "r-b")}


def _policy(retry_on: str, **extra: Any) -> dict[str, Any]:
    return {"retry_on": retry_on, "retry_back_off": FAST_BACK_OFF, **extra}


def retry_config(port: int, up: dict[str, Upstream]) -> dict[str, Any]:
    main = ("127.0.0.1", up["r-main"].port)
    routes = [
        route({"prefix": "/5xx"}, cluster="main", retry_policy=_policy("5xx", num_retries=2)),
        route({"prefix": "/gw"}, cluster="main", retry_policy=_policy("gateway-error")),
        route({"prefix": "/4xx"}, cluster="main", retry_policy=_policy("retriable-4xx")),
        route(
            {"prefix": "/codes"},
            cluster="main",
            retry_policy=_policy("retriable-status-codes", retriable_status_codes=[418]),
        ),
        route(
            {"prefix": "/headers"},
            cluster="main",
            retry_policy=_policy(
                "retriable-headers",
                retriable_headers=[{"name": "x-please-retry", "exact_match": "yes"}],
            ),
        ),
        route({"prefix": "/reset"}, cluster="main", retry_policy=_policy("reset")),
        route({"prefix": "/connect"}, cluster="main", retry_policy=_policy("connect-failure")),
        route({"prefix": "/dead"}, cluster="dead-first", retry_policy=_policy("connect-failure")),
        route(
            {"prefix": "/per-try"},
            cluster="main",
            timeout="5s",
            retry_policy=_policy("5xx", per_try_timeout="0.3s"),
        ),
        route(
            {"prefix": "/pair"},
            cluster="pair",
            retry_policy=_policy(
                "5xx",
                retry_host_predicate=[PREVIOUS_HOSTS],
                host_selection_retry_max_attempts=60,
            ),
        ),
        {
            **route({"prefix": "/small-buffer"}, cluster="main", retry_policy=_policy("5xx")),
            "per_request_buffer_limit_bytes": 16,
        },
        route({"prefix": "/no-retry-budget"}, cluster="no-budget", retry_policy=_policy("5xx")),
        # No retry policy of its own: the virtual host's applies.
        route({"prefix": "/"}, cluster="main"),
    ]
    clusters = [
        static_cluster("main", [main]),
        static_cluster(
            "dead-first",
            [("127.0.0.1", free_port()), main],
            connect_timeout="0.5s",
        ),
        static_cluster(
            "pair",
            [("127.0.0.1", up["r-a"].port), ("127.0.0.1", up["r-b"].port)],
            lb_policy="RANDOM",
        ),
        static_cluster("no-budget", [main], circuit_breakers={"thresholds": [{"max_retries": 0}]}),
    ]
    host = virtual_host(
        "all",
        ["*"],
        routes,
        retry_policy=_policy("5xx", num_retries=3),
        include_request_attempt_count=True,
    )
    # A virtual host without a retry policy.
    plain = virtual_host("plain", ["plain.test"], [route({"prefix": "/"}, cluster="main")])
    return bootstrap([http_listener("main", port, route_config([plain, host]))], clusters)


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, upstreams, tmp_path_factory) -> Iterator[Proxy]:
    running = start_proxy(request.param, retry_config(free_port(), upstreams), tmp_path_factory)
    yield running
    running.stop()


def _key() -> str:
    return f"k{next(_keys)}"


async def _send(
    proxy: Proxy, target: str, behavior: str, *, method: str = "GET", body: bytes | None = None
) -> tuple[int, str]:
    key = _key()
    headers = [("x-mc-behavior", behavior), ("x-mc-key", key)]
    host = "plain.test" if target == "/plain" else "example.com"
    with trio.fail_after(15):
        response = await get(
            proxy.port, target, host=host, headers=headers, method=method, body=body
        )
    return response.status, key


def _count(up: Upstream, key: str) -> int:
    return sum(1 for r in up.requests if r.header("x-mc-key") == key)


def _cluster_counter(proxy: Proxy, cluster: str, name: str) -> int:
    return proxy.counter(f"cluster.{cluster}.{name}")


async def test_a_retry_turns_a_503_into_a_200(proxy, upstreams):
    before = _cluster_counter(proxy, "main", "upstream_rq_retry")
    success = _cluster_counter(proxy, "main", "upstream_rq_retry_success")
    status, key = await _send(proxy, "/5xx", "fail-first=1")
    assert status == 200
    assert _count(upstreams["r-main"], key) == 2
    assert _cluster_counter(proxy, "main", "upstream_rq_retry") == before + 1
    assert _cluster_counter(proxy, "main", "upstream_rq_retry_success") == success + 1


async def test_num_retries_bounds_the_attempts(proxy, upstreams):
    exceeded = _cluster_counter(proxy, "main", "upstream_rq_retry_limit_exceeded")
    status, key = await _send(proxy, "/5xx", "status=503")
    assert status == 503
    assert _count(upstreams["r-main"], key) == 3  # num_retries 2
    assert _cluster_counter(proxy, "main", "upstream_rq_retry_limit_exceeded") == exceeded + 1


@pytest.mark.parametrize(
    ("target", "behavior", "attempts"),
    [
        ("/5xx", "status=500", 3),
        ("/5xx", "status=404", 1),
        ("/gw", "status=502", 2),
        ("/gw", "status=500", 1),
        ("/4xx", "status=409", 2),
        ("/4xx", "status=404", 1),
        ("/codes", "status=418", 2),
        ("/codes", "status=503", 1),
        ("/reset", "close", 2),
        ("/reset", "status=503", 1),
        ("/connect", "close", 1),
        ("/connect", "status=503", 1),
        ("/plain", "status=503", 1),
        ("/vhost-policy", "status=503", 4),
    ],
)
async def test_retry_on_conditions(proxy, upstreams, target, behavior, attempts):
    await _send(proxy, target, behavior)
    # The upstream has recorded every attempt by the time the client has its answer.
    status, key = await _send(proxy, target, behavior)
    assert _count(upstreams["r-main"], key) == attempts
    assert status == (503 if behavior == "close" else int(behavior.split("=")[1]))


async def test_retriable_headers(proxy, upstreams):
    key = _key()
    headers = [
        ("x-mc-key", key),
        ("x-mc-response-header", "x-please-retry: yes"),
        ("x-mc-behavior", "status=200"),
    ]
    with trio.fail_after(15):
        response = await get(proxy.port, "/headers", headers=headers)
    assert response.status == 200
    assert _count(upstreams["r-main"], key) == 2
    headers[1] = ("x-mc-response-header", "x-please-retry: no")
    headers[0] = ("x-mc-key", key + "b")
    with trio.fail_after(15):
        await get(proxy.port, "/headers", headers=headers)
    assert _count(upstreams["r-main"], key + "b") == 1


async def test_connect_failure_is_retried_on_another_host(proxy, upstreams):
    fails = _cluster_counter(proxy, "dead-first", "upstream_cx_connect_fail")
    for _ in range(4):
        status, _ = await _send(proxy, "/dead", "")
        assert status == 200
    assert _cluster_counter(proxy, "dead-first", "upstream_cx_connect_fail") >= fails + 1


async def test_per_try_timeout_retries_a_hung_attempt(proxy, upstreams):
    timeouts = _cluster_counter(proxy, "main", "upstream_rq_per_try_timeout")
    start = trio.current_time()
    status, key = await _send(proxy, "/per-try", "hang-first=1")
    elapsed = trio.current_time() - start
    assert status == 200
    assert _count(upstreams["r-main"], key) == 2
    assert 0.25 <= elapsed < 4.0
    assert _cluster_counter(proxy, "main", "upstream_rq_per_try_timeout") == timeouts + 1


async def test_previous_hosts_sends_the_retry_elsewhere(proxy, upstreams):
    for _ in range(5):
        status, key = await _send(proxy, "/pair", "status=503")
        assert status == 503
        assert _count(upstreams["r-a"], key) == 1
        assert _count(upstreams["r-b"], key) == 1


async def test_a_buffered_body_is_sent_again(proxy, upstreams):
    body = b"payload-" * 100
    status, key = await _send(proxy, "/5xx", "fail-first=1,echo", method="POST", body=body)
    assert status == 200
    sent = [r for r in upstreams["r-main"].requests if r.header("x-mc-key") == key]
    assert [bytes(r.body) for r in sent] == [body, body]


async def test_a_body_over_the_buffer_limit_is_not_retried(proxy, upstreams):
    status, key = await _send(proxy, "/small-buffer", "status=503", method="POST", body=b"x" * 64)
    assert status == 503
    assert _count(upstreams["r-main"], key) == 1
    status, key = await _send(proxy, "/small-buffer", "status=503", method="POST", body=b"x" * 8)
    assert _count(upstreams["r-main"], key) == 2


async def test_attempt_count_header(proxy, upstreams):
    status, key = await _send(proxy, "/vhost-policy", "fail-first=2")
    assert status == 200
    sent = [r for r in upstreams["r-main"].requests if r.header("x-mc-key") == key]
    assert [r.header_values("x-envoy-attempt-count") for r in sent] == [["1"], ["2"], ["3"]]


async def test_retry_circuit_breaker_overflow(proxy, upstreams):
    overflow = _cluster_counter(proxy, "no-budget", "upstream_rq_retry_overflow")
    status, key = await _send(proxy, "/no-retry-budget", "status=503")
    assert status == 503
    assert _count(upstreams["r-main"], key) == 1
    assert _cluster_counter(proxy, "no-budget", "upstream_rq_retry_overflow") == overflow + 1


async def test_client_retry_headers_are_not_honoured_and_not_forwarded(proxy, upstreams):
    key = _key()
    headers = [
        ("x-mc-key", key),
        ("x-mc-behavior", "status=503"),
        ("x-envoy-retry-on", "5xx"),
        ("x-envoy-max-retries", "3"),
    ]
    with trio.fail_after(15):
        response = await get(proxy.port, "/plain", host="plain.test", headers=headers)
    assert response.status == 503
    sent = [r for r in upstreams["r-main"].requests if r.header("x-mc-key") == key]
    assert len(sent) == 1
    assert not sent[0].has_header("x-envoy-retry-on")
    assert not sent[0].has_header("x-envoy-max-retries")

"""HTTP health checks against real trio/h11 upstreams on 127.0.0.1."""

from __future__ import annotations

import socket
from functools import partial

import pytest
import trio
from meshcore.health.http_check import HttpProbe, request_headers
from meshcore.health.spec import HeaderToAdd, HttpCheck
from meshcore.health.state import Failure

from tests.support.upstream import Upstream

from .fakes import spec


@pytest.fixture
async def upstream(nursery):
    up = Upstream("up")
    await nursery.start(up.serve)
    return up


def probe_for(port: int, reuse: bool = True, **http_fields) -> HttpProbe:
    http = HttpCheck(path=http_fields.pop("path", "/healthz"), **http_fields)
    return HttpProbe(spec(http=http, reuse_connection=reuse), http, "127.0.0.1", port)


def behave(text: str) -> tuple[HeaderToAdd, ...]:
    """Makes the upstream misbehave (tests/support/upstream.py `x-mc-behavior`)."""
    return (HeaderToAdd("x-mc-behavior", text),)


def respond_with(name: str, value: str) -> HeaderToAdd:
    return HeaderToAdd("x-mc-response-header", f"{name}: {value}")


async def test_a_200_passes_and_the_request_looks_like_envoys(upstream):
    probe = probe_for(upstream.port)
    outcome = await probe.check()
    assert outcome.ok and not outcome.degraded
    (request,) = upstream.requests
    assert (request.method, request.target) == ("GET", "/healthz")
    assert request.headers == [("host", "svc"), ("user-agent", "Envoy/HC")]
    probe.close()


async def test_an_unexpected_status_is_an_active_failure(upstream):
    probe = probe_for(upstream.port, headers_to_add=behave("status=503"))
    outcome = await probe.check()
    assert not outcome.ok and outcome.failure is Failure.ACTIVE
    assert not outcome.retriable and not outcome.excluded
    assert outcome.detail == "HTTP 503"
    probe.close()


@pytest.mark.parametrize(
    ("status", "ok", "retriable"),
    [
        (200, True, False),
        (204, True, False),
        (299, True, False),
        (302, False, False),
        (404, True, False),
        (429, False, True),
        (500, False, False),
    ],
)
async def test_expected_and_retriable_status_ranges(upstream, status, ok, retriable):
    probe = probe_for(
        upstream.port,
        expected_statuses=((200, 300), (404, 405)),
        retriable_statuses=((429, 430),),
        headers_to_add=behave(f"status={status}"),
    )
    outcome = await probe.check()
    assert (outcome.ok, outcome.retriable) == (ok, retriable)
    probe.close()


async def test_the_connection_is_kept_between_checks(upstream):
    probe = probe_for(upstream.port)
    for _ in range(3):
        assert (await probe.check()).ok
    assert len(upstream.connection_ids()) == 1
    probe.close()
    fresh = probe_for(upstream.port, reuse=False)
    for _ in range(2):
        assert (await fresh.check()).ok
    assert len(upstream.connection_ids()) == 3


async def test_connection_close_from_the_host_means_a_new_connection(upstream):
    probe = probe_for(upstream.port, headers_to_add=behave("connection-close"))
    assert (await probe.check()).ok
    assert (await probe.check()).ok
    assert len(upstream.connection_ids()) == 2
    probe.close()


async def test_a_kept_connection_closed_while_idle_is_not_a_failure(upstream):
    probe = probe_for(upstream.port)
    assert (await probe.check()).ok
    upstream.cancel_scope.cancel()  # the host goes away, closing the kept connection
    assert await probe.idle_until(trio.current_time() + 0.5) is None
    outcome = await probe.check()
    assert outcome.failure is Failure.NETWORK  # now the connect is refused
    assert outcome.detail.startswith("connect: ")


async def test_refused_connection_is_a_network_failure():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        outcome = await probe_for(port).check()
    assert outcome.failure is Failure.NETWORK
    assert "refused" in outcome.detail.lower()


async def test_a_host_that_never_answers_is_left_to_the_timeout(upstream):
    probe = probe_for(upstream.port, headers_to_add=behave("hang"))
    with trio.move_on_after(0.3) as scope:
        await probe.check()
    assert scope.cancelled_caught
    probe.close()


async def test_a_host_closing_before_answering_is_a_network_failure(upstream):
    probe = probe_for(upstream.port, headers_to_add=behave("close"))
    outcome = await probe.check()
    assert outcome.failure is Failure.NETWORK


async def test_a_malformed_answer_is_a_network_failure(nursery):
    async def garbage(stream: trio.SocketStream) -> None:
        await stream.receive_some(4096)
        await stream.send_all(b"HTTP/1.1 abc nonsense\r\n\r\n")
        await stream.aclose()

    listeners = await nursery.start(partial(trio.serve_tcp, garbage, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    outcome = await probe_for(port).check()
    assert outcome.failure is Failure.NETWORK


async def test_degraded_and_immediate_fail_headers(upstream):
    degraded = probe_for(upstream.port, headers_to_add=(respond_with("x-envoy-degraded", "1"),))
    outcome = await degraded.check()
    assert outcome.ok and outcome.degraded
    degraded.close()
    immediate = probe_for(
        upstream.port,
        headers_to_add=(
            *behave("status=503"),
            respond_with("x-envoy-immediate-health-check-fail", "true"),
        ),
    )
    outcome = await immediate.check()
    assert outcome.failure is Failure.ACTIVE and outcome.excluded
    immediate.close()


async def test_body_must_contain_the_receive_segments(upstream):
    # The upstream answers with its name: "up".
    assert (await probe_for(upstream.port, receive=(b"u", b"p")).check()).ok
    outcome = await probe_for(upstream.port, receive=(b"p", b"u")).check()
    assert outcome.failure is Failure.ACTIVE and "body mismatch" in outcome.detail
    big = (*behave("size=5000"),)
    # Only the first response_buffer_size bytes are looked at.
    assert not (
        await probe_for(
            upstream.port, receive=(b"x" * 11,), response_buffer_size=10, headers_to_add=big
        ).check()
    ).ok
    assert (
        await probe_for(
            upstream.port, receive=(b"x" * 11,), response_buffer_size=0, headers_to_add=big
        ).check()
    ).ok


async def test_host_method_and_header_mutations(upstream):
    probe = probe_for(
        upstream.port,
        host="health.internal",
        method="HEAD",
        path="/status?full=1",
        headers_to_add=(
            HeaderToAdd("x-a", "1"),
            HeaderToAdd("x-a", "2"),
            HeaderToAdd("user-agent", "probe", "overwrite_if_exists_or_add"),
            HeaderToAdd("x-absent", "no", "overwrite_if_exists"),
            HeaderToAdd("x-b", "", keep_empty_value=False),
        ),
        headers_to_remove=("x-none",),
    )
    assert (await probe.check()).ok
    (request,) = upstream.requests
    assert (request.method, request.target) == ("HEAD", "/status?full=1")
    assert request.headers == [
        ("host", "health.internal"),
        ("x-a", "1"),
        ("x-a", "2"),
        ("user-agent", "probe"),
    ]
    probe.close()


def test_request_headers_removal_then_add_if_absent():
    http = HttpCheck(
        path="/",
        headers_to_remove=("user-agent",),
        headers_to_add=(
            HeaderToAdd("user-agent", "mine", "add_if_absent"),
            HeaderToAdd("host-ish", "x", "add_if_absent"),
        ),
    )
    assert request_headers(spec(http=http), http) == [
        ("host", "svc"),
        ("user-agent", "mine"),
        ("host-ish", "x"),
    ]

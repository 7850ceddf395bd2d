"""Hostile and malformed requests: the proxy answers them itself (400 and friends, as Envoy
does), closes the connection, and the upstream sees nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import h11
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
from tests.support.client import RawConnection, Response, build_request, chunk, get
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

HOST = b"Host: example.com\r\n"


def req(line: bytes, *headers: bytes, body: bytes = b"") -> bytes:
    return line + b"\r\n" + HOST + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


# name -> (bytes sent, Envoy's status, Envoy's body)
HOSTILE: dict[str, tuple[bytes, int, bytes]] = {
    "content-length-and-chunked": (
        req(
            b"POST /h/1 HTTP/1.1",
            b"Content-Length: 5",
            b"Transfer-Encoding: chunked",
            body=b"0\r\n\r\n",
        ),
        400,
        b"Bad Request",
    ),
    "bad-chunk-size": (
        req(b"POST /h/2 HTTP/1.1", b"Transfer-Encoding: chunked", body=b"zz\r\nhello\r\n0\r\n\r\n"),
        400,
        b"Bad Request",
    ),
    "nul-in-header-value": (req(b"GET /h/3 HTTP/1.1", b"X-A: a\x00b"), 400, b"Bad Request"),
    "garbage-request-line": (b"GARBAGE\r\n\r\n", 400, b"Bad Request"),
    "request-line-extra-token": (req(b"GET /h/5 HTTP/1.1 extra"), 400, b"Bad Request"),
    "control-char-in-path": (req(b"GET /h/\x016 HTTP/1.1"), 400, b"Bad Request"),
    "space-before-colon": (req(b"GET /h/7 HTTP/1.1", b"X-A : b"), 400, b"Bad Request"),
    "space-in-header-name": (req(b"GET /h/8 HTTP/1.1", b"Bad Name: b"), 400, b"Bad Request"),
    "two-content-lengths": (
        req(b"POST /h/9 HTTP/1.1", b"Content-Length: 1", b"Content-Length: 2", body=b"ab"),
        400,
        b"Bad Request",
    ),
    "non-numeric-content-length": (
        req(b"POST /h/10 HTTP/1.1", b"Content-Length: abc"),
        400,
        b"Bad Request",
    ),
    "negative-content-length": (
        req(b"POST /h/11 HTTP/1.1", b"Content-Length: -1"),
        400,
        b"Bad Request",
    ),
    "missing-host": (b"GET /h/12 HTTP/1.1\r\n\r\n", 400, b""),
    "unknown-transfer-encoding": (
        req(b"POST /h/13 HTTP/1.1", b"Transfer-Encoding: gzip"),
        501,
        b"Not Implemented",
    ),
    "headers-too-large": (
        req(b"GET /h/14 HTTP/1.1", b"X-Big: " + b"a" * 70000),
        431,
        b"Request Header Fields Too Large",
    ),
    "http-1.0": (b"GET /h/15 HTTP/1.0\r\n\r\n", 426, b"Upgrade Required"),
    "unknown-http-version": (req(b"GET /h/16 HTTP/9.9"), 426, b"Upgrade Required"),
}


@dataclass
class Outcome:
    response: Response | None
    closed: bool
    error: str = ""


@pytest.fixture(scope="module")
def upstream(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("victim")


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, upstream, tmp_path_factory) -> Iterator[Proxy]:
    rc = route_config([virtual_host("all", ["*"], [route({"prefix": "/"}, cluster="victim")])])
    config = bootstrap(
        [http_listener("main", free_port(), rc)],
        [static_cluster("victim", [("127.0.0.1", upstream.port)])],
    )
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running
    running.stop()


async def send_hostile(port: int, data: bytes) -> Outcome:
    try:
        async with await RawConnection.open(port) as conn:
            await conn.send(data)
            response = await conn.read_response()
            with trio.move_on_after(5):
                rest = await conn.read_until_closed()
                return Outcome(
                    response, closed=True, error=f"after response: {rest[:80]!r}" if rest else ""
                )
            return Outcome(response, closed=False)
    except (EOFError, OSError, trio.BrokenResourceError, h11.RemoteProtocolError) as exc:
        return Outcome(None, closed=True, error=repr(exc))


@pytest.fixture(scope="module")
def outcomes(proxy: Proxy, upstream: Upstream) -> tuple[dict[str, Outcome], list[str]]:
    """Sends every hostile request at once (each waits out the proxy's delayed close)."""
    upstream.clear()
    results: dict[str, Outcome] = {}

    async def one(name: str, data: bytes) -> None:
        results[name] = await send_hostile(proxy.port, data)

    async def all_cases() -> None:
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for name, (data, _, _) in HOSTILE.items():
                    nursery.start_soon(one, name, data)

    trio.run(all_cases)
    return results, [f"{r.method} {r.target}" for r in upstream.requests]


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_request_rejected(outcomes, case):
    results, upstream_saw = outcomes
    outcome = results[case]
    _, status, body = HOSTILE[case]
    assert outcome.response is not None, outcome.error
    assert outcome.response.status == status
    assert outcome.response.body == body
    assert outcome.response.closes(), outcome.response.headers
    assert outcome.closed, "the proxy kept the connection open"
    assert not outcome.error, outcome.error
    assert upstream_saw == [], "hostile requests reached the upstream"


async def test_worker_survives_hostile_input(outcomes, proxy):
    with trio.fail_after(5):
        response = await get(proxy.port, "/after")
    assert response.status == 200
    assert response.upstream == "victim"


async def test_bad_chunk_mid_body_never_completes_upstream(proxy, upstream):
    """A body that turns malformed after the headers were forwarded: the client gets 400 and
    the upstream never sees a complete request (its request is reset)."""
    with trio.fail_after(10):
        async with await RawConnection.open(proxy.port) as conn:
            await conn.send(
                build_request("POST", "/mid", headers=[("Transfer-Encoding", "chunked")])
                + chunk(b"hello")
            )
            await conn.send(b"zz\r\n")
            response = await conn.read_response()
            assert response.status == 400
            assert response.closes()
            assert await conn.is_closed_by_peer()
        # Either nothing was forwarded, or the forwarded request was cut short.
        await upstream.until(lambda u: not u.requests or bool(u.protocol_errors))
    assert all(not r.complete for r in upstream.requests)

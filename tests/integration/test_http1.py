"""HTTP/1.1 proxying: keep-alive, ordering, bodies streamed both ways, 100-continue, bodiless
responses, hop-by-hop headers, forwarding headers, `Connection: close` both ways."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterator

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
from tests.support.client import RawConnection, build_request, chunk, get
from tests.support.netinfo import envoy_local_address
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
GATES = itertools.count()


@pytest.fixture(scope="module")
def upstream(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("web")


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, upstream, tmp_path_factory) -> Iterator[Proxy]:
    rc = route_config([virtual_host("all", ["*"], [route({"prefix": "/"}, cluster="web")])])
    config = bootstrap(
        [http_listener("main", free_port(), rc, use_remote_address=True)],
        [static_cluster("web", [("127.0.0.1", upstream.port)])],
    )
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running
    running.stop()


# ---- connections ------------------------------------------------------------------------


async def test_keep_alive_downstream_and_upstream(proxy, upstream):
    with trio.fail_after(10):
        async with await RawConnection.open(proxy.port) as conn:
            for index in range(20):
                response = await conn.request("GET", f"/ka/{index}")
                assert response.status == 200
                assert response.body == b"web"
                assert not response.closes()
    assert [r.target for r in upstream.requests] == [f"/ka/{i}" for i in range(20)]
    assert len(upstream.connection_ids()) == 1


async def test_upstream_connection_reused_across_downstream_connections(proxy, upstream):
    with trio.fail_after(10):
        for index in range(10):
            response = await get(proxy.port, f"/reuse/{index}")
            assert response.status == 200
    assert len(upstream.requests) == 10
    assert len(upstream.connection_ids()) == 1


async def test_pipelined_requests_answered_in_order(proxy, upstream):
    batch = b"".join(
        build_request("GET", f"/seq/{i}", headers=[("x-mc-response-header", f"x-seq: {i}")])
        for i in range(5)
    )
    with trio.fail_after(10):
        async with await RawConnection.open(proxy.port) as conn:
            await conn.send(batch)
            sequence = [(await conn.read_response()).header("x-seq") for _ in range(5)]
    assert sequence == ["0", "1", "2", "3", "4"]
    assert [r.target for r in upstream.requests] == [f"/seq/{i}" for i in range(5)]


async def test_client_connection_close_is_honoured(proxy):
    with trio.fail_after(5):
        async with await RawConnection.open(proxy.port) as conn:
            response = await conn.request("GET", "/", headers=[("Connection", "close")])
            assert response.status == 200
            assert response.closes()
            assert await conn.is_closed_by_peer()


async def test_upstream_connection_close_is_honoured(proxy, upstream):
    with trio.fail_after(5):
        async with await RawConnection.open(proxy.port) as conn:
            first = await conn.request(
                "GET", "/first", headers=[("x-mc-behavior", "connection-close")]
            )
            second = await conn.request("GET", "/second")
    assert (first.status, second.status) == (200, 200)
    assert not first.closes()
    requests = upstream.requests
    assert [r.target for r in requests] == ["/first", "/second"]
    assert requests[0].connection != requests[1].connection


# ---- request bodies ---------------------------------------------------------------------


async def test_content_length_upload(proxy, upstream):
    body = bytes(range(256)) * 400
    with trio.fail_after(10):
        response = await get(
            proxy.port, "/upload", method="POST", body=body, headers=[("x-mc-behavior", "echo")]
        )
    assert response.status == 200
    assert response.body == body
    seen = upstream.requests[-1]
    assert seen.body == body
    assert seen.header("content-length") == str(len(body))


async def test_chunked_upload(proxy, upstream):
    parts = [b"alpha", b"beta" * 1000, b"gamma"]
    payload = b"".join(chunk(p) for p in parts) + chunk(b"")
    with trio.fail_after(10):
        async with await RawConnection.open(proxy.port) as conn:
            await conn.send(
                build_request("POST", "/chunked", headers=[("Transfer-Encoding", "chunked")])
                + payload
            )
            response = await conn.read_response()
    assert response.status == 200
    seen = upstream.requests[-1]
    assert bytes(seen.body) == b"".join(parts)
    assert seen.header("transfer-encoding") == "chunked"


async def test_large_chunked_upload_is_streamed(proxy, upstream):
    """The upstream sees the first chunk before the client sends the last one."""
    first = b"F" * 65536
    rest = [bytes([65 + i % 26]) * 65536 for i in range(63)]
    whole = first + b"".join(rest)
    with trio.fail_after(30):
        async with await RawConnection.open(proxy.port) as conn:
            head = build_request(
                "POST",
                "/stream-up",
                headers=[("Transfer-Encoding", "chunked"), ("x-mc-behavior", "echo")],
            )
            await conn.send(head + chunk(first))
            await upstream.until(
                lambda u: any(r.target == "/stream-up" and len(r.body) > 0 for r in u.requests)
            )
            assert not upstream.requests[-1].complete
            for part in rest:
                await conn.send(chunk(part))
            await conn.send(chunk(b""))
            response = await conn.read_response()
    assert response.status == 200
    assert hashlib.sha256(response.body).digest() == hashlib.sha256(whole).digest()
    assert hashlib.sha256(upstream.requests[-1].body).digest() == hashlib.sha256(whole).digest()


async def test_expect_100_continue_answered_by_proxy(proxy, upstream):
    body = b"x" * 1000
    with trio.fail_after(5):
        async with await RawConnection.open(proxy.port) as conn:
            await conn.send(
                build_request(
                    "POST",
                    "/expect",
                    headers=[("Expect", "100-continue"), ("Content-Length", "1000")],
                )
            )
            head = await conn.read_head()
            assert head.startswith(b"HTTP/1.1 100 ")
            await conn.send(body)
            response = await conn.read_response()
    assert response.status == 200
    seen = upstream.requests[-1]
    assert seen.body == body
    assert not seen.has_header("expect")


# ---- response bodies --------------------------------------------------------------------


async def test_chunked_download(proxy):
    with trio.fail_after(10):
        response = await get(proxy.port, "/", headers=[("x-mc-behavior", "chunked=4,size=100000")])
    assert response.status == 200
    assert response.body == b"x" * 100000
    assert response.header("transfer-encoding") == "chunked"
    assert response.header("content-length") is None


async def test_large_content_length_download(proxy):
    with trio.fail_after(10):
        response = await get(proxy.port, "/", headers=[("x-mc-behavior", "size=3000000")])
    assert response.status == 200
    assert response.header("content-length") == "3000000"
    assert response.body == b"x" * 3000000


async def test_slow_download_is_streamed(proxy, upstream):
    """The client gets the first part before the upstream has sent the rest."""
    gate = f"download-{next(GATES)}-{proxy.kind}"
    with trio.fail_after(10):
        async with await RawConnection.open(proxy.port) as conn:
            await conn.send(
                build_request("GET", "/", headers=[("x-mc-behavior", f"gate={gate},size=200000")])
            )
            response = await conn.read_response(stop_after_chunk=True)
            assert 0 < len(response.body) < 200000
            upstream.open_gate(gate)
            response = await conn.read_rest(response)
    assert response.body == b"x" * 200000


@pytest.mark.parametrize("status", [204, 304])
async def test_no_body_for_204_and_304(proxy, status):
    with trio.fail_after(5):
        async with await RawConnection.open(proxy.port) as conn:
            response = await conn.request(
                "GET", "/", headers=[("x-mc-behavior", f"status={status}")]
            )
            assert response.status == status
            assert response.body == b""
            assert response.header("transfer-encoding") is None
            follow_up = await conn.request("GET", "/after")
    assert follow_up.status == 200
    assert follow_up.body == b"web"


async def test_no_body_for_head(proxy, upstream):
    with trio.fail_after(5):
        async with await RawConnection.open(proxy.port) as conn:
            response = await conn.request("HEAD", "/")
            assert response.status == 200
            assert response.body == b""
            assert response.header("content-length") == "3"
            follow_up = await conn.request("GET", "/after")
    assert follow_up.body == b"web"
    assert [r.method for r in upstream.requests] == ["HEAD", "GET"]


# ---- headers ----------------------------------------------------------------------------


async def test_hop_by_hop_request_headers_removed(proxy, upstream):
    with trio.fail_after(5):
        response = await get(
            proxy.port,
            "/",
            headers=[
                ("Connection", "keep-alive, x-nominated"),
                ("X-Nominated", "1"),
                ("Keep-Alive", "timeout=5"),
                ("Proxy-Connection", "keep-alive"),
                ("TE", "gzip"),
                ("X-End-To-End", "kept"),
            ],
        )
    assert response.status == 200
    seen = upstream.requests[-1]
    for name in ("connection", "x-nominated", "keep-alive", "proxy-connection", "te"):
        assert not seen.has_header(name), name
    assert seen.header("x-end-to-end") == "kept"


async def test_te_trailers_is_forwarded(proxy, upstream):
    with trio.fail_after(5):
        await get(proxy.port, "/", headers=[("TE", "trailers")])
    assert upstream.requests[-1].header("te") == "trailers"


async def test_hop_by_hop_response_headers_removed(proxy):
    with trio.fail_after(5):
        response = await get(
            proxy.port,
            "/",
            headers=[
                ("x-mc-response-header", "keep-alive: timeout=9"),
                ("x-mc-response-header", "proxy-connection: keep-alive"),
                ("x-mc-response-header", "x-end-to-end: kept"),
            ],
        )
    assert response.header("keep-alive") is None
    assert response.header("proxy-connection") is None
    assert response.header("x-end-to-end") == "kept"


async def test_forwarding_headers_set(proxy, upstream):
    with trio.fail_after(5):
        await get(proxy.port, "/")
    seen = upstream.requests[-1]
    assert seen.header("x-forwarded-proto") == "http"
    # Envoy appends its own local address instead of a loopback peer's.
    assert seen.header("x-forwarded-for") == envoy_local_address()
    assert UUID4.match(seen.header("x-request-id") or "")


async def test_x_forwarded_for_appended(proxy, upstream):
    with trio.fail_after(5):
        await get(proxy.port, "/", headers=[("X-Forwarded-For", "203.0.113.7")])
    assert upstream.requests[-1].header_values("x-forwarded-for") == [
        f"203.0.113.7,{envoy_local_address()}"
    ]


async def test_request_ids_are_unique(proxy, upstream):
    with trio.fail_after(5):
        async with await RawConnection.open(proxy.port) as conn:
            for _ in range(5):
                await conn.request("GET", "/")
    ids = [r.header("x-request-id") for r in upstream.requests]
    assert len(set(ids)) == 5
    assert all(UUID4.match(i or "") for i in ids)


async def test_external_request_id_is_replaced_at_the_edge(proxy, upstream):
    """With use_remote_address and a peer that is not an internal address, Envoy does not
    trust the client's x-request-id (preserve_external_request_id is false)."""
    with trio.fail_after(5):
        await get(proxy.port, "/", headers=[("x-request-id", "client-chosen")])
    seen = upstream.requests[-1].header_values("x-request-id")
    assert len(seen) == 1
    assert UUID4.match(seen[0])


async def test_response_server_and_date_headers(proxy):
    with trio.fail_after(5):
        response = await get(proxy.port, "/")
    assert response.header("server") == "envoy"
    assert re.match(
        r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$",
        response.header("date") or "",
    )

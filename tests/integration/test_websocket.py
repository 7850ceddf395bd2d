"""WebSocket through the proxy (`upgrade_configs`), on real Envoy and meshcore with the same
config: a trio-websocket echo server behind the proxy and a trio-websocket client in front.
Echo of text and 1 MiB binary messages, a message the server sends first, the close
handshake; a 403 and a close when no config enables the upgrade (globally, or per route);
the upstream's refusal passed on with `connection: close`, and a 2xx instead of the 101
answered with that status and no body (as Envoy); the route idle timeout ending
an idle tunnel; the upgrade stats."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import trio
from trio_websocket import (
    ConnectionClosed,
    HandshakeError,
    WebSocketRequest,
    open_websocket_url,
    serve_websocket,
)

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
from tests.support.upstream import UpstreamServer

BIG = bytes(range(256)) * 4096  # 1 MiB


@dataclass
class WsUpstream:
    """Echoes every message; `/greet` sends "hi" first; `/refuse` answers 404 and `/plain`
    200 instead of switching protocols."""

    port: int = 0
    paths: list[str] = field(default_factory=list)

    async def handler(self, request: WebSocketRequest) -> None:
        self.paths.append(request.path)
        if request.path.startswith("/refuse"):
            await request.reject(404, body=b"nope")
            return
        if request.path.startswith("/plain"):
            await request.reject(200, body=b"ok")
            return
        ws = await request.accept()
        if request.path.startswith("/greet"):
            await ws.send_message("hi")
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.send_message(await ws.get_message())

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.port = free_port()
        await trio.lowlevel.checkpoint()
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: serve_websocket(
                    self.handler,
                    "127.0.0.1",
                    self.port,
                    None,
                    max_message_size=4 * len(BIG),
                    task_status=task_status,
                )
            )
            task_status.started()


@pytest.fixture(scope="module")
def ws_upstream(upstream_server: UpstreamServer) -> WsUpstream:
    upstream = WsUpstream()
    upstream_server.start_task(upstream.serve)
    return upstream


@dataclass
class Ports:
    enabled: int
    disabled: int


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, ws_upstream, tmp_path_factory) -> Iterator[tuple[Proxy, Ports]]:
    ports = Ports(free_port(), free_port())
    routes = [
        route(
            {"prefix": "/off"},
            cluster="ws",
            upgrade_configs=[{"upgrade_type": "websocket", "enabled": False}],
        ),
        route({"prefix": "/idle"}, cluster="ws", idle_timeout="1s"),
        route({"prefix": "/"}, cluster="ws"),
    ]
    rc = route_config([virtual_host("all", ["*"], routes)])
    enabled = http_listener(
        "ws", ports.enabled, rc, stat_prefix="ws", upgrade_configs=[{"upgrade_type": "websocket"}]
    )
    disabled = http_listener("plain", ports.disabled, rc, stat_prefix="plain")
    config = bootstrap(
        [enabled, disabled], [static_cluster("ws", [("127.0.0.1", ws_upstream.port)])]
    )
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running, ports
    running.stop()


async def test_echo_text_and_a_large_binary_message(proxy: tuple[Proxy, Ports]) -> None:
    _, ports = proxy
    with trio.fail_after(20):
        async with open_websocket_url(
            f"ws://127.0.0.1:{ports.enabled}/chat", max_message_size=4 * len(BIG)
        ) as ws:
            for text in ("hello", "again", "ü" * 1000):
                await ws.send_message(text)
                assert await ws.get_message() == text
            await ws.send_message(BIG)
            assert await ws.get_message() == BIG


async def test_the_upstream_may_speak_first(proxy: tuple[Proxy, Ports]) -> None:
    _, ports = proxy
    with trio.fail_after(10):
        async with open_websocket_url(f"ws://127.0.0.1:{ports.enabled}/greet") as ws:
            assert await ws.get_message() == "hi"
            await ws.send_message("x")
            assert await ws.get_message() == "x"


async def raw_upgrade(port: int, path: str) -> tuple[bytes, bool]:
    """Sends a WebSocket handshake by hand; returns what came back and whether it closed."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    got, closed = b"", False
    async with stream:
        await stream.send_all(request)
        with trio.move_on_after(3):
            while chunk := await stream.receive_some(65536):
                got += chunk
            closed = True
    return got, closed


@pytest.mark.parametrize("where", ["listener", "route"])
async def test_an_upgrade_nobody_enables_is_refused(
    proxy: tuple[Proxy, Ports], ws_upstream: WsUpstream, where: str
) -> None:
    _, ports = proxy
    port, path = (ports.disabled, "/x") if where == "listener" else (ports.enabled, "/off")
    before = list(ws_upstream.paths)
    got, closed = await raw_upgrade(port, path)
    assert got.startswith(b"HTTP/1.1 403 "), got
    assert closed
    assert ws_upstream.paths == before  # nothing reached the upstream


async def test_the_upstreams_refusal_is_passed_on_and_the_connection_closes(
    proxy: tuple[Proxy, Ports],
) -> None:
    _, ports = proxy
    got, closed = await raw_upgrade(ports.enabled, "/refuse")
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 "), got
    assert b"connection: close" in head.lower()
    assert body == b"nope" and closed
    with pytest.raises(HandshakeError):
        async with open_websocket_url(f"ws://127.0.0.1:{ports.enabled}/refuse"):
            pass


async def test_a_2xx_instead_of_the_switch_is_answered_without_its_body(
    proxy: tuple[Proxy, Ports],
) -> None:
    _, ports = proxy
    got, closed = await raw_upgrade(ports.enabled, "/plain")
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), got
    assert body == b"" and closed


async def test_an_idle_tunnel_is_closed_by_the_route_idle_timeout(
    proxy: tuple[Proxy, Ports],
) -> None:
    _, ports = proxy
    with trio.fail_after(10):
        async with open_websocket_url(f"ws://127.0.0.1:{ports.enabled}/idle") as ws:
            await ws.send_message("x")
            assert await ws.get_message() == "x"
            with pytest.raises(ConnectionClosed):
                await ws.get_message()  # nothing comes: the proxy closes after 1 s


async def test_upgrade_stats(proxy: tuple[Proxy, Ports]) -> None:
    running, ports = proxy
    before = int(running.stats().get("http.ws.downstream_cx_upgrades_total", "0"))
    with trio.fail_after(10):
        async with open_websocket_url(f"ws://127.0.0.1:{ports.enabled}/chat") as ws:
            await ws.send_message("x")
            assert await ws.get_message() == "x"
            assert running.stats()["http.ws.downstream_cx_upgrades_active"] == "1"
    stats = running.stats()
    assert int(stats["http.ws.downstream_cx_upgrades_total"]) == before + 1
    for _ in range(50):
        if running.stats()["http.ws.downstream_cx_upgrades_active"] == "0":
            break
        await trio.sleep(0.1)
    assert running.stats()["http.ws.downstream_cx_upgrades_active"] == "0"

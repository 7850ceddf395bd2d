"""TCP health checks against real trio TCP servers on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Awaitable, Callable
from functools import partial

import trio
from meshcore.health.spec import TcpCheck
from meshcore.health.state import Failure
from meshcore.health.tcp_check import TcpProbe

from .fakes import spec

Handler = Callable[[trio.SocketStream], Awaitable[None]]


class TcpServer:
    """Serves `handler` on 127.0.0.1; records every connection's received bytes."""

    def __init__(self) -> None:
        self.port = 0
        self.received: list[bytearray] = []

    async def start(self, nursery: trio.Nursery, handler: Callable[..., Awaitable[None]]) -> None:
        async def run(stream: trio.SocketStream) -> None:
            got = bytearray()
            self.received.append(got)
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await handler(stream, got)

        listeners = await nursery.start(partial(trio.serve_tcp, run, 0, host="127.0.0.1"))
        self.port = listeners[0].socket.getsockname()[1]


async def read_until(stream: trio.SocketStream, got: bytearray, wanted: bytes) -> None:
    while wanted not in got:
        data = await stream.receive_some(4096)
        if not data:
            raise trio.BrokenResourceError
        got += data


def probe(port: int, reuse: bool = True, **tcp_fields) -> TcpProbe:
    tcp = TcpCheck(**tcp_fields)
    return TcpProbe(spec(tcp=tcp, reuse_connection=reuse), tcp, "127.0.0.1", port)


async def test_connect_only_passes_and_writes_nothing(nursery):
    server = TcpServer()

    async def hold(stream, got):
        while data := await stream.receive_some(4096):
            got += data

    await server.start(nursery, hold)
    p = probe(server.port, send=b"PING")
    assert (await p.check()).ok
    assert (await p.check()).ok
    await trio.sleep(0.05)
    # Envoy closes a connect-only check at once and writes nothing, even with `send`.
    assert server.received == [bytearray(), bytearray()]


async def test_refused_is_a_network_failure():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        outcome = await probe(s.getsockname()[1]).check()
    assert outcome.failure is Failure.NETWORK


async def test_send_then_receive_segments_in_order_over_a_kept_connection(nursery):
    server = TcpServer()

    async def pong(stream, got):
        while True:
            await read_until(stream, got, b"PING")
            got.clear()
            # Split, with noise before, between and after the expected segments.
            await stream.send_all(b"xxPO")
            await trio.sleep(0.01)
            await stream.send_all(b"NG-and-OKyy")

    await server.start(nursery, pong)
    p = probe(server.port, send=bytes.fromhex("50494e47"), receive=(b"PONG", b"OK"))
    for _ in range(3):
        assert (await p.check()).ok
    assert len(server.received) == 1  # one connection, reused
    p.close()


async def test_wrong_bytes_wait_for_the_timeout(nursery):
    server = TcpServer()

    async def wrong(stream, got):
        await read_until(stream, got, b"PING")
        await stream.send_all(b"OK then PONG")  # segments out of order
        await trio.sleep_forever()

    await server.start(nursery, wrong)
    p = probe(server.port, send=b"PING", receive=(b"PONG", b"OK"))
    with trio.move_on_after(0.3) as scope:
        await p.check()
    assert scope.cancelled_caught
    p.close()


async def test_a_host_closing_mid_check_or_while_idle_is_a_network_failure(nursery):
    server = TcpServer()

    async def once_then_close(stream, got):
        await read_until(stream, got, b"PING")
        await stream.send_all(b"PONG")
        await trio.sleep(0.05)
        await stream.aclose()

    await server.start(nursery, once_then_close)
    p = probe(server.port, send=b"PING", receive=(b"PONG",))
    assert (await p.check()).ok
    outcome = await p.idle_until(trio.current_time() + 5)
    assert outcome is not None and outcome.failure is Failure.NETWORK
    assert outcome.detail == "connection closed by the host"

    async def close_at_once(stream, got):
        await stream.aclose()

    closer = TcpServer()
    await closer.start(nursery, close_at_once)
    outcome = await probe(closer.port, send=b"PING", receive=(b"PONG",)).check()
    assert outcome.failure is Failure.NETWORK


async def test_without_reuse_each_check_connects_again(nursery):
    server = TcpServer()

    async def pong(stream, got):
        await read_until(stream, got, b"PING")
        await stream.send_all(b"PONG")
        await trio.sleep_forever()

    await server.start(nursery, pong)
    p = probe(server.port, reuse=False, send=b"PING", receive=(b"PONG",))
    assert (await p.check()).ok
    assert await p.idle_until(trio.current_time() + 0.05) is None
    assert (await p.check()).ok
    assert len(server.received) == 2


async def test_expected_bytes_arriving_while_idle_pass(nursery):
    server = TcpServer()
    sent = trio.Event()

    async def chatty(stream, got):
        await read_until(stream, got, b"PING")
        await stream.send_all(b"PONG")
        await trio.sleep(0.05)
        await stream.send_all(b"PONG")  # unsolicited: Envoy counts it as a pass
        sent.set()
        await trio.sleep_forever()

    await server.start(nursery, chatty)
    p = probe(server.port, send=b"PING", receive=(b"PONG",))
    assert (await p.check()).ok
    outcome = await p.idle_until(trio.current_time() + 5)
    assert outcome is not None and outcome.ok
    p.close()

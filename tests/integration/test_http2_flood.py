"""HTTP/2 flood protection on a downstream connection, on Envoy and meshcore with the same
bootstrap: hand-built frames over raw sockets (two consecutive empty DATA frames, a PRIORITY
flood, a WINDOW_UPDATE flood, a PING flood while the client does not read) close the
connection and count `http2.*_flood`; a normal client under the limits is unaffected."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.h2_client import H2Request, exchange
from tests.support.h2_frames import (
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    PING,
    POST_HEAD,
    PREFACE,
    SETTINGS,
    frame,
    priority,
    read_until,
    read_until_closed,
    send_all,
    window_update,
)
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import UpstreamServer


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(
    request: pytest.FixtureRequest,
    upstream_server: UpstreamServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Proxy, int]]:
    h1 = upstream_server.start("h1")
    port = free_port()
    rc = route_config([virtual_host("all", ["*"], [route({"prefix": "/"}, cluster="h1")])])
    listeners = [
        http_listener(
            "h2", port, rc, stat_prefix="h2", codec_type="HTTP2", http2_protocol_options={}
        )
    ]
    running = start_proxy(
        request.param,
        bootstrap(listeners, [static_cluster("h1", [("127.0.0.1", h1.port)])]),
        tmp_path_factory,
    )
    yield running, port
    running.stop()


def connect(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
    return sock


def flood_counter(running: Proxy, name: str) -> int:
    """`http2.<name>`: one global scope for every downstream HTTP/2 connection (as Envoy)."""
    return running.counter(f"http2.{name}")


def assert_closed_without_goaway(sock: socket.socket) -> None:
    frames = read_until_closed(sock)
    assert GOAWAY not in [kind for kind, _, _ in frames]


def test_two_consecutive_empty_data_frames(proxy: tuple[Proxy, int]) -> None:
    running, port = proxy
    before = flood_counter(running, "inbound_empty_frames_flood")
    with connect(port) as sock:
        send_all(
            sock, frame(HEADERS, END_HEADERS, 1, POST_HEAD) + frame(DATA, 0, 1) + frame(DATA, 0, 1)
        )
        assert_closed_without_goaway(sock)
    assert flood_counter(running, "inbound_empty_frames_flood") == before + 1
    assert running.counter("http.h2.downstream_cx_protocol_error") == 0


def test_one_empty_data_frame_is_under_the_limit(proxy: tuple[Proxy, int]) -> None:
    running, port = proxy
    before = flood_counter(running, "inbound_empty_frames_flood")
    with connect(port) as sock:
        send_all(
            sock,
            frame(HEADERS, END_HEADERS, 1, POST_HEAD)
            + frame(DATA, 0, 1)
            + frame(DATA, END_STREAM, 1, b"x"),
        )
        frames = read_until(sock, (HEADERS, 1))
    assert (HEADERS, 1) in [(kind, stream) for kind, stream, _ in frames]
    assert flood_counter(running, "inbound_empty_frames_flood") == before


def test_priority_flood(proxy: tuple[Proxy, int]) -> None:
    running, port = proxy
    before = flood_counter(running, "inbound_priority_frames_flood")
    with connect(port) as sock:
        # No stream opened: the limit is 100 * (1 + 0).
        send_all(sock, priority(3) * 101)
        assert_closed_without_goaway(sock)
    assert flood_counter(running, "inbound_priority_frames_flood") == before + 1


def test_priority_frames_at_the_limit_are_answered(proxy: tuple[Proxy, int]) -> None:
    running, port = proxy
    before = flood_counter(running, "inbound_priority_frames_flood")
    with connect(port) as sock:
        prio = priority(3)
        send_all(sock, prio * 100 + frame(PING, 0, 0, b"12345678"))
        frames = read_until(sock, (PING, 0))
    assert (PING, 0, b"12345678") in frames
    assert flood_counter(running, "inbound_priority_frames_flood") == before


def test_a_closed_stream_adds_no_priority_allowance(proxy: tuple[Proxy, int]) -> None:
    """Envoy 1.40 scales the allowance by the streams open now, not the ones ever opened."""
    running, port = proxy
    before = flood_counter(running, "inbound_priority_frames_flood")
    with connect(port) as sock:
        send_all(sock, frame(HEADERS, END_HEADERS, 1, POST_HEAD) + frame(DATA, END_STREAM, 1, b"x"))
        assert (DATA, 1) in [(kind, stream) for kind, stream, _ in read_until(sock, (DATA, 1))]
        time.sleep(0.3)  # the rest of the response (its END_STREAM): the stream closes
        send_all(sock, priority(3) * 101)
        assert_closed_without_goaway(sock)
    assert flood_counter(running, "inbound_priority_frames_flood") == before + 1


def test_an_open_stream_adds_to_the_priority_allowance(proxy: tuple[Proxy, int]) -> None:
    running, port = proxy
    before = flood_counter(running, "inbound_priority_frames_flood")
    with connect(port) as sock:
        # 100 * (1 + 1 open stream).
        prio = priority(3)
        send_all(
            sock,
            frame(HEADERS, END_HEADERS, 1, POST_HEAD) + prio * 200 + frame(PING, 0, 0, b"open!!!!"),
        )
        frames = read_until(sock, (PING, 0))
    assert (PING, 0, b"open!!!!") in frames
    assert flood_counter(running, "inbound_priority_frames_flood") == before


def test_window_update_flood(proxy: tuple[Proxy, int]) -> None:
    running, port = proxy
    before = flood_counter(running, "inbound_window_update_frames_flood")
    with connect(port) as sock:
        # No stream opened, no DATA sent: the limit is 5 + 2 * (0 + 10 * 0).
        send_all(sock, window_update(0) * 6)
        assert_closed_without_goaway(sock)
    assert flood_counter(running, "inbound_window_update_frames_flood") == before + 1


def test_window_updates_at_the_limit_are_answered(proxy: tuple[Proxy, int]) -> None:
    running, port = proxy
    before = flood_counter(running, "inbound_window_update_frames_flood")
    with connect(port) as sock:
        update = window_update(0)
        send_all(sock, update * 5 + frame(PING, 0, 0, b"abcdefgh"))
        frames = read_until(sock, (PING, 0))
    assert (PING, 0, b"abcdefgh") in frames
    assert flood_counter(running, "inbound_window_update_frames_flood") == before


def test_ping_flood_while_not_reading(proxy: tuple[Proxy, int]) -> None:
    running, port = proxy
    before = flood_counter(running, "outbound_control_flood")
    with connect(port, rcvbuf=4096) as sock:
        ping = frame(PING, 0, 0, b"abcdefgh")
        sock.settimeout(0.5)
        unsent = b""  # frames are never cut: what a send left goes first next time
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if flood_counter(running, "outbound_control_flood") != before:
                break
            unsent = unsent or ping * 100
            try:
                unsent = unsent[sock.send(unsent) :]
            except TimeoutError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                time.sleep(0.1)
        assert flood_counter(running, "outbound_control_flood") == before + 1
        sock.settimeout(10)
        read_until_closed(sock)  # the proxy closed it
    assert flood_counter(running, "outbound_flood") == 0


def test_a_normal_client_is_unaffected(proxy: tuple[Proxy, int]) -> None:
    running, port = proxy
    names = [
        "outbound_flood",
        "outbound_control_flood",
        "inbound_empty_frames_flood",
        "inbound_priority_frames_flood",
        "inbound_window_update_frames_flood",
    ]
    before = {name: flood_counter(running, name) for name in names}
    body = bytes(range(256)) * 400
    echo = [("x-mc-behavior", "echo")]
    requests = [H2Request(f"/n/{i}") for i in range(20)]
    requests += [H2Request("/post", method="POST", headers=echo, body=body) for _ in range(5)]
    responses, _ = exchange(port, requests)
    assert [(r.status, r.reset) for r in responses] == [(200, None)] * 25
    assert all(r.body == body for r in responses[20:])
    assert {name: flood_counter(running, name) for name in names} == before

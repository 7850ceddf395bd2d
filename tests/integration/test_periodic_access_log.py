"""The connection manager's `access_log_options.access_log_flush_interval` on real Envoy and
meshcore with one bootstrap: while a request is in progress a `DownstreamPeriodic` line is
written every interval (here 1 s) with the request as it stands — no response yet (status 0),
the response head sent (status, headers, body bytes so far), a request body half received,
a CONNECT or WebSocket tunnel with its bytes so far, over HTTP/1.1 and HTTP/2 — and the
`DownstreamEnd` line at the end. Each case's lines are counted per type (the request lasts
~2.5 s: two periodic lines, timing not asserted exactly) and checked field by field against
what Envoy 1.40 writes; durations only by shape."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import h2_client
from tests.support.access_logs import file_log, log_lines
from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.tcp import TcpUpstream
from tests.support.threaded_server import ThreadedServer, recv_head

# How long each slow case lasts, and the interval (two periodic lines fit, with margin).
SLOW_S = 2.5
FIELDS = {
    "type": "%ACCESS_LOG_TYPE%",
    "code": "%RESPONSE_CODE%",
    "flags": "%RESPONSE_FLAGS%",
    "details": "%RESPONSE_CODE_DETAILS%",
    "received": "%BYTES_RECEIVED%",
    "sent": "%BYTES_SENT%",
    "duration": "%DURATION%",
    "request_duration": "%REQUEST_DURATION%",
    "response_duration": "%RESPONSE_DURATION%",
    "host": "%UPSTREAM_HOST%",
    "cluster": "%UPSTREAM_CLUSTER%",
    "protocol": "%PROTOCOL%",
    "path": "%REQ(:PATH)%",
    "content_type": "%RESP(CONTENT-TYPE)%",
    "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
}
ADDRESS = re.compile(r"^127\.0\.0\.1:\d+$")
CASES = ("head", "body", "post", "connect", "ws", "h2", "off")


class SlowUpstream(ThreadedServer):
    """An HTTP/1.1 upstream on raw sockets (one thread per connection), by path: `/head`
    answers after `SLOW_S`; `/body` sends its head and half of its 1000-byte body at once and
    the rest after `SLOW_S`; `/post` echoes the request body; `/ws` switches protocols (101)
    and echoes bytes."""

    def serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            buf = b""
            while True:
                got = recv_head(conn, buf)
                if got is None:
                    return
                head, buf = got
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                size = int(length.group(1)) if length else 0
                while len(buf) < size:
                    buf += conn.recv(65536)
                body, buf = buf[:size], buf[size:]
                if not self._answer(conn, head.split(b" ", 2)[1], body):
                    return

    @staticmethod
    def _answer(conn: socket.socket, path: bytes, body: bytes) -> bool:
        """Answers one request; False: the connection became a tunnel and is done."""
        if path == b"/ws":
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                b"connection: upgrade\r\n\r\n"
            )
            while data := conn.recv(65536):
                conn.sendall(data)
            return False
        ok = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n"
        if path == b"/body":
            conn.sendall(ok % 1000 + b"x" * 500)
            time.sleep(SLOW_S)
            conn.sendall(b"x" * 500)
        elif path == b"/post":
            conn.sendall(ok % len(body) + body)
        else:
            time.sleep(SLOW_S)
            conn.sendall(ok % 4 + b"slow")
        return True


@dataclass
class Setup:
    proxy: Proxy
    ports: dict[str, int]
    logs: Path


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[SlowUpstream, TcpUpstream]]:
    slow, echo = SlowUpstream(), TcpUpstream()
    yield slow, echo
    slow.close()
    echo.close()


def _listener(name: str, port: int, logs: Path) -> dict[str, Any]:
    connect = [{"upgrade_type": "CONNECT", "connect_config": {}}]
    routes = [
        route({"connect_matcher": {}}, cluster="echo", upgrade_configs=connect),
        route({"prefix": "/"}, cluster="slow", timeout="10s"),
    ]
    extra: dict[str, Any] = {
        "access_log": [file_log(logs / f"{name}.log", {"json_format": FIELDS})],
        "upgrade_configs": [{"upgrade_type": "CONNECT"}, {"upgrade_type": "websocket"}],
    }
    if name != "off":
        extra["access_log_options"] = {"access_log_flush_interval": "1s"}
    rc = route_config([virtual_host("all", ["*"], routes)])
    return http_listener(name, port, rc, stat_prefix=name, **extra)


@pytest.fixture(scope="module", params=proxy_kinds())
def setup(request, upstreams, tmp_path_factory) -> Iterator[Setup]:
    slow, echo = upstreams
    logs = tmp_path_factory.mktemp(f"periodic-logs-{request.param}")
    ports = _distinct_ports(CASES)
    config = bootstrap(
        [_listener(name, ports[name], logs) for name in CASES],
        [
            static_cluster("slow", [("127.0.0.1", slow.port)]),
            static_cluster("echo", [("127.0.0.1", echo.port)]),
        ],
    )
    flush = ("--file-flush-interval-msec", "100") if request.param == "envoy" else ()
    running = start_proxy(request.param, config, tmp_path_factory, extra_args=flush)
    yield Setup(running, ports, logs)
    running.stop()


def _distinct_ports(names: tuple[str, ...]) -> dict[str, int]:
    """A free port per name, all different (held until all are picked)."""
    held = [socket.create_server(("127.0.0.1", 0)) for _ in names]
    ports = {name: int(s.getsockname()[1]) for name, s in zip(names, held, strict=True)}
    for s in held:
        s.close()
    return ports


def _lines(setup: Setup, name: str) -> list[dict[str, Any]]:
    """The case's lines once its `DownstreamEnd` line is written, durations checked (they
    grow, the end's is the longest) and taken out, the upstream host checked by shape."""
    path = setup.logs / f"{name}.log"
    deadline = time.monotonic() + 8
    while True:
        lines = [json.loads(line) for line in log_lines(path, 1)]
        if lines[-1]["type"] == "DownstreamEnd" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    durations = [line.pop("duration") for line in lines]
    assert durations == sorted(durations) and all(isinstance(d, int) for d in durations), lines
    for line in lines:
        host = line.pop("host")
        assert host is None or ADDRESS.match(host), line
    return lines


def _split(lines: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The periodic lines (two: ~2.5 s at 1 s; three if the machine is slow) and the end."""
    *periodic, end = lines
    assert end.pop("type") == "DownstreamEnd", lines
    assert 2 <= len(periodic) <= 3, lines
    assert {p.pop("type") for p in periodic} == {"DownstreamPeriodic"}, lines
    return periodic, end


def _request(port: int, data: bytes, later: bytes = b"") -> bytes:
    """Sends `data`, then `later` after `SLOW_S`; returns the response until it is complete."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        if later:
            time.sleep(SLOW_S)
            s.sendall(later)
        out = b""
        while not _complete(out):
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def _complete(response: bytes) -> bool:
    head, blank, body = response.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    return bool(blank and length and len(body) >= int(length.group(1)))


def _tunnel(port: int, head: bytes) -> bytes:
    """Opens a tunnel with `head`, sends `ping`, waits `SLOW_S`, sends `pong!`, closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        status = s.recv(1000)
        s.sendall(b"ping")
        assert s.recv(10) == b"ping"
        time.sleep(SLOW_S)
        s.sendall(b"pong!")
        assert s.recv(10) == b"pong!"
        return status


WAITING = {
    "code": 0,
    "flags": "-",
    "details": None,
    "received": 0,
    "sent": 0,
    "request_duration": 0,
    "response_duration": None,
    "cluster": "slow",
    "protocol": "HTTP/1.1",
    "content_type": None,
    "attempts": 1,
}
# Once the response started (its `%RESPONSE_DURATION%` is checked by shape).
STARTED = {k: v for k, v in WAITING.items() if k != "response_duration"}


def test_lines_while_waiting_for_the_response(setup: Setup) -> None:
    assert _request(setup.ports["head"], b"GET /head HTTP/1.1\r\nhost: x\r\n\r\n").endswith(b"slow")
    periodic, end = _split(_lines(setup, "head"))
    assert periodic == [WAITING | {"path": "/head"}] * len(periodic)
    assert end["code"] == 200 and end["sent"] == 4 and end["details"] == "via_upstream"
    assert isinstance(end["response_duration"], int)


def test_lines_while_the_response_body_streams(setup: Setup) -> None:
    out = _request(setup.ports["body"], b"GET /body HTTP/1.1\r\nhost: x\r\n\r\n")
    assert out.endswith(b"x" * 1000)
    periodic, end = _split(_lines(setup, "body"))
    for line in periodic:
        assert isinstance(line.pop("response_duration"), int)
    assert periodic == [
        STARTED
        | {
            "path": "/body",
            "code": 200,
            "details": "via_upstream",
            "sent": 500,
            "content_type": "text/plain",
        }
    ] * len(periodic)
    assert end["sent"] == 1000 and end["code"] == 200


def test_lines_while_the_request_body_arrives(setup: Setup) -> None:
    head = b"POST /post HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n"
    assert _request(setup.ports["post"], head + b"01234", b"56789").endswith(b"0123456789")
    periodic, end = _split(_lines(setup, "post"))
    receiving = WAITING | {"path": "/post", "received": 5, "request_duration": None}
    assert periodic == [receiving] * len(periodic)
    assert (end["received"], end["sent"], end["code"]) == (10, 10, 200)
    assert isinstance(end["request_duration"], int)


def _tunnel_lines(code: int, path: str | None) -> dict[str, Any]:
    return STARTED | {
        "code": code,
        "details": "via_upstream",
        "received": 4,
        "sent": 4,
        "request_duration": None,
        "path": path,
    }


def test_lines_of_a_connect_tunnel(setup: Setup) -> None:
    head = b"CONNECT x.example:443 HTTP/1.1\r\nhost: x.example:443\r\n\r\n"
    assert _tunnel(setup.ports["connect"], head).startswith(b"HTTP/1.1 200")
    periodic, end = _split(_lines(setup, "connect"))
    for line in periodic:
        assert isinstance(line.pop("response_duration"), int)
    expected = _tunnel_lines(200, None) | {"cluster": "echo"}
    assert periodic == [expected] * len(periodic)
    assert (end["received"], end["sent"], end["flags"], end["attempts"]) == (9, 9, "DC", 1)
    assert end["request_duration"] is None and isinstance(end["response_duration"], int)


def test_lines_of_a_websocket(setup: Setup) -> None:
    head = b"GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"
    assert _tunnel(setup.ports["ws"], head).startswith(b"HTTP/1.1 101")
    periodic, end = _split(_lines(setup, "ws"))
    for line in periodic:
        assert isinstance(line.pop("response_duration"), int)
    assert periodic == [_tunnel_lines(101, "/ws")] * len(periodic)
    assert (end["received"], end["sent"], end["code"]) == (9, 9, 101)
    assert end["request_duration"] is None and isinstance(end["response_duration"], int)


def test_lines_of_an_http2_request(setup: Setup) -> None:
    (response,), _ = h2_client.exchange(setup.ports["h2"], [h2_client.H2Request("/head")])
    assert (response.status, response.body) == (200, b"slow")
    periodic, end = _split(_lines(setup, "h2"))
    assert periodic == [WAITING | {"path": "/head", "protocol": "HTTP/2"}] * len(periodic)
    assert end["code"] == 200 and end["protocol"] == "HTTP/2"


def test_no_periodic_lines_without_the_option(setup: Setup) -> None:
    assert _request(setup.ports["off"], b"GET /head HTTP/1.1\r\nhost: x\r\n\r\n").endswith(b"slow")
    (end,) = _lines(setup, "off")
    assert end["type"] == "DownstreamEnd" and end["code"] == 200

"""HTTP/2 flood protection on upstream connections, on Envoy and meshcore with the same
bootstrap: a misbehaving raw-socket HTTP/2 upstream (empty frames, PRIORITY and WINDOW_UPDATE
floods, a PING flood while it does not read) gets its connection closed without a GOAWAY; the
request is answered 502 `UPE` (or, once the response started, the downstream connection is
reset) and `cluster.<name>.http2.*_flood` and `upstream_cx_protocol_error` count it; an upstream
just under each limit, and a normal one, are unaffected."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.access_logs import file_log
from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.h2_flood_upstream import FloodUpstream, Script, response
from tests.support.h2_frames import (
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    STATUS_200,
    frame,
    priority,
    window_update,
)
from tests.support.h2_upstream import H2Upstream
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy

UPSTREAM_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
PROTOCOL_ERROR = (
    b"upstream connect error or disconnect/reset before headers. reset reason: protocol error"
)
LOG_FORMAT = {
    "text_format_source": {"inline_string": "%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS%\n"}
}


def _second_stream_priority_flood(stream: int) -> bytes:
    """The first request is answered normally; the second (stream 3, the first one closed)
    gets 201 PRIORITY frames: over the allowance of its one open stream, 100 x (1 + 1)."""
    return response(stream) if stream == 1 else priority(stream) * 201 + response(stream)


# Cluster name -> what its upstream sends for each request.
SCRIPTS: dict[str, Script] = {
    # Two consecutive empty frames (the HEADERS block continued by empty CONTINUATIONs)
    # before the response head is complete.
    "empty_head": lambda s: (
        frame(HEADERS, 0, s, STATUS_200) + frame(CONTINUATION, 0, s) + frame(CONTINUATION, 0, s)
    ),
    # The response head, then two empty DATA frames: the response has started.
    "empty_body": lambda s: (
        frame(HEADERS, END_HEADERS, s, STATUS_200) + frame(DATA, 0, s) + frame(DATA, 0, s)
    ),
    "one_empty": lambda s: (
        frame(HEADERS, END_HEADERS, s, STATUS_200)
        + frame(DATA, 0, s)
        + frame(DATA, END_STREAM, s, b"x")
    ),
    # The client's open stream counts: 100 x (1 + 1).
    "priority_flood": lambda s: priority(s) * 201 + response(s),
    "priority_limit": lambda s: priority(s) * 200 + response(s),
    "priority_closed": _second_stream_priority_flood,
    # No DATA sent, one open stream: 5 + 2 x (1 + 10 x 0).
    "window_update_flood": lambda s: window_update(0) * 8 + response(s),
    "window_update_limit": lambda s: window_update(0) * 7 + response(s),
}


def _http2_cluster(name: str, port: int, http2: dict[str, Any], deprecated: bool) -> Any:
    if deprecated:
        return static_cluster(name, [("127.0.0.1", port)], http2_protocol_options=http2)
    options = {
        UPSTREAM_OPTIONS: {
            "@type": f"type.googleapis.com/{UPSTREAM_OPTIONS}",
            "explicit_http_config": {"http2_protocol_options": http2},
        }
    }
    return static_cluster(name, [("127.0.0.1", port)], typed_extension_protocol_options=options)


class Setup:
    def __init__(self, running: Proxy, port: int, log: Path, upstreams: dict[str, Any]) -> None:
        self.running = running
        self.port = port
        self.log = log
        self.upstreams = upstreams

    def counter(self, cluster: str, name: str) -> int:
        return self.running.counter(f"cluster.{cluster}.{name}")

    def flags(self, path: str) -> str:
        """The access log's `code flags` for the one request to `path` (Envoy flushes its
        file logs every 10 s)."""
        deadline = time.monotonic() + 15
        while True:
            lines = self.log.read_text().splitlines() if self.log.exists() else []
            mine = [line for line in lines if line.split(" ")[0] == path]
            if mine or time.monotonic() > deadline:
                assert len(mine) == 1, lines
                return mine[0].split(" ", 1)[1]
            time.sleep(0.1)


@pytest.fixture(scope="module", params=proxy_kinds())
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    upstreams: dict[str, Any] = {name: FloodUpstream(script=s) for name, s in SCRIPTS.items()}
    upstreams["ping_flood"] = FloodUpstream(ping_flood=True)
    upstreams["normal"] = H2Upstream()
    clusters = [
        # The deprecated cluster field, with a limit set: the second empty frame floods.
        _http2_cluster(
            name,
            u.port,
            {"max_consecutive_inbound_frames_with_empty_payload": 1}
            if name.startswith("empty")
            else {},
            deprecated=name.startswith("window_update"),
        )
        for name, u in upstreams.items()
        if name != "ping_flood"
    ]
    clusters.append(
        _http2_cluster(
            "ping_flood",
            upstreams["ping_flood"].port,
            {"max_outbound_control_frames": 100},
            deprecated=False,
        )
    )
    port = free_port()
    log = tmp_path_factory.mktemp(f"upflood-{request.param}") / "access.log"
    routes = [route({"path": f"/{name}"}, cluster=name) for name in upstreams]
    rc = route_config([virtual_host("all", ["*"], routes)])
    listener = http_listener("h1", port, rc, access_log=[file_log(log, LOG_FORMAT)])
    running = start_proxy(request.param, bootstrap([listener], clusters), tmp_path_factory)
    yield Setup(running, port, log, upstreams)
    running.stop()
    for u in upstreams.values():
        u.close()


def get(port: int, path: str, method: str = "GET", body: bytes = b"") -> tuple[int, bytes, bool]:
    """Sends one request with `connection: close`; returns the status, the bytes after the
    head and whether the response ended cleanly (complete, then EOF)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = f"{method} {path} HTTP/1.1\r\nhost: a\r\nconnection: close\r\n"
        if body:
            head += f"content-length: {len(body)}\r\n"
        sock.sendall(head.encode() + b"\r\n" + body)
        data = b""
        clean = True
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            clean = False
    head_bytes, _, rest = data.partition(b"\r\n\r\n")
    status = int(head_bytes.split(b" ")[1])
    if b"transfer-encoding: chunked" in head_bytes.lower():
        clean = clean and rest.endswith(b"0\r\n\r\n")
    return status, rest, clean


def assert_flood(setup: Setup, cluster: str, counter: str, before: tuple[int, int, int]) -> None:
    """One flood counted, one connection closed for it (without a GOAWAY), the request's
    stream reset."""
    assert setup.counter(cluster, f"http2.{counter}") == before[0] + 1
    assert setup.counter(cluster, "upstream_cx_protocol_error") == before[1] + 1
    assert setup.counter(cluster, "upstream_rq_tx_reset") == before[2] + 1
    ended = setup.upstreams[cluster].wait_closed()
    assert ended and all(c.closed_by_proxy and not c.goaway for c in ended), ended


def counts(setup: Setup, cluster: str, counter: str) -> tuple[int, int, int]:
    return (
        setup.counter(cluster, f"http2.{counter}"),
        setup.counter(cluster, "upstream_cx_protocol_error"),
        setup.counter(cluster, "upstream_rq_tx_reset"),
    )


@pytest.mark.parametrize(
    ("path", "counter", "flags"),
    [
        ("empty_head", "inbound_empty_frames_flood", "502 UPE"),
        ("priority_flood", "inbound_priority_frames_flood", "502 UPE"),
        ("window_update_flood", "inbound_window_update_frames_flood", None),
    ],
)
def test_flood_before_the_response_head(
    setup: Setup, path: str, counter: str, flags: str | None
) -> None:
    before = counts(setup, path, counter)
    status, body, _ = get(setup.port, f"/{path}")
    assert (status, body) == (502, PROTOCOL_ERROR)
    if flags is not None:
        assert setup.flags(f"/{path}") == flags
    assert_flood(setup, path, counter, before)


def test_empty_data_frames_after_the_response_head(setup: Setup) -> None:
    before = counts(setup, "empty_body", "inbound_empty_frames_flood")
    status, _, clean = get(setup.port, "/empty_body")
    # The head went downstream; the body never ends: the downstream connection is cut.
    assert status == 200
    assert not clean
    assert setup.flags("/empty_body") == "200 UPE"
    assert_flood(setup, "empty_body", "inbound_empty_frames_flood", before)


def test_one_empty_data_frame_is_under_the_limit(setup: Setup) -> None:
    before = counts(setup, "one_empty", "inbound_empty_frames_flood")
    status, body, clean = get(setup.port, "/one_empty")
    assert (status, clean) == (200, True)
    assert body == b"1\r\nx\r\n0\r\n\r\n"
    assert counts(setup, "one_empty", "inbound_empty_frames_flood") == before


def test_priority_frames_at_the_limit(setup: Setup) -> None:
    """The stream the proxy opened adds to the allowance: 200 frames pass."""
    before = counts(setup, "priority_limit", "inbound_priority_frames_flood")
    status, body, clean = get(setup.port, "/priority_limit")
    assert (status, clean) == (200, True)
    assert body.endswith(b"ok\r\n0\r\n\r\n")
    assert counts(setup, "priority_limit", "inbound_priority_frames_flood") == before


def test_a_finished_stream_adds_no_priority_allowance(setup: Setup) -> None:
    before = counts(setup, "priority_closed", "inbound_priority_frames_flood")
    assert get(setup.port, "/priority_closed")[0] == 200
    # The same connection's second stream: only it is open.
    status, body, _ = get(setup.port, "/priority_closed")
    assert (status, body) == (502, PROTOCOL_ERROR)
    assert len(setup.upstreams["priority_closed"].connections) == 1
    assert_flood(setup, "priority_closed", "inbound_priority_frames_flood", before)


def test_window_updates_at_the_limit(setup: Setup) -> None:
    before = counts(setup, "window_update_limit", "inbound_window_update_frames_flood")
    status, _, clean = get(setup.port, "/window_update_limit")
    assert (status, clean) == (200, True)
    assert counts(setup, "window_update_limit", "inbound_window_update_frames_flood") == before


def test_ping_flood_while_the_upstream_does_not_read(setup: Setup) -> None:
    """The PING acks queue up behind a socket nobody reads: past the cluster's
    `max_outbound_control_frames` (100) the connection closes."""
    before = counts(setup, "ping_flood", "outbound_control_flood")
    status, body, _ = get(setup.port, "/ping_flood")
    assert (status, body) == (502, PROTOCOL_ERROR)
    assert setup.flags("/ping_flood") == "502 UPE"
    assert_flood(setup, "ping_flood", "outbound_control_flood", before)
    assert setup.counter("ping_flood", "http2.outbound_flood") == 0
    # The queue went with the connection.
    stats = setup.running.stats()
    assert stats["cluster.ping_flood.http2.outbound_control_frames_active"] == "0"
    assert stats["cluster.ping_flood.http2.outbound_frames_active"] == "0"


def test_a_normal_upstream_is_unaffected(setup: Setup) -> None:
    names = [
        "outbound_flood",
        "outbound_control_flood",
        "inbound_empty_frames_flood",
        "inbound_priority_frames_flood",
        "inbound_window_update_frames_flood",
    ]
    before = {name: setup.counter("normal", f"http2.{name}") for name in names}
    body = bytes(range(256)) * 1200
    for i in range(10):
        status, got, clean = get(setup.port, "/normal", "POST" if i % 2 else "GET", body * (i % 2))
        assert (status, clean) == (200, True)
        assert f"h2 /normal {len(body) * (i % 2)}".encode() in got
    assert {name: setup.counter("normal", f"http2.{name}") for name in names} == before
    assert setup.counter("normal", "upstream_cx_protocol_error") == 0

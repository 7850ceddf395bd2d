"""A misbehaving cleartext HTTP/2 upstream on raw sockets (threads): it answers each request
stream with bytes a test scripts (floods of PRIORITY, WINDOW_UPDATE or empty frames before or
around a response), or floods the proxy with PINGs while it stops reading. It records how each
connection ended: whether the proxy sent GOAWAY and whether it closed the connection."""

from __future__ import annotations

import functools
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support.h2_frames import (
    ACK,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    PING,
    PREFACE,
    SETTINGS,
    STATUS_200,
    frame,
    split_frames,
)
from tests.support.threaded_server import ThreadedServer

# What the upstream sends for a request on stream `s` (the frames go out in one write).
Script = Callable[[int], bytes]


def response(stream: int, body: bytes = b"ok") -> bytes:
    """A complete `200` response with `body`."""
    return frame(HEADERS, END_HEADERS, stream, STATUS_200) + frame(DATA, END_STREAM, stream, body)


@dataclass
class Ended:
    """How one connection ended, from the upstream's side."""

    goaway: bool = False
    closed_by_proxy: bool = False


@dataclass
class FloodUpstream(ThreadedServer):
    """`script`: answers each request; `ping_flood`: after the first request, sends PINGs
    without reading until the proxy closes the connection (or `flood_for` seconds pass)."""

    script: Script = response
    ping_flood: bool = False
    flood_for: float = 15.0
    port: int = 0
    connections: list[Ended] = field(default_factory=list)
    requests: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        # A small receive buffer: the proxy's PING acks back up quickly.
        super().__init__(backlog=16, rcvbuf=4096 if self.ping_flood else None)

    def wait_closed(self, timeout: float = 10.0) -> list[Ended]:
        """The connections, once the proxy has closed every one (or `timeout` passed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.connections and all(c.closed_by_proxy for c in self.connections):
                    break
            time.sleep(0.02)
        with self._lock:
            return list(self.connections)

    def connection_job(self, conn: socket.socket) -> Callable[[], None]:
        ended = Ended()
        with self._lock:
            self.connections.append(ended)
        return functools.partial(self._serve, conn, ended)

    def _serve(self, sock: socket.socket, ended: Ended) -> None:
        with sock:
            sock.settimeout(30)
            try:
                self._frames(sock, ended)
            except (ConnectionResetError, BrokenPipeError, TimeoutError):
                ended.closed_by_proxy = True

    def _frames(self, sock: socket.socket, ended: Ended) -> None:
        data = b""
        while len(data) < len(PREFACE):
            chunk = sock.recv(65536)
            if not chunk:
                ended.closed_by_proxy = True
                return
            data += chunk
        data = data[len(PREFACE) :]
        sock.sendall(frame(SETTINGS, 0, 0))
        seen = 0
        acked = False
        while True:
            frames, data = split_frames(data)
            for kind, stream, _payload in frames:
                if kind == GOAWAY:
                    ended.goaway = True
                if kind == SETTINGS and not acked:
                    # The proxy's first SETTINGS frame (never an ack).
                    acked = True
                    sock.sendall(frame(SETTINGS, ACK, 0))
                if kind == HEADERS and stream > seen:
                    seen = stream
                    with self._lock:
                        self.requests += 1
                    if self.ping_flood:
                        self._flood(sock, ended)
                        return
                    sock.sendall(self.script(stream))
            chunk = sock.recv(65536)
            if not chunk:
                ended.closed_by_proxy = True
                return
            data += chunk

    def _flood(self, sock: socket.socket, ended: Ended) -> None:
        """PINGs, never reading, until the proxy closes the connection."""
        ping = frame(PING, 0, 0, b"abcdefgh") * 100
        sock.settimeout(0.5)
        unsent = b""  # frames are never cut: what a send left goes first next time
        deadline = time.monotonic() + self.flood_for
        while time.monotonic() < deadline:
            unsent = unsent or ping
            try:
                unsent = unsent[sock.send(unsent) :]
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                ended.closed_by_proxy = True
                return
            if not unsent:
                # Paced, so that the proxy reads a few at a time and answers each batch.
                time.sleep(0.002)

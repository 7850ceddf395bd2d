"""A small cleartext HTTP/2 (h2c, prior knowledge) upstream on the `h2` package, in threads:
each request is answered `200` with body `h2 <path> <request body length>`, headers
`x-conn: <connection number>` and, when the request carried `te: trailers`, the trailer
`x-trailer: done`. It records the number of connections and the most streams open at once."""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Callable

import h2.config
import h2.connection
import h2.events
import h11

from tests.support.threaded_server import ThreadedServer

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class H2Upstream(ThreadedServer):
    """`also_http1`: a connection that does not start with the HTTP/2 preface is answered as
    HTTP/1.1 (`h1 <path> <body length>`), one request per connection."""

    def __init__(self, also_http1: bool = False) -> None:
        self.also_http1 = also_http1
        self.connections = 0
        self.max_open_streams = 0
        self._lock = threading.Lock()
        super().__init__()

    def connection_job(self, conn: socket.socket) -> Callable[[], None]:
        with self._lock:
            self.connections += 1
            number = self.connections
        return functools.partial(self._serve, conn, number)

    def _serve(self, sock: socket.socket, number: int) -> None:
        if self.also_http1:
            # Every HTTP/1.1 request is longer than the preface: wait for that many bytes.
            first = sock.recv(len(PREFACE), socket.MSG_PEEK | socket.MSG_WAITALL)
            if first != PREFACE:
                self._serve_http1(sock)
                return
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        streams: dict[int, tuple[dict[str, str], int]] = {}
        with sock:
            while True:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        headers = {k.decode(): v.decode() for k, v in event.headers}
                        streams[event.stream_id] = (headers, 0)
                        with self._lock:
                            self.max_open_streams = max(self.max_open_streams, len(streams))
                    elif isinstance(event, h2.events.DataReceived):
                        headers, size = streams[event.stream_id]
                        streams[event.stream_id] = (headers, size + len(event.data))
                        conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(event, h2.events.StreamEnded):
                        headers, size = streams.pop(event.stream_id)
                        self._respond(conn, event.stream_id, headers, size, number)
                sock.sendall(conn.data_to_send())

    @staticmethod
    def _serve_http1(sock: socket.socket) -> None:
        conn = h11.Connection(h11.SERVER)
        target, size = b"", 0
        with sock:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = sock.recv(65536)
                    if not data:
                        return
                    conn.receive_data(data)
                elif isinstance(event, h11.Request):
                    target = event.target
                elif isinstance(event, h11.Data):
                    size += len(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    body = b"h1 %s %d" % (target, size)
                    headers = [("content-length", str(len(body))), ("connection", "close")]
                    out = conn.send(h11.Response(status_code=200, headers=headers)) or b""
                    out += conn.send(h11.Data(data=body)) or b""
                    out += conn.send(h11.EndOfMessage()) or b""
                    sock.sendall(out)
                    return

    @staticmethod
    def _respond(
        conn: h2.connection.H2Connection,
        stream_id: int,
        headers: dict[str, str],
        size: int,
        number: int,
    ) -> None:
        body = f"h2 {headers[':path']} {size}".encode()
        trailers = headers.get("te") == "trailers"
        conn.send_headers(
            stream_id,
            [(":status", "200"), ("x-conn", str(number)), ("content-type", "text/plain")],
        )
        conn.send_data(stream_id, body, end_stream=not trailers)
        if trailers:
            conn.send_headers(stream_id, [("x-trailer", "done")], end_stream=True)

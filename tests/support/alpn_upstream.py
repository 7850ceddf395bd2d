"""A TLS upstream on Python's `ssl` (threads) that offers a chosen ALPN list and serves each
connection in the protocol ALPN chose: HTTP/2 (the `h2` package) for `h2`, else HTTP/1.1
(h11, keep-alive). Every request is answered `200` with body `<protocol> <path> <body
length>` and the header `x-proto: <protocol>` (`h2`, or `http/1.1` also when ALPN chose
nothing). It records the protocol of every connection, in order."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h11

from tests.support.threaded_server import ThreadedServer


class AlpnUpstream(ThreadedServer):
    def __init__(self, cert: Path, key: Path, alpn: tuple[str, ...]) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        if alpn:
            self.context.set_alpn_protocols(list(alpn))
        self.protocols: list[str] = []
        """The protocol each connection negotiated (`none` when ALPN chose nothing)."""
        self._lock = threading.Lock()
        super().__init__()

    def serve(self, raw: socket.socket) -> None:
        try:
            conn = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        chosen = conn.selected_alpn_protocol()
        with self._lock:
            self.protocols.append(chosen or "none")
        with conn:
            try:
                if chosen == "h2":
                    _serve_h2(conn)
                else:
                    _serve_http1(conn)
            except (ssl.SSLError, OSError, h11.ProtocolError):
                return


def _body(protocol: str, path: bytes, size: int) -> bytes:
    return b"%s %s %d" % (protocol.encode(), path, size)


def _serve_http1(sock: ssl.SSLSocket) -> None:
    conn = h11.Connection(h11.SERVER)
    target, size = b"", 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = sock.recv(65536)
            if not data:
                return
            conn.receive_data(data)
        elif isinstance(event, h11.Request):
            target, size = event.target, 0
        elif isinstance(event, h11.Data):
            size += len(event.data)
        elif isinstance(event, h11.EndOfMessage):
            body = _body("http/1.1", target, size)
            headers = [("content-length", str(len(body))), ("x-proto", "http/1.1")]
            out = conn.send(h11.Response(status_code=200, headers=headers)) or b""
            out += conn.send(h11.Data(data=body)) or b""
            out += conn.send(h11.EndOfMessage()) or b""
            sock.sendall(out)
            conn.start_next_cycle()
        elif isinstance(event, h11.ConnectionClosed):
            return


def _serve_h2(sock: ssl.SSLSocket) -> None:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    streams: dict[int, tuple[bytes, int]] = {}
    while True:
        data = sock.recv(65536)
        if not data:
            return
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                path = dict(event.headers).get(b":path", b"")
                streams[event.stream_id] = (path, 0)
            elif isinstance(event, h2.events.DataReceived):
                path, size = streams[event.stream_id]
                streams[event.stream_id] = (path, size + len(event.data))
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                path, size = streams.pop(event.stream_id)
                body = _body("h2", path, size)
                conn.send_headers(
                    event.stream_id,
                    [(":status", "200"), ("x-proto", "h2"), ("content-length", str(len(body)))],
                )
                conn.send_data(event.stream_id, body, end_stream=True)
        sock.sendall(conn.data_to_send())

"""A blocking cleartext HTTP/2 client (prior knowledge) on the `h2` package, for tests that
need several streams on one connection, request trailers or response trailers."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events


@dataclass
class H2Response:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    trailers: dict[str, str] = field(default_factory=dict)
    reset: int | None = None


@dataclass
class H2Request:
    path: str
    method: str = "GET"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    trailers: list[tuple[str, str]] = field(default_factory=list)


def exchange(
    port: int, requests: list[H2Request], authority: str = "example.com", timeout: float = 10
) -> tuple[list[H2Response], list[h2.events.Event]]:
    """Sends every request at once on one connection, then reads until all are answered (or
    reset); returns the responses in request order and the connection-level events seen
    (e.g. `ConnectionTerminated`)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.increment_flow_control_window(2**30)
    ids = []
    pending: dict[int, tuple[bytes, list[tuple[str, str]]]] = {}
    for req in requests:
        sid = conn.get_next_available_stream_id()
        ids.append(sid)
        headers = [
            (":method", req.method),
            (":path", req.path),
            (":scheme", "http"),
            (":authority", authority),
            *req.headers,
        ]
        no_body = not req.body and not req.trailers
        conn.send_headers(sid, headers, end_stream=no_body)
        if not no_body:
            pending[sid] = (req.body, req.trailers)
    _send_pending(conn, pending)
    sock.sendall(conn.data_to_send())
    responses = {sid: H2Response() for sid in ids}
    open_streams = set(ids)
    others: list[h2.events.Event] = []
    with sock:
        while open_streams:
            data = sock.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                event_sid: int | None = getattr(event, "stream_id", None)
                resp = responses.get(event_sid) if event_sid else None
                if isinstance(event, h2.events.ResponseReceived) and resp:
                    hs = {k.decode(): v.decode() for k, v in event.headers}
                    resp.status = int(hs.pop(":status"))
                    resp.headers = hs
                elif isinstance(event, h2.events.DataReceived) and resp:
                    resp.body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.TrailersReceived) and resp:
                    resp.trailers = {k.decode(): v.decode() for k, v in event.headers}
                elif isinstance(event, h2.events.StreamEnded):
                    open_streams.discard(event.stream_id)
                elif isinstance(event, h2.events.StreamReset) and resp:
                    resp.reset = event.error_code
                    open_streams.discard(event.stream_id)
                elif event_sid is None:
                    others.append(event)
            _send_pending(conn, pending)
            sock.sendall(conn.data_to_send())
    return [responses[sid] for sid in ids], others


def _send_pending(
    conn: h2.connection.H2Connection, pending: dict[int, tuple[bytes, list[tuple[str, str]]]]
) -> None:
    """Sends request bodies as far as the flow-control windows allow, then their trailers."""
    for sid in list(pending):
        body, trailers = pending[sid]
        if conn.streams.get(sid) is None or conn.streams[sid].closed:
            del pending[sid]  # answered (and closed) before its body was sent
            continue
        while body:
            room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
            if room <= 0:
                break
            part, body = body[:room], body[room:]
            conn.send_data(sid, part, end_stream=not body and not trailers)
        if body:
            pending[sid] = (body, trailers)
            continue
        if trailers:
            conn.send_headers(sid, trailers, end_stream=True)
        del pending[sid]

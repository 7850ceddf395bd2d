"""A small HTTP/1.1 server on trio using h11: keep-alive, bounded request sizes, one task
per connection. It knows nothing about the admin endpoints; it calls a handler."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

import h11
import trio

log = logging.getLogger(__name__)

MAX_REQUEST_BODY = 1 << 20
MAX_HEADER_BYTES = 64 << 10
RECEIVE_SIZE = 64 << 10
# A connection idle this long (between or inside requests) is closed.
IDLE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=UTF-8"
    # Runs once the response has been written (e.g. /quitquitquit starts the shutdown).
    after_send: Callable[[], None] | None = None

    @classmethod
    def text(cls, status: int, text: str) -> Response:
        return cls(status, text.encode())

    @classmethod
    def json(cls, body: bytes, status: int = 200) -> Response:
        return cls(status, body, "application/json")


Handler = Callable[[Request], Awaitable[Response]]


class _BodyTooLarge(Exception):
    pass


def _parse_request(event: h11.Request, body: bytes) -> Request:
    target = urlsplit(event.target.decode("latin-1"))
    return Request(
        method=event.method.decode("ascii"),
        path=target.path or "/",
        query=dict(parse_qsl(target.query, keep_blank_values=True)),
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers],
        body=body,
    )


async def _next_event(
    conn: h11.Connection, stream: trio.SocketStream
) -> h11.Event | type[h11.PAUSED]:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(RECEIVE_SIZE))
            continue
        return event  # type: ignore[return-value]


async def _read_body(conn: h11.Connection, stream: trio.SocketStream) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await _next_event(conn, stream)
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_REQUEST_BODY:
                raise _BodyTooLarge
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return b"".join(chunks)
        else:
            raise h11.RemoteProtocolError(f"unexpected {type(event).__name__} in request body")


async def _send(
    conn: h11.Connection, stream: trio.SocketStream, response: Response, head_only: bool
) -> None:
    headers = [
        ("content-type", response.content_type),
        ("cache-control", "no-cache, max-age=0"),
        ("x-content-type-options", "nosniff"),
        ("date", formatdate(usegmt=True)),
        ("server", "meshcore"),
        ("content-length", str(len(response.body))),
    ]
    reason = HTTPStatus(response.status).phrase.encode()
    out = conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason))
    if not head_only and response.body:
        out += conn.send(h11.Data(data=response.body))
    out += conn.send(h11.EndOfMessage())
    await stream.send_all(out)


async def _serve_connection(stream: trio.SocketStream, handler: Handler) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
    try:
        while True:
            event: object = None
            body = b""
            with trio.move_on_after(IDLE_TIMEOUT_S):
                try:
                    event = await _next_event(conn, stream)
                    if isinstance(event, h11.Request):
                        body = await _read_body(conn, stream)
                except h11.RemoteProtocolError as exc:
                    if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                        status = exc.error_status_hint
                        await _send(conn, stream, Response.text(status, f"{exc}\n"), False)
                    return
                except _BodyTooLarge:
                    await _send(conn, stream, Response.text(413, "request body too large\n"), False)
                    return
            if not isinstance(event, h11.Request):
                return  # ConnectionClosed, or idle timeout
            request = _parse_request(event, body)
            response = await handler(request)
            await _send(conn, stream, response, head_only=request.method == "HEAD")
            if response.after_send is not None:
                response.after_send()
            if conn.our_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return
    except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
        pass  # the peer went away
    finally:
        with trio.move_on_after(1):
            await stream.aclose()


async def listen(host: str, port: int) -> list[trio.SocketListener]:
    """Binds host:port (0: any free port); OSError if it cannot."""
    return await trio.open_tcp_listeners(port, host=host)


def bound_address(listeners: list[trio.SocketListener]) -> tuple[str, int]:
    sockname = listeners[0].socket.getsockname()
    return str(sockname[0]), int(sockname[1])


async def serve_http(handler: Handler, listeners: list[trio.SocketListener]) -> None:
    """Serves HTTP/1.1 on bound listeners until cancelled."""

    async def serve_one(stream: trio.SocketStream) -> None:
        await _serve_connection(stream, handler)

    await trio.serve_listeners(serve_one, listeners)

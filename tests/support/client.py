"""HTTP/1.1 clients for tests: a raw-socket client for precise or hostile requests (responses
parsed by h11), and small helpers for ordinary requests."""

from __future__ import annotations

from dataclasses import dataclass, field

import h11
import trio


@dataclass
class Response:
    """A response as the client received it (header names lower-cased by h11)."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    http_version: str = "1.1"
    informational: list[int] = field(default_factory=list)
    body_chunks: list[bytes] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def upstream(self) -> str | None:
        """Name of the test upstream that answered (None for a local reply)."""
        return self.header("x-upstream")

    def closes(self) -> bool:
        return "close" in (self.header("connection") or "").lower()


def build_request(
    method: str,
    target: str,
    *,
    host: str | None = "example.com",
    headers: list[tuple[str, str]] | None = None,
    body: bytes | None = None,
) -> bytes:
    """Request bytes exactly as given: a Host header first (unless `host` is None), then
    `headers`, then Content-Length when `body` is given and no framing header was."""
    lines = [f"{method} {target} HTTP/1.1"]
    if host is not None:
        lines.append(f"Host: {host}")
    names = set()
    for name, value in headers or []:
        lines.append(f"{name}: {value}")
        names.add(name.lower())
    if body is not None and not names & {"content-length", "transfer-encoding"}:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (body or b"")


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (the last chunk is `chunk(b"")`)."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class RawConnection:
    """One client TCP connection; writes raw bytes, reads responses with h11."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._buffer = b""
        self._eof = False
        self._pending: h11.Connection | None = None

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1") -> RawConnection:
        return cls(await trio.open_tcp_stream(host, port))

    async def __aenter__(self) -> RawConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def request(
        self,
        method: str,
        target: str,
        *,
        host: str | None = "example.com",
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
    ) -> Response:
        await self.send(build_request(method, target, host=host, headers=headers, body=body))
        return await self.read_response(method)

    async def _fill(self) -> bool:
        if self._eof:
            return False
        try:
            data = await self.stream.receive_some(65536)
        except trio.BrokenResourceError:
            data = b""
        if not data:
            self._eof = True
            return False
        self._buffer += data
        return True

    async def read_head(self) -> bytes:
        """Raw bytes up to and including the blank line ending the next response head."""
        while b"\r\n\r\n" not in self._buffer:
            if not await self._fill():
                raise EOFError(f"connection closed before a full response head: {self._buffer!r}")
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        return head + b"\r\n\r\n"

    async def read_response(
        self, method: str = "GET", *, stop_after_chunk: bool = False
    ) -> Response:
        """Parses the next response (skipping 1xx, which are listed in `informational`).

        With `stop_after_chunk`, returns as soon as the first body bytes arrive (the rest
        stays unread on the connection: use `read_rest`)."""
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method=method, target="/", headers=[("host", "x")]))
        conn.send(h11.EndOfMessage())
        if self._buffer:  # h11 reads an empty feed as EOF
            conn.receive_data(self._buffer)
        self._buffer = b""
        response: Response | None = None
        informational: list[int] = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if not await self._fill():
                    conn.receive_data(b"")
                else:
                    conn.receive_data(self._buffer)
                    self._buffer = b""
                continue
            if isinstance(event, h11.InformationalResponse):
                informational.append(event.status_code)
            elif isinstance(event, h11.Response):
                response = Response(
                    status=event.status_code,
                    reason=event.reason.decode("latin-1"),
                    headers=[(k.decode(), v.decode("latin-1")) for k, v in event.headers],
                    http_version=event.http_version.decode(),
                    informational=informational,
                )
            elif isinstance(event, h11.Data):
                assert response is not None
                response.body += bytes(event.data)
                response.body_chunks.append(bytes(event.data))
                if stop_after_chunk:
                    self._pending = conn
                    return response
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                self._buffer = conn.trailing_data[0] + self._buffer
                return response
            elif isinstance(event, h11.ConnectionClosed):
                raise EOFError("connection closed before a response")

    async def read_rest(self, response: Response) -> Response:
        """Finishes a response returned early by `read_response(stop_after_chunk=True)`."""
        conn = self._pending
        assert conn is not None, "no response is half read"
        self._pending = None
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if not await self._fill():
                    conn.receive_data(b"")
                else:
                    conn.receive_data(self._buffer)
                    self._buffer = b""
                continue
            if isinstance(event, h11.Data):
                response.body += bytes(event.data)
                response.body_chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                self._buffer = conn.trailing_data[0] + self._buffer
                return response
            else:
                raise AssertionError(f"unexpected {event!r}")

    async def read_until_closed(self, limit: int = 1 << 20) -> bytes:
        """Everything until the peer closes (fails if more than `limit` bytes)."""
        while await self._fill():
            assert len(self._buffer) <= limit
        data, self._buffer = self._buffer, b""
        return data

    async def is_closed_by_peer(self) -> bool:
        """True when the peer closes without sending anything more."""
        return await self.read_until_closed() == b""


async def get(
    port: int,
    target: str = "/",
    *,
    host: str = "example.com",
    headers: list[tuple[str, str]] | None = None,
    method: str = "GET",
    body: bytes | None = None,
) -> Response:
    """One request on a fresh connection."""
    async with await RawConnection.open(port) as conn:
        return await conn.request(method, target, host=host, headers=headers, body=body)

"""A separate process serving many HTTP/1.1 health endpoints on 127.0.0.1, one port each, so
that a scale test measures the health checker alone. Every request on a kept connection
gets a canned `200 OK`; requests are counted per port.

    python many_upstreams.py N     prints "ready [ports...]", then answers each "counts"
                                   line on stdin with a JSON {port: requests}; exits on EOF.
"""

from __future__ import annotations

import asyncio
import json
import sys

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


class Health(asyncio.Protocol):
    """Answers each request (a header block ending in a blank line; checks have no body)."""

    def __init__(self, counts: dict[int, int], port: int) -> None:
        self.counts = counts
        self.port = port
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            self.buffer = self.buffer[end + 4 :]
            self.counts[self.port] += 1
            assert self.transport is not None
            self.transport.write(RESPONSE)


async def main(n: int) -> None:
    loop = asyncio.get_running_loop()
    counts: dict[int, int] = {}
    ports = []
    for _ in range(n):
        holder: dict[str, int] = {}
        server = await loop.create_server(
            lambda h=holder: Health(counts, h["port"]), "127.0.0.1", 0
        )
        holder["port"] = server.sockets[0].getsockname()[1]
        counts[holder["port"]] = 0
        ports.append(holder["port"])
    print("ready", json.dumps(ports), flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"counts":
            print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))

"""Raw TCP for the network-filter tests: a threaded upstream (echo, or answer after the
client's FIN), blocking client helpers, and the tcp_proxy / local_ratelimit bootstrap
builders."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from typing import Any

from tests.support.bootstrap import Json, socket_address
from tests.support.threaded_server import ThreadedServer

TCP_PROXY_TYPE = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
NETWORK_RATELIMIT_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit"
)
CHUNK = 256 * 1024


def tcp_proxy_filter(stat_prefix: str, **fields: Any) -> Json:
    """A `envoy.filters.network.tcp_proxy` filter (`cluster` or `weighted_clusters` in
    `fields`)."""
    return {
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {"@type": TCP_PROXY_TYPE, "stat_prefix": stat_prefix, **fields},
    }


def connection_limit_filter(
    stat_prefix: str, max_tokens: int, fill_interval: str = "3600s"
) -> Json:
    """A network `local_ratelimit` filter with a bucket of `max_tokens` connections."""
    return {
        "name": "envoy.filters.network.local_ratelimit",
        "typed_config": {
            "@type": NETWORK_RATELIMIT_TYPE,
            "stat_prefix": stat_prefix,
            "token_bucket": {
                "max_tokens": max_tokens,
                "tokens_per_fill": 1,
                "fill_interval": fill_interval,
            },
        },
    }


def network_listener(name: str, port: int, filters: list[Json]) -> Json:
    """A listener on 127.0.0.1:`port` with one filter chain of `filters`."""
    return {
        "name": name,
        "address": socket_address("127.0.0.1", port),
        "filter_chains": [{"filters": filters}],
    }


class TcpUpstream(ThreadedServer):
    """A TCP server on 127.0.0.1 (one thread per connection). `echo`: writes everything
    back and shuts down its write side at EOF. Otherwise it reads to EOF first and then
    answers `<bytes read> <sha256 hex>`, which only works when the proxy passes the client's
    FIN on and keeps relaying the other way."""

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.accepted = 0
        self._lock = threading.Lock()
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        with self._lock:
            self.accepted += 1
        with conn, contextlib.suppress(OSError):
            if self.echo:
                while data := conn.recv(CHUNK):
                    conn.sendall(data)
            else:
                digest = hashlib.sha256()
                total = 0
                while data := conn.recv(CHUNK):
                    digest.update(data)
                    total += len(data)
                conn.sendall(f"{total} {digest.hexdigest()}".encode())
            conn.shutdown(socket.SHUT_WR)


def pattern(size: int) -> bytes:
    """`size` bytes that differ from a shifted copy of themselves (a dropped or repeated
    chunk changes the digest)."""
    block = hashlib.sha256(b"meshcore").digest() * 4096
    whole, rest = divmod(size, len(block))
    return block * whole + block[:rest]


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def exchange(port: int, data: bytes, timeout: float = 30.0) -> bytes:
    """Sends `data` (from a thread), shuts down the write side and reads until EOF."""
    sock = connect(port, timeout)
    errors: list[BaseException] = []

    def send() -> None:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            errors.append(e)

    sender = threading.Thread(target=send)
    sender.start()
    chunks = []
    with sock:
        while chunk := sock.recv(CHUNK):
            chunks.append(chunk)
    sender.join()
    if errors:
        raise errors[0]
    return b"".join(chunks)


def closed_without_data(port: int, timeout: float = 5.0) -> bool:
    """True when the proxy closes a new connection without relaying anything (EOF or
    reset before any byte)."""
    with connect(port, timeout) as sock:
        try:
            sock.sendall(b"ping")
            return sock.recv(16) == b""
        except ConnectionResetError:
            return True

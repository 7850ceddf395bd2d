"""The base of the tests' socket servers: a listener on 127.0.0.1 and one thread per connection."""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Callable


def recv_head(conn: socket.socket, buf: bytes = b"") -> tuple[bytes, bytes] | None:
    """Reads an HTTP/1.1 head from `conn` (after `buf`, bytes already read): the head without
    its blank line and the bytes read past it; None when the peer closed before its end."""
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


class ThreadedServer:
    """Listens on 127.0.0.1 (a port the kernel picks: `port`) and serves each connection in a
    thread of its own, until `close()`. A subclass sets its own state before calling
    `__init__` (a connection may arrive at once) and implements `serve(conn)`, or overrides
    `connection_job(conn)`: it runs in the accepting thread, in accept order, and returns
    what the connection's thread runs. `rcvbuf` sets the listener's `SO_RCVBUF` (accepted sockets
    inherit it)."""

    def __init__(self, backlog: int = 128, rcvbuf: int | None = None) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(backlog)
        self.port = int(self.listener.getsockname()[1])
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        """Stops accepting; connections being served run on to their end."""
        self.closed = True
        self.listener.close()

    def connection_job(self, conn: socket.socket) -> Callable[[], None]:
        """What the new connection's thread runs (by default `serve(conn)`)."""
        return functools.partial(self.serve, conn)

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError(f"{type(self).__name__} serves no connection")

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.connection_job(conn), daemon=True).start()

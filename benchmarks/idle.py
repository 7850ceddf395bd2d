"""Opens many keep-alive connections through a proxy, one request each, then holds them idle."""

from __future__ import annotations

import selectors
import socket
import time
from dataclasses import dataclass, field

import h11


@dataclass
class IdleConnections:
    """The open, idle connections (close them with `close()`) and how many failed to open."""

    sockets: list[socket.socket] = field(default_factory=list)
    failed: int = 0
    first_error: str = ""

    def close(self) -> None:
        for s in self.sockets:
            s.close()
        self.sockets.clear()


class _Client:
    """One connection: non-blocking connect, one GET, read the whole response."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.connect_ex(("127.0.0.1", port))
        self.h11 = h11.Connection(h11.CLIENT)
        request = h11.Request(method="GET", target=path, headers=[("Host", "bench")])
        self.pending = self.h11.send(request) + self.h11.send(h11.EndOfMessage())
        self.status = 0

    def on_writable(self) -> None:
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, "connect failed")
        sent = self.sock.send(self.pending)
        self.pending = self.pending[sent:]

    def on_readable(self) -> bool:
        """Feeds what arrived; True once the response is complete."""
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the proxy before the response ended")
        self.h11.receive_data(data)
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                return False
            if isinstance(event, h11.Response):
                self.status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                if self.status != 200:
                    raise ConnectionError(f"status {self.status}")
                return True


def _run_batch(port: int, path: str, count: int, out: IdleConnections, deadline: float) -> None:
    sel = selectors.DefaultSelector()
    clients = [_Client(port, path) for _ in range(count)]
    for c in clients:
        sel.register(c.sock, selectors.EVENT_WRITE, c)
    live = len(clients)
    try:
        while live and time.monotonic() < deadline:
            for key, mask in sel.select(timeout=1.0):
                c = key.data
                try:
                    if mask & selectors.EVENT_WRITE:
                        c.on_writable()
                        if not c.pending:
                            sel.modify(c.sock, selectors.EVENT_READ, c)
                    elif c.on_readable():
                        sel.unregister(c.sock)
                        out.sockets.append(c.sock)
                        live -= 1
                except (OSError, h11.ProtocolError) as e:
                    sel.unregister(c.sock)
                    c.sock.close()
                    out.failed += 1
                    out.first_error = out.first_error or f"{type(e).__name__}: {e}"
                    live -= 1
        for key in list(sel.get_map().values()):  # timed out
            key.fileobj.close()  # type: ignore[union-attr]
            out.failed += 1
            out.first_error = out.first_error or "timed out"
    finally:
        sel.close()


def open_idle(
    port: int, count: int, *, path: str = "/", batch: int = 100, timeout_s: float = 120.0
) -> IdleConnections:
    """Opens `count` connections to 127.0.0.1:`port` in batches of `batch` concurrent ones;
    each sends one GET and reads its 200 response, then stays open and idle."""
    out = IdleConnections()
    deadline = time.monotonic() + timeout_s
    try:
        for start in range(0, count, batch):
            _run_batch(port, path, min(batch, count - start), out, deadline)
    except BaseException:
        out.close()
        raise
    return out

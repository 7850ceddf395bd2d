"""Free TCP ports on 127.0.0.1 for configs that need a fixed listener port."""

from __future__ import annotations

import contextlib
import socket


def free_port() -> int:
    """A port the kernel just handed out and released (bind to 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dead_port() -> int:
    """A port nobody listens on: connecting to it is refused at once."""
    return free_port()


class Blackhole:
    """A listening socket whose accept queue is full, so further connects hang (no RST).

    Used to exercise `connect_timeout` on loopback: Linux drops SYNs to a listener whose
    backlog is exhausted, so the proxy's connect neither succeeds nor fails until it times
    out.
    """

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port = int(self._listener.getsockname()[1])
        self._fillers: list[socket.socket] = []
        for _ in range(4):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", self.port))
            self._fillers.append(filler)

    def close(self) -> None:
        for filler in self._fillers:
            filler.close()
        self._listener.close()

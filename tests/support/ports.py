"""Free TCP ports on 127.0.0.1 for configs that need a fixed listener port."""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path

# Ports are handed out below the kernel's ephemeral range (`ip_local_port_range`, 32768-60999
# by default): a port the kernel picks for a `bind(0)` (an admin address, a backend) or for a
# connection's source address can then never be one a config was just given. Picking from the
# ephemeral range, as `bind(0)` and close did, let the kernel hand the same port to a proxy's
# admin listener before the proxy bound its listener to it.
_LOW, _HIGH = 20000, 32767
_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    return 32768


def free_port() -> int:
    """A port on 127.0.0.1 that nothing holds now, outside the ephemeral range, and not handed
    out before by this process."""
    high = min(_HIGH, _ephemeral_low() - 1)
    if high - _LOW < 1000:
        raise RuntimeError(f"the ephemeral range starts at {high + 1}: too few ports below it")
    for _ in range(1000):
        port = random.randint(_LOW, high)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {_LOW}-{high}")


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

"""What the session loop needs from a check kind (HTTP, TCP), and the socket plumbing they
share: connecting with the cluster's connect timeout, and Envoy's payload matching."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Protocol

import trio

from .state import Failure, Outcome

# Errors that mean "the connection to the host failed" (Envoy: a NETWORK failure).
NETWORK_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)


class Probe(Protocol):
    """Checks one host, keeping its connection between checks when asked to."""

    async def check(self) -> Outcome:
        """Runs one check. The caller cancels it at the timeout and then calls `close`."""
        ...

    async def idle_until(self, deadline: float) -> Outcome | None:
        """Waits until `deadline` (trio time) for the next check. A probe whose idle
        connection can decide an outcome (TCP: the host closed it, or sent the expected
        bytes) watches it meanwhile and returns that Outcome; otherwise None."""
        ...

    def close(self) -> None:
        """Drops the connection, if any."""
        ...


class ConnectTimeout(OSError):
    """No connection within the cluster's connect timeout."""


class Link:
    """A connection to a host: the trio stream, plus the plain socket under it for a
    non-blocking look at whether the host closed it while it sat idle."""

    def __init__(self, raw: socket.socket, stream: trio.SocketStream) -> None:
        self._raw = raw
        self.stream = stream

    def still_open(self) -> bool:
        """False if the host closed the connection or sent something unasked (one
        non-blocking `recv(MSG_PEEK)`, cheaper than watching every idle connection)."""
        try:
            self._raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return False

    def close(self) -> None:
        """Closes at once (an abortive close is what Envoy does on a failed check)."""
        self.stream.socket.close()


async def connect(address: str, port: int, timeout_s: float) -> Link:
    """A TCP connection to an IP literal (no name lookup, no happy eyeballs: the health
    checker opens thousands of these)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    raw = socket.socket(family, socket.SOCK_STREAM)
    sock = trio.socket.from_stdlib_socket(raw)
    try:
        with trio.move_on_after(timeout_s) as scope:
            await sock.connect((address, port))
        if scope.cancelled_caught:
            raise ConnectTimeout(f"connect timeout after {timeout_s:g}s")
    except BaseException:
        sock.close()
        raise
    return Link(raw, trio.SocketStream(sock))


async def connect_for_check(address: str, port: int, timeout_s: float) -> Link | Outcome:
    """A connection for a check, or the NETWORK failure Envoy counts when it cannot be had."""
    try:
        return await connect(address, port, timeout_s)
    except OSError as exc:
        return Outcome.fail(Failure.NETWORK, f"connect: {describe_error(exc)}")


def payload_matches(segments: Sequence[bytes], data: bytes | bytearray) -> bool:
    """Envoy's `PayloadMatcher::match`: each segment is found in `data`, in order, each
    search starting after the previous match."""
    start = 0
    for segment in segments:
        found = data.find(segment, start)
        if found < 0:
            return False
        start = found + len(segment)
    return True


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__

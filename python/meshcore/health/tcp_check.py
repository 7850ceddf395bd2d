"""TCP health checks, as Envoy's TCP health checker: connect, write `send`, and pass once
every `receive` segment has arrived in order; with no `receive`, connecting passes."""

from __future__ import annotations

import trio

from .probe import NETWORK_ERRORS, Link, connect_for_check, describe_error, payload_matches
from .spec import ClusterHealthCheck, TcpCheck
from .state import Failure, Outcome

_READ_SIZE = 65536


class TcpProbe:
    """Checks one host over TCP. With `reuse_connection` (the default) a connection that
    passed is kept, and the host closing it between checks is a network failure (Envoy
    counts it so too)."""

    def __init__(self, spec: ClusterHealthCheck, tcp: TcpCheck, address: str, port: int) -> None:
        self._spec = spec
        self._tcp = tcp
        self._address = address
        self._port = port
        self._link: Link | None = None
        self._buffer = bytearray()

    async def check(self) -> Outcome:
        if self._link is None:
            link = await connect_for_check(
                self._address, self._port, self._spec.connect_timeout_ms / 1000
            )
            if isinstance(link, Outcome):
                return link
            if not self._tcp.receive:
                # Only testing that the host accepts: Envoy closes at once and writes nothing.
                link.close()
                return Outcome.success(detail="connected")
            self._link = link
            self._buffer.clear()
        stream = self._link.stream
        try:
            if self._tcp.send:
                await stream.send_all(self._tcp.send)
            while True:
                data = await stream.receive_some(_READ_SIZE)
                if not data:
                    self.close()
                    return Outcome.fail(Failure.NETWORK, "connection closed by the host")
                outcome = self._received(data)
                if outcome is not None:
                    return outcome
        except NETWORK_ERRORS as exc:
            self.close()
            return Outcome.fail(Failure.NETWORK, describe_error(exc))

    def _received(self, data: bytes) -> Outcome | None:
        """Envoy's `onData`: a match passes the check and empties the buffer; anything else
        waits for more bytes (wrong bytes end only at the timeout)."""
        self._buffer += data
        if not payload_matches(self._tcp.receive, self._buffer):
            return None
        self._buffer.clear()
        if not self._spec.reuse_connection:
            self.close()
        return Outcome.success(detail="payload matched")

    async def idle_until(self, deadline: float) -> Outcome | None:
        while self._link is not None:
            stream = self._link.stream
            with trio.move_on_at(deadline):
                try:
                    data = await stream.receive_some(_READ_SIZE)
                except NETWORK_ERRORS as exc:
                    self.close()
                    return Outcome.fail(Failure.NETWORK, describe_error(exc))
                if not data:
                    self.close()
                    return Outcome.fail(Failure.NETWORK, "connection closed by the host")
                outcome = self._received(data)
                if outcome is not None:
                    return outcome
                continue
            return None
        await trio.sleep_until(deadline)
        return None

    def close(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None
        self._buffer.clear()

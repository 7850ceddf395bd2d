"""Trio HTTP/1.1 upstreams (h11) that answer with their name and record what they receive.

Each upstream answers `200` with body = its name and header `x-upstream: <name>`, and
records every request (method, target, headers, body, connection number). A request can
tell it to misbehave with the `x-mc-behavior` header (or the upstream can be built with a
default behaviour), a comma-separated list of:

- `status=N`        answer with status N (no body for 1xx/204/304 and HEAD)
- `hang`            never answer; keep reading until the peer closes
- `close`           close the connection after reading the request, before answering
- `chunked=N`       send the body as N chunks (transfer-encoding: chunked)
- `gate=NAME`       send the first chunk, wait until the test opens gate NAME, send the rest
- `size=N`          body is N bytes of "x" instead of the name
- `echo`            body is the request body
- `connection-close` answer with `connection: close` and close afterwards
- `delay-ms=N`      wait N ms before answering
- `fail-first=N`, `hang-first=N`, `close-first=N`: the first N requests carrying the same
  `x-mc-key` value (counted over all upstreams of the server) answer 503 / hang / close;
  later ones are served normally (for retries)

Extra response headers come from `x-mc-response-header: name: value` request headers.

The upstreams run on a trio loop in a background thread (`UpstreamServer`) so that sync,
module-scoped fixtures can own them while the tests themselves run on pytest-trio's loop.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import h11
import trio

BEHAVIOR_HEADER = "x-mc-behavior"
KEY_HEADER = "x-mc-key"
_key_counts: dict[str, int] = {}
_key_lock = threading.Lock()


def _first_n(behavior: dict[str, str], key: str | None) -> None:
    """Turns `fail-first` / `hang-first` / `close-first` into `status=503` / `hang` / `close`
    while the request is among the first N with its `x-mc-key`."""
    if key is None or not any(k.endswith("-first") for k in behavior):
        return
    with _key_lock:
        seen = _key_counts[key] = _key_counts.get(key, 0) + 1
    for kind, effect in (
        ("fail", ("status", "503")),
        ("hang", ("hang", "")),
        ("close", ("close", "")),
    ):
        limit = behavior.pop(f"{kind}-first", None)
        if limit is not None and seen <= int(limit):
            behavior[effect[0]] = effect[1]


RESPONSE_HEADER = "x-mc-response-header"


@dataclass
class RecordedRequest:
    """One request as an upstream received it (header names lower-cased by h11)."""

    upstream: str
    connection: int
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytearray = field(default_factory=bytearray)
    body_chunks: int = 0
    complete: bool = False

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    def has_header(self, name: str) -> bool:
        return bool(self.header_values(name))


class Upstream:
    """One named HTTP/1.1 upstream listening on 127.0.0.1:`port`."""

    def __init__(self, name: str, default_behavior: str = "") -> None:
        self.name = name
        self.default_behavior = default_behavior
        self.port = 0
        self.connections_accepted = 0
        self.protocol_errors: list[str] = []
        self._requests: list[RecordedRequest] = []
        self._changed = threading.Condition()
        self._gates: dict[str, threading.Event] = {}
        self._connection_ids = itertools.count(1)
        self.cancel_scope: trio.CancelScope | None = None

    # ---- what the tests read -------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._changed:
            return list(self._requests)

    def connection_ids(self) -> set[int]:
        return {request.connection for request in self.requests}

    def clear(self) -> None:
        with self._changed:
            self._requests.clear()
            self.protocol_errors.clear()

    def wait_until(self, predicate: Callable[[Upstream], bool], timeout: float = 5.0) -> bool:
        """Blocks (in a thread) until `predicate(self)` holds; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    async def until(self, predicate: Callable[[Upstream], bool], timeout: float = 5.0) -> None:
        """Waits from a trio test until `predicate(self)` holds; raises on timeout."""
        ok = await trio.to_thread.run_sync(self.wait_until, predicate, timeout)
        assert ok, f"upstream {self.name}: condition not met within {timeout}s"

    def open_gate(self, name: str) -> None:
        """Lets a `gate=NAME` response send the rest of its body (callable from any thread)."""
        self._gate(name).set()

    # ---- the server ----------------------------------------------------------------------

    def _gate(self, name: str) -> threading.Event:
        with self._changed:
            return self._gates.setdefault(name, threading.Event())

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _record(self, request: RecordedRequest) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            self.cancel_scope = scope
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            self.port = listeners[0].socket.getsockname()[1]
            task_status.started(self.port)
            await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        connection_id = next(self._connection_ids)
        self.connections_accepted += 1
        self._notify()
        conn = h11.Connection(h11.SERVER)
        try:
            async with stream:
                await self._serve_connection(stream, conn, connection_id)
        except (h11.RemoteProtocolError, h11.LocalProtocolError) as exc:
            self.protocol_errors.append(repr(exc))
            self._notify()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def _next_event(self, stream: trio.SocketStream, conn: h11.Connection) -> object:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await stream.receive_some(65536)
            conn.receive_data(data)

    async def _serve_connection(
        self, stream: trio.SocketStream, conn: h11.Connection, connection_id: int
    ) -> None:
        while True:
            event = await self._next_event(stream, conn)
            if isinstance(event, h11.ConnectionClosed):
                return
            assert isinstance(event, h11.Request), event
            request = RecordedRequest(
                upstream=self.name,
                connection=connection_id,
                method=event.method.decode(),
                target=event.target.decode(),
                headers=[(k.decode(), v.decode("latin-1")) for k, v in event.headers],
            )
            self._record(request)
            behavior = parse_behavior(request.header(BEHAVIOR_HEADER) or self.default_behavior)
            _first_n(behavior, request.header(KEY_HEADER))
            if "hang" in behavior:
                await drain_until_closed(stream)
                return
            if conn.they_are_waiting_for_100_continue:
                await stream.send_all(
                    conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b""
                )
            while True:
                body_event = await self._next_event(stream, conn)
                if isinstance(body_event, h11.Data):
                    with self._changed:
                        request.body += body_event.data
                        request.body_chunks += 1
                        self._changed.notify_all()
                elif isinstance(body_event, h11.EndOfMessage):
                    with self._changed:
                        request.complete = True
                        self._changed.notify_all()
                    break
                else:
                    return
            if "close" in behavior:
                return
            if "delay-ms" in behavior:
                await trio.sleep(int(behavior["delay-ms"]) / 1000)
            await self._respond(stream, conn, request, behavior)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()

    async def _respond(
        self,
        stream: trio.SocketStream,
        conn: h11.Connection,
        request: RecordedRequest,
        behavior: dict[str, str],
    ) -> None:
        status = int(behavior.get("status", "200"))
        if "echo" in behavior:
            body = bytes(request.body)
        elif "size" in behavior:
            body = b"x" * int(behavior["size"])
        else:
            body = self.name.encode()
        headers = [("x-upstream", self.name), ("content-type", "text/plain")]
        for extra in request.header_values(RESPONSE_HEADER):
            name, _, value = extra.partition(":")
            headers.append((name.strip(), value.strip()))
        if "connection-close" in behavior:
            headers.append(("connection", "close"))
        bodyless = status in (204, 304) or 100 <= status < 200 or request.method == "HEAD"
        chunks = int(behavior.get("chunked", "0"))
        if "gate" in behavior:
            chunks = max(chunks, 2)
        if bodyless:
            if request.method == "HEAD":
                headers.append(("content-length", str(len(body))))
            parts: list[bytes] = []
        elif chunks:
            headers.append(("transfer-encoding", "chunked"))
            step = max(1, -(-len(body) // chunks))
            parts = [body[i : i + step] for i in range(0, len(body), step)] or [b""]
        else:
            headers.append(("content-length", str(len(body))))
            parts = [body]
        await stream.send_all(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
        for index, part in enumerate(parts):
            if index == 1 and "gate" in behavior:
                gate = self._gate(behavior["gate"])
                await trio.to_thread.run_sync(gate.wait, abandon_on_cancel=True)
            if part:
                await stream.send_all(conn.send(h11.Data(data=part)) or b"")
        await stream.send_all(conn.send(h11.EndOfMessage()) or b"")


def parse_behavior(text: str) -> dict[str, str]:
    behavior: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if item:
            key, _, value = item.partition("=")
            behavior[key] = value
    return behavior


async def drain_until_closed(stream: trio.SocketStream) -> None:
    while await stream.receive_some(65536):
        pass


class UpstreamServer:
    """A trio loop in a background thread hosting any number of `Upstream`s."""

    def __init__(self) -> None:
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "upstream loop did not start"
        self.upstreams: list[Upstream] = []

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._ready.set()
            await trio.sleep_forever()

    def start(self, name: str, default_behavior: str = "") -> Upstream:
        upstream = Upstream(name, default_behavior)

        async def launch() -> None:
            assert self._nursery is not None
            await self._nursery.start(upstream.serve)

        trio.from_thread.run(launch, trio_token=self._token)
        self.upstreams.append(upstream)
        return upstream

    def start_task(self, serve: Callable[..., Awaitable[object]]) -> None:
        """Starts another server task on this loop (one that calls `task_status.started()`
        once it listens)."""

        async def launch() -> None:
            assert self._nursery is not None
            await self._nursery.start(serve)

        trio.from_thread.run(launch, trio_token=self._token)

    def stop_upstream(self, upstream: Upstream) -> None:
        """Closes the upstream's listener and connections."""
        assert upstream.cancel_scope is not None
        trio.from_thread.run_sync(upstream.cancel_scope.cancel, trio_token=self._token)

    def clear(self) -> None:
        for upstream in self.upstreams:
            upstream.clear()

    def close(self) -> None:
        if self._nursery is not None:
            trio.from_thread.run_sync(self._nursery.cancel_scope.cancel, trio_token=self._token)
        self._thread.join(10)

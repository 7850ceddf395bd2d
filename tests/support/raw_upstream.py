"""A raw-socket upstream that answers each request with canned bytes, chosen by the last
segment of the request path (`GET /r/<name>` gets `responses[name]`), so tests can send
responses no HTTP library would produce. It counts the requests it read."""

from __future__ import annotations

import trio

from tests.support.upstream import UpstreamServer


class RawUpstream:
    """Serves `responses` on 127.0.0.1:`port`; runs on an `UpstreamServer`'s trio loop."""

    def __init__(self, responses: dict[str, bytes]) -> None:
        self.responses = responses
        self.port = 0
        self.requests: list[bytes] = []

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        buffer = b""
        async with stream:
            try:
                while b"\r\n\r\n" not in buffer:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    buffer += data
                head = buffer.partition(b"\r\n\r\n")[0]
                self.requests.append(head)
                target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
                await stream.send_all(self.responses[target.rsplit("/", 1)[-1]])
                # Keep the connection until the proxy closes it: the proxy, not an EOF,
                # decides what the response is.
                with trio.move_on_after(5):
                    while await stream.receive_some(65536):
                        pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass


def start_raw_upstream(server: UpstreamServer, responses: dict[str, bytes]) -> RawUpstream:
    """Starts a `RawUpstream` on the shared upstream loop."""
    upstream = RawUpstream(responses)
    server.start_task(upstream.serve)
    return upstream

"""One ADS stream (StreamAggregatedResources or DeltaAggregatedResources), or one SDS stream
(StreamSecrets or DeltaSecrets), bridged to trio.

`grpc.aio` does not run under trio, so the stream uses grpcio's blocking API: requests come
from a queue-backed generator that grpcio drains in its own thread, responses are read in a
worker thread (`trio.lowlevel.start_thread_soon`: like `trio.to_thread.run_sync(...,
abandon_on_cancel=True)`, without a nursery) and handed to trio through a memory channel,
and leaving the context cancels the call, which ends both threads.

The hand-off is on the push → ACK path, so it is one `TrioToken.run_sync_soon` callback per
response (a `send_nowait` in the trio thread), not `trio.from_thread.run` (a task spawned
per response and a reply back to the reading thread, which the reading thread waits for):
the reading thread goes straight back to grpcio. `MAX_UNREAD` bounds what it reads ahead
of trio (a semaphore trio releases as it takes each response)."""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, suppress
from functools import partial
from typing import Any

import grpc
import trio
from envoy.service.discovery.v3 import ads_pb2_grpc
from envoy.service.secret.v3 import sds_pb2_grpc
from google.protobuf.message import Message

_CLOSE = object()
# Responses read from grpcio that trio has not taken yet, at most.
MAX_UNREAD = 4


class StreamClosed(Exception):
    """The stream ended (the server closed it, or it could not be opened)."""


class AdsStream:
    """Sends requests and receives responses on one open stream."""

    def __init__(
        self,
        requests: queue.SimpleQueue[Any],
        responses: trio.MemoryReceiveChannel[Message],
        unread: threading.Semaphore,
    ) -> None:
        self._requests = requests
        self._responses = responses
        self._unread = unread
        self.error: str = ""

    def send(self, request: Message) -> None:
        """Queues a request (grpcio's thread writes it)."""
        self._requests.put(request)

    async def receive(self) -> Message:
        """The next response; StreamClosed once the stream has ended."""
        try:
            response = await self._responses.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StreamClosed(self.error or "stream closed") from None
        self._unread.release()
        return response


def _requests(source: queue.SimpleQueue[Any]) -> Iterator[Message]:
    while True:
        item = source.get()
        if item is _CLOSE:
            return
        yield item


def _describe(error: grpc.RpcError) -> str:
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else str(error)
    name = code.name if code is not None else "UNKNOWN"
    return f"{name}: {details}"


def _deliver(call: Any, send: trio.MemorySendChannel[Message], response: Message) -> None:
    """In the trio thread (a run_sync_soon callback: it must not raise)."""
    try:
        send.send_nowait(response)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        call.cancel()  # trio stopped listening: the reading thread ends


def _pump(
    call: Any,
    send: trio.MemorySendChannel[Message],
    stream: AdsStream,
    token: trio.lowlevel.TrioToken,
    unread: threading.Semaphore,
) -> None:
    """Runs in a worker thread: hands each response to trio until the call ends, then
    closes the channel (the trio side sees StreamClosed with `stream.error`)."""
    try:
        for response in call:
            unread.acquire()
            token.run_sync_soon(_deliver, call, send, response)
    except grpc.RpcError as exc:
        stream.error = _describe(exc)
    except trio.RunFinishedError:
        call.cancel()  # trio stopped
        return
    except BaseException as exc:  # never leave the trio side waiting
        stream.error = f"reading the stream failed: {exc!r}"
        call.cancel()
    with suppress(trio.RunFinishedError):
        token.run_sync_soon(send.close)  # after the responses handed over before


@asynccontextmanager
async def open_stream(
    channel: grpc.Channel,
    *,
    delta: bool,
    metadata: Sequence[tuple[str, str]] = (),
    secrets_only: bool = False,
) -> AsyncIterator[AdsStream]:
    """Opens the ADS stream (`secrets_only`: the SDS stream) on `channel`; the call is
    cancelled on the way out. The reading thread is not in a nursery (it cannot be
    interrupted, only ended by the cancel), so that errors in the body propagate as they
    are."""
    if secrets_only:
        sds = sds_pb2_grpc.SecretDiscoveryServiceStub(channel)
        method = sds.DeltaSecrets if delta else sds.StreamSecrets
    else:
        ads = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        method = ads.DeltaAggregatedResources if delta else ads.StreamAggregatedResources
    requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
    send, receive = trio.open_memory_channel[Message](math.inf)  # bounded by `unread`
    unread = threading.Semaphore(MAX_UNREAD)
    stream = AdsStream(requests, receive, unread)
    call = method(_requests(requests), metadata=list(metadata) or None)
    token = trio.lowlevel.current_trio_token()
    trio.lowlevel.start_thread_soon(
        partial(_pump, call, send, stream, token, unread), _ignore, name="meshcore xDS stream"
    )
    try:
        yield stream
    finally:
        call.cancel()
        requests.put(_CLOSE)
        receive.close()
        unread.release()  # a reading thread waiting for room sees the cancelled call


def _ignore(result: object) -> None:
    """The reading thread's outcome: it reports errors through the stream."""

"""One ADS stream (StreamAggregatedResources or DeltaAggregatedResources), or one SDS stream
(StreamSecrets or DeltaSecrets), bridged to trio.

`grpc.aio` does not run under trio, so the stream uses grpcio's blocking API: requests come
from a queue-backed generator that grpcio drains in its own thread, responses are read by
a worker thread (`trio.lowlevel.start_thread_soon`: like `trio.to_thread.run_sync(...,
abandon_on_cancel=True)`, without a nursery) iterating the call, and leaving the context
cancels the call, which ends both threads.

The hand-off is on the push → ACK path, so each response takes the shortest way to trio:
grpcio parses it in its channel's polling thread with the method's response deserializer,
and ours (the generated one, wrapped) hands it to trio right there with one
`TrioToken.run_sync_soon` callback (a `send_nowait` on a memory channel in the trio
thread). The reading thread only asks grpcio for the next response (grpcio reads one when
the iterator is advanced), and not before trio has room: `MAX_UNREAD` bounds what is read
ahead of trio (a semaphore trio releases as it takes each response). Before, a response
went from the polling thread to the reading thread, which handed it over with
`trio.from_thread.run` (a task per response, and a reply back): two thread wake-ups on
the way in instead of one."""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
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


def _deliver(send: trio.MemorySendChannel[Message], response: Message) -> None:
    """In the trio thread (a run_sync_soon callback: it must not raise)."""
    with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        send.send_nowait(response)  # else trio left the stream: the call is cancelled


Deserializer = Callable[[bytes], Message]


def _delivering(
    deserialize: Deserializer, send: trio.MemorySendChannel[Message], token: trio.lowlevel.TrioToken
) -> Deserializer:
    """`deserialize` (run by grpcio's polling thread), which also hands each response to
    trio; grpcio treats an exception here as a failed call."""

    def deliver(raw: bytes) -> Message:
        response = deserialize(raw)
        with suppress(trio.RunFinishedError):  # trio is gone: nobody to tell
            token.run_sync_soon(_deliver, send, response)
        return response

    return deliver


class _DeliveringChannel:
    """What the generated stubs take as a channel: the channel, but `stream_stream` wraps
    the response deserializer with `_delivering` (the stubs name the methods and their
    (de)serializers, so nothing about them is written here)."""

    def __init__(self, channel: grpc.Channel, wrap: Callable[[Deserializer], Deserializer]) -> None:
        self._channel = channel
        self._wrap = wrap

    def stream_stream(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Deserializer | None = None,
        **options: Any,
    ) -> Any:
        assert response_deserializer is not None
        return self._channel.stream_stream(
            method, request_serializer, self._wrap(response_deserializer), **options
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)  # the other kinds of method, as they are


def _pump(
    call: Any,
    send: trio.MemorySendChannel[Message],
    stream: AdsStream,
    token: trio.lowlevel.TrioToken,
    unread: threading.Semaphore,
) -> None:
    """Runs in a worker thread: asks grpcio for each next response (the deserializer
    hands it to trio) while trio has room, until the call ends; then closes the channel
    (the trio side sees StreamClosed with `stream.error`)."""
    try:
        while True:
            unread.acquire()
            next(call)
    except StopIteration:
        pass
    except grpc.RpcError as exc:
        stream.error = _describe(exc)
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
    send, receive = trio.open_memory_channel[Message](math.inf)  # bounded by `unread`
    token = trio.lowlevel.current_trio_token()
    delivering = _DeliveringChannel(channel, partial(_delivering, send=send, token=token))
    if secrets_only:
        sds = sds_pb2_grpc.SecretDiscoveryServiceStub(delivering)
        method = sds.DeltaSecrets if delta else sds.StreamSecrets
    else:
        ads = ads_pb2_grpc.AggregatedDiscoveryServiceStub(delivering)
        method = ads.DeltaAggregatedResources if delta else ads.StreamAggregatedResources
    requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
    unread = threading.Semaphore(MAX_UNREAD)
    stream = AdsStream(requests, receive, unread)
    call = method(_requests(requests), metadata=list(metadata) or None)
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

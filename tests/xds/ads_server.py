"""A scriptable ADS management server for tests (grpcio sync server, one thread per stream):
state of the world and delta, resources per node, pushes, raw responses, forced
disconnects, and a record of every request it received. It also serves the SDS service
(StreamSecrets, DeltaSecrets) with the same resources, for `api_config_source` secrets.

SotW: a stream gets a type's resources on its first request for it (unless it already has
the current version), whenever its RDS/EDS names change, and on every push. Delta: the
server tracks which version of each resource the client holds (from
`initial_resource_versions` and what it sent) and sends only differences, with
`removed_resources` for what is gone."""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc
from google.protobuf import duration_pb2
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.message import Message

from .builders import CLUSTER, LISTENER, name_of

WILDCARD = (LISTENER, CLUSTER)
DEFAULT_NODE = "*"
_CLOSE = object()


@dataclass
class Recorded:
    """One request as received."""

    stream: int
    node: str
    delta: bool
    request: Any
    at: float = field(default_factory=time.monotonic)

    @property
    def type_url(self) -> str:
        return str(self.request.type_url)

    @property
    def nonce(self) -> str:
        return str(self.request.response_nonce)

    @property
    def error(self) -> str:
        return str(self.request.error_detail.message)

    def is_ack(self) -> bool:
        return bool(self.nonce) and not self.error

    def is_nack(self) -> bool:
        return bool(self.nonce) and bool(self.error)


@dataclass
class _Resource:
    version: str
    message: Message
    ttl_s: float | None = None


@dataclass
class _TypeState:
    names: set[str] = field(default_factory=set)
    requested: bool = False
    version: str | None = None  # SotW: what was last sent
    wildcard: bool = False
    known: dict[str, str] = field(default_factory=dict)  # delta: name -> client's version


class _Stream:
    def __init__(self, server: AdsServer, stream_id: int, delta: bool) -> None:
        self.server = server
        self.id = stream_id
        self.delta = delta
        self.node = ""
        self.outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.types: dict[str, _TypeState] = {}
        self.sent: list[Any] = []
        self.metadata: dict[str, Any] = {}

    def send(self, response: Any) -> None:
        self.sent.append(response)
        self.server.sent_at[response.nonce] = time.monotonic()
        self.outbox.put(response)


class AdsServer(
    ads_pb2_grpc.AggregatedDiscoveryServiceServicer, sds_pb2_grpc.SecretDiscoveryServiceServicer
):
    """Start with `start()`, stop with `stop()`; `port` is where it listens."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.recorded: list[Recorded] = []
        self.streams: dict[int, _Stream] = {}
        self.streams_opened = 0
        self._ids = itertools.count(1)
        self._nonces = itertools.count(1)
        self._versions = itertools.count(1)
        # (node, type_url) -> name -> resource; and the type's SotW version.
        self._resources: dict[tuple[str, str], dict[str, _Resource]] = {}
        self._type_versions: dict[tuple[str, str], str] = {}
        self.auto_respond = True
        self._all_streams: list[_Stream] = []
        self.sent_at: dict[str, float] = {}
        """nonce -> when the response carrying it was handed to gRPC."""
        self._server: grpc.Server | None = None
        self.port = 0

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self, tls: grpc.ServerCredentials | None = None) -> AdsServer:
        """Listens on 127.0.0.1 in plain text, or with `tls` (`grpc.ssl_server_credentials`)."""
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(self, server)
        sds_pb2_grpc.add_SecretDiscoveryServiceServicer_to_server(self, server)
        if tls is None:
            self.port = server.add_insecure_port("127.0.0.1:0")
        else:
            self.port = server.add_secure_port("127.0.0.1:0", tls)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        self.close_streams()
        if self._server is not None:
            self._server.stop(grace=None).wait(5)

    def close_streams(self) -> None:
        """Ends every open stream (the clients reconnect)."""
        with self.lock:
            for stream in self.streams.values():
                stream.outbox.put(_CLOSE)

    # ---- the script ----------------------------------------------------------------------

    def next_version(self) -> str:
        return f"v{next(self._versions)}"

    def set_resources(
        self,
        type_url: str,
        resources: Iterable[Message],
        *,
        version: str | None = None,
        node: str = DEFAULT_NODE,
        ttl_s: float | None = None,
        push: bool = True,
    ) -> str:
        """Replaces all resources of `type_url` (for `node`, or the default) and pushes
        them to the streams that want them; returns the version."""
        version = version or self.next_version()
        with self.lock:
            old = self._resources.get((node, type_url), {})
            new = {}
            for message in resources:
                name = name_of(type_url, message)
                previous = old.get(name)
                same = (
                    previous is not None
                    and previous.message.SerializeToString() == message.SerializeToString()
                    and previous.ttl_s == ttl_s
                )
                new[name] = (
                    previous
                    if same and previous is not None
                    else _Resource(version, message, ttl_s)
                )
            self._resources[(node, type_url)] = new
            self._type_versions[(node, type_url)] = version
            if push:
                for stream in list(self.streams.values()):
                    if self._node_key(stream.node, type_url) == node:
                        self._respond(stream, type_url, pushed=True)
        return version

    def push_raw(self, response: Any, node: str | None = None) -> None:
        """Sends `response` as is (its nonce is filled in) to the matching streams."""
        with self.lock:
            for stream in list(self.streams.values()):
                if node is None or stream.node == node:
                    copy = type(response)()
                    copy.CopyFrom(response)
                    copy.nonce = str(next(self._nonces))
                    stream.send(copy)

    def heartbeat(self, type_url: str, names: Iterable[str], node: str = DEFAULT_NODE) -> None:
        """Sends a TTL refresh (a Resource without a body) for `names`."""
        with self.lock:
            resources = self._resources.get((node, type_url), {})
            for stream in list(self.streams.values()):
                if self._node_key(stream.node, type_url) != node:
                    continue
                beats = []
                for name in names:
                    held = resources[name]
                    beat = discovery_pb2.Resource(name=name, version=held.version)
                    if held.ttl_s is not None:
                        beat.ttl.CopyFrom(_duration(held.ttl_s))
                    beats.append(beat)
                if stream.delta:
                    stream.send(
                        discovery_pb2.DeltaDiscoveryResponse(
                            type_url=type_url,
                            system_version_info=self._type_versions[(node, type_url)],
                            resources=beats,
                            nonce=str(next(self._nonces)),
                        )
                    )
                else:
                    packed = []
                    for beat in beats:
                        any_beat = AnyMessage()
                        any_beat.Pack(beat)
                        packed.append(any_beat)
                    stream.send(
                        discovery_pb2.DiscoveryResponse(
                            type_url=type_url,
                            version_info=self._type_versions[(node, type_url)],
                            resources=packed,
                            nonce=str(next(self._nonces)),
                        )
                    )

    # ---- what the tests read -------------------------------------------------------------

    def requests(self, type_url: str | None = None, node: str | None = None) -> list[Recorded]:
        with self.lock:
            return [
                r
                for r in self.recorded
                if (type_url is None or r.type_url == type_url) and (node is None or r.node == node)
            ]

    def wait_for(self, predicate: Callable[[AdsServer], Any], timeout: float = 10.0) -> Any:
        """Blocks until `predicate(self)` is truthy; returns its value (AssertionError on
        timeout)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                value = predicate(self)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"ADS server: condition not met within {timeout}s")
                self.changed.wait(min(left, 0.1))

    def wait_request(
        self, match: Callable[[Recorded], bool], timeout: float = 10.0, after: int = 0
    ) -> Recorded:
        """The first request (from index `after` of `recorded`) that `match`es."""

        def find(server: AdsServer) -> Recorded | None:
            return next((r for r in server.recorded[after:] if match(r)), None)

        found: Recorded = self.wait_for(find, timeout)
        return found

    def sent_nonce_versions(self) -> dict[str, str]:
        """nonce -> the version of the response that carried it (all streams)."""
        with self.lock:
            out = {}
            for stream in self.streams_seen:
                for response in stream.sent:
                    if stream.delta:
                        out[response.nonce] = response.system_version_info
                    else:
                        out[response.nonce] = response.version_info
            return out

    @property
    def streams_seen(self) -> list[_Stream]:
        return list(self._all_streams)

    # ---- gRPC handlers -------------------------------------------------------------------

    def StreamAggregatedResources(  # noqa: N802 - gRPC's name
        self, request_iterator: Iterator[Any], context: grpc.ServicerContext
    ) -> Iterator[Any]:
        return self._serve(request_iterator, context, delta=False)

    def DeltaAggregatedResources(  # noqa: N802 - gRPC's name
        self, request_iterator: Iterator[Any], context: grpc.ServicerContext
    ) -> Iterator[Any]:
        return self._serve(request_iterator, context, delta=True)

    def StreamSecrets(  # noqa: N802 - gRPC's name
        self, request_iterator: Iterator[Any], context: grpc.ServicerContext
    ) -> Iterator[Any]:
        return self._serve(request_iterator, context, delta=False)

    def DeltaSecrets(  # noqa: N802 - gRPC's name
        self, request_iterator: Iterator[Any], context: grpc.ServicerContext
    ) -> Iterator[Any]:
        return self._serve(request_iterator, context, delta=True)

    def _serve(
        self, request_iterator: Iterator[Any], context: grpc.ServicerContext, delta: bool
    ) -> Iterator[Any]:
        stream = _Stream(self, next(self._ids), delta)
        stream.metadata = {k: v for k, v in context.invocation_metadata()}
        with self.changed:
            self.streams[stream.id] = stream
            self._all_streams = [*self._all_streams, stream]
            self.streams_opened += 1
            self.changed.notify_all()
        context.add_callback(lambda: stream.outbox.put(_CLOSE))
        reader = threading.Thread(target=self._read, args=(stream, request_iterator), daemon=True)
        reader.start()
        try:
            while True:
                item = stream.outbox.get()
                if item is _CLOSE:
                    return
                yield item
        finally:
            with self.changed:
                self.streams.pop(stream.id, None)
                self.changed.notify_all()

    def _read(self, stream: _Stream, requests: Iterator[Any]) -> None:
        try:
            for request in requests:
                self._on_request(stream, request)
        except grpc.RpcError:
            pass
        except Exception:  # a closed stream's iterator may raise anything
            pass

    def _node_key(self, node: str, type_url: str) -> str:
        return node if (node, type_url) in self._resources else DEFAULT_NODE

    def _on_request(self, stream: _Stream, request: Any) -> None:
        with self.changed:
            if request.HasField("node") and not stream.node:
                stream.node = request.node.id
            self.recorded.append(Recorded(stream.id, stream.node, stream.delta, request))
            self.changed.notify_all()
            state = stream.types.setdefault(request.type_url, _TypeState())
            if stream.delta:
                self._on_delta_request(stream, state, request)
            else:
                self._on_sotw_request(stream, state, request)

    def _on_sotw_request(self, stream: _Stream, state: _TypeState, request: Any) -> None:
        names = set(request.resource_names)
        first = not state.requested
        changed = first or names != state.names
        state.requested = True
        state.names = names
        if first:
            state.version = request.version_info or None
        if request.error_detail.message or not changed or not self.auto_respond:
            return
        self._respond(stream, request.type_url, pushed=False)

    def _on_delta_request(self, stream: _Stream, state: _TypeState, request: Any) -> None:
        first = not state.requested
        if first:
            state.requested = True
            state.wildcard = request.type_url in WILDCARD and not request.resource_names_subscribe
            state.known = dict(request.initial_resource_versions)
        state.names |= set(request.resource_names_subscribe)
        for name in request.resource_names_unsubscribe:
            state.names.discard(name)
            state.known.pop(name, None)
        subscribing = bool(request.resource_names_subscribe) or not request.response_nonce
        if request.error_detail.message or not subscribing or not self.auto_respond:
            return
        self._respond(stream, request.type_url, pushed=False, first=first)

    def _respond(self, stream: _Stream, type_url: str, pushed: bool, first: bool = False) -> None:
        state = stream.types.get(type_url)
        if state is None or not state.requested:
            return
        key = (self._node_key(stream.node, type_url), type_url)
        resources = self._resources.get(key)
        if resources is None:
            return
        version = self._type_versions[key]
        if stream.delta:
            self._respond_delta(stream, state, type_url, resources, version, first)
            return
        if type_url in WILDCARD:
            chosen = list(resources.items())
        else:
            chosen = [(n, r) for n, r in resources.items() if n in state.names]
            if not chosen:
                return
        if not pushed and state.version == version and type_url in WILDCARD:
            return  # the client already has this version
        state.version = version
        packed = [_pack_sotw(name, r) for name, r in chosen]
        stream.send(
            discovery_pb2.DiscoveryResponse(
                type_url=type_url,
                version_info=version,
                resources=packed,
                nonce=str(next(self._nonces)),
            )
        )

    def _respond_delta(
        self,
        stream: _Stream,
        state: _TypeState,
        type_url: str,
        resources: dict[str, _Resource],
        version: str,
        first: bool,
    ) -> None:
        """Sends what the client lacks; the answer to a first wildcard request is sent even
        when empty (so that an empty LDS completes the client's initial fetch)."""

        def wanted(name: str) -> bool:
            return state.wildcard or name in state.names

        updates = []
        for name, resource in resources.items():
            if wanted(name) and state.known.get(name) != resource.version:
                entry = discovery_pb2.Resource(name=name, version=resource.version)
                entry.resource.Pack(resource.message)
                if resource.ttl_s is not None:
                    entry.ttl.CopyFrom(_duration(resource.ttl_s))
                updates.append(entry)
                state.known[name] = resource.version
        removed = sorted(n for n in list(state.known) if wanted(n) and n not in resources)
        for name in removed:
            state.known.pop(name)
        if not updates and not removed and not (first and state.wildcard):
            return
        stream.send(
            discovery_pb2.DeltaDiscoveryResponse(
                type_url=type_url,
                system_version_info=version,
                resources=updates,
                removed_resources=removed,
                nonce=str(next(self._nonces)),
            )
        )


def _duration(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(seconds * 1e9))
    return duration


def _pack_sotw(name: str, resource: _Resource) -> AnyMessage:
    packed = AnyMessage()
    if resource.ttl_s is None:
        packed.Pack(resource.message)
        return packed
    wrapper = discovery_pb2.Resource(name=name, version=resource.version)
    wrapper.resource.Pack(resource.message)
    wrapper.ttl.CopyFrom(_duration(resource.ttl_s))
    packed.Pack(wrapper)
    return packed

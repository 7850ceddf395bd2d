"""Separate SDS streams (`sds_config.api_config_source`): one per SDS server (a static
cluster and an API type, `StreamSecrets` or `DeltaSecrets`) that some listener or cluster
names, subscribed to the secrets named with it, reopened with jittered back-off while it is
needed and closed when nothing names it any more. Responses go through the xDS client's one
update path (checked, applied, then ACKed or NACKed on this stream)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import trio
from envoy.config.core.v3 import base_pb2
from google.protobuf.message import Message

from meshcore.config.grpc_tls import GrpcTls
from meshcore.config.xds_resources import SECRET

from .backoff import Backoff
from .channel import ChannelFactory
from .delta import DeltaProtocol
from .sotw import SotwProtocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SdsServer:
    """Where a separate SDS stream goes."""

    cluster: str
    delta: bool


OnResponse = Callable[[Any, "SdsLink"], Awaitable[None]]


class SdsLink:
    """One SDS stream and its subscription (kept across reconnects)."""

    def __init__(
        self, server: SdsServer, target: str, node: base_pb2.Node, tls: GrpcTls | None = None
    ) -> None:
        self.server = server
        self.target = target
        self.tls = tls
        self.protocol: SotwProtocol | DeltaProtocol
        if server.delta:
            self.protocol = DeltaProtocol(node, ())
        else:
            self.protocol = SotwProtocol(node, (), node_on_first_only=False)
        self.stream: Any = None
        self.scope = trio.CancelScope()

    def send(self, request: Message | None) -> None:
        if request is not None and self.stream is not None:
            self.stream.send(request)

    def set_names(self, names: set[str]) -> None:
        self.send(self.protocol.set_names(SECRET, names))

    async def run(
        self,
        channel_factory: ChannelFactory,
        held: Callable[[], Mapping[str, Mapping[str, str]]],
        on_response: OnResponse,
        backoff: Backoff,
    ) -> None:
        """Keeps the stream open until `scope` is cancelled."""
        from .ads_stream import StreamClosed, open_stream

        with self.scope:
            channel = channel_factory(self.target, self.tls)
            try:
                while True:
                    reason = "stream closed"
                    try:
                        async with open_stream(
                            channel, delta=self.server.delta, secrets_only=True
                        ) as stream:
                            self.stream = stream
                            for request in self.protocol.new_stream(held()):
                                stream.send(request)
                            first = True
                            while True:
                                response = await stream.receive()
                                if first:
                                    first = False
                                    backoff.reset()
                                await on_response(response, self)
                    except StreamClosed as exc:
                        reason = str(exc)
                    finally:
                        self.stream = None
                    delay = backoff.next()
                    log.warning(
                        "SDS stream to %s (%s) ended: %s; reconnecting in %.2fs",
                        self.server.cluster,
                        self.target,
                        reason,
                        delay,
                    )
                    await trio.sleep(delay)
            finally:
                channel.close()

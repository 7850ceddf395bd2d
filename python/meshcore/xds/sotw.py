"""State-of-the-world ADS (StreamAggregatedResources): per type URL the last accepted
version, the last nonce and the subscribed names; the requests (first, ACK, NACK,
subscription changes) and the responses as `Update`s.

LDS and CDS are wildcard subscriptions whose every response is complete (a resource absent
from it is removed); RDS and EDS name their resources, and a response carries some of them.
A `Resource` wrapper (`envoy.service.discovery.v3.Resource`) carries a TTL; one without a
body is a heartbeat."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf.any_pb2 import Any as AnyMessage
from google.rpc import status_pb2

from .resources import (
    TYPE_ORDER,
    WILDCARD_TYPES,
    Incoming,
    Rejected,
    Update,
    decode,
    resource_name,
    short_type,
)

RESOURCE_WRAPPER = "type.googleapis.com/envoy.service.discovery.v3.Resource"
# google.rpc.Code.INVALID_ARGUMENT, as Envoy's NACKs carry.
INVALID_ARGUMENT = 3


def ttl_seconds(resource: discovery_pb2.Resource) -> float | None:
    if not resource.HasField("ttl"):
        return None
    return float(resource.ttl.seconds + resource.ttl.nanos / 1e9)


def where(type_url: str, index: int) -> str:
    return f"{short_type(type_url)} response: resources[{index}]"


def wrong_type(type_url: str, index: int, sent: str) -> str:
    """The problem of a resource of type `sent` at `index` of a `type_url` response."""
    return f"{where(type_url, index)}: a {short_type(sent)} in a {short_type(type_url)} response"


def unwrap(
    type_url: str,
    packed: AnyMessage,
    version: str,
    problems: list[str],
    index: int,
    known: Mapping[bytes, str] | None = None,
) -> Incoming | None:
    """One resource of a response (bare, or in a `Resource` wrapper); one whose bytes are
    in `known` (accepted resources by bytes) is not decoded again."""
    ttl = None
    name = ""
    if packed.type_url == RESOURCE_WRAPPER:
        wrapper = discovery_pb2.Resource()
        try:
            wrapper.ParseFromString(packed.value)
        except Exception as exc:
            problems.append(f"{where(type_url, index)}: cannot decode Resource: {exc}")
            return None
        ttl = ttl_seconds(wrapper)
        name = wrapper.name
        version = wrapper.version or version
        if not wrapper.HasField("resource"):
            if not name:
                problems.append(f"{where(type_url, index)}: a heartbeat Resource needs a name")
                return None
            return Incoming(name, version, None, b"", ttl, heartbeat=True)
        packed = wrapper.resource
    if packed.type_url != type_url:
        problems.append(wrong_type(type_url, index, packed.type_url))
        return None
    same = known.get(packed.value) if known is not None else None
    if same is not None:
        return Incoming(name or same, version, None, packed.value, ttl)
    try:
        msg = decode(type_url, packed.value)
    except ValueError as exc:
        problems.append(f"{where(type_url, index)}: {exc}")
        return None
    return Incoming(name or resource_name(type_url, msg), version, msg, packed.value, ttl)


@dataclass
class _TypeState:
    version: str = ""
    nonce: str = ""
    names: set[str] = field(default_factory=set)
    sent: bool = False


class SotwProtocol:
    """The client side of one type-multiplexed SotW stream (kept across reconnects)."""

    delta = False

    def __init__(
        self, node: base_pb2.Node, wildcard: Iterable[str], *, node_on_first_only: bool
    ) -> None:
        self.node = node
        self.wildcard = set(wildcard) & set(WILDCARD_TYPES)
        self.node_on_first_only = node_on_first_only
        self.types = {t: _TypeState() for t in TYPE_ORDER}
        self._node_sent = False

    def version(self, type_url: str) -> str:
        return self.types[type_url].version

    def _wanted(self, type_url: str) -> bool:
        return type_url in self.wildcard or bool(self.types[type_url].names)

    def _request(
        self, type_url: str, *, version: str, error: str | None = None
    ) -> discovery_pb2.DiscoveryRequest:
        state = self.types[type_url]
        request = discovery_pb2.DiscoveryRequest(
            type_url=type_url, version_info=version, response_nonce=state.nonce
        )
        if type_url not in self.wildcard:
            request.resource_names.extend(sorted(state.names))
        if not self._node_sent or not self.node_on_first_only:
            request.node.CopyFrom(self.node)
            self._node_sent = True
        if error is not None:
            request.error_detail.CopyFrom(status_pb2.Status(code=INVALID_ARGUMENT, message=error))
        state.sent = True
        return request

    def new_stream(
        self, versions: Mapping[str, Mapping[str, str]]
    ) -> list[discovery_pb2.DiscoveryRequest]:
        """The first requests of a (re)opened stream, CDS, EDS, LDS, RDS: each with the
        last accepted version (as Envoy), no nonce, the node on the first."""
        self._node_sent = False
        for state in self.types.values():
            state.nonce = ""
            state.sent = False
        return [
            self._request(t, version=self.types[t].version) for t in TYPE_ORDER if self._wanted(t)
        ]

    def decode(
        self,
        response: discovery_pb2.DiscoveryResponse,
        known: Mapping[bytes, str] | None = None,
    ) -> Update:
        """The response as an `Update`; Rejected if it cannot be read. Resources of RDS and
        EDS that were not asked for are left out (as Envoy); `known`: see `unwrap`."""
        type_url = response.type_url
        if type_url not in self.types:
            raise Rejected([f"unknown type {type_url}"])
        self.types[type_url].nonce = response.nonce
        problems: list[str] = []
        resources = []
        names = self.types[type_url].names
        for index, packed in enumerate(response.resources):
            incoming = unwrap(type_url, packed, response.version_info, problems, index, known)
            if incoming is None:
                continue
            if type_url in self.wildcard or incoming.name in names:
                resources.append(incoming)
        if problems:
            raise Rejected(problems)
        return Update(
            type_url, response.version_info, resources, complete=type_url in self.wildcard
        )

    def ack(self, response: discovery_pb2.DiscoveryResponse) -> discovery_pb2.DiscoveryRequest:
        state = self.types[response.type_url]
        state.version = response.version_info
        return self._request(response.type_url, version=state.version)

    def nack(
        self, response: discovery_pb2.DiscoveryResponse, detail: str
    ) -> discovery_pb2.DiscoveryRequest | None:
        """The NACK: the previous accepted version, this response's nonce, the error."""
        if response.type_url not in self.types:
            return None
        state = self.types[response.type_url]
        return self._request(response.type_url, version=state.version, error=detail)

    def set_names(
        self, type_url: str, names: AbstractSet[str]
    ) -> discovery_pb2.DiscoveryRequest | None:
        """The request that changes an RDS/EDS subscription (None: nothing to send)."""
        state = self.types[type_url]
        if type_url in self.wildcard or names == state.names:
            return None
        state.names = set(names)
        if not names and not state.sent:
            return None
        return self._request(type_url, version=state.version)

"""Delta ADS (DeltaAggregatedResources): subscriptions per type URL changed with
`resource_names_subscribe` / `resource_names_unsubscribe`, responses that carry only what
changed (`resources`, each with its own version) and what went away (`removed_resources`),
ACK/NACK by nonce, and on a new stream the versions already held
(`initial_resource_versions`) so that the server sends only what changed meanwhile.

LDS and CDS are wildcard subscriptions (an empty first subscribe list, as Envoy sends).
A `Resource` with a `ttl` expires unless refreshed; one without a body is a heartbeat."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from .resources import (
    TYPE_ORDER,
    WILDCARD_TYPES,
    Incoming,
    Rejected,
    Update,
    decode,
)
from .sotw import INVALID_ARGUMENT, ttl_seconds, where, wrong_type


@dataclass
class _TypeState:
    nonce: str = ""
    names: set[str] = field(default_factory=set)
    sent: bool = False


class DeltaProtocol:
    """The client side of one type-multiplexed delta stream (kept across reconnects)."""

    delta = True

    def __init__(self, node: base_pb2.Node, wildcard: Iterable[str]) -> None:
        self.node = node
        self.wildcard = set(wildcard) & set(WILDCARD_TYPES)
        self.types = {t: _TypeState() for t in TYPE_ORDER}
        self.system_versions: dict[str, str] = {}
        self._node_sent = False

    def version(self, type_url: str) -> str:
        return self.system_versions.get(type_url, "")

    def _request(self, type_url: str, **fields: object) -> discovery_pb2.DeltaDiscoveryRequest:
        request = discovery_pb2.DeltaDiscoveryRequest(type_url=type_url, **fields)
        if not self._node_sent:  # delta streams carry the node on the first request only
            request.node.CopyFrom(self.node)
            self._node_sent = True
        self.types[type_url].sent = True
        return request

    def new_stream(
        self, versions: Mapping[str, Mapping[str, str]]
    ) -> list[discovery_pb2.DeltaDiscoveryRequest]:
        """The first request per type of a (re)opened stream: the subscription and the
        versions of the resources already held."""
        self._node_sent = False
        requests = []
        for type_url in TYPE_ORDER:
            state = self.types[type_url]
            state.nonce = ""
            state.sent = False
            if type_url not in self.wildcard and not state.names:
                continue
            held = dict(versions.get(type_url, {}))
            if type_url not in self.wildcard:
                held = {n: v for n, v in held.items() if n in state.names}
            requests.append(
                self._request(
                    type_url,
                    resource_names_subscribe=sorted(state.names),
                    initial_resource_versions=held,
                )
            )
        return requests

    def decode(
        self,
        response: discovery_pb2.DeltaDiscoveryResponse,
        known: Mapping[bytes, str] | None = None,
    ) -> Update:
        """The response as an `Update` (`known` is for the SotW protocol's signature: a
        delta response carries changes only)."""
        type_url = response.type_url
        if type_url not in self.types:
            raise Rejected([f"unknown type {type_url}"])
        self.types[type_url].nonce = response.nonce
        problems: list[str] = []
        resources = []
        for index, resource in enumerate(response.resources):
            if not resource.name:
                problems.append(f"{where(type_url, index)}: name is required")
                continue
            ttl = ttl_seconds(resource)
            if not resource.HasField("resource"):
                resources.append(
                    Incoming(resource.name, resource.version, None, b"", ttl, heartbeat=True)
                )
                continue
            if resource.resource.type_url != type_url:
                problems.append(wrong_type(type_url, index, resource.resource.type_url))
                continue
            try:
                msg = decode(type_url, resource.resource.value)
            except ValueError as exc:
                problems.append(f"{where(type_url, index)}: {exc}")
                continue
            resources.append(
                Incoming(resource.name, resource.version, msg, resource.resource.value, ttl)
            )
        if problems:
            raise Rejected(problems)
        removed = list(response.removed_resources)
        return Update(type_url, response.system_version_info, resources, removed)

    def ack(
        self, response: discovery_pb2.DeltaDiscoveryResponse
    ) -> discovery_pb2.DeltaDiscoveryRequest:
        self.system_versions[response.type_url] = response.system_version_info
        return self._request(response.type_url, response_nonce=response.nonce)

    def nack(
        self, response: discovery_pb2.DeltaDiscoveryResponse, detail: str
    ) -> discovery_pb2.DeltaDiscoveryRequest | None:
        if response.type_url not in self.types:
            return None
        return self._request(
            response.type_url,
            response_nonce=response.nonce,
            error_detail=status_pb2.Status(code=INVALID_ARGUMENT, message=detail),
        )

    def set_names(
        self, type_url: str, names: AbstractSet[str]
    ) -> discovery_pb2.DeltaDiscoveryRequest | None:
        """The request that changes an RDS/EDS subscription (None: nothing to send)."""
        state = self.types[type_url]
        if type_url in self.wildcard or names == state.names:
            return None
        added, gone = sorted(names - state.names), sorted(state.names - names)
        state.names = set(names)
        if not state.sent and not added:
            return None
        return self._request(
            type_url, resource_names_subscribe=added, resource_names_unsubscribe=gone
        )

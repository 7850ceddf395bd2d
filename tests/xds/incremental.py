"""Shared pieces of the tests that compare an incremental apply (EDS in place, listener or
route changes over the applied clusters) with applying the same resources afresh: an
`XdsClient` on a recording stream and sink, and the states compared (the engine's, the
/config_dump's and the store's)."""

from __future__ import annotations

import copy
from typing import Any

from envoy.service.discovery.v3 import discovery_pb2
from meshcore.lifecycle.control_stats import ControlStats
from meshcore.xds.client import XdsClient
from meshcore.xds.resources import ResourceStore

from .builders import ASSIGNMENT, name_of, xds_bootstrap
from .fakes import FakeSink
from .harness import load_bootstrap


class Stream:
    """Records what the client sends (ACKs and NACKs)."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, request: Any) -> None:
        self.sent.append(request)

    def acked(self, nonce: str) -> bool:
        """The response `nonce` was ACKed (subscription changes may follow the ACK)."""
        answers = [r for r in self.sent if r.response_nonce == nonce]
        return len(answers) == 1 and not answers[0].HasField("error_detail")


def response(
    type_url: str, messages: list[Any], nonce: str, removed: tuple[str, ...] = ()
) -> discovery_pb2.DeltaDiscoveryResponse:
    out = discovery_pb2.DeltaDiscoveryResponse(
        type_url=type_url, nonce=nonce, system_version_info=nonce
    )
    for message in messages:
        resource = out.resources.add()
        resource.name = name_of(type_url, message)
        resource.version = "v"
        resource.resource.Pack(message)
    out.removed_resources.extend(removed)
    return out


class MarkingSink(FakeSink):
    """A FakeSink that notes how many endpoint updates preceded each whole config."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[int] = []

    async def apply_xds(
        self, config: Any, clusters_changed: bool = True, clusters: Any = None
    ) -> None:
        await super().apply_xds(config, clusters_changed, clusters)
        self.marks.append(len(self.endpoint_updates))


def new_client(sink: FakeSink) -> tuple[XdsClient, Stream]:
    config = load_bootstrap(xds_bootstrap(18000, node="n", delta=True))
    out = XdsClient(config, sink, ControlStats())
    stream = Stream()
    out._stream = stream
    return out, stream


def engine_state(sink: MarkingSink) -> dict[str, Any]:
    """What the engine holds: the listeners of the last config, and the clusters of the last
    one whose clusters changed (`Engine.apply_listeners` keeps them as they are) with the
    endpoint updates made since (as `Engine.update_endpoints` swaps them)."""
    last = max(i for i, changed in enumerate(sink.clusters_changed) if changed)
    snapshot = copy.deepcopy(sink.snapshot)
    snapshot["clusters"] = copy.deepcopy(sink.configs[last].snapshot["clusters"])
    by_name = {c["name"]: c for c in snapshot["clusters"]}
    for updates in sink.endpoint_updates[sink.marks[last] :]:
        for cluster, endpoints in updates.items():
            by_name[cluster]["endpoints"] = endpoints
    return snapshot


def dump(client: XdsClient) -> dict[str, Any]:
    """/config_dump's dynamic parts without the times of acceptance."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "last_updated"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    out: dict[str, Any] = strip(client.dump(include_eds=True))
    return out


def store_state(store: ResourceStore) -> dict[str, Any]:
    view = store.view
    return {
        "accepted": {
            t: {n: e.raw for n, e in entries.items()} for t, entries in store.accepted.items()
        },
        "endpoints": view.endpoints,
        "clusters": list(view.clusters),
        "routes": sorted(view.routes),
        "listeners": {n: a.snapshot for n, a in view.listeners.items()},
        "warming": (view.warming_clusters, view.warming_listeners),
        "waiting": view.waiting,
        "retained": view.retained,
        "users": {n: sorted(c) for n, c in view.users.items()},
        "wanted": {t: store.wanted(t) for t in (ASSIGNMENT,)},
        "secret_refs": store.secret_refs(),
    }

"""The incremental EDS path (endpoint changes of serving clusters, applied in place without
rebuilding the view or copying the accepted resources) leaves the same state as applying
the same resources afresh: the engine's clusters and hosts, /config_dump, the store."""

from __future__ import annotations

import copy
from typing import Any

from envoy.service.discovery.v3 import discovery_pb2
from meshcore.lifecycle.control_stats import ControlStats
from meshcore.xds.client import XdsClient
from meshcore.xds.resources import ResourceStore

from .builders import (
    ASSIGNMENT,
    CLUSTER,
    LISTENER,
    ROUTE_CONFIG,
    assignment,
    eds_cluster,
    listener,
    name_of,
    route_config,
    xds_bootstrap,
)
from .fakes import FakeSink
from .harness import load_bootstrap

HOST = ("10.0.0.1", 80)
CLUSTERS = [("s0", None), ("s1", None), ("s2", "s2-svc"), ("s3", "s2-svc"), ("s4", None)]
SERVICES = ["s0", "s1", "s2-svc", "s4"]


class _Stream:
    """Records what the client sends (ACKs and NACKs)."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, request: Any) -> None:
        self.sent.append(request)


def _response(
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


def _client(sink: FakeSink) -> tuple[XdsClient, _Stream]:
    config = load_bootstrap(xds_bootstrap(18000, node="n", delta=True))
    client = XdsClient(config, sink, ControlStats())
    stream = _Stream()
    client._stream = stream
    return client, stream


async def _load(client: XdsClient, hosts: dict[str, list[tuple[str, int]]]) -> None:
    """Clusters, a listener routing to s0 (RDS), and the assignments `hosts`."""
    clusters = [eds_cluster(name, service) for name, service in CLUSTERS]
    await client._on_response(_response(CLUSTER, clusters, "c"))
    await client._on_response(_response(LISTENER, [listener("l", 0, rds="r")], "l"))
    await client._on_response(_response(ROUTE_CONFIG, [route_config("r", "s0")], "r"))
    assignments = [assignment(name, eps) for name, eps in hosts.items()]
    await client._on_response(_response(ASSIGNMENT, assignments, "e"))


class _MarkingSink(FakeSink):
    """A FakeSink that notes how many endpoint updates preceded each whole config."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[int] = []

    async def apply_xds(self, config: Any, clusters_changed: bool = True) -> None:
        await super().apply_xds(config, clusters_changed)
        self.marks.append(len(self.endpoint_updates))


def _engine_state(sink: _MarkingSink) -> dict[str, Any]:
    """What the engine holds: the last whole snapshot with the endpoint updates made since
    (as `Engine.update_endpoints` swaps them)."""
    snapshot = copy.deepcopy(sink.snapshot)
    by_name = {c["name"]: c for c in snapshot["clusters"]}
    for updates in sink.endpoint_updates[sink.marks[-1] :]:
        for cluster, endpoints in updates.items():
            by_name[cluster]["endpoints"] = endpoints
    return snapshot


def _dump(client: XdsClient) -> dict[str, Any]:
    """/config_dump's dynamic parts without the times of acceptance."""
    dump = client.dump(include_eds=True)

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "last_updated"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    out: dict[str, Any] = strip(dump)
    return out


def _store_state(store: ResourceStore) -> dict[str, Any]:
    view = store.view
    return {
        "accepted": {
            t: {n: e.raw for n, e in entries.items()} for t, entries in store.accepted.items()
        },
        "endpoints": view.endpoints,
        "clusters": sorted(view.clusters),
        "warming": (view.warming_clusters, view.warming_listeners),
        "users": {n: sorted(c) for n, c in view.users.items()},
        "wanted": store.wanted(ASSIGNMENT),
    }


FINAL = {
    "s0": [HOST],
    "s1": [("10.0.0.2", 80), ("10.0.0.3", 81)],
    "s2-svc": [("10.0.0.4", 80)],
    "s4": [HOST],
}


async def test_incremental_endpoint_changes_equal_a_fresh_apply() -> None:
    sink = _MarkingSink()
    client, stream = _client(sink)
    await _load(client, {name: [HOST] for name in SERVICES})
    configs = len(sink.configs)
    entries, view = client.store.accepted[ASSIGNMENT], client.store.view
    changed = [assignment("s1", FINAL["s1"]), assignment("s2-svc", FINAL["s2-svc"])]
    await client._on_response(_response(ASSIGNMENT, changed, "e2"))
    assert len(sink.configs) == configs  # no whole new config: endpoint updates only
    # Changed in place: neither the accepted assignments copied nor the view rebuilt.
    assert client.store.accepted[ASSIGNMENT] is entries and client.store.view is view
    assert sink.endpoint_updates[-1].keys() == {"s1", "s2", "s3"}
    assert stream.sent[-1].response_nonce == "e2" and not stream.sent[-1].HasField("error_detail")

    fresh_sink = _MarkingSink()
    fresh, _ = _client(fresh_sink)
    await _load(fresh, FINAL)

    assert _engine_state(sink) == _engine_state(fresh_sink)
    assert _dump(client) == _dump(fresh)
    assert _store_state(client.store) == _store_state(fresh.store)
    # Planning afresh from the accepted resources (the full rules, as the next CDS or LDS
    # update does) finds nothing for the engine to change.
    restaged = client.store.restage()
    assert restaged.plan.config is None and restaged.plan.endpoint_updates == {}
    assert restaged.view.endpoints == client.store.view.endpoints


async def test_a_rejected_incremental_change_leaves_the_old_state() -> None:
    sink = _MarkingSink()
    client, stream = _client(sink)
    await _load(client, {name: [HOST] for name in SERVICES})
    before = (_engine_state(sink), _dump(client), _store_state(client.store))
    bad = [assignment("s1", [("10.0.0.9", 80)]), assignment("s4", [("not-an-ip", 80)])]
    await client._on_response(_response(ASSIGNMENT, bad, "e2"))
    assert stream.sent[-1].HasField("error_detail")
    assert (_engine_state(sink), _dump(client), _store_state(client.store)) == before


async def test_an_engine_refusal_leaves_the_old_state_and_nacks() -> None:
    sink = _MarkingSink()
    client, stream = _client(sink)
    await _load(client, {name: [HOST] for name in SERVICES})
    before = (_dump(client), _store_state(client.store))
    sink.refuse = ValueError("refused")
    await client._on_response(_response(ASSIGNMENT, [assignment("s1", FINAL["s1"])], "e2"))
    assert stream.sent[-1].HasField("error_detail")
    assert (_dump(client), _store_state(client.store)) == before


async def test_a_removed_assignment_empties_its_clusters_in_place() -> None:
    sink = _MarkingSink()
    client, stream = _client(sink)
    await _load(client, {name: [HOST] for name in SERVICES})
    configs = len(sink.configs)
    await client._on_response(_response(ASSIGNMENT, [], "e2", removed=("s2-svc",)))
    assert len(sink.configs) == configs
    assert sink.endpoint_updates[-1] == {"s2": [], "s3": []}
    assert "s2-svc" not in client.store.accepted[ASSIGNMENT]
    assert "s2-svc" not in client.store.view.endpoints
    assert stream.sent[-1].response_nonce == "e2" and not stream.sent[-1].HasField("error_detail")

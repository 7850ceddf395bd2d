"""The incremental EDS path (endpoint changes of serving clusters, applied in place without
rebuilding the view or copying the accepted resources) leaves the same state as applying
the same resources afresh: the engine's clusters and hosts, /config_dump, the store."""

from __future__ import annotations

from meshcore.xds.client import XdsClient

from .builders import (
    ASSIGNMENT,
    CLUSTER,
    LISTENER,
    ROUTE_CONFIG,
    assignment,
    eds_cluster,
    listener,
    route_config,
)
from .incremental import MarkingSink, dump, engine_state, new_client, response, store_state

HOST = ("10.0.0.1", 80)
CLUSTERS = [("s0", None), ("s1", None), ("s2", "s2-svc"), ("s3", "s2-svc"), ("s4", None)]
SERVICES = ["s0", "s1", "s2-svc", "s4"]


async def _load(client: XdsClient, hosts: dict[str, list[tuple[str, int]]]) -> None:
    """Clusters, a listener routing to s0 (RDS), and the assignments `hosts`."""
    clusters = [eds_cluster(name, service) for name, service in CLUSTERS]
    await client._on_response(response(CLUSTER, clusters, "c"))
    await client._on_response(response(LISTENER, [listener("l", 0, rds="r")], "l"))
    await client._on_response(response(ROUTE_CONFIG, [route_config("r", "s0")], "r"))
    assignments = [assignment(name, eps) for name, eps in hosts.items()]
    await client._on_response(response(ASSIGNMENT, assignments, "e"))


FINAL = {
    "s0": [HOST],
    "s1": [("10.0.0.2", 80), ("10.0.0.3", 81)],
    "s2-svc": [("10.0.0.4", 80)],
    "s4": [HOST],
}


async def test_incremental_endpoint_changes_equal_a_fresh_apply() -> None:
    sink = MarkingSink()
    client, stream = new_client(sink)
    await _load(client, {name: [HOST] for name in SERVICES})
    configs = len(sink.configs)
    entries, view = client.store.accepted[ASSIGNMENT], client.store.view
    changed = [assignment("s1", FINAL["s1"]), assignment("s2-svc", FINAL["s2-svc"])]
    await client._on_response(response(ASSIGNMENT, changed, "e2"))
    assert len(sink.configs) == configs  # no whole new config: endpoint updates only
    # Changed in place: neither the accepted assignments copied nor the view rebuilt.
    assert client.store.accepted[ASSIGNMENT] is entries and client.store.view is view
    assert sink.endpoint_updates[-1].keys() == {"s1", "s2", "s3"}
    assert stream.sent[-1].response_nonce == "e2" and not stream.sent[-1].HasField("error_detail")

    fresh_sink = MarkingSink()
    fresh, _ = new_client(fresh_sink)
    await _load(fresh, FINAL)

    assert engine_state(sink) == engine_state(fresh_sink)
    assert dump(client) == dump(fresh)
    assert store_state(client.store) == store_state(fresh.store)
    # Planning afresh from the accepted resources (the full rules, as the next CDS or LDS
    # update does) finds nothing for the engine to change.
    restaged = client.store.restage()
    assert restaged.plan.config is None and restaged.plan.endpoint_updates == {}
    assert restaged.view.endpoints == client.store.view.endpoints


async def test_a_rejected_incremental_change_leaves_the_old_state() -> None:
    sink = MarkingSink()
    client, stream = new_client(sink)
    await _load(client, {name: [HOST] for name in SERVICES})
    before = (engine_state(sink), dump(client), store_state(client.store))
    bad = [assignment("s1", [("10.0.0.9", 80)]), assignment("s4", [("not-an-ip", 80)])]
    await client._on_response(response(ASSIGNMENT, bad, "e2"))
    assert stream.sent[-1].HasField("error_detail")
    assert (engine_state(sink), dump(client), store_state(client.store)) == before


async def test_an_engine_refusal_leaves_the_old_state_and_nacks() -> None:
    sink = MarkingSink()
    client, stream = new_client(sink)
    await _load(client, {name: [HOST] for name in SERVICES})
    before = (dump(client), store_state(client.store))
    sink.refuse = ValueError("refused")
    await client._on_response(response(ASSIGNMENT, [assignment("s1", FINAL["s1"])], "e2"))
    assert stream.sent[-1].HasField("error_detail")
    assert (dump(client), store_state(client.store)) == before


async def test_a_removed_assignment_empties_its_clusters_in_place() -> None:
    sink = MarkingSink()
    client, stream = new_client(sink)
    await _load(client, {name: [HOST] for name in SERVICES})
    configs = len(sink.configs)
    await client._on_response(response(ASSIGNMENT, [], "e2", removed=("s2-svc",)))
    assert len(sink.configs) == configs
    assert sink.endpoint_updates[-1] == {"s2": [], "s3": []}
    assert "s2-svc" not in client.store.accepted[ASSIGNMENT]
    assert "s2-svc" not in client.store.view.endpoints
    assert stream.sent[-1].response_nonce == "e2" and not stream.sent[-1].HasField("error_detail")

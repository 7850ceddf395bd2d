"""A route (RDS) or listener (LDS) change is planned over the clusters already applied: the
view's cluster side is taken as it is (not rebuilt), the new config shares the applied
clusters and the engine only swaps listeners (`clusters_changed` False). The state it
leaves equals that of applying the same resources afresh: the engine's, /config_dump's,
the store's. Where the change lets a cluster CDS removed go, or the view no longer matches
the accepted resources, the whole view is rebuilt and the result is the same."""

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
    routes_json,
)
from .incremental import MarkingSink, dump, engine_state, new_client, response, store_state

HOST = ("10.0.0.1", 80)
CLUSTERS = ["s0", "s1", "s2"]
HOSTS = {"s0": [HOST], "s1": [("10.0.0.2", 80)], "s2": [("10.0.0.3", 80)]}


async def _load(
    client: XdsClient,
    *,
    route_to: str = "s0",
    stat_prefix: str = "ingress",
    clusters: list[str] = CLUSTERS,
    lds_version: str = "l",
    cds_version: str = "c",
) -> None:
    """Clusters with their assignments, a listener `l` with RDS `r` routing to `route_to`,
    and a listener `m` with inline routes to s2."""
    clusters_sent = [eds_cluster(n) for n in clusters]
    await client._on_response(response(CLUSTER, clusters_sent, cds_version))
    assignments = [assignment(n, HOSTS[n]) for n in clusters]
    await client._on_response(response(ASSIGNMENT, assignments, "e"))
    listeners = [
        listener("l", 0, rds="r", stat_prefix=stat_prefix),
        listener("m", 0, routes=_inline("s2")),
    ]
    await client._on_response(response(LISTENER, listeners, lds_version))
    await client._on_response(response(ROUTE_CONFIG, [route_config("r", route_to)], "r"))


def _inline(cluster: str) -> dict[str, object]:
    return routes_json("inline", cluster)


async def _fresh(**load: object) -> tuple[XdsClient, MarkingSink]:
    sink = MarkingSink()
    client, _ = new_client(sink)
    await _load(client, **load)  # type: ignore[arg-type]
    return client, sink


def _same_state(a: XdsClient, a_sink: MarkingSink, b: XdsClient, b_sink: MarkingSink) -> None:
    assert engine_state(a_sink) == engine_state(b_sink)
    assert dump(a) == dump(b)
    assert store_state(a.store) == store_state(b.store)
    # Planning afresh from the accepted resources (the full rules) finds nothing to change.
    restaged = a.store.restage()
    assert restaged.plan.config is None and restaged.plan.endpoint_updates == {}


async def test_a_route_change_is_planned_over_the_applied_clusters() -> None:
    sink = MarkingSink()
    client, stream = new_client(sink)
    await _load(client)
    view, applied = client.store.view, sink.snapshot

    await client._on_response(response(ROUTE_CONFIG, [route_config("r", "s1")], "r2"))
    assert stream.acked("r2")
    assert sink.clusters_changed[-1] is False
    # Neither the view's cluster side nor the config's clusters were rebuilt.
    assert client.store.view.clusters is view.clusters
    assert client.store.view.endpoints is view.endpoints
    assert sink.snapshot["clusters"] is applied["clusters"]
    routes = sink.listener("l")["filter_chains"][0]["filter"]["http_connection_manager"]
    target = routes["route_config"]["virtual_hosts"][0]["routes"][0]["action"]["route"]
    assert target["target"] == {"cluster": "s1"}

    fresh, fresh_sink = await _fresh(route_to="s1")
    _same_state(client, sink, fresh, fresh_sink)


async def test_a_listener_change_is_planned_over_the_applied_clusters() -> None:
    sink = MarkingSink()
    client, stream = new_client(sink)
    await _load(client)
    view = client.store.view
    listeners = [
        listener("l", 0, rds="r", stat_prefix="renamed"),
        listener("m", 0, routes=_inline("s2")),
    ]
    await client._on_response(response(LISTENER, listeners, "l2"))
    assert stream.acked("l2")
    assert sink.clusters_changed[-1] is False
    assert client.store.view.clusters is view.clusters
    assert sink.listener("l")["filter_chains"][0]["filter"]["http_connection_manager"][
        "stat_prefix"
    ] == ("renamed")

    fresh, fresh_sink = await _fresh(stat_prefix="renamed", lds_version="l2")
    _same_state(client, sink, fresh, fresh_sink)


async def test_an_unchanged_route_config_applies_nothing() -> None:
    sink = MarkingSink()
    client, stream = new_client(sink)
    await _load(client)
    configs = len(sink.configs)
    await client._on_response(response(ROUTE_CONFIG, [route_config("r", "s0")], "r2"))
    assert stream.acked("r2")
    assert len(sink.configs) == configs and sink.endpoint_updates == []


async def test_a_route_change_that_lets_a_removed_cluster_go_rebuilds_the_view() -> None:
    sink = MarkingSink()
    client, stream = new_client(sink)
    await _load(client, route_to="s1")
    # CDS removes s1: kept (make before break) while the serving route names it.
    remaining = [eds_cluster(n) for n in ("s0", "s2")]
    await client._on_response(response(CLUSTER, remaining, "c2", removed=("s1",)))
    assert client.store.view.retained == {"s1"}
    assert "s1" in sink.cluster_names()

    await client._on_response(response(ROUTE_CONFIG, [route_config("r", "s0")], "r2"))
    assert stream.acked("r2")
    assert sink.clusters_changed[-1] is True  # s1 leaves the engine
    assert "s1" not in sink.cluster_names() and client.store.view.retained == frozenset()

    fresh, fresh_sink = await _fresh(clusters=["s0", "s2"], cds_version="c2")
    assert engine_state(sink) == engine_state(fresh_sink)
    assert dump(client) == dump(fresh)
    # s1's assignment, no longer subscribed to, was dropped after the view was built, from
    # the view too (nothing uses it): the store is as a fresh one.
    state, fresh_state = store_state(client.store), store_state(fresh.store)
    assert "s1" not in state["endpoints"]
    assert state == fresh_state


async def test_a_route_change_keeps_a_retained_cluster_it_still_names() -> None:
    sink = MarkingSink()
    client, stream = new_client(sink)
    await _load(client, route_to="s1")
    remaining = [eds_cluster(n) for n in ("s0", "s2")]
    await client._on_response(response(CLUSTER, remaining, "c2", removed=("s1",)))
    view = client.store.view
    # A listener change that leaves route `r` (and its use of s1) as it is.
    listeners = [listener("l", 0, rds="r", stat_prefix="renamed")]
    await client._on_response(response(LISTENER, listeners, "l2", removed=("m",)))
    assert stream.acked("l2")
    assert sink.clusters_changed[-1] is False
    assert client.store.view.clusters is view.clusters
    assert client.store.view.retained == {"s1"} and "s1" in sink.cluster_names()
    # A changed route config may not name the removed cluster: it waits, the old one serves.
    routes = [
        {"match": {"prefix": "/x"}, "route": {"cluster": "s1"}},
        {"match": {"prefix": "/"}, "route": {"cluster": "s0"}},
    ]
    configs = len(sink.configs)
    await client._on_response(response(ROUTE_CONFIG, [route_config("r", routes=routes)], "r2"))
    assert stream.acked("r2")
    assert client.store.view.waiting == {"route_configs[r]": {"s1"}}
    assert client.store.view.retained == {"s1"} and len(sink.configs) == configs


async def test_a_rejected_route_change_leaves_the_old_state() -> None:
    sink = MarkingSink()
    client, stream = new_client(sink)
    await _load(client)
    before = (engine_state(sink), dump(client), store_state(client.store))
    bad = route_config("r", routes=[{"match": {"safe_regex": {"regex": "("}}, "route": {}}])
    await client._on_response(response(ROUTE_CONFIG, [bad], "r2"))
    last = stream.sent[-1]
    assert last.response_nonce == "r2" and last.error_detail.message.startswith("route_configs[r].")
    assert (engine_state(sink), dump(client), store_state(client.store)) == before


async def test_an_engine_refusal_of_a_route_change_leaves_the_old_state() -> None:
    sink = MarkingSink()
    client, stream = new_client(sink)
    await _load(client)
    before = (dump(client), store_state(client.store))
    sink.refuse = ValueError("refused")
    await client._on_response(response(ROUTE_CONFIG, [route_config("r", "s1")], "r2"))
    assert "the engine refused the update: refused" in stream.sent[-1].error_detail.message
    assert (dump(client), store_state(client.store)) == before
    sink.refuse = None
    await client._on_response(response(ROUTE_CONFIG, [route_config("r", "s1")], "r3"))
    assert stream.acked("r3")
    fresh, fresh_sink = await _fresh(route_to="s1")
    _same_state(client, sink, fresh, fresh_sink)


async def test_after_an_endpoint_removal_in_place_a_route_change_rebuilds_the_view() -> None:
    """An EDS removal applied in place leaves the view serving the emptied cluster, where
    the full rules have it warm: the next route change does not build on that view."""
    sink = MarkingSink()
    client, stream = new_client(sink)
    await _load(client)
    await client._on_response(response(ASSIGNMENT, [], "e2", removed=("s2",)))
    view = client.store.view
    await client._on_response(response(ROUTE_CONFIG, [route_config("r", "s1")], "r2"))
    assert stream.acked("r2")
    assert client.store.view.clusters is not view.clusters
    assert client.store.view.warming_clusters == {"s2"}

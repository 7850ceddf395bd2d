"""The resource store's rules without a stream: staging, warming, make-before-break and
plans (whole config or endpoint updates)."""

from __future__ import annotations

import pytest
from meshcore.xds.resources import Incoming, Rejected, ResourceStore, Update

from tests.support import bootstrap as b

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
    static_cluster,
    xds_bootstrap,
)
from .harness import load_bootstrap


def update(type_url: str, *messages, removed=(), complete=None, version="1") -> Update:
    resources = [
        Incoming(name_of(type_url, m), version, m, m.SerializeToString()) for m in messages
    ]
    if complete is None:
        complete = type_url in (LISTENER, CLUSTER)
    return Update(type_url, version, resources, list(removed), complete)


def apply(store: ResourceStore, u: Update):
    staged = store.stage(u, 0.0)
    store.commit(staged)
    return staged.plan


@pytest.fixture
def store() -> ResourceStore:
    return ResourceStore(load_bootstrap(xds_bootstrap(18000, node="n")), ads=True)


def serving(store: ResourceStore) -> tuple[list[str], list[str]]:
    assert store.applied is not None
    snap = store.applied.snapshot
    return [lst["name"] for lst in snap["listeners"]], [c["name"] for c in snap["clusters"]]


def routed_cluster(store: ResourceStore, listener_name: str) -> object:
    assert store.applied is not None
    lst = next(x for x in store.applied.snapshot["listeners"] if x["name"] == listener_name)
    routes = lst["filter_chains"][0]["filter"]["http_connection_manager"]["route_config"]
    return routes["virtual_hosts"][0]["routes"][0]["action"]["route"]["target"]["cluster"]


def test_a_listener_warms_until_its_routes_and_their_clusters_serve(store) -> None:
    apply(store, update(CLUSTER, eds_cluster("a")))
    apply(store, update(LISTENER, listener("l", 0, rds="r")))
    assert store.view.warming_listeners == {"l"}
    assert store.wanted(ROUTE_CONFIG) == {"r"} and store.wanted(ASSIGNMENT) == {"a"}
    apply(store, update(ROUTE_CONFIG, route_config("r", "a")))
    assert store.view.warming_listeners == {"l"}  # a still has no endpoints
    plan = apply(store, update(ASSIGNMENT, assignment("a", [("10.0.0.1", 80)])))
    assert plan.config is not None
    assert serving(store) == (["l"], ["xds_cluster", "a"])
    assert not store.warming()


def test_a_changed_listener_warms_while_its_old_version_serves(store) -> None:
    apply(store, update(CLUSTER, static_cluster("a", [("10.0.0.1", 80)])))
    apply(store, update(LISTENER, listener("l", 0, rds="r")))
    apply(store, update(ROUTE_CONFIG, route_config("r", "a")))
    apply(store, update(LISTENER, listener("l", 0, rds="r2")))
    assert store.view.warming_listeners == {"l"}
    assert routed_cluster(store, "l") == "a"
    assert store.wanted(ROUTE_CONFIG) == {"r", "r2"}


def test_a_removed_cluster_stays_while_an_unchanged_route_names_it(store) -> None:
    apply(store, update(CLUSTER, static_cluster("a", [("10.0.0.1", 80)]), static_cluster("b", [])))
    apply(store, update(LISTENER, listener("l", 0, rds="r"), listener("m", 0, rds="s")))
    apply(store, update(ROUTE_CONFIG, route_config("r", "a"), route_config("s", "b")))
    plan = apply(store, update(CLUSTER, static_cluster("b", [])))
    assert plan.config is None  # nothing to change in the engine yet
    assert sorted(serving(store)[1]) == ["a", "b", "xds_cluster"]
    # An unrelated route change is accepted although r still names the removed a...
    apply(store, update(ROUTE_CONFIG, route_config("s", "b", routes=None)))
    # ...but a new route to it waits (for CDS to bring a back), the old one serving.
    apply(store, update(ROUTE_CONFIG, route_config("s", "a")))
    assert store.view.waiting == {"route_configs[s]": frozenset({"a"})}
    assert routed_cluster(store, "m") == "b"
    apply(store, update(ROUTE_CONFIG, route_config("r", "b"), route_config("s", "b")))
    assert serving(store)[1] == ["xds_cluster", "b"]


def test_endpoint_only_changes_plan_endpoint_updates(store) -> None:
    apply(store, update(CLUSTER, eds_cluster("a"), eds_cluster("b", "b-svc")))
    apply(
        store,
        update(
            ASSIGNMENT,
            assignment("a", [("10.0.0.1", 80)]),
            assignment("b-svc", [("10.0.0.2", 80)]),
        ),
    )
    plan = apply(
        store,
        update(
            ASSIGNMENT,
            assignment("a", [("10.0.0.1", 80)]),
            assignment("b-svc", [("10.0.0.3", 80)]),
            version="2",
        ),
    )
    assert plan.config is None
    assert plan.endpoint_updates == {
        "b": [{"address": "10.0.0.3", "port": 80, "weight": 1, "healthy": True, "priority": 0}]
    }


def test_a_rejected_update_changes_nothing(store) -> None:
    apply(store, update(CLUSTER, static_cluster("a", [("10.0.0.1", 80)])))
    before = store.applied
    with pytest.raises(Rejected) as info:
        store.stage(update(CLUSTER, static_cluster("a", [("not-an-ip", 80)])), 0.0)
    assert info.value.detail.startswith(
        "clusters[a].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address."
        "socket_address.address: malformed IP address: 'not-an-ip'"
    )
    assert store.applied is before
    assert "a" in store.accepted[CLUSTER]


def test_duplicates_and_static_names_are_rejected(store) -> None:
    with pytest.raises(Rejected) as info:
        store.stage(update(CLUSTER, static_cluster("a", []), static_cluster("a", [])), 0.0)
    assert info.value.lines == ["clusters[a]: sent twice in one response"]
    with pytest.raises(Rejected) as info:
        store.stage(update(CLUSTER, static_cluster("xds_cluster", [])), 0.0)
    assert info.value.lines == ["clusters[xds_cluster].name: a static cluster has this name"]


def test_delta_removal_and_heartbeats(store) -> None:
    apply(store, update(CLUSTER, static_cluster("a", []), static_cluster("b", []), complete=False))
    apply(store, update(CLUSTER, removed=["a"], complete=False))
    assert list(store.accepted[CLUSTER]) == ["b"]
    beat = Update(CLUSTER, "2", [Incoming("b", "1", None, b"", ttl_s=5.0, heartbeat=True)])
    store.commit(store.stage(beat, 100.0))
    assert store.accepted[CLUSTER]["b"].expires == 105.0
    assert store.expired(104.0) == {}
    assert store.expired(105.0) == {CLUSTER: ["b"]}


def test_a_warming_listener_on_a_taken_port_is_the_lds_update_s_fault(store) -> None:
    apply(store, update(CLUSTER, eds_cluster("a")))
    with pytest.raises(Rejected) as info:
        store.stage(
            update(LISTENER, listener("l", 10000, rds="r"), listener("m", 10000, rds="s")), 0.0
        )
    assert info.value.lines == [
        "listeners[m].address: 127.0.0.1:10000 is already the address of listener 'l'"
    ]


def _tracing_of(store: ResourceStore, listener_name: str) -> dict:
    assert store.applied is not None
    lst = next(x for x in store.applied.snapshot["listeners"] if x["name"] == listener_name)
    return lst["filter_chains"][0]["filter"]["http_connection_manager"]["tracing"]


def test_an_lds_listener_without_provider_inherits_the_bootstraps_or_is_nacked() -> None:
    routes = b.route_config([b.virtual_host("all", ["*"], [b.route({"prefix": "/"}, cluster="a")])])
    traced = listener("l", 0, routes=routes, tracing={"overall_sampling": {"value": 50}})
    bootstrap = xds_bootstrap(18000, node="n")
    bootstrap["tracing"] = {
        "http": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "grpc_service": {"envoy_grpc": {"cluster_name": "xds_cluster"}},
            },
        }
    }
    store = ResourceStore(load_bootstrap(bootstrap), ads=True)
    apply(store, update(CLUSTER, static_cluster("a", [("10.0.0.1", 80)])))
    apply(store, update(LISTENER, traced))
    t = _tracing_of(store, "l")
    assert (t["provider"], t["overall_sampling"]) == ("opentelemetry", 5000)
    assert (t["export"]["kind"], t["export"]["cluster"]) == ("opentelemetry_grpc", "xds_cluster")

    bare = ResourceStore(load_bootstrap(xds_bootstrap(18000, node="n")), ads=True)
    apply(bare, update(CLUSTER, static_cluster("a", [("10.0.0.1", 80)])))
    with pytest.raises(Rejected) as info:
        bare.stage(update(LISTENER, traced), 0.0)
    assert info.value.lines == [
        "listeners[l].filter_chains[0].filters[0].typed_config.tracing.provider: a tracing "
        "provider is required (here or in the bootstrap's `tracing.http`)"
    ]

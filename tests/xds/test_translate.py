"""xDS resources through the static bootstrap's checks and translation
(`meshcore.config.xds_resources`): problems name the resource, the snapshot is the same
shape as a static one."""

from __future__ import annotations

import pytest
from meshcore.config import ConfigError, load_text
from meshcore.config.xds_resources import translate_resources

from tests.support import bootstrap as b

from .builders import (
    assignment,
    eds_cluster,
    listener,
    route_config,
    static_cluster,
    xds_bootstrap,
)
from .harness import load_bootstrap


def static_config():
    return load_bootstrap(xds_bootstrap(18000, node="n"))


def problems(**resources) -> list[str]:
    with pytest.raises(ConfigError) as info:
        translate_resources(static_config(), **resources)
    return [str(p) for p in info.value.problems]


def test_a_full_set_becomes_one_snapshot_with_routes_inlined_and_endpoints_filled() -> None:
    config = translate_resources(
        static_config(),
        listeners=[listener("ingress", 10000, rds="r")],
        route_configs=[route_config("r", "backend")],
        clusters=[eds_cluster("backend", "backend-svc")],
        assignments=[assignment("backend-svc", [("10.0.0.1", 80)])],
    )
    names = [c["name"] for c in config.snapshot["clusters"]]
    assert names == ["xds_cluster", "backend"]
    backend = config.snapshot["clusters"][1]
    assert backend["endpoints"] == [
        {"address": "10.0.0.1", "port": 80, "weight": 1, "healthy": True, "priority": 0}
    ]
    [ingress] = config.snapshot["listeners"]
    routes = ingress["filter_chains"][0]["filter"]["http_connection_manager"]["route_config"]
    assert routes["name"] == "r"
    assert routes["virtual_hosts"][0]["domains"] == ["*"]
    assert config.dynamic is not None and config.dynamic.ads is not None


def test_the_same_listener_translates_like_a_static_one() -> None:
    routes = b.route_config([b.virtual_host("all", ["*"], [b.route({"prefix": "/"}, cluster="c")])])
    static = load_text(
        __import__("yaml").safe_dump(
            b.bootstrap(
                [b.http_listener("l", 10001, routes)], [b.static_cluster("c", [("10.0.0.2", 80)])]
            )
        )
    )
    dynamic = translate_resources(
        static_config(),
        listeners=[listener("l", 10001, routes=routes)],
        clusters=[static_cluster("c", [("10.0.0.2", 80)])],
    )
    assert dynamic.snapshot["listeners"] == static.snapshot["listeners"]
    assert dynamic.snapshot["clusters"][1:] == static.snapshot["clusters"]


def test_unsupported_fields_and_pgv_rules_are_named_per_resource() -> None:
    found = problems(
        clusters=[
            eds_cluster("a", lb_policy="CLUSTER_PROVIDED"),
            static_cluster("b", [("10.0.0.1", 70000 % 65536)], connect_timeout="-1s"),
        ],
        assignments=[assignment("a", [("10.0.0.1", 1)])],
    )
    assert "clusters[a].lb_policy: CLUSTER_PROVIDED is not supported" in found
    assert any(p.startswith("clusters[b].connect_timeout:") for p in found), found


def test_missing_dependencies_and_name_clashes() -> None:
    found = problems(
        listeners=[listener("ingress", 10000, rds="missing")],
        clusters=[eds_cluster("backend"), static_cluster("xds_cluster", [("10.0.0.1", 1)])],
        route_configs=[route_config("r", "nowhere")],
    )
    assert sorted(found) == [
        "clusters[backend]: no ClusterLoadAssignment 'backend' for this EDS cluster",
        "clusters[xds_cluster].name: a static cluster has this name",
        "listeners[ingress]: no RouteConfiguration 'missing' for this listener's rds",
        "route_configs[r].virtual_hosts[0].routes[0].route.cluster: unknown cluster 'nowhere' "
        "(not a static cluster, not from CDS)",
    ]


def test_two_listeners_on_one_port_are_refused() -> None:
    found = problems(
        listeners=[
            listener("a", 10000, routes=b.route_config([])),
            listener("b", 10000, routes=b.route_config([])),
        ]
    )
    assert found == ["listeners[b].address: 127.0.0.1:10000 is already the address of listener 'a'"]


def test_rds_over_a_file_source_is_refused() -> None:
    bad = listener("a", 10000, rds="r")
    hcm = bad.filter_chains[0].filters[0]
    from envoy.extensions.filters.network.http_connection_manager.v3 import (
        http_connection_manager_pb2 as hcm_pb2,
    )

    manager = hcm_pb2.HttpConnectionManager()
    hcm.typed_config.Unpack(manager)
    manager.rds.config_source.ClearField("ads")
    manager.rds.config_source.path_config_source.path = "/tmp/r.yaml"
    hcm.typed_config.Pack(manager)
    found = problems(listeners=[bad], route_configs=[route_config("r", "xds_cluster")])
    assert (
        "route_configs[r].virtual_hosts[0].routes[0].route.cluster: cluster 'xds_cluster' has "
        "HTTP/2 options; routes cannot use it yet"
    ) in found
    assert (
        "listeners[a].filter_chains[0].filters[0].typed_config.rds.config_source: only `ads: {}` "
        "is supported (RDS over the ADS stream)"
    ) in found


ZIPKIN = "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig"
_ZIPKIN_HTTP = {
    "name": "envoy.tracers.zipkin",
    "typed_config": {
        "@type": ZIPKIN,
        "collector_cluster": "xds_cluster",
        "collector_endpoint": "/api/v2/spans",
        "collector_endpoint_version": "HTTP_JSON",
        "trace_id_128bit": True,
    },
}


def _traced_listener() -> object:
    routes = b.route_config([b.virtual_host("all", ["*"], [b.route({"prefix": "/"}, cluster="c")])])
    return listener("l", 10001, routes=routes, tracing={"random_sampling": {"value": 25}})


def test_an_lds_listener_without_provider_uses_the_bootstrap_tracing() -> None:
    bootstrap = xds_bootstrap(18000, node="n")
    bootstrap["tracing"] = {"http": _ZIPKIN_HTTP}
    config = translate_resources(
        load_bootstrap(bootstrap),
        listeners=[_traced_listener()],
        clusters=[static_cluster("c", [("10.0.0.2", 80)])],
    )
    [lst] = config.snapshot["listeners"]
    t = lst["filter_chains"][0]["filter"]["http_connection_manager"]["tracing"]
    # The bootstrap's provider, the manager's sampling.
    assert (t["provider"], t["random_sampling"], t["trace_id_128bit"]) == ("zipkin", 2500, True)
    assert t["export"] == {
        "kind": "zipkin",
        "cluster": "xds_cluster",
        "path": "/api/v2/spans",
        "service_cluster": "test-mesh",
    }
    assert "provider_from_bootstrap" not in t


def test_an_lds_listener_without_provider_and_no_bootstrap_tracing_is_refused() -> None:
    found = problems(
        listeners=[_traced_listener()], clusters=[static_cluster("c", [("10.0.0.2", 80)])]
    )
    assert found == [
        "listeners[l].filter_chains[0].filters[0].typed_config.tracing.provider: a tracing "
        "provider is required (here or in the bootstrap's `tracing.http`)"
    ]


def test_lds_tracers_are_numbered_with_the_static_ones_and_get_the_node() -> None:
    own = {
        "name": "envoy.tracers.opentelemetry",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
            "grpc_service": {"envoy_grpc": {"cluster_name": "xds_cluster"}},
        },
    }
    static_routes = b.route_config(
        [b.virtual_host("s", ["*"], [b.route({"prefix": "/"}, direct_response={"status": 200})])]
    )
    bootstrap = xds_bootstrap(
        18000,
        node="n",
        listeners=[b.http_listener("s", 10002, static_routes, tracing={"provider": own})],
    )
    bootstrap["node"]["locality"] = {"zone": "z1"}
    bootstrap["tracing"] = {"http": _ZIPKIN_HTTP}
    pushed = _traced_listener()
    config = translate_resources(
        load_bootstrap(bootstrap),
        listeners=[pushed],
        clusters=[static_cluster("c", [("10.0.0.2", 80)])],
    )
    s, lds = (
        lst["filter_chains"][0]["filter"]["http_connection_manager"]["tracing"]
        for lst in config.snapshot["listeners"]
    )
    assert (s["tracer"], s["export"]["kind"]) == (0, "opentelemetry_grpc")
    assert (lds["tracer"], lds["export"]["kind"]) == (1, "zipkin")
    assert (lds["node_id"], lds["zone"], lds["export"]["service_cluster"]) == (
        "n",
        "z1",
        "test-mesh",
    )
    # The same listener translated again (its cached snapshot was not renumbered in place).
    again = translate_resources(
        load_bootstrap(bootstrap),
        listeners=[pushed],
        clusters=[static_cluster("c", [("10.0.0.2", 80)])],
    )
    assert again.snapshot["listeners"] == config.snapshot["listeners"]

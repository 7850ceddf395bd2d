"""Every set field meshcore does not implement is a problem naming its path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_pb2
from google.protobuf import json_format
from meshcore.config import unsupported
from meshcore.config.errors import Problems
from meshcore.config.supported import HCM as HCM_TYPE_NAME
from meshcore.config.supported import MESSAGES, markdown_table
from meshcore.config.type_urls import descriptor_for

from .builders import (
    CLUSTER,
    HCM,
    LB_ENDPOINT,
    LISTENER,
    ROUTE,
    ROUTER_TYPE,
    UPSTREAM_OPTIONS,
    base,
    cluster,
    hcm,
    lb_endpoint,
    listener,
    load,
    problems,
    route,
    static_cluster,
)

README = Path(__file__).resolve().parents[2] / "README.md"
CORS_TYPE = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"
CORS_POLICY = "envoy.extensions.filters.http.cors.v3.CorsPolicy"
RBAC_PER_ROUTE = "envoy.extensions.filters.http.rbac.v3.RBACPerRoute"


def test_unsupported_enum_value_on_the_third_cluster() -> None:
    b = base()
    b["static_resources"]["clusters"] += [static_cluster("b", 8082), static_cluster("c", 8083)]
    cluster(b, 2)["lb_policy"] = "CLUSTER_PROVIDED"
    assert problems(b) == [
        "static_resources.clusters[2].lb_policy: CLUSTER_PROVIDED is not supported"
    ]


def test_unsupported_http_filter_is_named() -> None:
    b = base()
    hcm(b)["http_filters"].insert(
        0, {"name": "envoy.filters.http.cors", "typed_config": {"@type": CORS_TYPE}}
    )
    assert problems(b) == [
        f"{HCM}.http_filters[0]: filter envoy.filters.http.cors is not supported"
    ]


def test_unsupported_network_filter_is_named() -> None:
    b = base()
    listener(b)["filter_chains"][0]["filters"] = [
        {
            "name": "envoy.filters.network.echo",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.echo.v3.Echo",
            },
        }
    ]
    assert problems(b) == [
        f"{LISTENER}.filter_chains[0].filters[0]: filter "
        "envoy.filters.network.echo is not supported"
    ]


def test_router_with_a_field_set() -> None:
    b = base()
    hcm(b)["http_filters"][0]["typed_config"]["suppress_envoy_headers"] = True
    assert problems(b) == [
        f"{HCM}.http_filters[0].typed_config.suppress_envoy_headers: suppress_envoy_headers is "
        "not supported"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [("HTTP2", None), ("HTTP3", "HTTP3 is not supported")],
)
def test_codec_types(value: str, message: str | None) -> None:
    b = base()
    hcm(b)["codec_type"] = value
    assert problems(b) == ([f"{HCM}.codec_type: {message}"] if message else [])


def test_rds_in_a_static_listener() -> None:
    b = base()
    del hcm(b)["route_config"]
    hcm(b)["rds"] = {"route_config_name": "r", "config_source": {"ads": {}}}
    assert problems(b) == [
        f"{HCM}.rds: rds is supported only in listeners from LDS (dynamic_resources) yet"
    ]


def test_access_log_on_the_listener() -> None:
    """The listener's access_log is supported on an http_connection_manager listener too
    (a line per connection: test_translate_network.py, tests/integration/
    test_listener_access_log.py)."""
    b = base()
    listener(b)["access_log"] = [
        {
            "name": "envoy.access_loggers.stdout",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3."
                "StdoutAccessLog"
            },
        }
    ]
    assert problems(b) == []


def test_cluster_tls_features_planned_for_later() -> None:
    b = base()
    cluster(b)["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets"
            ".tls.v3.UpstreamTlsContext",
            "allow_renegotiation": True,
        },
    }
    assert problems(b) == [
        f"{CLUSTER}.transport_socket.typed_config.allow_renegotiation: "
        "allow_renegotiation is not supported yet"
    ]


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("EDS", "EDS is supported only in clusters from CDS (dynamic_resources) yet"),
        ("ORIGINAL_DST", "ORIGINAL_DST is not supported"),
    ],
)
def test_cluster_types(kind: str, message: str) -> None:
    b = base()
    cluster(b)["type"] = kind
    assert f"{CLUSTER}.type: {message}" in problems(b)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cluster_manager", {"local_cluster_name": "backend"}),
    ],
)
def test_bootstrap_sections_planned_for_later(name: str, value: Any) -> None:
    b = base()
    b[name] = value
    assert f"{name}: {name} is not supported yet" in problems(b)


def test_stats_config_only_when_empty() -> None:
    b = base()
    b["stats_config"] = {}
    load(b)
    b["stats_config"] = {"use_all_default_tags": False}
    assert problems(b) == ["stats_config: only an empty stats_config is supported"]


def test_layered_runtime_only_with_empty_layers() -> None:
    b = base()
    b["layered_runtime"] = {
        "layers": [
            {"name": "static", "static_layer": {}},
            {"name": "admin", "admin_layer": {}},
        ]
    }
    load(b)
    b["layered_runtime"]["layers"][0]["static_layer"] = {"overload.global_max": 100}
    assert problems(b) == [
        "layered_runtime.layers[0].static_layer: runtime values are not supported"
    ]


def test_fields_that_do_not_change_behaviour_are_accepted() -> None:
    b = base()
    b["node"] = {
        "id": "n1",
        "cluster": "c1",
        "metadata": {"team": "edge"},
        "locality": {"zone": "z1"},
    }
    b["admin"]["access_log"] = [
        {
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3."
                "FileAccessLog",
                "path": "/dev/null",
            },
        }
    ]
    hcm(b)["route_config"]["validate_clusters"] = True
    route(b)["name"] = "all"
    route(b)["metadata"] = {"filter_metadata": {"x": {"y": 1}}}
    listener(b)["stat_prefix"] = "in"
    config = load(b)
    assert (config.node_id, config.node_cluster) == ("n1", "c1")


def test_filter_chain_matcher_raw_buffer_and_other_listener_filters() -> None:
    b = base()
    listener(b)["filter_chain_matcher"] = {
        "on_no_match": {
            "action": {
                "name": "x",
                "typed_config": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": "a",
                },
            }
        }
    }
    listener(b)["filter_chains"][0]["transport_socket"] = {
        "name": "envoy.transport_sockets.raw_buffer",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3."
            "RawBuffer"
        },
    }
    listener(b)["listener_filters"] = [
        {
            "name": "envoy.filters.listener.tls_inspector",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.listener."
                "tls_inspector.v3.TlsInspector",
                "enable_ja3_fingerprinting": True,
            },
        },
        {
            "name": "envoy.filters.listener.original_dst",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.listener."
                "original_dst.v3.OriginalDst"
            },
        },
    ]
    assert sorted(problems(b)) == [
        f"{LISTENER}.filter_chain_matcher: filter_chain_matcher is not supported",
        f"{LISTENER}.filter_chains[0].transport_socket.typed_config: "
        "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer is not supported",
        f"{LISTENER}.listener_filters[0].typed_config.enable_ja3_fingerprinting: "
        "enable_ja3_fingerprinting is not supported yet",
        f"{LISTENER}.listener_filters[1]: filter envoy.filters.listener.original_dst is not "
        "supported",
    ]


def test_udp_and_locality() -> None:
    b = base()
    listener(b)["address"]["socket_address"]["protocol"] = "UDP"
    cluster(b)["load_assignment"]["endpoints"][0]["locality"] = {"zone": "a"}
    assert sorted(problems(b)) == [
        f"{CLUSTER}.load_assignment.endpoints[0].locality: locality is not supported yet",
        f"{LISTENER}.address.socket_address.protocol: UDP is not supported",
    ]


def test_http2_upstream_may_be_routed_to() -> None:
    b = base()
    cluster(b)["typed_extension_protocol_options"] = {
        UPSTREAM_OPTIONS: {
            "@type": f"type.googleapis.com/{UPSTREAM_OPTIONS}",
            "explicit_http_config": {"http2_protocol_options": {}},
        }
    }
    assert problems(b) == []
    b = base()
    cluster(b)["typed_extension_protocol_options"] = {
        UPSTREAM_OPTIONS: {"@type": f"type.googleapis.com/{UPSTREAM_OPTIONS}", "auto_config": {}}
    }
    # auto_config chooses by TLS ALPN: refused on a cleartext cluster, as Envoy does.
    assert problems(b) == [
        f"{CLUSTER}.typed_extension_protocol_options[{UPSTREAM_OPTIONS}].auto_config: "
        "ALPN configured for cluster backend which has a non-ALPN transport socket (auto_config "
        "chooses the protocol by TLS ALPN: set a TLS transport_socket)"
    ]


def test_unsupported_fields_deep_inside_a_route() -> None:
    b = base()
    route(b)["route"]["retry_policy"] = {
        "num_retries": 2,
        "retriable_request_headers": [{"name": "x"}],
    }
    route(b)["route"]["hash_policy"] = [{"filter_state": {"key": "x"}}]
    route(b)["match"]["grpc"] = {}
    lb_endpoint(b)["health_status"] = "DEGRADED"
    assert sorted(problems(b)) == [
        f"{LB_ENDPOINT}.health_status: DEGRADED is not supported",
        f"{ROUTE}.match.grpc: grpc is not supported",
        f"{ROUTE}.route.hash_policy[0].filter_state: filter_state is not supported yet",
        f"{ROUTE}.route.retry_policy.retriable_request_headers: retriable_request_headers is "
        "not supported",
    ]


def test_unsupported_fields_deep_in_a_route_configs_typed_configs() -> None:
    """The table is looked up once per type: a field it does not allow is still reported
    however deep (a recursive RBAC permission in a per-route typed config)."""
    for name in (RBAC_PER_ROUTE, CORS_POLICY, ROUTER_TYPE.rsplit("/", 1)[1]):
        assert descriptor_for(f"type.googleapis.com/{name}") is not None
    template = {"name": "u", "typed_config": {"@type": ROUTER_TYPE}}
    permission = {"and_rules": {"rules": [{"any": True}, {"not_rule": {"uri_template": template}}]}}
    per_route = {
        "@type": f"type.googleapis.com/{RBAC_PER_ROUTE}",
        "rbac": {
            "rules": {
                "policies": {"p": {"permissions": [permission], "principals": [{"any": True}]}}
            }
        },
    }
    action = {"cluster": "a", "retry_policy": {"num_retries": 2, "retry_priority": {"name": "x"}}}
    routes = [
        {"match": {"prefix": "/"}, "route": {"cluster": "a"}},
        {
            "match": {"prefix": "/"},
            "route": action,
            "typed_per_filter_config": {
                "rbac": per_route,
                "cors": {"@type": f"type.googleapis.com/{CORS_POLICY}"},
            },
        },
    ]
    msg = json_format.ParseDict(
        {"name": "r", "virtual_hosts": [{"name": "a", "domains": ["a"], "routes": routes}]},
        route_pb2.RouteConfiguration(),
    )
    msg.virtual_hosts[0].routes[1].route.cluster_not_found_response_code = 1
    found = Problems()
    unsupported.check(msg, "route_configs[r]", found)
    at = "route_configs[r].virtual_hosts[0].routes[1]"
    assert [str(p) for p in found] == [
        f"{at}.route.retry_policy.retry_priority: retry_priority is not supported",
        f"{at}.route.cluster_not_found_response_code: cluster_not_found_response_code is not "
        "supported",
        f"{at}.typed_per_filter_config[cors]: {CORS_POLICY} is not supported",
        f"{at}.typed_per_filter_config[rbac].rbac.rules.policies[p].permissions[0].and_rules"
        ".rules[1].not_rule.uri_template: uri_template is not supported yet",
    ]


def test_enum_values_without_a_name() -> None:
    msg = cluster_pb2.Cluster(name="c", lb_policy=77)
    msg.load_assignment.endpoints.add().lb_endpoints.add().health_status = 99
    found = Problems()
    unsupported.check(msg, "clusters[c]", found)
    assert [str(p) for p in found] == [
        "clusters[c].lb_policy: 77 is not supported",
        "clusters[c].load_assignment.endpoints[0].lb_endpoints[0].health_status: 99 is not "
        "supported",
    ]


def _descriptor(full_name: str) -> Any:
    descriptor = descriptor_for(f"type.googleapis.com/{full_name}")
    assert descriptor is not None, full_name
    return descriptor


def test_the_table_names_real_fields_values_and_types() -> None:
    for full_name, spec in MESSAGES.items():
        descriptor = _descriptor(full_name)
        for name, rule in spec.fields.items():
            fd = descriptor.fields_by_name.get(name)
            assert fd is not None, f"{full_name}.{name}"
            if rule.values is not None:
                assert fd.enum_type is not None
                names = {v.name for v in fd.enum_type.values}
                assert rule.values | rule.later_values <= names, f"{full_name}.{name}"
            for type_full_name in rule.types or ():
                assert type_full_name in MESSAGES, type_full_name
            walked = fd.message_type is not None and not rule.opaque and not rule.empty
            if walked and fd.message_type.GetOptions().map_entry:
                fd = fd.message_type.fields_by_name["value"]
                walked = fd.message_type is not None
            if walked and not fd.message_type.full_name.startswith("google.protobuf."):
                assert fd.message_type.full_name in MESSAGES, f"{full_name}.{name}"
        for name in spec.later:
            assert name in descriptor.fields_by_name, f"{full_name}.{name}"
            assert name not in spec.fields


def test_router_type_is_the_one_in_the_table() -> None:
    assert ROUTER_TYPE.rsplit("/", 1)[1] in MESSAGES


def test_markdown_table_has_a_row_per_message() -> None:
    table = markdown_table()
    lines = table.strip().split("\n")
    assert lines[0] == "| Envoy message | Supported fields | Notes |"
    assert len(lines) == 2 + len(MESSAGES)
    cluster_row = next(
        line for line in lines if line.startswith("| `envoy.config.cluster.v3.Cluster` ")
    )
    assert "`lb_policy` (LEAST_REQUEST, MAGLEV, RANDOM, RING_HASH, ROUND_ROBIN)" in cluster_row
    assert "`circuit_breakers`" in cluster_row and "not yet: `circuit_breakers`" not in cluster_row
    hcm_row = next(line for line in lines if line.startswith("| `" + HCM_TYPE_NAME + "` "))
    for name in ("strip_any_host_port", "strip_matching_host_port", "http_protocol_options"):
        assert f"`{name}`" in hcm_row
    http1_row = next(
        line for line in lines if line.startswith("| `envoy.config.core.v3.Http1ProtocolOptions` ")
    )
    assert "| `accept_http_10`, `default_host_for_http_10` |" in http1_row


def test_readme_shows_the_current_table() -> None:
    """README.md's "Supported Envoy configuration" is `markdown_table()`'s output."""
    readme = README.read_text()
    section = readme[readme.index("## Supported Envoy configuration") :]
    assert markdown_table() in section

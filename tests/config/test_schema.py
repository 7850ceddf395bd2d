"""Parsing into Envoy's Bootstrap message: every schema error with its Envoy-style path."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format
from meshcore.config.errors import Problems
from meshcore.config.schema import _fallback_problem, parse_bootstrap
from meshcore.config.type_urls import message_class

from .builders import (
    CLUSTER,
    HCM,
    HCM_TYPE,
    LB_ENDPOINT,
    LISTENER,
    ROUTE,
    VHOST,
    base,
    cluster,
    hcm,
    lb_endpoint,
    listener,
    load,
    problems,
    route,
    snapshot_cluster,
    vhost,
)


def test_unknown_field_names_the_path_and_suggests_a_name() -> None:
    b = base()
    cluster(b)["conect_timeout"] = "1s"
    assert problems(b) == [
        f'{CLUSTER}.conect_timeout: unknown field (did you mean "connect_timeout"?)'
    ]


def test_unknown_field_inside_a_typed_config() -> None:
    b = base()
    hcm(b)["stat_prefx"] = "x"
    assert problems(b) == [f'{HCM}.stat_prefx: unknown field (did you mean "stat_prefix"?)']


def test_camel_case_names_are_accepted() -> None:
    b = base()
    c = cluster(b)
    c["connectTimeout"] = c.pop("connect_timeout")
    c["loadAssignment"] = c.pop("load_assignment")
    hcm(b)["statPrefix"] = hcm(b).pop("stat_prefix")
    hcm(b)["routeConfig"] = hcm(b).pop("route_config")
    b["staticResources"] = b.pop("static_resources")
    config = load(b)
    assert config.snapshot["clusters"][0]["connect_timeout_ms"] == 250
    hcm_snapshot = config.snapshot["listeners"][0]["filter_chains"][0]["filter"][
        "http_connection_manager"
    ]
    assert hcm_snapshot["stat_prefix"] == "ingress_http"


def test_a_field_given_twice_in_two_spellings() -> None:
    b = base()
    cluster(b)["connectTimeout"] = "2s"
    assert problems(b) == [
        f"{CLUSTER}.connect_timeout: set twice (as connect_timeout and connectTimeout)"
    ]


def test_enum_by_name_and_by_number() -> None:
    b = base()
    cluster(b)["lb_policy"] = "RANDOM"
    assert snapshot_cluster(b)["lb_policy"] == "random"
    cluster(b)["lb_policy"] = 1
    assert snapshot_cluster(b)["lb_policy"] == "least_request"


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("port_value", "abc", 'expected an integer, got "abc"'),
        ("port_value", True, "expected an integer, got true"),
        ("port_value", -1, "-1 is out of range for uint32"),
        ("port_value", 1.5, "expected an integer, got 1.5"),
        ("address", 5, "expected a string, got 5"),
        ("protocol", "SCTP", 'expected one of TCP, UDP, got "SCTP"'),
        ("ipv4_compat", "yes", 'expected true or false, got "yes"'),
    ],
)
def test_bad_scalars(where: str, value: Any, message: str) -> None:
    b = base()
    listener(b)["address"]["socket_address"][where] = value
    assert problems(b) == [f"{LISTENER}.address.socket_address.{where}: {message}"]


def test_numbers_as_strings_are_accepted_as_in_proto_json() -> None:
    b = base()
    listener(b)["address"]["socket_address"]["port_value"] = "10001"
    assert load(b).snapshot["listeners"][0]["port"] == 10001


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5x", 'Duration must end with letter "s": 5x'),
        (5, "Duration JSON value not a string: 5"),
    ],
)
def test_bad_duration(value: Any, message: str) -> None:
    b = base()
    cluster(b)["connect_timeout"] = value
    assert problems(b) == [f"{CLUSTER}.connect_timeout: {message}"]


def test_bad_wrapper_value() -> None:
    b = base()
    lb_endpoint(b)["load_balancing_weight"] = "heavy"
    assert problems(b) == [f'{LB_ENDPOINT}.load_balancing_weight: expected an integer, got "heavy"']


def test_wrong_shapes() -> None:
    b = base()
    vhost(b)["domains"] = "*"
    b["admin"]["address"] = "127.0.0.1:9901"
    b["static_resources"]["clusters"].append(None)
    assert problems(b) == [
        'admin.address: expected a mapping, got "127.0.0.1:9901"',
        f'{VHOST}.domains: expected a list, got "*"',
        "static_resources.clusters[1]: null is not allowed in a list",
    ]


def test_two_members_of_a_oneof() -> None:
    b = base()
    route(b)["match"]["path"] = "/exact"
    assert problems(b) == [f"{ROUTE}.match.path: cannot be set together with prefix (one of them)"]


def test_unknown_type_url_names_path_and_type() -> None:
    b = base()
    filters = hcm(b)["http_filters"]
    filters.insert(
        0, {"name": "acme.auth", "typed_config": {"@type": "type.googleapis.com/acme.Auth"}}
    )
    assert problems(b) == [
        f"{HCM}.http_filters[0].typed_config: unknown type type.googleapis.com/acme.Auth "
        "(not an Envoy v3 message)"
    ]


def test_unknown_type_does_not_stop_other_problems() -> None:
    b = base()
    listener(b)["filter_chains"][0]["filters"][0]["typed_config"]["@type"] = (
        "type.googleapis.com/envoy.nothing.v3.Nothing"
    )
    cluster(b)["lb_policy"] = "CLUSTER_PROVIDED"
    assert problems(b) == [
        f"{HCM}: unknown type type.googleapis.com/envoy.nothing.v3.Nothing "
        "(not an Envoy v3 message)",
        f"{CLUSTER}.lb_policy: CLUSTER_PROVIDED is not supported",
    ]


def test_missing_type_url() -> None:
    b = base()
    del hcm(b)["@type"]
    assert problems(b) == [f"{HCM}: @type is missing"]


def test_type_urls_resolve_to_their_modules_on_demand() -> None:
    cls = message_class(HCM_TYPE)
    assert cls is not None
    assert cls.DESCRIPTOR.full_name.endswith("HttpConnectionManager")
    assert cls.__module__.endswith("http_connection_manager_pb2")
    nested = message_class(
        "type.googleapis.com/envoy.config.cluster.v3.Cluster.LeastRequestLbConfig"
    )
    assert nested is not None and nested.__module__.endswith("cluster_pb2")
    assert message_class("type.googleapis.com/os.path") is None
    assert message_class("type.googleapis.com/envoy.nothing.v3.Nothing") is None


def _fallback(raw: dict[str, Any]) -> list[str]:
    found = Problems()
    bootstrap_class = message_class("type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap")
    assert bootstrap_class is not None
    with pytest.raises(json_format.ParseError) as caught:
        json_format.ParseDict(raw, bootstrap_class())
    _fallback_problem(found, caught.value)
    return [str(p) for p in found]


def test_parse_errors_the_walk_did_not_foresee_take_their_path_from_parsedict() -> None:
    assert _fallback({"static_resources": {"clusters": [{"conect_timeout": "1s"}]}}) == [
        'static_resources.clusters[0]: Message type "envoy.config.cluster.v3.Cluster" has no '
        'field named "conect_timeout"'
    ]
    camel = {"staticResources": {"clusters": [{"name": "a", "lbPolicy": "NOPE"}]}}
    assert _fallback(camel) == [
        "static_resources.clusters[0].lb_policy: Invalid enum value NOPE for enum type "
        "envoy.config.cluster.v3.Cluster.LbPolicy"
    ]


def test_parse_bootstrap_returns_the_message_without_the_bad_parts() -> None:
    b = base()
    cluster(b)["conect_timeout"] = "1s"
    found = Problems()
    bootstrap = parse_bootstrap(b, found)
    assert len(found) == 1
    assert bootstrap is not None
    assert bootstrap.static_resources.clusters[0].name == "backend"

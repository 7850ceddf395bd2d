"""Listeners and the http_connection_manager into snapshot `Listener`s."""

from __future__ import annotations

import copy

import pytest

from .builders import (
    HCM,
    LISTENER,
    ROUTER_TYPE,
    base,
    hcm,
    listener,
    load,
    problems,
)


def _hcm_snapshot(b: dict) -> dict:
    return load(b).snapshot["listeners"][0]["filter_chains"][0]["filter"]["http_connection_manager"]


def test_listener_with_envoy_defaults() -> None:
    (snapshot_listener,) = load(base()).snapshot["listeners"]
    assert snapshot_listener == {
        "name": "ingress",
        "address": "0.0.0.0",
        "port": 10000,
        "stat_prefix": None,
        "per_connection_buffer_limit_bytes": 1048576,
        "listener_filters_timeout_ms": 15000,
        "continue_on_listener_filters_timeout": False,
        "filter_chains": [
            {
                "name": "",
                "filter": {
                    "http_connection_manager": {
                        "stat_prefix": "ingress_http",
                        "route_config": {
                            "name": "local",
                            "virtual_hosts": [
                                {
                                    "name": "all",
                                    "domains": ["*"],
                                    "routes": [
                                        {
                                            "name": "",
                                            "match": {
                                                "path": {"prefix": "/"},
                                                "case_sensitive": True,
                                            },
                                            "action": {
                                                "route": {
                                                    "target": {"cluster": "backend"},
                                                    "timeout_ms": 15000,
                                                }
                                            },
                                        }
                                    ],
                                }
                            ],
                        },
                        "use_remote_address": False,
                        "xff_num_trusted_hops": 0,
                        "skip_xff_append": False,
                        "generate_request_id": True,
                        "preserve_external_request_id": False,
                        "server_name": "envoy",
                        "server_header_transformation": "overwrite",
                        "max_request_headers_kb": 60,
                        "strip_port_mode": "none",
                        "accept_http_10": False,
                        "default_host_for_http_10": None,
                        "idle_timeout_ms": 3600000,
                        "drain_timeout_ms": 5000,
                    }
                },
            }
        ],
    }


def test_connection_manager_options() -> None:
    b = base()
    hcm(b).update(
        {
            "codec_type": "HTTP1",
            "use_remote_address": True,
            "xff_num_trusted_hops": 2,
            "skip_xff_append": True,
            "generate_request_id": False,
            "preserve_external_request_id": True,
            "server_name": "meshcore",
            "server_header_transformation": "PASS_THROUGH",
            "max_request_headers_kb": 96,
            "strip_any_host_port": True,
            "http_protocol_options": {
                "accept_http_10": True,
                "default_host_for_http_10": "legacy.example.com",
            },
            "common_http_protocol_options": {"idle_timeout": "30s"},
            "drain_timeout": "2.5s",
        }
    )
    snapshot = _hcm_snapshot(b)
    del snapshot["route_config"]
    assert snapshot == {
        "stat_prefix": "ingress_http",
        "use_remote_address": True,
        "xff_num_trusted_hops": 2,
        "skip_xff_append": True,
        "generate_request_id": False,
        "preserve_external_request_id": True,
        "server_name": "meshcore",
        "server_header_transformation": "pass_through",
        "max_request_headers_kb": 96,
        "strip_port_mode": "any",
        "accept_http_10": True,
        "default_host_for_http_10": "legacy.example.com",
        "idle_timeout_ms": 30000,
        "drain_timeout_ms": 2500,
        "codec_type": "http1",
    }


@pytest.mark.parametrize(
    ("options", "mode"),
    [
        ({}, "none"),
        ({"strip_any_host_port": True}, "any"),
        ({"strip_matching_host_port": True}, "matching"),
        ({"strip_any_host_port": False, "strip_matching_host_port": True}, "matching"),
        ({"strip_any_host_port": True, "strip_matching_host_port": False}, "any"),
    ],
)
def test_strip_port_mode(options: dict, mode: str) -> None:
    b = base()
    hcm(b).update(options)
    assert _hcm_snapshot(b)["strip_port_mode"] == mode


def test_strip_any_and_matching_host_port_together_is_an_error() -> None:
    # Envoy: "Only one of `strip_matching_host_port` or `strip_any_host_port` can be set."
    b = base()
    hcm(b).update({"strip_any_host_port": True, "strip_matching_host_port": True})
    assert problems(b) == [
        f"{HCM}.strip_matching_host_port: cannot be set together with strip_any_host_port"
    ]


def test_http_10_options() -> None:
    b = base()
    hcm(b)["http_protocol_options"] = {"accept_http_10": True}
    snapshot = _hcm_snapshot(b)
    assert (snapshot["accept_http_10"], snapshot["default_host_for_http_10"]) == (True, None)
    # As in Envoy, the default host is kept even when HTTP/1.0 is refused (it is then unused).
    hcm(b)["http_protocol_options"] = {"default_host_for_http_10": "a.example.com:8080"}
    snapshot = _hcm_snapshot(b)
    assert snapshot["accept_http_10"] is False
    assert snapshot["default_host_for_http_10"] == "a.example.com:8080"


@pytest.mark.parametrize("host", ["a.com\r\nx-injected: 1", "a\n", "a\0b"])
def test_default_host_for_http_10_must_be_a_header_value(host: str) -> None:
    b = base()
    hcm(b)["http_protocol_options"] = {"accept_http_10": True, "default_host_for_http_10": host}
    assert problems(b) == [
        f"{HCM}.http_protocol_options.default_host_for_http_10: {host!r} is not a valid "
        "Host header value (NUL, CR or LF)"
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("allow_absolute_url", False),
        ("enable_trailers", True),
        ("allow_chunked_length", True),
        ("header_key_format", {"proper_case_words": {}}),
        ("send_fully_qualified_url", True),
        ("allow_custom_methods", True),
    ],
)
def test_other_http1_protocol_options_are_not_supported(name: str, value: object) -> None:
    b = base()
    hcm(b)["http_protocol_options"] = {"accept_http_10": True, name: value}
    assert problems(b) == [f"{HCM}.http_protocol_options.{name}: {name} is not supported"]


def test_zero_idle_timeout_disables_it() -> None:
    b = base()
    hcm(b)["common_http_protocol_options"] = {"idle_timeout": "0s"}
    assert _hcm_snapshot(b)["idle_timeout_ms"] == 0


def test_listener_options() -> None:
    b = base()
    listener(b)["per_connection_buffer_limit_bytes"] = 32768
    listener(b)["address"]["socket_address"] = {"address": "::1", "port_value": 0}
    (snapshot_listener,) = load(b).snapshot["listeners"]
    assert (snapshot_listener["address"], snapshot_listener["port"]) == ("::1", 0)
    assert snapshot_listener["per_connection_buffer_limit_bytes"] == 32768


def test_listener_stat_prefix() -> None:
    b = base()
    listener(b)["stat_prefix"] = "public_edge"
    (snapshot_listener,) = load(b).snapshot["listeners"]
    assert snapshot_listener["stat_prefix"] == "public_edge"
    # HCM's own stat_prefix is separate and unchanged.
    assert (
        snapshot_listener["filter_chains"][0]["filter"]["http_connection_manager"]["stat_prefix"]
        == "ingress_http"
    )
    listener(b)["stat_prefix"] = ""
    assert load(b).snapshot["listeners"][0]["stat_prefix"] is None


def test_unnamed_listener_is_named_after_its_address() -> None:
    b = base()
    del listener(b)["name"]
    assert load(b).snapshot["listeners"][0]["name"] == "0.0.0.0:10000"


def test_listener_address_must_be_an_ip() -> None:
    b = base()
    listener(b)["address"]["socket_address"]["address"] = "localhost"
    assert problems(b) == [
        f"{LISTENER}.address.socket_address.address: malformed IP address: 'localhost'"
    ]


def test_listener_needs_an_address() -> None:
    b = base()
    del listener(b)["address"]
    assert problems(b) == [f"{LISTENER}.address: is required"]


def test_connection_manager_must_be_the_last_filter() -> None:
    b = base()
    filters = listener(b)["filter_chains"][0]["filters"]
    filters.append(copy.deepcopy(filters[0]))
    assert problems(b) == [
        f"{LISTENER}.filter_chains[0].filters[0]: HttpConnectionManager must be the last filter"
    ]


def test_network_filter_needs_a_typed_config() -> None:
    b = base()
    del listener(b)["filter_chains"][0]["filters"][0]["typed_config"]
    assert problems(b) == [f"{HCM}: is required"]


def test_duplicate_listener_names() -> None:
    b = base()
    second = copy.deepcopy(listener(b))
    second["address"]["socket_address"]["port_value"] = 10001
    b["static_resources"]["listeners"].append(second)
    assert problems(b) == [
        "static_resources.listeners[1].name: duplicate listener name 'ingress' "
        f"(also at {LISTENER})"
    ]


def test_http_filters_must_end_with_the_router() -> None:
    b = base()
    hcm(b)["http_filters"] = []
    assert problems(b) == [
        f"{HCM}.http_filters: must end with the router filter (envoy.filters.http.router); "
        "Envoy answers nothing without it"
    ]
    router = {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}}
    hcm(b)["http_filters"] = [router, copy.deepcopy(router)]
    assert problems(b) == [f"{HCM}.http_filters[0]: the router must be the last HTTP filter"]
    hcm(b)["http_filters"] = [{"name": "envoy.filters.http.router"}]
    assert problems(b) == [f"{HCM}.http_filters[0].typed_config: is required"]


def test_route_config_is_required() -> None:
    b = base()
    del hcm(b)["route_config"]
    assert problems(b) == [f"{HCM}: one of rds, route_config, scoped_routes is required"]

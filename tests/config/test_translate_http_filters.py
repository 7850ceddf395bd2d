"""`http_filters` (fault, local rate limit, router) and `typed_per_filter_config` into the
snapshot, checked against snapshot.rs; everything meshcore does not run is a problem naming
its path."""

from __future__ import annotations

from typing import Any

from .builders import ROUTER_TYPE, base, hcm, listener, load, problems, route, vhost

FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
RL = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
HCM_PATH = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config"


def _with_filters(*filters: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    b = base()
    hcm(b)["http_filters"] = [
        *({"name": name, "typed_config": config} for name, config in filters),
        {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}},
    ]
    return b


def _manager(b: dict[str, Any]) -> dict[str, Any]:
    manager: dict[str, Any] = load(b).snapshot["listeners"][0]["filter_chains"][0]["filter"][
        "http_connection_manager"
    ]
    return manager


def test_router_only_adds_nothing() -> None:
    assert "http_filters" not in _manager(base())


def test_fault_and_rate_limit_in_order() -> None:
    fault = {
        "@type": FAULT,
        "delay": {"fixed_delay": "1.5s", "percentage": {"numerator": 5, "denominator": "MILLION"}},
        "abort": {"header_abort": {}, "percentage": {"numerator": 100}},
        "headers": [{"name": "X-Canary", "exact_match": "1"}],
        "upstream_cluster": "backend",
        "max_active_faults": 7,
        "delay_percent_runtime": "fault.delay",
    }
    limit = {
        "@type": RL,
        "stat_prefix": "rl",
        "token_bucket": {"max_tokens": 10, "fill_interval": "1s"},
        "filter_enabled": {"default_value": {"numerator": 50, "denominator": "TEN_THOUSAND"}},
        "status": {"code": "OK"},
        "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
    }
    filters = _manager(_with_filters(("envoy.filters.http.fault", fault), ("my.limit", limit)))[
        "http_filters"
    ]
    assert [f["name"] for f in filters] == ["envoy.filters.http.fault", "my.limit"]
    assert filters[0]["config"] == {
        "fault": {
            "delay": {
                "kind": {"fixed_ms": 1500},
                "percentage": {"numerator": 5, "denominator": 1_000_000},
            },
            "abort": {"kind": "header", "percentage": {"numerator": 100, "denominator": 100}},
            "headers": [
                {
                    "name": "x-canary",
                    "rule": {"string": {"pattern": {"exact": "1"}, "ignore_case": False}},
                    "invert": False,
                    "treat_missing_header_as_empty": False,
                }
            ],
            "upstream_cluster": "backend",
            "max_active_faults": 7,
        }
    }
    assert filters[1]["config"] == {
        "local_ratelimit": {
            "stat_prefix": "rl",
            "token_bucket": {"max_tokens": 10, "tokens_per_fill": 1, "fill_interval_ms": 1000},
            "filter_enabled": {"numerator": 50, "denominator": 10_000},
            "response_headers_to_add": [],
            "request_headers_to_add_when_not_enforced": [],
            # Envoy answers 429 for a status below 400.
            "status": 429,
            "enable_x_ratelimit_headers": True,
        }
    }


def test_per_route_and_virtual_host_configs() -> None:
    b = _with_filters(("envoy.filters.http.fault", {"@type": FAULT}))
    abort = {"@type": FAULT, "abort": {"grpc_status": 14, "percentage": {"numerator": 1}}}
    vhost(b)["typed_per_filter_config"] = {"envoy.filters.http.fault": abort}
    route(b)["typed_per_filter_config"] = {
        "envoy.filters.http.local_ratelimit": {"@type": RL, "stat_prefix": "r"}
    }
    host = _manager(b)["route_config"]["virtual_hosts"][0]
    assert host["typed_per_filter_config"] == [
        {
            "name": "envoy.filters.http.fault",
            "config": {
                "fault": {
                    "abort": {
                        "kind": {"grpc_status": 14},
                        "percentage": {"numerator": 1, "denominator": 100},
                    },
                    "headers": [],
                }
            },
        }
    ]
    ((entry,),) = [host["routes"][0]["typed_per_filter_config"]]
    assert entry["name"] == "envoy.filters.http.local_ratelimit"
    assert entry["config"]["local_ratelimit"]["stat_prefix"] == "r"


def test_unsupported_filters_and_fields_are_problems() -> None:
    b = _with_filters(
        ("envoy.filters.http.fault", {"@type": FAULT, "downstream_nodes": ["a"]}),
        (
            "envoy.filters.http.local_ratelimit",
            {
                "@type": RL,
                "stat_prefix": "rl",
                "always_consume_default_token_bucket": True,
                "token_bucket": {"max_tokens": 1, "fill_interval": "0.01s"},
            },
        ),
        (
            "envoy.filters.http.buffer",
            {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                "max_request_bytes": 1,
            },
        ),
    )
    found = problems(b)
    filters = f"{HCM_PATH}.http_filters"
    assert f"{filters}[0].typed_config.downstream_nodes: downstream_nodes is not supported" in found
    assert (
        f"{filters}[1].typed_config.always_consume_default_token_bucket: "
        "always_consume_default_token_bucket is not supported yet" in found
    )
    assert f"{filters}[1].typed_config.token_bucket.fill_interval: must be at least 50ms" in found
    assert f"{filters}[2]: filter envoy.filters.http.buffer is not supported" in found


def test_network_local_ratelimit_before_the_connection_manager() -> None:
    b = base()
    listener(b)["filter_chains"][0]["filters"].insert(
        0,
        {
            "name": "envoy.filters.network.local_ratelimit",
            "typed_config": {
                "@type": "type.googleapis.com/"
                "envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit",
                "stat_prefix": "tcp",
                "token_bucket": {"max_tokens": 1, "fill_interval": "1s"},
            },
        },
    )
    (translated,) = load(b).snapshot["listeners"]
    assert translated["filter_chains"][0]["connection_rate_limits"] == [
        {
            "stat_prefix": "tcp",
            "token_bucket": {"max_tokens": 1, "tokens_per_fill": 1, "fill_interval_ms": 1000},
        }
    ]
    assert "http_connection_manager" in translated["filter_chains"][0]["filter"]


def test_router_must_stay_last() -> None:
    b = _with_filters(("envoy.filters.http.fault", {"@type": FAULT}))
    filters = hcm(b)["http_filters"]
    filters.reverse()
    assert f"{HCM_PATH}.http_filters[0]: the router must be the last HTTP filter" in problems(b)

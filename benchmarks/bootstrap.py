"""The Envoy v3 bootstrap that meshcore and Envoy both run: one listener, every path to one
STATIC cluster with upstream keep-alive (the default HTTP/1.1 connection pool)."""

from __future__ import annotations

from typing import Any

HCM_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.network."
    "http_connection_manager.v3.HttpConnectionManager"
)
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"


def _addr(port: int) -> dict[str, object]:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def bootstrap(listen_port: int, admin_port: int, backend_port: int) -> dict[str, object]:
    """The bootstrap as a dict (dump it as YAML); prefix "/" covers /, POSTs and /static/."""
    hcm = {
        "@type": HCM_TYPE,
        "stat_prefix": "bench",
        "route_config": {
            "name": "local",
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "backend"}}],
                }
            ],
        },
        "http_filters": [
            {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}}
        ],
    }
    listener = {
        "name": "bench",
        "address": _addr(listen_port),
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }
    cluster = {
        "name": "backend",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": "backend",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _addr(backend_port)}}]}],
        },
    }
    return {
        "admin": {"address": _addr(admin_port)},
        "static_resources": {"listeners": [listener], "clusters": [cluster]},
    }


FAULT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
LOCAL_RATELIMIT_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
)


def _percent(numerator: int) -> dict[str, object]:
    return {"numerator": numerator, "denominator": "HUNDRED"}


def with_recovery_features(listen_port: int, admin_port: int, backend_port: int) -> dict[str, Any]:
    """`bootstrap` with issue 4's failure-recovery and traffic-control features configured but
    never triggering against a healthy backend: a retry policy and a route timeout, circuit
    breakers, outlier detection, an active HTTP health check, the fault filter at 0% and the
    local rate limit filter enforced with a bucket far above the load."""
    cfg: dict[str, Any] = bootstrap(listen_port, admin_port, backend_port)
    listener = cfg["static_resources"]["listeners"][0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    route = hcm["route_config"]["virtual_hosts"][0]["routes"][0]["route"]
    route["timeout"] = "5s"
    route["retry_policy"] = {
        "retry_on": "5xx,reset,connect-failure",
        "num_retries": 2,
        "per_try_timeout": "2s",
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.retry.host."
                    "previous_hosts.v3.PreviousHostsPredicate"
                },
            }
        ],
    }
    everyone = {"default_value": _percent(100), "runtime_key": "bench.enabled"}
    hcm["http_filters"] = [
        {
            "name": "envoy.filters.http.fault",
            "typed_config": {
                "@type": FAULT_TYPE,
                "abort": {"http_status": 503, "percentage": _percent(0)},
                "delay": {"fixed_delay": "1s", "percentage": _percent(0)},
            },
        },
        {
            "name": "envoy.filters.http.local_ratelimit",
            "typed_config": {
                "@type": LOCAL_RATELIMIT_TYPE,
                "stat_prefix": "bench_rl",
                "token_bucket": {
                    "max_tokens": 10_000_000,
                    "tokens_per_fill": 10_000_000,
                    "fill_interval": "1s",
                },
                "filter_enabled": everyone,
                "filter_enforced": everyone,
            },
        },
        *hcm["http_filters"],
    ]
    cluster = cfg["static_resources"]["clusters"][0]
    cluster["circuit_breakers"] = {
        "thresholds": [
            {
                "max_connections": 100_000,
                "max_pending_requests": 100_000,
                "max_requests": 100_000,
                "max_retries": 1_000,
            }
        ]
    }
    cluster["outlier_detection"] = {
        "consecutive_5xx": 5,
        "interval": "1s",
        "base_ejection_time": "30s",
    }
    cluster["health_checks"] = [
        {
            "timeout": "1s",
            "interval": "1s",
            "unhealthy_threshold": 2,
            "healthy_threshold": 1,
            "http_health_check": {"path": "/healthz"},
        }
    ]
    return cfg

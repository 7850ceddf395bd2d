"""Bootstrap pieces for HTTP filter tests: the fault and local rate limit filters (before the
router) and their per-route `typed_per_filter_config` entries."""

from __future__ import annotations

from typing import Any

from tests.support.bootstrap import Json

FAULT_NAME = "envoy.filters.http.fault"
FAULT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
RATELIMIT_NAME = "envoy.filters.http.local_ratelimit"
RATELIMIT_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
)
ROUTER = {
    "name": "envoy.filters.http.router",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
}


def fault(**fields: Any) -> Json:
    return {"@type": FAULT_TYPE, **fields}


def ratelimit(stat_prefix: str, **fields: Any) -> Json:
    return {"@type": RATELIMIT_TYPE, "stat_prefix": stat_prefix, **fields}


def always(numerator: int = 100) -> Json:
    return {"numerator": numerator, "denominator": "HUNDRED"}


def bucket(max_tokens: int, fill_interval: str = "3600s") -> Json:
    """A bucket that does not refill during a test."""
    return {"max_tokens": max_tokens, "tokens_per_fill": 1, "fill_interval": fill_interval}


def enforced_ratelimit(stat_prefix: str, max_tokens: int, **fields: Any) -> Json:
    """A rate limit enabled and enforced for every request."""
    return ratelimit(
        stat_prefix,
        token_bucket=bucket(max_tokens),
        filter_enabled={"default_value": always()},
        filter_enforced={"default_value": always()},
        **fields,
    )


def http_filters(*filters: tuple[str, Json]) -> list[Json]:
    """`(name, typed_config)` pairs, then the router."""
    return [*({"name": n, "typed_config": c} for n, c in filters), ROUTER]

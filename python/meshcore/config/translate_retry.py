"""`retry_policy` (route, else virtual host) into the snapshot's `RetryPolicy`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from envoy.config.route.v3 import route_components_pb2 as rc

from . import paths
from .errors import Problems
from .type_urls import type_name
from .values import duration_field_ms, duration_ms, wrapped

PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts"
PREVIOUS_HOSTS_TYPE = "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
RETRY_ON = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "connect-failure",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        # gRPC codes of a trailers-only response (HTTP/2 clusters).
        "cancelled",
        "deadline-exceeded",
        "resource-exhausted",
        "unavailable",
        "internal",
    }
)
DEFAULT_BASE_INTERVAL_MS = 25

HeaderMatcherFn = Callable[[rc.HeaderMatcher, str, Problems], dict[str, Any]]


def effective_policy(
    route: rc.RouteAction, host: rc.VirtualHost | None
) -> tuple[rc.RetryPolicy | None, str]:
    """The policy that applies: the route's wins over the virtual host's (Envoy does not
    merge them). Returns it with the name of the level it came from."""
    if route.HasField("retry_policy"):
        return route.retry_policy, "route"
    if host is not None and host.HasField("retry_policy"):
        return host.retry_policy, "virtual_host"
    return None, ""


@functools.lru_cache(maxsize=256)
def _conditions(retry_on: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The `retry_on` conditions meshcore implements and those it does not, in order (a
    route config repeats a few `retry_on` strings on every route: parsed once each)."""
    conditions = [c.strip() for c in retry_on.split(",") if c.strip()]
    return (
        tuple(c for c in conditions if c in RETRY_ON),
        tuple(c for c in conditions if c not in RETRY_ON),
    )


def retry_policy(
    policy: rc.RetryPolicy,
    path: str,
    problems: Problems,
    header_matcher: HeaderMatcherFn,
    buffer_limit: int | None,
) -> dict[str, Any]:
    """The snapshot `RetryPolicy` for `policy` at `path`."""
    supported, unsupported = _conditions(policy.retry_on)
    for c in unsupported:
        problems.add(paths.field(path, "retry_on"), f"{c!r} is not supported")
    out: dict[str, Any] = {
        "retry_on": list(supported),
        "num_retries": wrapped(policy, "num_retries", 1),
        "per_try_timeout_ms": duration_field_ms(policy, "per_try_timeout", 0),
        "host_selection_retry_max_attempts": int(policy.host_selection_retry_max_attempts)
        if policy.host_selection_retry_max_attempts
        else 1,
    }
    if policy.HasField("per_try_idle_timeout"):
        out["per_try_idle_timeout_ms"] = duration_field_ms(policy, "per_try_idle_timeout", 0)
    if policy.HasField("retry_back_off"):
        back_off = policy.retry_back_off
        base = duration_ms(back_off.base_interval)
        out["base_interval_ms"] = base
        if back_off.HasField("max_interval"):
            out["max_interval_ms"] = duration_ms(back_off.max_interval)
            if out["max_interval_ms"] < base:
                problems.add(
                    paths.field(paths.field(path, "retry_back_off"), "max_interval"),
                    "must not be less than base_interval",
                )
    # Empty lists are left out (the snapshot's default).
    if policy.retriable_status_codes:
        out["retriable_status_codes"] = list(policy.retriable_status_codes)
    if policy.retriable_headers:
        out["retriable_headers"] = [
            header_matcher(m, paths.item(paths.field(path, "retriable_headers"), i), problems)
            for i, m in enumerate(policy.retriable_headers)
        ]
    for i, predicate in enumerate(policy.retry_host_predicate):
        kind = (
            type_name(predicate.typed_config.type_url) if predicate.HasField("typed_config") else ""
        )
        if predicate.name == PREVIOUS_HOSTS or kind == PREVIOUS_HOSTS_TYPE:
            out["previous_hosts"] = True
        else:
            problems.add(
                paths.item(paths.field(path, "retry_host_predicate"), i),
                f"retry host predicate {predicate.name or kind!r} is not supported",
            )
    if buffer_limit is not None:
        out["per_request_buffer_limit_bytes"] = buffer_limit
    return out

"""`envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit` into the snapshot's
`LocalRateLimit`."""

from __future__ import annotations

from typing import Any

from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2 as lrl

from . import paths
from .errors import Problems
from .translate_headers import headers_to_add
from .translate_percent import fractional_percent
from .values import duration_ms

_DEFAULT_STATUS = 429
_APPEND = "append_if_exists_or_add"


def local_ratelimit(config: lrl.LocalRateLimit, path: str, problems: Problems) -> dict[str, Any]:
    """The snapshot `LocalRateLimit` for `config` (at `path`)."""
    out: dict[str, Any] = {"stat_prefix": config.stat_prefix}
    if config.HasField("token_bucket"):
        bucket = config.token_bucket
        fill_ms = duration_ms(bucket.fill_interval)
        if fill_ms < 50:
            problems.add(
                paths.field(paths.field(path, "token_bucket"), "fill_interval"),
                "must be at least 50ms",
            )
        out["token_bucket"] = {
            "max_tokens": bucket.max_tokens,
            "tokens_per_fill": bucket.tokens_per_fill.value
            if bucket.HasField("tokens_per_fill")
            else 1,
            "fill_interval_ms": max(fill_ms, 50),
        }
    for name in ("filter_enabled", "filter_enforced"):
        if config.HasField(name):
            out[name] = fractional_percent(getattr(config, name).default_value)
    for name in ("response_headers_to_add", "request_headers_to_add_when_not_enforced"):
        list_path = paths.field(path, name)
        options = headers_to_add(getattr(config, name), list_path, problems)
        for i, option in enumerate(options):
            if option["append_action"] != _APPEND:
                problems.add(
                    paths.item(list_path, i),
                    f"append_action {option['append_action'].upper()} is not supported yet "
                    "(only APPEND_IF_EXISTS_OR_ADD)",
                )
        out[name] = options
    # Envoy answers 429 for a status below 400.
    code = config.status.code if config.HasField("status") else 0
    out["status"] = code if code >= 400 else _DEFAULT_STATUS
    out["enable_x_ratelimit_headers"] = config.enable_x_ratelimit_headers != 0
    if config.local_rate_limit_per_downstream_connection:
        out["per_downstream_connection"] = True
    return out

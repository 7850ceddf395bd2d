"""`circuit_breakers.thresholds` (DEFAULT priority) into the snapshot's `CircuitBreakers`."""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import circuit_breaker_pb2

from . import paths
from .errors import Problems
from .values import enum_name, wrapped

DEFAULT_LIMIT = 1024
DEFAULT_MAX_RETRIES = 3


def circuit_breakers(
    breakers: circuit_breaker_pb2.CircuitBreakers, path: str, problems: Problems
) -> dict[str, Any]:
    """Envoy's defaults, overridden by the DEFAULT-priority thresholds (at most one)."""
    out: dict[str, Any] = {
        "max_connections": DEFAULT_LIMIT,
        "max_pending_requests": DEFAULT_LIMIT,
        "max_requests": DEFAULT_LIMIT,
        "max_retries": DEFAULT_MAX_RETRIES,
        "track_remaining": False,
    }
    seen = False
    thresholds_path = paths.field(path, "thresholds")
    for i, t in enumerate(breakers.thresholds):
        at = paths.item(thresholds_path, i)
        if enum_name(t, "priority") != "DEFAULT":
            continue  # HIGH: checked by the supported-fields table
        if seen:
            problems.add(at, "more than one DEFAULT priority threshold")
        seen = True
        for name in ("max_connections", "max_pending_requests", "max_requests", "max_retries"):
            out[name] = wrapped(t, name, out[name])
        out["track_remaining"] = bool(t.track_remaining)
    return out

"""`upgrade_configs` of the connection manager and of routes: WebSocket and other HTTP/1.1
upgrades, and CONNECT (a route's `connect_config` terminates it into a TCP tunnel)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import paths
from .errors import Problems


def upgrade_configs(configs: Iterable[Any], path: str, problems: Problems) -> list[dict[str, Any]]:
    """The snapshot entries of an `upgrade_configs` list at `path` (HCM or route action):
    lower-cased type, whether it is enabled (Envoy's default: true) and, for a route's
    CONNECT entry, whether `connect_config` asks for CONNECT to be terminated here. The
    supported-field table refuses `connect_config`'s unsupported fields by path."""
    out = []
    for i, config in enumerate(configs):
        at = paths.item(path, i)
        kind = config.upgrade_type.lower()
        enabled = config.enabled.value if config.HasField("enabled") else True
        entry: dict[str, Any] = {"upgrade_type": kind, "enabled": enabled}
        # Only a route's entries have `connect_config`.
        has_connect_config = "connect_config" in config.DESCRIPTOR.fields_by_name
        if has_connect_config and config.HasField("connect_config"):
            if kind != "connect":
                problems.add(
                    paths.field(at, "connect_config"),
                    "connect_config applies only to upgrade_type CONNECT",
                )
                continue
            entry["connect_config"] = {}
        out.append(entry)
    return out

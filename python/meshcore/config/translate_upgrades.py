"""`upgrade_configs` of the connection manager and of routes (WebSocket and other HTTP/1.1
upgrades). CONNECT is not an upgrade meshcore proxies yet: naming it is an error."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import paths
from .errors import Problems


def upgrade_configs(configs: Iterable[Any], path: str, problems: Problems) -> list[dict[str, Any]]:
    """The snapshot entries of an `upgrade_configs` list at `path` (HCM or route action):
    lower-cased type and whether it is enabled (Envoy's default: true)."""
    out = []
    for i, config in enumerate(configs):
        at = paths.item(path, i)
        kind = config.upgrade_type.lower()
        if kind == "connect":
            problems.add(paths.field(at, "upgrade_type"), "CONNECT tunnelling is not supported yet")
            continue
        enabled = config.enabled.value if config.HasField("enabled") else True
        out.append({"upgrade_type": kind, "enabled": enabled})
    return out

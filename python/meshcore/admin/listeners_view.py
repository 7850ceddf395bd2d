"""`/listeners`: each listener's name and bound address (`main::127.0.0.1:10000`), text or
JSON (`envoy.admin.v3.Listeners`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from meshcore.net_address import format_host_port


def bound_listeners(
    snapshot: Mapping[str, Any], ports: Mapping[str, int]
) -> list[tuple[str, str, int]]:
    """(name, address, bound port) for the snapshot's listeners, port 0 resolved."""
    return [
        (lst["name"], lst["address"], ports.get(lst["name"], lst["port"]))
        for lst in snapshot.get("listeners", ())
    ]


def render_text(listeners: list[tuple[str, str, int]]) -> str:
    return "".join(f"{name}::{format_host_port(a, p)}\n" for name, a, p in listeners)


def render_json(listeners: list[tuple[str, str, int]]) -> bytes:
    statuses = [
        {"name": name, "local_address": {"socket_address": {"address": a, "port_value": p}}}
        for name, a, p in listeners
    ]
    return orjson.dumps({"listener_statuses": statuses}, option=orjson.OPT_INDENT_2)

"""Envoy-style field paths: `static_resources.clusters[2].lb_policy`, map entries `[key]`."""

from __future__ import annotations


def field(path: str, name: str) -> str:
    """The path of field `name` inside the message at `path` ("" is the bootstrap)."""
    return f"{path}.{name}" if path else name


def item(path: str, index: int | str) -> str:
    """The path of element `index` of a repeated field, or of entry `index` of a map."""
    return f"{path}[{index}]"

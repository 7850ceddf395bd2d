"""Header mutations (`request_headers_to_add` and the three other lists) into the snapshot's
`HeaderMutations`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.message import Message

from . import paths
from .errors import Problems
from .values import enum_name

_LISTS = (
    "request_headers_to_add",
    "request_headers_to_remove",
    "response_headers_to_add",
    "response_headers_to_remove",
)


def literal_value(value: str) -> str | None:
    """The header value with Envoy's `%%` escapes undone, or None when it holds a
    `%COMMAND%` formatter (or a lone `%`, which Envoy rejects)."""
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == "%":
            if value.startswith("%%", i):
                out.append("%")
                i += 2
                continue
            return None
        out.append(value[i])
        i += 1
    return "".join(out)


def _modifiable(name: str) -> bool:
    return not name.startswith(":") and name.lower() != "host"


def _option(option: Message, path: str, problems: Problems) -> dict[str, Any] | None:
    header = option.header
    key = header.key.lower()
    ok = True
    if not _modifiable(key):
        problems.add(
            paths.field(paths.field(path, "header"), "key"),
            ":-prefixed or host headers may not be modified",
        )
        ok = False
    value = literal_value(header.value)
    if value is None:
        problems.add(
            paths.field(paths.field(path, "header"), "value"),
            "header formatters (%COMMAND%) are not supported yet; write %% for a literal %",
        )
        ok = False
    if option.HasField("append") and option.append_action != 0:
        problems.add(path, "append and append_action cannot both be set")
        ok = False
    if not ok or value is None:
        return None
    if option.HasField("append"):
        action = "append_if_exists_or_add" if option.append.value else "overwrite_if_exists_or_add"
    else:
        action = enum_name(option, "append_action").lower()
    return {
        "key": key,
        "value": value,
        "append_action": action,
        "keep_empty_value": bool(option.keep_empty_value),
    }


def _options(options: Sequence[Message], path: str, problems: Problems) -> list[dict[str, Any]]:
    out = []
    for index, option in enumerate(options):
        translated = _option(option, paths.item(path, index), problems)
        if translated is not None:
            out.append(translated)
    return out


def _removals(names: Sequence[str], path: str, problems: Problems) -> list[str]:
    out = []
    for index, name in enumerate(names):
        if not _modifiable(name):
            problems.add(paths.item(path, index), ":-prefixed or host headers may not be removed")
            continue
        out.append(name.lower())
    return out


def headers_to_add(
    options: Sequence[Message], path: str, problems: Problems
) -> list[dict[str, Any]]:
    """A `request_headers_to_add`-style list as snapshot `HeaderValueOption`s (bad entries
    are reported and left out)."""
    return _options(options, path, problems)


def headers_to_remove(names: Sequence[str], path: str, problems: Problems) -> list[str]:
    """A `request_headers_to_remove`-style list, lower-cased (bad entries reported)."""
    return _removals(names, path, problems)


def header_mutations(msg: Message, path: str, problems: Problems) -> dict[str, Any]:
    """The four header lists of `msg` (a route config, virtual host, route or weighted
    cluster) as a snapshot `HeaderMutations`; empty (no keys) when `msg` has none."""
    lists = [getattr(msg, name) for name in _LISTS]
    if not any(lists):  # the common case: nothing to check, nothing to write
        return {}
    out: dict[str, Any] = {}
    for name, entries in zip(_LISTS, lists, strict=True):
        field_path = paths.field(path, name)
        if name.endswith("_add"):
            out[name] = _options(entries, field_path, problems)
        else:
            out[name] = _removals(entries, field_path, problems)
    return out


def with_header_mutations(
    out: dict[str, Any], msg: Message, path: str, problems: Problems
) -> dict[str, Any]:
    """`out` plus `headers` (the header lists of `msg`) when `msg` has any: the snapshot's
    `headers` defaults to four empty lists, which a 1,000-virtual-host route config would
    otherwise repeat at every level."""
    headers = header_mutations(msg, path, problems)
    if headers:
        out["headers"] = headers
    return out

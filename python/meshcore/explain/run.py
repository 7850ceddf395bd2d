"""Runs an explanation against a snapshot (a loaded bootstrap, or the running config)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from .request_line import ExplainOptions, request_json


class ExplainError(ValueError):
    """The snapshot does not compile (`config: ...`) or the request is malformed."""


def explain(snapshot: Mapping[str, Any] | bytes, opts: ExplainOptions) -> dict[str, Any]:
    """The data path's explanation of `opts` against `snapshot` (engine snapshot, as a dict
    or its JSON bytes). Raises RequestError / ExplainError."""
    from meshcore._fastpath import explain as fastpath_explain

    request = orjson.dumps(request_json(opts))
    raw = snapshot if isinstance(snapshot, bytes) else orjson.dumps(snapshot)
    try:
        out = fastpath_explain(raw, request)
    except ValueError as exc:
        raise ExplainError(str(exc)) from None
    result: dict[str, Any] = orjson.loads(out)
    return result


def with_bound_ports(snapshot: Mapping[str, Any], ports: Mapping[str, int]) -> dict[str, Any]:
    """The snapshot with each listener's port replaced by the port it is bound to (a
    configured port 0 becomes the kernel's choice), as the running proxy sees it."""
    out = dict(snapshot)
    out["listeners"] = [
        {**listener, "port": ports.get(str(listener.get("name")), listener.get("port"))}
        for listener in snapshot.get("listeners", ())
    ]
    return out

"""`/explain`: `meshcore explain` against the running config (GET with query parameters, or
POST with a JSON body); see docs/explain.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from meshcore.explain.render import render_text
from meshcore.explain.request_line import ExplainOptions, RequestError
from meshcore.explain.run import ExplainError, explain, with_bound_ports
from meshcore.lifecycle.interfaces import EngineApi

PARAMS = (
    ("request", "'METHOD URL', e.g. GET http://host/path (required)"),
    ("header", "'name: value'; several separated by newlines (POST: headers, a list)"),
    ("listener", "listener name (default: the first HTTP listener)"),
    ("port", "the listener with this configured port"),
    ("sni", "TLS server name the client sends"),
    ("alpn", "ALPN protocols the client offers, comma-separated (POST: a list)"),
    ("tls", "1: the connection starts with a ClientHello"),
    ("source", "client IP:PORT"),
    ("random", "show which weighted cluster this random value picks"),
    ("format", "text (default) or json"),
)


class BadExplainRequest(ValueError):
    """A parameter is missing or has the wrong type; the message names it."""


def _int(fields: Mapping[str, Any], name: str) -> int | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadExplainRequest(f"{name}: expected an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadExplainRequest(f"{name}: expected an integer, got {value!r}") from None


def _list(fields: Mapping[str, Any], name: str, sep: str) -> list[str]:
    value = fields.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(sep) if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise BadExplainRequest(f"{name}: expected a string or a list of strings")


def _str(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadExplainRequest(f"{name}: expected a string")
    return value


def parse_fields(method: str, query: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """GET: the query parameters; POST: the JSON object in the body."""
    if method != "POST":
        return dict(query)
    try:
        fields = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise BadExplainRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise BadExplainRequest("the body must be a JSON object")
    known = {name for name, _ in PARAMS} | {"headers"}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise BadExplainRequest(f"unknown field(s): {', '.join(unknown)}")
    return fields


def options(fields: Mapping[str, Any]) -> ExplainOptions:
    request = _str(fields, "request")
    if request is None:
        raise BadExplainRequest("request: required, e.g. request=GET http://host/path")
    tls = fields.get("tls", False)
    return ExplainOptions(
        request=request,
        headers=_list(fields, "headers", "\n") + _list(fields, "header", "\n"),
        listener=_str(fields, "listener"),
        port=_int(fields, "port"),
        sni=_str(fields, "sni"),
        alpn=_list(fields, "alpn", ","),
        tls=tls is True or tls in ("1", "true"),
        source=_str(fields, "source"),
        random=_int(fields, "random"),
    )


def explain_running(
    engine: EngineApi, snapshot: Mapping[str, Any], fields: Mapping[str, Any]
) -> tuple[int, bytes, str]:
    """(status, body, content type) for one /explain call."""
    fmt = fields.get("format", "text")
    if fmt not in ("text", "json"):
        raise BadExplainRequest(f"format: one of text, json (got {fmt!r})")
    opts = options(fields)
    try:
        data = explain(with_bound_ports(snapshot, engine.listener_ports()), opts)
    except (RequestError, ExplainError) as exc:
        raise BadExplainRequest(str(exc)) from None
    if fmt == "json":
        return 200, orjson.dumps(data, option=orjson.OPT_INDENT_2), "application/json"
    return 200, render_text(data).encode(), "text/plain; charset=UTF-8"

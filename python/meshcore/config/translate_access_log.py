"""The connection manager's `access_log` list (Envoy's file, stdout and stderr access
loggers, their `log_format` and `filter`) into the snapshot's `access_log` entries, with the
format strings checked here so that a bad one is reported with its Envoy field path."""

from __future__ import annotations

import functools
import re
from typing import Any

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.core.v3 import substitution_format_string_pb2
from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message

from . import paths
from .data_source import data_source_text
from .errors import Problems
from .supported import FILE_LOG, REQ_WITHOUT_QUERY, STDERR_LOG, STDOUT_LOG
from .type_urls import type_name, unpack


@functools.cache
def operators() -> frozenset[str]:
    """Command operators without an argument: the engine's own table
    (`fastpath/src/access_log/format.rs`, exported as `_fastpath.access_log_operators()`),
    so what the config check accepts is what the engine renders. `REQ`, `RESP`,
    `REQ_WITHOUT_QUERY`, `ENVIRONMENT`, `START_TIME` and the peer certificate's
    `DOWNSTREAM_PEER_CERT_V_START` / `_V_END` take an argument and are checked here."""
    from meshcore._fastpath import access_log_operators

    return frozenset(access_log_operators())


_HEADER_OPERATORS = ("REQ", "RESP", "REQ_WITHOUT_QUERY")
_LIMITED = (*_HEADER_OPERATORS, "ENVIRONMENT")
_TIME_OPERATORS = ("START_TIME", "DOWNSTREAM_PEER_CERT_V_START", "DOWNSTREAM_PEER_CERT_V_END")

_COMMAND = re.compile(r"%([A-Z0-9_]+)(?:\(([^)]*)\))?(?::([0-9]+))?%")
_TIME_CONVERSION = re.compile(r"%(?:[1-9]f|E[0-9*]S|[%ntYymdeHIMSsjaAbhBpzZfTRFD])")

_OPS = {
    accesslog_pb2.ComparisonFilter.EQ: "eq",
    accesslog_pb2.ComparisonFilter.GE: "ge",
    accesslog_pb2.ComparisonFilter.LE: "le",
    accesslog_pb2.ComparisonFilter.NE: "ne",
}


def format_problem(text: str, formatters: frozenset[str] = frozenset()) -> str | None:
    """What is wrong with an access log format string (None: nothing). `formatters`: the
    extension formatters the log format lists (their operators are allowed, as in Envoy)."""
    at = 0
    while (start := text.find("%", at)) >= 0:
        match = _COMMAND.match(text, start)
        if match is None:
            return (
                f"invalid command at position {start}: expected %COMMAND%, %COMMAND(arg)% "
                "or %COMMAND(arg):N% (a literal '%' is not allowed)"
            )
        name, arg, limit = match.groups()
        if name == "REQ_WITHOUT_QUERY" and REQ_WITHOUT_QUERY not in formatters:
            return (
                "%REQ_WITHOUT_QUERY% needs the envoy.formatter.req_without_query formatter "
                "in formatters"
            )
        problem = _command_problem(name, arg, limit)
        if problem:
            return problem
        at = match.end()
    return None


def _command_problem(name: str, arg: str | None, limit: str | None) -> str | None:
    if limit is not None and name not in _LIMITED:
        return (
            f"%{name}%: a :N length limit applies to REQ, RESP, REQ_WITHOUT_QUERY and "
            "ENVIRONMENT only"
        )
    if name == "ENVIRONMENT":
        return None if arg else "%ENVIRONMENT%: needs a variable name: %ENVIRONMENT(X)%"
    if name in _HEADER_OPERATORS:
        names = (arg or "").split("?")
        if arg is None:
            return f"%{name}%: needs a header name: %{name}(X)%"
        if len(names) > 2 or not all(names):
            return f"%{name}({arg})%: expected one header name or two separated by '?'"
        return None
    if name in _TIME_OPERATORS:
        rest = _TIME_CONVERSION.sub("", arg or "")
        if "%" in rest:
            bad = rest[rest.index("%") : rest.index("%") + 2]
            return f"%{name}%: time format {arg!r}: unsupported conversion {bad}"
        return None
    if name not in operators():
        return f"unknown command operator %{name}%"
    if arg is not None:
        return f"%{name}%: takes no argument"
    return None


def access_logs(manager: Message, path: str, problems: Problems) -> list[dict[str, Any]]:
    """The snapshot entries of `manager.access_log` (`path` is the manager's)."""
    out = []
    for i, entry in enumerate(manager.access_log):
        translated = _access_log(entry, paths.item(paths.field(path, "access_log"), i), problems)
        if translated is not None:
            out.append(translated)
    return out


def _access_log(
    entry: accesslog_pb2.AccessLog, path: str, problems: Problems
) -> dict[str, Any] | None:
    typed_path = paths.field(path, "typed_config")
    if not entry.HasField("typed_config"):
        problems.add(typed_path, "is required")
        return None
    kind = type_name(entry.typed_config.type_url)
    config = unpack(entry.typed_config)
    if config is None or kind not in (FILE_LOG, STDOUT_LOG, STDERR_LOG):
        return None  # reported by the table
    out: dict[str, Any]
    if kind == FILE_LOG:
        if not config.path:
            problems.add(paths.field(typed_path, "path"), "is required")
            return None
        out = {"sink": {"file": config.path}}
    else:
        out = {"sink": "stdout" if kind == STDOUT_LOG else "stderr"}
    if config.HasField("log_format"):
        log_format = _log_format(
            config.log_format,
            paths.field(typed_path, "log_format"),
            problems,
        )
        if log_format is None:
            return None
        out["format"] = log_format
    if entry.HasField("filter"):
        log_filter = _filter(entry.filter, paths.field(path, "filter"), problems)
        if log_filter is None:
            return None
        out["filter"] = log_filter
    return out


def _log_format(
    spec: substitution_format_string_pb2.SubstitutionFormatString, path: str, problems: Problems
) -> dict[str, Any] | None:
    kind = spec.WhichOneof("format")
    # The types are checked by the table (`supported.py`): only req_without_query is allowed.
    formatters = frozenset(type_name(f.typed_config.type_url) for f in spec.formatters)
    if kind == "text_format_source":
        source_path = paths.field(path, "text_format_source")
        text = data_source_text(spec.text_format_source, source_path, problems, "a format")
        if text is None:
            return None
        problem = format_problem(text, formatters)
        if problem:
            problems.add(source_path, problem)
            return None
        return {"text": text}
    if kind == "json_format":
        json_path = paths.field(path, "json_format")
        fields = _json_format(spec.json_format, json_path, problems, formatters)
        return None if fields is None else {"json": fields}
    return None  # other kinds: reported by the table


def _json_format(
    value: struct_pb2.Struct, path: str, problems: Problems, formatters: frozenset[str]
) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    ok = True
    for key in sorted(value.fields):
        item = value.fields[key]
        item_path = paths.field(path, key)
        kind = item.WhichOneof("kind")
        if kind == "string_value":
            problem = format_problem(item.string_value, formatters)
            if problem:
                problems.add(item_path, problem)
                ok = False
            out[key] = {"text": item.string_value}
        elif kind == "struct_value":
            nested = _json_format(item.struct_value, item_path, problems, formatters)
            ok = ok and nested is not None
            out[key] = {"object": nested}
        else:
            shown = json_format.MessageToJson(item, indent=None)
            problems.add(item_path, f"only strings and nested objects are supported, found {shown}")
            ok = False
    return out if ok else None


def _filter(spec: accesslog_pb2.AccessLogFilter, path: str, problems: Problems) -> Any:
    kind = spec.WhichOneof("filter_specifier")
    kind_path = paths.field(path, kind or "")
    if kind == "status_code_filter":
        return {"status_code": _comparison(spec.status_code_filter.comparison)}
    if kind == "duration_filter":
        return {"duration": _comparison(spec.duration_filter.comparison)}
    if kind == "not_health_check_filter":
        return "not_health_check"
    if kind == "response_flag_filter":
        return {"response_flag": list(spec.response_flag_filter.flags)}
    if kind in ("and_filter", "or_filter"):
        group = spec.and_filter if kind == "and_filter" else spec.or_filter
        parts = [
            _filter(f, paths.item(paths.field(kind_path, "filters"), i), problems)
            for i, f in enumerate(group.filters)
        ]
        if any(p is None for p in parts):
            return None
        return {"and" if kind == "and_filter" else "or": parts}
    return None  # other kinds: reported by the table


def _comparison(spec: accesslog_pb2.ComparisonFilter) -> dict[str, Any]:
    return {"op": _OPS.get(spec.op, "eq"), "value": spec.value.default_value}

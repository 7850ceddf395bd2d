"""Reads bootstrap data into Envoy's own `Bootstrap` message (xds-protos), reporting every
schema error with its Envoy-style path.

`json_format.ParseDict` stops at the first error and names paths unevenly, so the data is
first walked alongside the message descriptors: unknown fields, wrong shapes, bad scalars and
unknown `@type`s are all reported (with their paths) and dropped; the `_pb2` module of each
typed config is imported on the way. ParseDict then parses what is left."""

from __future__ import annotations

import difflib
import json
import math
import re
from typing import Any, Final

from envoy.config.bootstrap.v3 import bootstrap_pb2
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from . import paths
from .errors import Problems
from .type_urls import message_class, type_name

_ANY: Final = "google.protobuf.Any"
_WRAPPERS: Final = frozenset(
    f"google.protobuf.{n}Value"
    for n in ("Bool", "Int32", "UInt32", "Int64", "UInt64", "Float", "Double", "String", "Bytes")
)
_INT_RANGES: Final = {
    FieldDescriptor.CPPTYPE_INT32: ("int32", -(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_UINT32: ("uint32", 0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_INT64: ("int64", -(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT64: ("uint64", 0, 2**64 - 1),
}


class _Drop:
    """Marks a value that had a problem and is left out of what ParseDict sees."""


_DROP: Final = _Drop()


def show(value: Any) -> str:
    """A config value as the user wrote it, JSON-style."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _is_map(fd: FieldDescriptor) -> bool:
    return bool(fd.message_type is not None and fd.message_type.GetOptions().map_entry)


def _class(descriptor: Descriptor) -> type[Message]:
    cls: type[Message] = message_factory.GetMessageClass(descriptor)
    return cls


def _clean_parse_error(text: str) -> str:
    """ParseDict's message without its "Failed to parse x field:" prefixes and its path."""
    text = re.sub(r"^(Failed to parse \S+ field: )+", "", text.strip())
    text = text.rstrip(".").strip()
    text = re.sub(r"\s+at\s+\"?[\w.\[\]-]+\"?$", "", text).rstrip(".")
    return text


def _int_error(fd: FieldDescriptor, value: Any) -> str | None:
    kind, low, high = _INT_RANGES[fd.cpp_type]
    if isinstance(value, bool):
        return f"expected an integer, got {show(value)}"
    number: int
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value)
        except ValueError:
            return f"expected an integer, got {show(value)}"
    else:
        return f"expected an integer, got {show(value)}"
    if not low <= number <= high:
        return f"{number} is out of range for {kind}"
    return None


_WKT_PLACEHOLDERS: Final = {
    "google.protobuf.Duration": "0s",
    "google.protobuf.Timestamp": "1970-01-01T00:00:00Z",
    "google.protobuf.FieldMask": "",
    "google.protobuf.ListValue": [],
}


def _placeholder(fd: FieldDescriptor) -> Any:
    """A harmless stand-in for a dropped value that must stay present (a list element, so
    that later ones keep their index; a oneof member): an empty message or a default."""
    if fd.message_type is not None:
        full_name = fd.message_type.full_name
        if full_name in _WRAPPERS:
            return _placeholder(fd.message_type.fields_by_name["value"])
        return _WKT_PLACEHOLDERS.get(full_name, {})
    if fd.enum_type is not None:
        return fd.enum_type.values[0].name
    return fd.default_value if fd.type != FieldDescriptor.TYPE_BYTES else ""


def _scalar_error(fd: FieldDescriptor, value: Any) -> str | None:
    """Why `value` cannot be the value of the scalar or enum field `fd` (None if it can)."""
    cpp = fd.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_STRING:
        if not isinstance(value, str):
            return f"expected a string, got {show(value)}"
        if fd.type == FieldDescriptor.TYPE_BYTES:
            try:
                json_format.ParseDict({fd.name: value}, _class(fd.containing_type)())
            except (json_format.ParseError, ValueError, TypeError):
                return "expected base64-encoded bytes"
        return None
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        return None if isinstance(value, bool) else f"expected true or false, got {show(value)}"
    if cpp == FieldDescriptor.CPPTYPE_ENUM:
        enum = fd.enum_type
        if isinstance(value, str) and value in enum.values_by_name:
            return None
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value in enum.values_by_number
        ):
            return None
        names = ", ".join(v.name for v in enum.values)
        return f"expected one of {names}, got {show(value)}"
    if cpp in _INT_RANGES:
        return _int_error(fd, value)
    # float and double
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return f"expected a number, got {show(value)}"
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return f"expected a number, got {show(value)}"
    elif not math.isfinite(value):
        return f"expected a finite number, got {show(value)}"
    return None


class _Walker:
    """Walks bootstrap data alongside the message descriptors (see the module docstring)."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems

    def drop(self, path: str, message: str) -> _Drop:
        """Reports a bad value and leaves it out; what later stages would say about its
        absence (a required field, an empty list...) is not reported again."""
        self.problems.add(path, message)
        self.problems.suppress(path)
        return _DROP

    def message(self, raw: Any, descriptor: Descriptor, path: str) -> dict[str, Any] | _Drop:
        if not isinstance(raw, dict):
            return self.drop(path, f"expected a mapping, got {show(raw)}")
        by_key: dict[str, FieldDescriptor] = {}
        for fd in descriptor.fields:
            by_key[fd.name] = fd
            by_key[fd.json_name] = fd
        out: dict[str, Any] = {}
        keys_of: dict[str, str] = {}  # field name -> the key that set it
        oneof_set: dict[str, str] = {}  # oneof name -> the field that set it
        for key, value in raw.items():
            fd = by_key.get(key) if isinstance(key, str) else None
            if fd is None:
                self._unknown_field(descriptor, path, key)
                continue
            fpath = paths.field(path, fd.name)
            if fd.name in keys_of:
                self.problems.add(fpath, f"set twice (as {keys_of[fd.name]} and {key})")
                continue
            keys_of[fd.name] = key
            if value is None:
                continue  # JSON null leaves a field unset
            oneof = fd.containing_oneof
            if oneof is not None:
                if oneof.name in oneof_set:
                    self.problems.add(
                        fpath, f"cannot be set together with {oneof_set[oneof.name]} (one of them)"
                    )
                    continue
                oneof_set[oneof.name] = fd.name
            converted = self.field(value, fd, fpath)
            if converted is not _DROP:
                out[fd.name] = converted
            elif oneof is not None:
                out[fd.name] = _placeholder(fd)  # so that the oneof is not "required" again
        return out

    def _unknown_field(self, descriptor: Descriptor, path: str, key: Any) -> None:
        names = [fd.name for fd in descriptor.fields]
        hint = ""
        if isinstance(key, str):
            close = difflib.get_close_matches(
                re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower(), names, n=1
            )
            if close:
                hint = f' (did you mean "{close[0]}"?)'
        self.problems.add(paths.field(path, str(key)), f"unknown field{hint}")

    def field(self, value: Any, fd: FieldDescriptor, path: str) -> Any:
        if _is_map(fd):
            if not isinstance(value, dict):
                return self.drop(path, f"expected a mapping, got {show(value)}")
            value_fd = fd.message_type.fields_by_name["value"]
            entries: dict[Any, Any] = {}
            for key, entry in value.items():
                converted = self.single(entry, value_fd, paths.item(path, key))
                if converted is not _DROP:
                    entries[key] = converted
            return entries
        if fd.is_repeated:
            if not isinstance(value, list):
                return self.drop(path, f"expected a list, got {show(value)}")
            items = []
            for index, entry in enumerate(value):
                item_path = paths.item(path, index)
                if entry is None:
                    item: Any = self.drop(item_path, "null is not allowed in a list")
                else:
                    item = self.single(entry, fd, item_path)
                # A placeholder keeps the later items at the indices the user wrote.
                items.append(_placeholder(fd) if item is _DROP else item)
            return items
        return self.single(value, fd, path)

    def single(self, value: Any, fd: FieldDescriptor, path: str) -> Any:
        """One value of `fd` (an element, for repeated fields)."""
        if fd.message_type is None:
            error = _scalar_error(fd, value)
            return value if error is None else self.drop(path, error)
        full_name = fd.message_type.full_name
        if full_name == _ANY:
            return self.any(value, path)
        if full_name in _WRAPPERS:
            error = _scalar_error(fd.message_type.fields_by_name["value"], value)
            return value if error is None else self.drop(path, error)
        if full_name.startswith("google.protobuf."):
            return self.well_known(value, fd.message_type, path)
        return self.message(value, fd.message_type, path)

    def well_known(self, value: Any, descriptor: Descriptor, path: str) -> Any:
        """Duration, Struct, ... : ParseDict knows their JSON forms."""
        try:
            json_format.ParseDict(value, _class(descriptor)())
        except (json_format.ParseError, ValueError, TypeError, AttributeError) as e:
            return self.drop(path, _clean_parse_error(str(e)))
        return value

    def any(self, raw: Any, path: str) -> Any:
        if not isinstance(raw, dict):
            return self.drop(path, f"expected a mapping with @type, got {show(raw)}")
        if not raw:
            return raw
        type_url = raw.get("@type")
        if not isinstance(type_url, str) or not type_url:
            return self.drop(path, "@type is missing")
        cls = message_class(type_url)
        if cls is None:
            return self.drop(path, f"unknown type {type_url} (not an Envoy v3 message)")
        descriptor = cls.DESCRIPTOR
        if descriptor.full_name.startswith("google.protobuf.") and descriptor.full_name != _ANY:
            if "value" not in raw:
                if descriptor.full_name == "google.protobuf.Empty":
                    return {"@type": type_url}
                return self.drop(path, f"{type_name(type_url)} needs a value")
            converted = self.well_known(raw["value"], descriptor, paths.field(path, "value"))
            return _DROP if converted is _DROP else {"@type": type_url, "value": converted}
        body = {k: v for k, v in raw.items() if k != "@type"}
        converted = self.message(body, descriptor, path)
        if isinstance(converted, _Drop):
            return _DROP
        return {"@type": type_url, **converted}


def _fallback_problem(problems: Problems, error: Exception) -> None:
    """Reports a ParseDict error the walk did not foresee, at the path in its message."""
    text = str(error)
    found = re.findall(r'at "?Bootstrap\.?([^"\s]*?)"?\.*(?:\n|$)', text)
    path = found[-1] if found else ""
    # ParseDict names fields as written; outside [map keys] make them proto names.
    path = re.sub(
        r"(^|\.)([A-Za-z0-9_]+)",
        lambda m: m.group(1) + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", m.group(2)).lower(),
        re.sub(r"\[[^\]]*\]", lambda m: m.group(0).replace(".", "\0"), path),
    ).replace("\0", ".")
    problems.add(path, _clean_parse_error(text.split("\n")[0]))


def parse_bootstrap(raw: dict[str, Any], problems: Problems) -> bootstrap_pb2.Bootstrap | None:
    """The `Bootstrap` for `raw`, with the parts that had problems left out; None only if
    ParseDict still fails (reported)."""
    walker = _Walker(problems)
    cleaned = walker.message(raw, bootstrap_pb2.Bootstrap.DESCRIPTOR, "")
    if isinstance(cleaned, _Drop):
        return None
    try:
        parsed: bootstrap_pb2.Bootstrap = json_format.ParseDict(cleaned, bootstrap_pb2.Bootstrap())
    except (json_format.ParseError, ValueError, TypeError) as e:
        _fallback_problem(problems, e)
        return None
    return parsed


def parse_message(
    raw: dict[str, Any], cls: type[Message], path: str, problems: Problems
) -> Message | None:
    """Any Envoy message from data (e.g. a DiscoveryResponse in a `path_config_source`
    file), checked like the bootstrap: every problem is reported with its path under `path`
    and the typed configs' modules are imported; None when it does not parse."""
    cleaned = _Walker(problems).message(raw, cls.DESCRIPTOR, path)
    if isinstance(cleaned, _Drop):
        return None
    try:
        parsed: Message = json_format.ParseDict(cleaned, cls())
    except (json_format.ParseError, ValueError, TypeError) as e:
        problems.add(path, _clean_parse_error(str(e)))
        return None
    return parsed

"""Checks snapshot dicts against the serde types in fastpath/src/config/snapshot.rs, read from
the Rust source itself: unknown keys, missing required fields, types, integer ranges and enum
spellings are errors, as they are for `Engine.apply` (`deny_unknown_fields`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

SNAPSHOT_RS = Path(__file__).resolve().parents[2] / "fastpath" / "src" / "config" / "snapshot.rs"
# Snapshot types kept in their own file (referenced from snapshot.rs as `super::access_log::X`).
EXTRA_RS = tuple(
    SNAPSHOT_RS.with_name(name)
    for name in ("access_log.rs", "http2.rs", "jwt.rs", "rbac.rs", "tls.rs", "tracing.rs")
)
_INT_RANGES = {
    "u16": (0, 2**16 - 1),
    "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
    "i32": (-(2**31), 2**31 - 1),
    "i64": (-(2**63), 2**63 - 1),
}


@dataclass
class Struct:
    fields: dict[str, tuple[str, bool]] = field(default_factory=dict)  # name -> (type, required)


@dataclass
class Enum:
    variants: dict[str, Any] = field(default_factory=dict)  # json name -> None | type | Struct


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@cache
def definitions() -> dict[str, Struct | Enum]:
    """The structs and enums of snapshot.rs, by Rust name (rustfmt's layout: one member per
    line; a struct variant either on one line or spread over several)."""
    defs: dict[str, Struct | Enum] = {}
    current: Struct | Enum | None = None
    variant_fields: Struct | None = None  # the struct variant being read, over several lines
    attrs: list[str] = []
    lines = [line for rs in (SNAPSHOT_RS, *EXTRA_RS) for line in rs.read_text().splitlines()]
    for raw in lines:
        line = raw.strip()
        if line.startswith("//") or not line:
            continue
        if line.startswith("#["):
            attrs.append(line)
            continue
        start = re.match(r"pub (struct|enum) (\w+) \{", line)
        if start:
            current = Struct() if start.group(1) == "struct" else Enum()
            defs[start.group(2)] = current
        elif variant_fields is not None:
            if line.startswith("}"):
                variant_fields = None
            else:
                key, type_text = (part.strip() for part in line.rstrip(",").split(":", 1))
                variant_fields.fields[key] = (type_text, True)
        elif line == "}":
            current = None
        elif isinstance(current, Struct):
            _struct_member(current, line, attrs)
        elif isinstance(current, Enum):
            variant_fields = _enum_variant(current, line)
        attrs = []
    return defs


def _struct_member(struct: Struct, line: str, attrs: list[str]) -> None:
    member = re.match(r"pub (\w+): (.+),$", line)
    if not member:
        return
    rename = next((re.search(r'rename = "(\w+)"', a) for a in attrs if "rename =" in a), None)
    name = rename.group(1) if rename else member.group(1)
    type_text = member.group(2)
    required = not any("default" in a for a in attrs) and not type_text.startswith("Option<")
    struct.fields[name] = (type_text, required)


def _enum_variant(enum: Enum, line: str) -> Struct | None:
    """Records one variant; returns its fields' Struct when they follow on the next lines."""
    variant = re.match(r"(\w+)(?:\((.+)\)|\s*\{(.*?)(\})?)?,?$", line)
    if not variant:
        return None
    name = _snake(variant.group(1))
    if variant.group(2):
        enum.variants[name] = variant.group(2)
        return None
    if variant.group(3) is None:
        enum.variants[name] = None
        return None
    fields = Struct()
    for part in variant.group(3).split(","):
        if part.strip():
            key, type_text = (s.strip() for s in part.split(":", 1))
            fields.fields[key] = (type_text, True)
    enum.variants[name] = fields
    return None if variant.group(4) else fields


def _check(value: Any, type_text: str, path: str, errors: list[str]) -> None:
    type_text = re.sub(r"\b(?:super|crate)::(?:\w+::)*", "", type_text)
    string_map = re.fullmatch(r"BTreeMap<String, (.+)>", type_text)
    if string_map:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object")
            return
        for key, item in value.items():
            _check(item, string_map.group(1), f"{path}.{key}", errors)
        return
    generic = re.fullmatch(r"(Option|Vec|Box)<(.+)>", type_text)
    if generic:
        if generic.group(1) == "Box":
            _check(value, generic.group(2), path, errors)
        elif generic.group(1) == "Option":
            if value is not None:
                _check(value, generic.group(2), path, errors)
        elif not isinstance(value, list):
            errors.append(f"{path}: expected a list")
        else:
            for i, item in enumerate(value):
                _check(item, generic.group(2), f"{path}[{i}]", errors)
        return
    if type_text == "String":
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {value!r}")
        return
    if type_text == "bool":
        if not isinstance(value, bool):
            errors.append(f"{path}: expected a bool, got {value!r}")
        return
    if type_text == "f64":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"{path}: expected a number, got {value!r}")
        return
    if type_text in _INT_RANGES:
        low, high = _INT_RANGES[type_text]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            errors.append(f"{path}: expected {type_text}, got {value!r}")
        return
    definition = definitions()[type_text]
    if isinstance(definition, Struct):
        _check_struct(value, definition, path, errors)
        return
    if isinstance(value, str):
        if value not in definition.variants or definition.variants[value] is not None:
            errors.append(f"{path}: {value!r} is not a unit variant of {type_text}")
        return
    if not isinstance(value, dict) or len(value) != 1:
        errors.append(f"{path}: expected one {type_text} variant, got {value!r}")
        return
    ((name, payload),) = value.items()
    if name not in definition.variants or definition.variants[name] is None:
        errors.append(f"{path}: {name!r} is not a {type_text} variant")
        return
    variant = definition.variants[name]
    if isinstance(variant, Struct):
        _check_struct(payload, variant, f"{path}.{name}", errors)
    else:
        _check(payload, variant, f"{path}.{name}", errors)


def _check_struct(value: Any, struct: Struct, path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{path}: expected an object, got {value!r}")
        return
    for key in value:
        if key not in struct.fields:
            errors.append(f"{path}.{key}: unknown field")
    for key, (type_text, required) in struct.fields.items():
        if key in value:
            _check(value[key], type_text, f"{path}.{key}", errors)
        elif required:
            errors.append(f"{path}.{key}: missing")


def snapshot_errors(snapshot: dict[str, Any]) -> list[str]:
    """Why the Rust engine would reject `snapshot` ([] when it would accept it)."""
    errors: list[str] = []
    _check(snapshot, "Snapshot", "snapshot", errors)
    return errors


def endpoint_errors(endpoint: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    _check(endpoint, "Endpoint", "endpoint", errors)
    return errors

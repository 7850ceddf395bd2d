"""Envoy's field constraints (protoc-gen-validate `validate.rules`: ranges, min lengths,
required fields), checked on the bootstrap and on every typed config, with field paths.

PGV's messages name a field but not where it is (`p.port_value is not lesser than or equal
to 65535`). A valid tree costs one `validate_all` per root; when a subtree fails, its
children are validated one by one so that each error lands on the message that owns it (a
message's own errors are its errors minus those of its children)."""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import jinja2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from protoc_gen_validate import validator
from protoc_gen_validate.validator import ValidationFailed, validate_all

from . import paths, pgv_codegen
from .errors import Problems
from .walk import children, typed_configs

_COMPARISONS = (
    (re.compile(r"is not greater than or equal to (\S+)"), "must be at least {}"),
    (re.compile(r"is not greater than (\S+)"), "must be greater than {}"),
    (re.compile(r"is not lesser than or equal to (\S+)"), "must be at most {}"),
    (re.compile(r"is not lesser than (\S+)"), "must be less than {}"),
)


def _compile_templates_once() -> None:
    """PGV builds `jinja2.Template(source)` from the same ~15 constant sources for every
    field of every message type it meets, and compiling them is nearly all of its ~0.3 s
    first-check cost per type. Caching the compiled template per source makes a config's
    first check ~7x faster; the generated validators are unchanged (same sources, same
    `render` calls)."""
    if getattr(validator, "Template", None) is jinja2.Template:
        validator.Template = functools.cache(jinja2.Template)


_compile_templates_once()

_GENERATED: dict[Descriptor, Callable[[Message], list[str]]] = {}
_PGV_VALIDATE_ALL = validator._validate_all


def _validate_all(msg: Message) -> list[str]:
    """PGV's `_validate_all` (the errors of `msg` and everything under it), calling PGV's
    generated function (`_validate_all_inner`'s, rewritten by `pgv_codegen`), made once per
    type and kept. PGV's lookup wraps every message of the tree in a `ValidatingMessage`
    hashed by full name through an `lru_cache` of 128 types: past 128 types (the configs of
    tests/config and tests/xds use 213) it regenerates evicted validators (jinja, ast,
    exec: ~5 ms each) over and over; and the lookup itself is ~12% of a route config's
    validation. Installed as the module's `_validate_all`, which the generated functions
    call for the messages inside."""
    descriptor = msg.DESCRIPTOR
    generate = _GENERATED.get(descriptor)
    if generate is None:
        generate = pgv_codegen.generate(msg)
        _GENERATED[descriptor] = generate
    return generate(msg)


def _install_lookup() -> None:
    if validator._validate_all is _PGV_VALIDATE_ALL:
        validator._validate_all = _validate_all


_install_lookup()


def _errors(msg: Message) -> list[str] | None:
    """PGV's errors for `msg` and everything under it; None when PGV cannot check the
    type (its generated code failed), so that the children are checked one by one."""
    try:
        validate_all(msg)
    except ValidationFailed as e:
        return [line for line in str(e).split("\n") if line]
    except Exception:  # a bug in PGV's generated code must not block a config
        return None
    return []


def _number(text: str, duration: bool) -> str:
    try:
        number = float(text)
    except ValueError:
        return text
    shown = f"{number:g}" if not number.is_integer() else str(int(number))
    return f"{shown}s" if duration else shown


def _field_value(msg: Message, name: str) -> tuple[str | None, bool]:
    """The value of scalar-like field `name` as text, and whether it is a Duration."""
    fd = msg.DESCRIPTOR.fields_by_name.get(name)
    if fd is None or fd.is_repeated:
        return None, False
    value: Any = getattr(msg, name)
    if fd.message_type is None:
        return (str(value) if not isinstance(value, str) else None), False
    full_name = fd.message_type.full_name
    if full_name == "google.protobuf.Duration":
        return _number(str(value.seconds + value.nanos / 1e9), True), True
    if full_name.startswith("google.protobuf.") and full_name.endswith("Value"):
        inner = value.value
        return (str(inner) if not isinstance(inner, str) else None), False
    return None, False


def _rephrase(rest: str, value: str | None, duration: bool) -> str:
    rest = rest.rstrip(".")
    for pattern, template in _COMPARISONS:
        match = pattern.fullmatch(rest)
        if match:
            said = template.format(_number(match.group(1), duration))
            return f"{value} {said}" if value is not None else said
    match = re.fullmatch(r"length is less than (\d+)", rest)
    if match:
        n = int(match.group(1))
        return "must not be empty" if n == 1 else f"must be at least {n} characters long"
    match = re.fullmatch(r"needs to contain at least (\d+) items", rest)
    if match:
        n = int(match.group(1))
        return "must not be empty" if n == 1 else f"needs at least {n} items"
    return rest


def _rule_field(msg: Message, kind: str) -> str | None:
    """The single repeated (kind "item") or map (kind "key") field of `msg` with per-element
    rules, for PGV errors that say only `item ...` / `key ...`."""
    candidates = []
    for fd in msg.DESCRIPTOR.fields:
        is_map = fd.message_type is not None and fd.message_type.GetOptions().map_entry
        if (kind == "key") == bool(is_map) and fd.is_repeated and len(getattr(msg, fd.name)):
            candidates.append(fd.name)
    return candidates[0] if len(candidates) == 1 else None


def _report(msg: Message, path: str, error: str, problems: Problems) -> None:
    match = re.fullmatch(r"p\.(\w+)(?:\.value)?(?:\[key\])? (.*)", error, re.S)
    if match:
        name, rest = match.groups()
        value, duration = _field_value(msg, name)
        problems.add(paths.field(path, name), _rephrase(rest, value, duration))
        return
    match = re.fullmatch(r"(\w+) is required\.?", error)
    if match and match.group(1) in msg.DESCRIPTOR.fields_by_name:
        problems.add(paths.field(path, match.group(1)), "is required")
        return
    match = re.fullmatch(r"Oneof (\w+) is required", error)
    if match and match.group(1) in msg.DESCRIPTOR.oneofs_by_name:
        names = [fd.name for fd in msg.DESCRIPTOR.oneofs_by_name[match.group(1)].fields]
        problems.add(path, f"one of {', '.join(names)} is required")
        return
    match = re.fullmatch(r"(item|key) (.*)", error, re.S)
    if match:
        name = _rule_field(msg, match.group(1))
        where = paths.field(path, name) if name else path
        problems.add(
            where,
            f"an {'entry' if match.group(1) == 'item' else 'key'} "
            f"{_rephrase(match.group(2), None, False)}",
        )
        return
    problems.add(path, error)


def _attribute(msg: Message, path: str, errors: list[str] | None, problems: Problems) -> None:
    remaining: Counter[str] = Counter(errors or [])
    for child_path, _, child in children(msg, path):
        child_errors = _errors(child)
        if child_errors is None or child_errors:
            remaining -= Counter(child_errors or [])
            _attribute(child, child_path, child_errors, problems)
    for error in errors or []:
        if remaining[error] > 0:
            remaining[error] -= 1
            _report(msg, path, error, problems)


def check(root: Message, problems: Problems, root_path: str = "") -> None:
    """Reports every PGV violation in `root` (the bootstrap, or an xDS resource at
    `root_path`) and in its typed configs."""
    for path, msg in [(root_path, root), *typed_configs(root, root_path)]:
        errors = _errors(msg)
        if errors is None or errors:
            _attribute(msg, path, errors, problems)

"""Walks every set field of a parsed bootstrap (typed configs included) and reports each one
the table in `supported.py` does not allow, so that nothing is silently ignored."""

from __future__ import annotations

import functools
from typing import NamedTuple

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from . import paths
from .any_reach import ANY
from .errors import Problems
from .supported import LEAF_PREFIX, MESSAGES, Rule
from .type_urls import type_name, unpack
from .walk import SINGLE, reaching_any, shape, shaped_values, values

# What `check` does with a set field (`_Step.action`).
SKIP = 0  # allowed, nothing inside to check (opaque, scalar, protobuf value type)
REPORT = 1  # not in the table: `_Step.text` is the problem
ENUM = 2  # an enum with some values allowed
EMPTY = 3  # allowed only when nothing inside is set
TYPED = 4  # a typed config (`Any`)
DESCEND = 5  # check the message(s) inside
SCAN = 6  # `rules.clean` only: SKIP, but typed configs may be inside (`walk.reaching_any`)


class _Step(NamedTuple):
    """How `check` handles one field of one message type (computed once per field)."""

    action: int
    shape: int
    rule: Rule = Rule()
    text: str = ""
    allowed: frozenset[int] = frozenset()
    """ENUM: the numbers whose names the rule allows."""


def _yet(planned: bool) -> str:
    return "not supported yet" if planned else "not supported"


def step_of(descriptor: Descriptor, fd: FieldDescriptor) -> _Step:
    """The table's verdict on field `fd` of `descriptor` (`_steps` keeps those of its
    fields; an extension is looked up here each time)."""
    spec = MESSAGES.get(descriptor.full_name)
    rule = spec.fields.get(fd.name) if spec is not None else None
    kind = shape(fd)
    if rule is None:
        planned = spec is not None and fd.name in spec.later
        return _Step(REPORT, kind, text=f"{fd.name} is {_yet(planned)}")
    if rule.opaque:
        return _Step(SKIP, kind)
    if fd.enum_type is not None:
        if rule.values is None:
            return _Step(SKIP, kind)
        allowed = frozenset(
            number
            for number, value in fd.enum_type.values_by_number.items()
            if value.name in rule.values
        )
        return _Step(ENUM, kind, rule, allowed=allowed)
    if fd.message_type is None:
        return _Step(SKIP, kind)
    child = fd.message_type
    if child.GetOptions().map_entry:
        child = child.fields_by_name["value"].message_type
        if child is None:
            return _Step(SKIP, kind)
    if rule.empty:
        return _Step(EMPTY, kind, rule)
    if child.full_name == ANY:
        return _Step(TYPED, kind, rule)
    if child.full_name.startswith(LEAF_PREFIX):
        return _Step(SKIP, kind)
    return _Step(DESCEND, kind)


@functools.cache
def _steps(descriptor: Descriptor) -> dict[FieldDescriptor, _Step]:
    """The table's verdict on every field of `descriptor`, looked up once per type."""
    return {fd: step_of(descriptor, fd) for fd in descriptor.fields}


def _check_enum(
    fd: FieldDescriptor, rule: Rule, value: object, path: str, problems: Problems
) -> None:
    if rule.values is None:
        return
    for value_path, number in values(fd, value, path):
        known = fd.enum_type.values_by_number.get(number)
        name = known.name if known is not None else str(number)
        if name not in rule.values:
            problems.add(value_path, f"{name} is {_yet(name in rule.later_values)}")


def _check_typed(
    parent: Message, parent_path: str, packed: Message, path: str, rule: Rule, problems: Problems
) -> None:
    type_url: str = getattr(packed, "type_url", "")
    if not type_url:
        problems.add(path, "@type is missing")
        return
    full_name = type_name(type_url)
    if rule.types is not None and full_name not in rule.types:
        yet = _yet(full_name in rule.later_types)
        if rule.filter_kind:
            label = getattr(parent, "name", "") or full_name
            problems.add(parent_path, f"filter {label} is {yet}")
        else:
            problems.add(path, f"{full_name} is {yet}")
        return
    inner = unpack(packed)
    if inner is None:
        problems.add(path, f"cannot decode {full_name}")
        return
    check(inner, path, problems)


def check(msg: Message, path: str, problems: Problems) -> None:
    """Reports each set field under `msg` that meshcore does not implement. A field's path
    is built only when it is reported or looked into."""
    descriptor = msg.DESCRIPTOR
    steps = _steps(descriptor)
    for fd, value in msg.ListFields():
        step = steps.get(fd) or step_of(descriptor, fd)  # an extension is not in `fields`
        action, kind, rule, text, allowed = step
        if action == SKIP:
            continue
        if action == ENUM:
            if value in allowed if kind == SINGLE else all(v in allowed for v in value):
                continue
            _check_enum(fd, rule, value, paths.field(path, fd.name), problems)
            continue
        field_path = paths.field(path, fd.name)
        if action == REPORT:
            problems.add(field_path, text)
        elif action == DESCEND and kind == SINGLE:
            check(value, field_path, problems)
        else:
            for value_path, child in shaped_values(kind, value, field_path):
                if action == DESCEND:
                    check(child, value_path, problems)
                elif action == TYPED:
                    _check_typed(msg, path, child, value_path, rule, problems)
                elif child.ListFields():  # EMPTY
                    problems.add(value_path, rule.empty)


@functools.cache
def clean_steps(descriptor: Descriptor) -> dict[FieldDescriptor, _Step]:
    """`_steps` (for `rules.clean`), with SCAN for the SKIP fields that
    `walk.typed_configs` looks into."""
    scanned = reaching_any(descriptor)
    return {
        fd: step._replace(action=SCAN) if step.action == SKIP and fd in scanned else step
        for fd, step in _steps(descriptor).items()
    }

"""Walks every set field of a parsed bootstrap (typed configs included) and reports each one
the table in `supported.py` does not allow, so that nothing is silently ignored."""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from . import paths
from .any_reach import ANY
from .errors import Problems
from .supported import LEAF_PREFIX, MESSAGES, Rule
from .type_urls import type_name, unpack
from .walk import set_fields, values


def _yet(planned: bool) -> str:
    return "not supported yet" if planned else "not supported"


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
    """Reports each set field under `msg` that meshcore does not implement."""
    spec = MESSAGES.get(msg.DESCRIPTOR.full_name)
    for fd, value in set_fields(msg):
        field_path = paths.field(path, fd.name)
        rule = spec.fields.get(fd.name) if spec is not None else None
        if rule is None:
            planned = spec is not None and fd.name in spec.later
            problems.add(field_path, f"{fd.name} is {_yet(planned)}")
            continue
        if rule.opaque:
            continue
        if fd.enum_type is not None:
            _check_enum(fd, rule, value, field_path, problems)
            continue
        if fd.message_type is None:
            continue
        if fd.message_type.GetOptions().map_entry:
            value_fd = fd.message_type.fields_by_name["value"]
            if value_fd.message_type is None:
                continue
        for value_path, child in values(fd, value, field_path):
            if rule.empty:
                if set_fields(child):
                    problems.add(value_path, rule.empty)
            elif child.DESCRIPTOR.full_name == ANY:
                _check_typed(msg, path, child, value_path, rule, problems)
            elif not child.DESCRIPTOR.full_name.startswith(LEAF_PREFIX):
                check(child, value_path, problems)

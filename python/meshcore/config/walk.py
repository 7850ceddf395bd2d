"""Iterates a parsed config's message tree with Envoy-style paths, unpacking typed configs."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from . import paths
from .any_reach import ANY, reaches_any
from .type_urls import unpack

# How a field holds its values (`shape`).
SINGLE, LIST, MAP = 0, 1, 2


@functools.cache
def shape(fd: FieldDescriptor) -> int:
    """MAP (a map field), LIST (another repeated field) or SINGLE; cached per field."""
    if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
        return MAP
    return LIST if fd.is_repeated else SINGLE


def is_map(fd: FieldDescriptor) -> bool:
    return shape(fd) == MAP


def set_fields(msg: Message) -> list[tuple[FieldDescriptor, Any]]:
    """The fields that are set (proto3 scalars: the non-default ones), in field order."""
    fields: list[tuple[FieldDescriptor, Any]] = msg.ListFields()
    return fields


def shaped_values(kind: int, value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """`values` for a field of shape `kind`."""
    if kind == MAP:
        for key in sorted(value):
            yield paths.item(path, key), value[key]
    elif kind == LIST:
        for index, entry in enumerate(value):
            yield paths.item(path, index), entry
    else:
        yield path, value


def values(fd: FieldDescriptor, value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Each value of a set field with its path: map entries by key, list items by index."""
    return shaped_values(shape(fd), value, path)


def children(msg: Message, path: str) -> Iterator[tuple[str, FieldDescriptor, Message]]:
    """The set sub-messages of `msg` (not looking inside `Any`s)."""
    for fd, value in set_fields(msg):
        if fd.message_type is None:
            continue
        kind = shape(fd)
        if kind == MAP and fd.message_type.fields_by_name["value"].message_type is None:
            continue
        for child_path, child in shaped_values(kind, value, paths.field(path, fd.name)):
            yield child_path, fd, child


@functools.cache
def reaching_any(descriptor: Descriptor) -> dict[FieldDescriptor, int]:
    """The message fields of `descriptor` that can hold an `Any` at some depth, with their
    shape: the only ones `typed_configs` needs to look into."""
    return {
        fd: shape(fd)
        for fd in descriptor.fields
        if fd.message_type is not None and reaches_any(fd.message_type)
    }


def typed_configs(msg: Message, path: str) -> list[tuple[str, Message]]:
    """Every known typed config (unpacked `Any`) under `msg`, outermost first. Subtrees whose
    type cannot hold an `Any` (`any_reach`) are not walked."""
    found: list[tuple[str, Message]] = []
    _typed_configs(msg, path, found)
    return found


def _typed_configs(msg: Message, path: str, found: list[tuple[str, Message]]) -> None:
    fields = reaching_any(msg.DESCRIPTOR)
    if not fields:
        return
    for fd, value in msg.ListFields():
        kind = fields.get(fd)
        if kind is None:
            continue
        field_path = paths.field(path, fd.name)
        if kind == SINGLE:
            _typed_config(value, field_path, found)
        else:
            for child_path, child in shaped_values(kind, value, field_path):
                _typed_config(child, child_path, found)


def value_typed_configs(kind: int, value: Any) -> list[Message]:
    """The typed configs `typed_configs` finds in a field's `value` of shape `kind` (a field
    of `reaching_any`), in its order, without their paths."""
    found: list[tuple[str, Message]] = []
    for child_path, child in shaped_values(kind, value, ""):
        _typed_config(child, child_path, found)
    return [inner for _, inner in found]


def _typed_config(child: Message, path: str, found: list[tuple[str, Message]]) -> None:
    if child.DESCRIPTOR.full_name == ANY:
        inner = unpack(child)
        if inner is not None:
            found.append((path, inner))
            _typed_configs(inner, path, found)
    else:
        _typed_configs(child, path, found)

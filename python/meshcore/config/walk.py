"""Iterates a parsed config's message tree with Envoy-style paths, unpacking typed configs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from . import paths
from .type_urls import unpack

ANY = "google.protobuf.Any"


def is_map(fd: FieldDescriptor) -> bool:
    return bool(fd.message_type is not None and fd.message_type.GetOptions().map_entry)


def set_fields(msg: Message) -> list[tuple[FieldDescriptor, Any]]:
    """The fields that are set (proto3 scalars: the non-default ones), in field order."""
    fields: list[tuple[FieldDescriptor, Any]] = msg.ListFields()
    return fields


def values(fd: FieldDescriptor, value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Each value of a set field with its path: map entries by key, list items by index."""
    if is_map(fd):
        for key in sorted(value):
            yield paths.item(path, key), value[key]
    elif fd.is_repeated:
        for index, entry in enumerate(value):
            yield paths.item(path, index), entry
    else:
        yield path, value


def children(msg: Message, path: str) -> Iterator[tuple[str, FieldDescriptor, Message]]:
    """The set sub-messages of `msg` (not looking inside `Any`s)."""
    for fd, value in set_fields(msg):
        if fd.message_type is None:
            continue
        if is_map(fd) and fd.message_type.fields_by_name["value"].message_type is None:
            continue
        for child_path, child in values(fd, value, paths.field(path, fd.name)):
            yield child_path, fd, child


def typed_configs(msg: Message, path: str) -> Iterator[tuple[str, Message]]:
    """Every known typed config (unpacked `Any`) under `msg`, outermost first."""
    for child_path, _, child in children(msg, path):
        if child.DESCRIPTOR.full_name == ANY:
            inner = unpack(child)
            if inner is not None:
                yield child_path, inner
                yield from typed_configs(inner, child_path)
        else:
            yield from typed_configs(child, child_path)

"""Typed configs: finds the message class of an `@type` URL, importing its `_pb2` module on
demand (never all of xds-protos), and unpacks `Any` values."""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import re
from pathlib import Path

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message

# Only packages of Envoy's schema are imported on a config's say-so.
_ROOTS = ("envoy.", "xds.", "udpa.", "google.protobuf.")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def type_name(type_url: str) -> str:
    """`type.googleapis.com/envoy.x.v3.Foo` -> `envoy.x.v3.Foo`."""
    return type_url.rsplit("/", 1)[-1]


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _find(full_name: str) -> Descriptor | None:
    try:
        found: Descriptor = descriptor_pool.Default().FindMessageTypeByName(full_name)
    except KeyError:
        return None
    return found


def _package_modules(package: str) -> list[str]:
    """The `_pb2` modules of `package` (an xds-protos directory), without importing them."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    names: set[str] = set()
    for location in spec.submodule_search_locations:
        names.update(p.stem for p in Path(location).glob("*_pb2.py"))
    return sorted(names)


def _import(module: str) -> None:
    with contextlib.suppress(ImportError):
        importlib.import_module(module)


@functools.cache
def descriptor_for(type_url: str) -> Descriptor | None:
    """The descriptor of the message `type_url` names, importing the module that defines it
    (its snake-cased name first, then the other modules of its package); None if unknown."""
    full_name = type_name(type_url)
    found = _find(full_name)
    if found is not None or not _NAME.fullmatch(full_name) or not full_name.startswith(_ROOTS):
        return found
    parts = full_name.split(".")
    # The message may be nested (`pkg.Outer.Inner`): try the two closest packages.
    for cut in (len(parts) - 1, len(parts) - 2):
        package, outer = ".".join(parts[:cut]), parts[cut]
        modules = _package_modules(package)
        guess = f"{_snake(outer)}_pb2"
        for module in sorted(modules, key=lambda m: m != guess):
            _import(f"{package}.{module}")
            found = _find(full_name)
            if found is not None:
                return found
    return None


def message_class(type_url: str) -> type[Message] | None:
    """The generated class for `type_url`, or None when xds-protos has no such message."""
    descriptor = descriptor_for(type_url)
    if descriptor is None:
        return None
    cls: type[Message] = message_factory.GetMessageClass(descriptor)
    return cls


@functools.lru_cache(maxsize=4096)
def _unpack(type_url: str, value: bytes) -> Message | None:
    cls = message_class(type_url)
    if cls is None:
        return None
    inner = cls()
    try:
        inner.ParseFromString(value)
    except DecodeError:
        return None
    return inner


def unpack(packed: AnyMessage) -> Message | None:
    """The message inside an `Any` (shared: do not mutate it); None if empty or unknown."""
    if not packed.type_url:
        return None
    return _unpack(packed.type_url, packed.value)

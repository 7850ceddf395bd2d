"""Reading proto values the way Envoy does: durations in ms, wrapper defaults, enum names,
IP literals."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message


def duration_ms(duration: Duration) -> int:
    """Whole milliseconds, rounded up so that a non-zero duration never becomes 0 (which
    means "disabled" in the snapshot)."""
    nanos = int(duration.seconds) * 1_000_000_000 + int(duration.nanos)
    return max(0, -(-nanos // 1_000_000))


def duration_field_ms(msg: Message, name: str, default_ms: int) -> int:
    """`msg.name` in ms, or `default_ms` when unset."""
    if not msg.HasField(name):
        return default_ms
    return duration_ms(getattr(msg, name))


def duration_field_s(msg: Message, name: str, default_s: float) -> float:
    if not msg.HasField(name):
        return default_s
    duration: Duration = getattr(msg, name)
    return float(duration.seconds + duration.nanos / 1e9)


def wrapped(msg: Message, name: str, default: Any) -> Any:
    """The value of wrapper field `msg.name` (BoolValue, UInt32Value...), or `default`."""
    if not msg.HasField(name):
        return default
    return getattr(msg, name).value


def enum_name(msg: Message, name: str) -> str:
    """The name of enum field `msg.name`'s value (its number if it has no name)."""
    number: int = getattr(msg, name)
    value = msg.DESCRIPTOR.fields_by_name[name].enum_type.values_by_number.get(number)
    return value.name if value is not None else str(number)


def is_ip(text: str) -> bool:
    """Whether `text` is an IP literal as `ipaddress.ip_address` reads it (IPv4 dotted quad
    without leading zeros; IPv6, with an optional `%scope`). `inet_pton` accepts a subset of
    what `ipaddress` does, in ~1/20 of the time (1,000 EDS endpoints: 0.08 ms against
    1.5 ms), so it answers the common case and `ipaddress` decides the rest."""
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)
        return True
    except (OSError, ValueError, UnicodeError):  # not for inet_pton: ask ipaddress
        pass
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True

"""A listener's `filter_chain_match`es and listener filters (`listener_filters`: the TLS
inspector, `listener_filters_timeout`, `continue_on_listener_filters_timeout`) into the
snapshot's `FilterChainMatch` and `Listener` fields (docs/filter-chains.md)."""

from __future__ import annotations

import ipaddress
from typing import Any

from envoy.config.listener.v3 import listener_components_pb2, listener_pb2

from . import paths
from .errors import Problems
from .supported import TLS_INSPECTOR
from .type_urls import type_name, unpack
from .values import duration_field_ms, enum_name, wrapped

DEFAULT_LISTENER_FILTERS_TIMEOUT_MS = 15_000
DEFAULT_MAX_CLIENT_HELLO_SIZE = 16 * 1024
_TRANSPORT_PROTOCOLS = ("", "raw_buffer", "tls")


def _cidrs(ranges: Any, path: str, problems: Problems) -> list[dict[str, Any]]:
    """Snapshot `CidrRange`s of a repeated `CidrRange` field."""
    out = []
    for i, cidr in enumerate(ranges):
        cidr_path = paths.item(path, i)
        try:
            address = ipaddress.ip_address(cidr.address_prefix)
        except ValueError:
            problems.add(
                paths.field(cidr_path, "address_prefix"),
                f"{cidr.address_prefix!r} is not an IP address",
            )
            continue
        prefix_len = wrapped(cidr, "prefix_len", 0)
        if prefix_len > address.max_prefixlen:
            problems.add(
                paths.field(cidr_path, "prefix_len"),
                f"{prefix_len} is longer than the address ({address.max_prefixlen} bits)",
            )
        out.append({"address_prefix": cidr.address_prefix, "prefix_len": prefix_len})
    return out


def _server_names(names: Any, path: str, problems: Problems) -> list[str]:
    out = []
    for i, name in enumerate(names):
        if "*" in name and not (name.startswith("*.") and "*" not in name[1:]):
            problems.add(
                paths.item(path, i),
                f"{name!r}: partial wildcards are not supported (only a leading '*.')",
            )
        out.append(name.lower())
    return out


def filter_chain_match(
    match: listener_components_pb2.FilterChainMatch, path: str, problems: Problems
) -> dict[str, Any]:
    """The snapshot `FilterChainMatch` for `match` (at `path`); only the set criteria."""
    out: dict[str, Any] = {}
    if match.HasField("destination_port"):
        out["destination_port"] = match.destination_port.value
    for name in ("prefix_ranges", "direct_source_prefix_ranges", "source_prefix_ranges"):
        ranges = _cidrs(getattr(match, name), paths.field(path, name), problems)
        if ranges:
            out[name] = ranges
    if match.server_names:
        out["server_names"] = _server_names(
            match.server_names, paths.field(path, "server_names"), problems
        )
    if match.transport_protocol:
        if match.transport_protocol not in _TRANSPORT_PROTOCOLS:
            problems.add(
                paths.field(path, "transport_protocol"),
                f"{match.transport_protocol!r} is never detected (meshcore detects 'tls' "
                "with the TLS inspector, else 'raw_buffer')",
            )
        out["transport_protocol"] = match.transport_protocol
    if match.application_protocols:
        out["application_protocols"] = list(match.application_protocols)
    source_type = enum_name(match, "source_type").lower()
    if source_type != "any":
        out["source_type"] = (
            "same_ip_or_loopback" if source_type.startswith("same") else source_type
        )
    if match.source_ports:
        out["source_ports"] = list(match.source_ports)
    return out


def listener_filters(
    config: listener_pb2.Listener, path: str, problems: Problems
) -> dict[str, Any]:
    """The snapshot `Listener`'s `tls_inspector`, `listener_filters_timeout_ms` and
    `continue_on_listener_filters_timeout` (the table rejects other listener filters)."""
    out: dict[str, Any] = {
        "listener_filters_timeout_ms": duration_field_ms(
            config, "listener_filters_timeout", DEFAULT_LISTENER_FILTERS_TIMEOUT_MS
        ),
        "continue_on_listener_filters_timeout": config.continue_on_listener_filters_timeout,
    }
    filters_path = paths.field(path, "listener_filters")
    for i, listener_filter in enumerate(config.listener_filters):
        filter_path = paths.item(filters_path, i)
        if not listener_filter.HasField("typed_config"):
            if listener_filter.WhichOneof("config_type") is None:
                problems.add(paths.field(filter_path, "typed_config"), "is required")
            continue
        if type_name(listener_filter.typed_config.type_url) != TLS_INSPECTOR:
            continue  # reported by the table
        inspector = unpack(listener_filter.typed_config)
        if inspector is None:
            continue
        if "tls_inspector" in out:
            problems.add(filter_path, "the TLS inspector is already configured")
        size = wrapped(inspector, "max_client_hello_size", DEFAULT_MAX_CLIENT_HELLO_SIZE)
        out["tls_inspector"] = {"max_client_hello_size": size}
    return out

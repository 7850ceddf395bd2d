"""A route's `hash_policy` into the snapshot's `HashPolicy` list (header names lower-cased).
Unsupported parts (generated cookies, header regex rewrites, filter state) are reported by the
supported-fields table."""

from __future__ import annotations

from typing import Any

from envoy.config.route.v3 import route_components_pb2 as rc


def hash_policies(action: rc.RouteAction) -> list[dict[str, Any]]:
    """The snapshot `hash_policy` of a route action (empty when it has none)."""
    out: list[dict[str, Any]] = []
    for policy in action.hash_policy:
        kind = policy.WhichOneof("policy_specifier")
        source: Any
        if kind == "header":
            source = {"header": policy.header.header_name.lower()}
        elif kind == "cookie":
            source = {"cookie": policy.cookie.name}
        elif kind == "query_parameter":
            source = {"query_parameter": policy.query_parameter.name}
        elif kind == "connection_properties" and policy.connection_properties.source_ip:
            source = "source_ip"
        else:
            continue  # source_ip: false hashes nothing, as in Envoy
        out.append({"policy": source, "terminal": policy.terminal})
    return out

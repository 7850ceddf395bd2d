"""RBAC: `envoy.filters.http.rbac` (and its `RBACPerRoute`) and `envoy.filters.network.rbac`
into the snapshot's `HttpRbac`, `RbacPerRoute` and `NetworkRbac` (types in
`fastpath/src/config/rbac.rs`). Fields meshcore does not implement (`matcher`, CEL
`condition`, ...) are reported by the supported-fields table."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import paths, translate_routes
from .errors import Problems
from .values import enum_name, wrapped

if TYPE_CHECKING:  # the modules are imported on demand, by type URL, when a config uses them
    from envoy.config.core.v3 import address_pb2
    from envoy.config.rbac.v3 import rbac_pb2
    from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
    from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac_pb2
    from envoy.type.matcher.v3 import metadata_pb2, value_pb2

_NETWORK_HEADER = "header rules are not supported by the network RBAC filter (Envoy rejects them)"


def http_rbac(config: http_rbac_pb2.RBAC, path: str, problems: Problems) -> dict[str, Any]:
    """The snapshot `HttpRbac` for `config` (at `path`)."""
    out: dict[str, Any] = {
        "rules_stat_prefix": config.rules_stat_prefix,
        "shadow_rules_stat_prefix": config.shadow_rules_stat_prefix,
    }
    for name in ("rules", "shadow_rules"):
        if config.HasField(name):
            out[name] = _rules(getattr(config, name), paths.field(path, name), problems, False)
    return out


def rbac_per_route(
    config: http_rbac_pb2.RBACPerRoute, path: str, problems: Problems
) -> dict[str, Any]:
    """The snapshot `RbacPerRoute`: no `rbac` turns the filter off for the route."""
    if not config.HasField("rbac"):
        return {"rbac": None}
    return {"rbac": http_rbac(config.rbac, paths.field(path, "rbac"), problems)}


def network_rbac(config: network_rbac_pb2.RBAC, path: str, problems: Problems) -> dict[str, Any]:
    """The snapshot `NetworkRbac` for `config` (at `path`)."""
    out: dict[str, Any] = {
        "stat_prefix": config.stat_prefix,
        "shadow_rules_stat_prefix": config.shadow_rules_stat_prefix,
        "enforcement_type": enum_name(config, "enforcement_type").lower(),
    }
    for name in ("rules", "shadow_rules"):
        if config.HasField(name):
            out[name] = _rules(getattr(config, name), paths.field(path, name), problems, True)
    return out


def _rules(rules: rbac_pb2.RBAC, path: str, problems: Problems, network: bool) -> dict[str, Any]:
    policies_path = paths.field(path, "policies")
    policies = []
    for name in sorted(rules.policies):
        policy = rules.policies[name]
        at = paths.item(policies_path, name)
        permissions_path = paths.field(at, "permissions")
        principals_path = paths.field(at, "principals")
        policies.append(
            {
                "name": name,
                "permissions": [
                    _permission(p, paths.item(permissions_path, i), problems, network)
                    for i, p in enumerate(policy.permissions)
                ],
                "principals": [
                    _principal(p, paths.item(principals_path, i), problems, network)
                    for i, p in enumerate(policy.principals)
                ],
            }
        )
    return {"action": enum_name(rules, "action").lower(), "policies": policies}


# Each rule kind's combinators: (and, or) with the field holding their list, and not.
_PERMISSION_TREE = (("and_rules", "or_rules"), "rules", "not_rule")
_PRINCIPAL_TREE = (("and_ids", "or_ids"), "ids", "not_id")

Translate = Callable[[Any, str, Problems, bool], Any]


def _shared(
    rule: Any,
    kind: str | None,
    at: str,
    problems: Problems,
    network: bool,
    tree: tuple[tuple[str, str], str, str],
    again: Translate,
) -> Any:
    """What a permission and a principal have in common: `any`, the and/or/not tree (`again`
    translates a member), `header`, `url_path` and `metadata`. None for other kinds."""
    groups, members, negation = tree
    if kind == "any":
        return "any"
    if kind in groups:
        list_path = paths.field(at, members)
        items = getattr(getattr(rule, kind), members)
        return {
            kind: [
                again(r, paths.item(list_path, i), problems, network) for i, r in enumerate(items)
            ]
        }
    if kind == negation:
        return {negation: again(getattr(rule, negation), at, problems, network)}
    if kind == "header":
        if network:
            problems.add(at, _NETWORK_HEADER)
        return {"header": translate_routes.header_matcher(rule.header, at, problems)}
    if kind == "url_path":
        return {"url_path": _path_matcher(rule.url_path, at, problems)}
    if kind == "metadata":
        return {"metadata": _metadata(rule.metadata, at, problems)}
    return None


def _permission(rule: rbac_pb2.Permission, path: str, problems: Problems, network: bool) -> Any:
    kind = rule.WhichOneof("rule")
    at = paths.field(path, kind or "rule")
    shared = _shared(rule, kind, at, problems, network, _PERMISSION_TREE, _permission)
    if shared is not None:
        return shared
    if kind == "destination_ip":
        return {"destination_ip": _cidr(rule.destination_ip, at, problems)}
    if kind == "destination_port":
        return {"destination_port": rule.destination_port}
    if kind == "destination_port_range":
        port_range = rule.destination_port_range
        return {"destination_port_range": {"start": port_range.start, "end": port_range.end}}
    if kind == "requested_server_name":
        matcher = translate_routes.string_matcher(rule.requested_server_name, at, problems)
        return {"requested_server_name": matcher}
    return "any"  # unset (PGV) or not supported (the table): reported, never applied


def _principal(rule: rbac_pb2.Principal, path: str, problems: Problems, network: bool) -> Any:
    kind = rule.WhichOneof("identifier")
    at = paths.field(path, kind or "identifier")
    shared = _shared(rule, kind, at, problems, network, _PRINCIPAL_TREE, _principal)
    if shared is not None:
        return shared
    if kind == "authenticated":
        authenticated = rule.authenticated
        if not authenticated.HasField("principal_name"):
            return {"authenticated": None}
        name_path = paths.field(at, "principal_name")
        matcher = translate_routes.string_matcher(authenticated.principal_name, name_path, problems)
        return {"authenticated": matcher}
    if kind in ("direct_remote_ip", "source_ip"):  # source_ip: the deprecated spelling
        return {"direct_remote_ip": _cidr(getattr(rule, kind), at, problems)}
    if kind == "remote_ip":
        return {"remote_ip": _cidr(rule.remote_ip, at, problems)}
    return "any"  # unset (PGV) or not supported (the table): reported, never applied


def _path_matcher(matcher: Any, path: str, problems: Problems) -> dict[str, Any]:
    """A `PathMatcher`'s `path` string matcher (matched against the path without query)."""
    return translate_routes.string_matcher(matcher.path, paths.field(path, "path"), problems)


def _cidr(cidr: address_pb2.CidrRange, path: str, problems: Problems) -> dict[str, Any]:
    prefix_len = wrapped(cidr, "prefix_len", 0)
    try:
        address = ipaddress.ip_address(cidr.address_prefix)
    except ValueError:
        problems.add(
            paths.field(path, "address_prefix"),
            f"malformed IP address: {cidr.address_prefix!r}",
        )
    else:
        if prefix_len > address.max_prefixlen:
            problems.add(
                paths.field(path, "prefix_len"),
                f"{prefix_len} is longer than the address ({address.max_prefixlen} bits)",
            )
    return {"address_prefix": cidr.address_prefix, "prefix_len": prefix_len}


def _metadata(matcher: metadata_pb2.MetadataMatcher, path: str, problems: Problems) -> Any:
    keys = []
    for i, segment in enumerate(matcher.path):
        if segment.WhichOneof("segment") != "key":
            problems.add(paths.item(paths.field(path, "path"), i), "only `key` segments")
        keys.append(segment.key)
    return {
        "filter": matcher.filter,
        "path": keys,
        "value": _value(matcher.value, paths.field(path, "value"), problems),
        "invert": bool(matcher.invert),
    }


def _value(matcher: value_pb2.ValueMatcher, path: str, problems: Problems) -> Any:
    kind = matcher.WhichOneof("match_pattern")
    at = paths.field(path, kind or "match_pattern")
    if kind == "null_match":
        return "null_match"
    if kind == "double_match":
        double = matcher.double_match
        if double.WhichOneof("match_pattern") == "range":
            return {"double_range": {"start": double.range.start, "end": double.range.end}}
        return {"double_exact": double.exact}
    if kind == "string_match":
        return {"string_match": translate_routes.string_matcher(matcher.string_match, at, problems)}
    if kind == "bool_match":
        return {"bool_match": matcher.bool_match}
    if kind == "present_match":
        return {"present_match": matcher.present_match}
    if kind == "list_match":
        one_of = matcher.list_match.one_of
        return {"list_one_of": _value(one_of, paths.field(at, "one_of"), problems)}
    if kind == "or_match":
        matchers_path = paths.field(at, "value_matchers")
        return {
            "or_match": [
                _value(m, paths.item(matchers_path, i), problems)
                for i, m in enumerate(matcher.or_match.value_matchers)
            ]
        }
    return {"present_match": False}  # unset (PGV): reported, never applied

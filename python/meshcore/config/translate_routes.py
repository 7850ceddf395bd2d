"""`RouteConfiguration` (virtual hosts, routes, matchers, actions) into the snapshot's
`RouteConfig`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.type.matcher.v3 import string_pb2

from . import paths, translate_http_filters
from .data_source import data_source_text
from .errors import Problems
from .translate_hash import hash_policies
from .translate_headers import with_header_mutations
from .translate_mirror import mirror_policies
from .translate_retry import effective_policy, retry_policy
from .translate_timeouts import route_stream_duration
from .translate_upgrades import upgrade_configs
from .values import duration_field_ms, duration_ms, enum_name, wrapped

DEFAULT_ROUTE_TIMEOUT_MS = 15_000
DEFAULT_MAX_DIRECT_RESPONSE_BODY = 4096
_REDIRECT_CODES = {
    "MOVED_PERMANENTLY": 301,
    "FOUND": 302,
    "SEE_OTHER": 303,
    "TEMPORARY_REDIRECT": 307,
    "PERMANENT_REDIRECT": 308,
}


@dataclass
class ClusterRefs:
    """The clusters routes name, with where, to check against the cluster list."""

    refs: list[tuple[str, str]] = field(default_factory=list)

    def add(self, path: str, name: str) -> None:
        self.refs.append((path, name))


@dataclass
class RouteScope:
    """What a virtual host is translated with: where problems and cluster names go, and the
    route config's `max_direct_response_body_size_bytes` (nothing else of the route config
    reaches a virtual host's translation: `rds_reuse` relies on it)."""

    problems: Problems
    refs: ClusterRefs
    max_body: int
    host: rc.VirtualHost | None = None
    """The virtual host being translated (its retry policy and buffer limit apply)."""
    host_path: str = ""


def route_scope(
    config: route_pb2.RouteConfiguration, problems: Problems, refs: ClusterRefs
) -> RouteScope:
    """The scope `config`'s virtual hosts are translated in."""
    return RouteScope(
        problems,
        refs,
        wrapped(config, "max_direct_response_body_size_bytes", DEFAULT_MAX_DIRECT_RESPONSE_BODY),
    )


def route_config(
    config: route_pb2.RouteConfiguration, path: str, problems: Problems, refs: ClusterRefs
) -> dict[str, Any]:
    """The snapshot `RouteConfig` for `config`; cluster names go to `refs`."""
    scope = route_scope(config, problems, refs)
    hosts_path = paths.field(path, "virtual_hosts")
    check_domains(config.virtual_hosts, hosts_path, problems)
    out = {
        "name": config.name,
        "virtual_hosts": [
            virtual_host(host, paths.item(hosts_path, i), scope)
            for i, host in enumerate(config.virtual_hosts)
        ],
    }
    return with_header_mutations(out, config, path, problems)


def check_domains(hosts: Iterable[rc.VirtualHost], path: str, problems: Problems) -> None:
    """Envoy allows each domain (case-insensitively) in one virtual host only (`path`: the
    `virtual_hosts` field; a domain's path is only built for a problem)."""
    seen: dict[str, tuple[int, int]] = {}
    for i, host in enumerate(hosts):
        for j, domain in enumerate(host.domains):
            key = domain.lower()
            first = seen.get(key)
            if first is None:
                seen[key] = (i, j)
            else:
                problems.add(
                    _domain_path(path, i, j),
                    f"duplicate domain {domain!r} (also at {_domain_path(path, *first)})",
                )


def _domain_path(path: str, host: int, index: int) -> str:
    return paths.item(paths.field(paths.item(path, host), "domains"), index)


def virtual_host(host: rc.VirtualHost, path: str, scope: RouteScope) -> dict[str, Any]:
    """The snapshot `VirtualHost` for `host` at `path` (which only names problems and
    cluster references)."""
    routes_path = paths.field(path, "routes")
    scope.host, scope.host_path = host, path
    out = {
        "name": host.name,
        "domains": [d.lower() for d in host.domains],
        "routes": [
            _route(route, paths.item(routes_path, i), scope) for i, route in enumerate(host.routes)
        ],
    }
    with_header_mutations(out, host, path, scope.problems)
    return _with_filter_configs(out, host, path, scope)


def _route(route: rc.Route, path: str, scope: RouteScope) -> dict[str, Any]:
    out = {
        "name": route.name,
        "match": _route_match(route.match, paths.field(path, "match"), scope.problems),
        "action": _action(route, path, scope),
    }
    with_header_mutations(out, route, path, scope.problems)
    return _with_filter_configs(out, route, path, scope)


def _with_filter_configs(
    out: dict[str, Any], msg: rc.VirtualHost | rc.Route, path: str, scope: RouteScope
) -> dict[str, Any]:
    """`out` plus the `typed_per_filter_config` of `msg`, when it has any."""
    configs = translate_http_filters.per_filter_configs(msg, path, scope.problems)
    if configs:
        out["typed_per_filter_config"] = configs
    return out


def _route_match(match: rc.RouteMatch, path: str, problems: Problems) -> dict[str, Any]:
    kind = match.WhichOneof("path_specifier")
    path_match: dict[str, Any]
    if kind == "safe_regex":
        path_match = {"safe_regex": match.safe_regex.regex}
    elif kind in ("prefix", "path", "path_separated_prefix"):
        path_match = {kind: getattr(match, kind)}
    elif kind == "connect_matcher":
        path_match = {"connect_matcher": {}}
    else:
        path_match = {"prefix": "/"}  # unset (PGV) or unsupported (the table) is reported
    out: dict[str, Any] = {
        "path": path_match,
        # Envoy ignores case_sensitive for safe_regex.
        "case_sensitive": kind == "safe_regex" or wrapped(match, "case_sensitive", True),
    }
    # Empty lists are left out (the snapshot's default): most routes match on the path only.
    if match.headers:
        headers_path = paths.field(path, "headers")
        out["headers"] = [
            _header_matcher(m, paths.item(headers_path, i), problems)
            for i, m in enumerate(match.headers)
        ]
    if match.query_parameters:
        query_path = paths.field(path, "query_parameters")
        out["query_parameters"] = [
            _query_matcher(m, paths.item(query_path, i), problems)
            for i, m in enumerate(match.query_parameters)
        ]
    return out


def _string_matcher(
    matcher: string_pb2.StringMatcher, path: str, problems: Problems
) -> dict[str, Any]:
    kind = matcher.WhichOneof("match_pattern")
    pattern: dict[str, str]
    if kind == "safe_regex":
        pattern = {"regex": matcher.safe_regex.regex}
        if matcher.ignore_case:
            problems.add(
                paths.field(path, "ignore_case"), "ignore_case has no effect for safe_regex"
            )
    elif kind in ("exact", "prefix", "suffix", "contains"):
        pattern = {kind: getattr(matcher, kind)}
    else:
        pattern = {"exact": ""}  # reported by PGV or the table
    return {"pattern": pattern, "ignore_case": bool(matcher.ignore_case)}


def _string_rule(
    matcher: rc.HeaderMatcher | rc.QueryParameterMatcher, path: str, problems: Problems
) -> dict[str, Any]:
    """The `string` rule of a header or query parameter matcher's `string_match`."""
    return {
        "string": _string_matcher(matcher.string_match, paths.field(path, "string_match"), problems)
    }


_DEPRECATED_HEADER_MATCHES = {
    "exact_match": "exact",
    "prefix_match": "prefix",
    "suffix_match": "suffix",
    "contains_match": "contains",
}


def _header_matcher(matcher: rc.HeaderMatcher, path: str, problems: Problems) -> dict[str, Any]:
    kind = matcher.WhichOneof("header_match_specifier")
    rule: dict[str, Any]
    if kind == "string_match":
        rule = _string_rule(matcher, path, problems)
    elif kind in _DEPRECATED_HEADER_MATCHES:
        value = getattr(matcher, kind)
        rule = {
            "string": {"pattern": {_DEPRECATED_HEADER_MATCHES[kind]: value}, "ignore_case": False}
        }
    elif kind == "safe_regex_match":
        rule = {
            "string": {"pattern": {"regex": matcher.safe_regex_match.regex}, "ignore_case": False}
        }
    elif kind == "range_match":
        rule = {"range": {"start": matcher.range_match.start, "end": matcher.range_match.end}}
    elif kind == "present_match":
        rule = {"present": bool(matcher.present_match)}
    else:
        rule = {"present": True}  # Envoy: no specifier matches when the header is present
    return {
        "name": matcher.name.lower(),
        "rule": rule,
        "invert": bool(matcher.invert_match),
        "treat_missing_header_as_empty": bool(matcher.treat_missing_header_as_empty),
    }


def route_match(match: rc.RouteMatch, path: str, problems: Problems) -> dict[str, Any]:
    """A snapshot `RouteMatch` (also used by HTTP filters, e.g. jwt_authn `rules`)."""
    return _route_match(match, path, problems)


def string_matcher(
    matcher: string_pb2.StringMatcher, path: str, problems: Problems
) -> dict[str, Any]:
    """A snapshot `StringMatcher` (also used by HTTP filters, e.g. jwt_authn `subjects`)."""
    return _string_matcher(matcher, path, problems)


def header_matcher(matcher: rc.HeaderMatcher, path: str, problems: Problems) -> dict[str, Any]:
    """A snapshot `HeaderMatcher` (also used by HTTP filters, e.g. the fault's `headers`)."""
    return _header_matcher(matcher, path, problems)


def _query_matcher(
    matcher: rc.QueryParameterMatcher, path: str, problems: Problems
) -> dict[str, Any]:
    kind = matcher.WhichOneof("query_parameter_match_specifier")
    rule: dict[str, Any]
    if kind == "string_match":
        rule = _string_rule(matcher, path, problems)
    elif kind == "present_match":
        rule = {"present": bool(matcher.present_match)}
    else:
        rule = {"present": True}  # Envoy: no specifier matches when the parameter is present
    return {"name": matcher.name, "rule": rule}


def _action(route: rc.Route, path: str, scope: RouteScope) -> dict[str, Any]:
    kind = route.WhichOneof("action")
    if kind == "route":
        return {"route": _forward(route.route, paths.field(path, "route"), scope, route)}
    if kind == "direct_response":
        return {
            "direct_response": _direct_response(
                route.direct_response, paths.field(path, "direct_response"), scope
            )
        }
    if kind == "redirect":
        return {
            "redirect": _redirect(route.redirect, paths.field(path, "redirect"), scope.problems)
        }
    return {"direct_response": {"status": 404}}  # unset (PGV) or unsupported (the table)


def _forward(
    action: rc.RouteAction, path: str, scope: RouteScope, route: rc.Route | None = None
) -> dict[str, Any]:
    kind = action.WhichOneof("cluster_specifier")
    target: dict[str, Any]
    if kind == "weighted_clusters":
        target = {
            "weighted_clusters": _weighted(
                action.weighted_clusters, paths.field(path, "weighted_clusters"), scope
            )
        }
    else:
        if kind == "cluster":
            scope.refs.add(paths.field(path, "cluster"), action.cluster)
        target = {"cluster": action.cluster}
    out: dict[str, Any] = {
        "target": target,
        "timeout_ms": duration_field_ms(action, "timeout", DEFAULT_ROUTE_TIMEOUT_MS),
    }
    if action.hash_policy:
        out["hash_policy"] = hash_policies(action)
    if action.prefix_rewrite:
        out["prefix_rewrite"] = action.prefix_rewrite
    if action.WhichOneof("host_rewrite_specifier") == "host_rewrite_literal":
        out["host_rewrite_literal"] = action.host_rewrite_literal
    if action.HasField("idle_timeout"):
        out["idle_timeout_ms"] = duration_ms(action.idle_timeout)
    out.update(route_stream_duration(action))
    if action.upgrade_configs:
        out["upgrade_configs"] = upgrade_configs(
            action.upgrade_configs, paths.field(path, "upgrade_configs"), scope.problems
        )
    out.update(_resilience(action, path, scope, route))
    return out


def _resilience(
    action: rc.RouteAction, path: str, scope: RouteScope, route: rc.Route | None
) -> dict[str, Any]:
    """Issue 4: retry policy (route's, else the virtual host's), attempt count header and
    mirror policies (route's, else the virtual host's)."""
    out: dict[str, Any] = {}
    host = scope.host
    policy, level = effective_policy(action, host)
    if policy is not None:
        at = paths.field(path if level == "route" else scope.host_path, "retry_policy")
        limit = None
        for msg in (route, host):
            if msg is not None and msg.HasField("per_request_buffer_limit_bytes"):
                limit = msg.per_request_buffer_limit_bytes.value
                break
        out["retry_policy"] = retry_policy(policy, at, scope.problems, _header_matcher, limit)
    if host is not None and host.include_request_attempt_count:
        out["include_request_attempt_count"] = True
    if action.request_mirror_policies:
        out["request_mirror_policies"] = mirror_policies(
            action, path, scope.problems, scope.refs.add
        )
    elif host is not None and host.request_mirror_policies:
        out["request_mirror_policies"] = mirror_policies(
            host, scope.host_path, scope.problems, scope.refs.add
        )
    return out


def _weighted(weighted: rc.WeightedCluster, path: str, scope: RouteScope) -> list[dict[str, Any]]:
    clusters_path = paths.field(path, "clusters")
    out = []
    total = 0
    for i, choice in enumerate(weighted.clusters):
        choice_path = paths.item(clusters_path, i)
        if not choice.name:
            scope.problems.add(paths.field(choice_path, "name"), "is required")
        else:
            scope.refs.add(paths.field(choice_path, "name"), choice.name)
        if not choice.HasField("weight"):
            scope.problems.add(paths.field(choice_path, "weight"), "is required")
        weight = wrapped(choice, "weight", 0)
        total += weight
        out.append(
            with_header_mutations(
                {"name": choice.name, "weight": weight}, choice, choice_path, scope.problems
            )
        )
    if weighted.clusters and total == 0:
        scope.problems.add(clusters_path, "the sum of the weights must be greater than 0")
    if total > 2**32 - 1:
        scope.problems.add(clusters_path, "the sum of the weights must fit in 32 bits")
    if weighted.HasField("total_weight") and weighted.total_weight.value != total:
        scope.problems.add(
            paths.field(path, "total_weight"),
            f"{weighted.total_weight.value} is not the sum of the weights ({total})",
        )
    return out


def _direct_response(
    action: rc.DirectResponseAction, path: str, scope: RouteScope
) -> dict[str, Any]:
    out: dict[str, Any] = {"status": action.status}
    if action.HasField("body"):
        body = data_source_text(action.body, paths.field(path, "body"), scope.problems, "a body")
        if body is not None:
            if len(body.encode()) > scope.max_body:
                scope.problems.add(
                    paths.field(path, "body"),
                    f"the body is {len(body.encode())} bytes; the most is {scope.max_body} "
                    "(max_direct_response_body_size_bytes)",
                )
            out["body"] = body
    return out


def _redirect(action: rc.RedirectAction, path: str, problems: Problems) -> dict[str, Any]:
    out: dict[str, Any] = {}
    scheme = action.WhichOneof("scheme_rewrite_specifier")
    if scheme == "https_redirect" and action.https_redirect:
        out["scheme_redirect"] = "https"
    elif scheme == "scheme_redirect":
        out["scheme_redirect"] = action.scheme_redirect
    if action.host_redirect:
        out["host_redirect"] = action.host_redirect
    if action.port_redirect:
        if action.port_redirect > 65535:
            problems.add(
                paths.field(path, "port_redirect"), f"{action.port_redirect} must be at most 65535"
            )
        out["port_redirect"] = min(action.port_redirect, 65535)
    rewrite = action.WhichOneof("path_rewrite_specifier")
    if rewrite in ("path_redirect", "prefix_rewrite"):
        out[rewrite] = getattr(action, rewrite)
    out["response_code"] = _REDIRECT_CODES.get(enum_name(action, "response_code"), 301)
    out["strip_query"] = bool(action.strip_query)
    return out

"""`envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication` (and its per-route
`PerRouteConfig`) into the snapshot's `jwt_authn` filter config: providers with their keys
(`local_jwks` read here; `remote_jwks` named for the fetcher in `meshcore.auth.jwks`), rules
and the requirement map."""

from __future__ import annotations

from typing import Any, cast

from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt
from google.protobuf.message import Message

from . import paths, translate_routes
from .data_source import data_source_text
from .errors import Problems
from .supported import JWT_AUTHN
from .values import duration_ms

DEFAULT_CACHE_DURATION_MS = 600_000
"""Envoy's `remote_jwks.cache_duration` default: 10 minutes."""
DEFAULT_FAILED_REFETCH_MS = 1_000
"""Envoy's `async_fetch.failed_refetch_duration` default."""
DEFAULT_RETRY_BASE_MS = 1_000
DEFAULT_RETRY_MAX_MS = 10_000


def remote_key(cluster: str, uri: str) -> str:
    """The name of a remote JWKS source, shared by every provider fetching the same one."""
    return f"{cluster}|{uri}"


def _remote(remote: jwt.RemoteJwks, path: str, problems: Problems) -> dict[str, Any]:
    uri = remote.http_uri
    out: dict[str, Any] = {
        "key": remote_key(uri.cluster, uri.uri),
        "uri": uri.uri,
        "cluster": uri.cluster,
        "timeout_ms": duration_ms(uri.timeout),
        "cache_duration_ms": duration_ms(remote.cache_duration)
        if remote.HasField("cache_duration")
        else DEFAULT_CACHE_DURATION_MS,
    }
    if not uri.uri.startswith("http://"):
        problems.add(
            paths.field(paths.field(path, "http_uri"), "uri"),
            "only http:// JWKS URIs are supported (the fetch is HTTP/1.1 without TLS)",
        )
    if out["cache_duration_ms"] <= 0:
        problems.add(paths.field(path, "cache_duration"), "must be positive")
    if remote.HasField("async_fetch"):
        fetch = remote.async_fetch
        out["failed_refetch_ms"] = (
            duration_ms(fetch.failed_refetch_duration)
            if fetch.HasField("failed_refetch_duration")
            else DEFAULT_FAILED_REFETCH_MS
        )
    if remote.HasField("retry_policy"):
        policy = remote.retry_policy
        out["num_retries"] = policy.num_retries.value if policy.HasField("num_retries") else 1
        backoff = policy.retry_back_off
        out["retry_base_ms"] = (
            duration_ms(backoff.base_interval)
            if backoff.HasField("base_interval")
            else DEFAULT_RETRY_BASE_MS
        )
        out["retry_max_ms"] = (
            duration_ms(backoff.max_interval)
            if backoff.HasField("max_interval")
            else max(DEFAULT_RETRY_MAX_MS, out["retry_base_ms"] * 10)
        )
    return out


def _provider(name: str, p: jwt.JwtProvider, path: str, problems: Problems) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "issuer": p.issuer, "audiences": list(p.audiences)}
    kind = p.WhichOneof("jwks_source_specifier")
    if kind == "local_jwks":
        text = data_source_text(
            p.local_jwks, paths.field(path, "local_jwks"), problems, "a local_jwks"
        )
        out["jwks"] = {"local": text or ""}
    elif kind == "remote_jwks":
        out["jwks"] = {"remote": _remote(p.remote_jwks, paths.field(path, "remote_jwks"), problems)}
    else:
        problems.add(path, "one of local_jwks or remote_jwks is required")
        out["jwks"] = {"local": ""}
    if p.HasField("subjects"):
        out["subjects"] = translate_routes.string_matcher(
            p.subjects, paths.field(path, "subjects"), problems
        )
    headers_path = paths.field(path, "from_headers")
    out["from_headers"] = []
    for i, h in enumerate(p.from_headers):
        if not h.name:
            problems.add(paths.field(paths.item(headers_path, i), "name"), "must not be empty")
        out["from_headers"].append({"name": h.name.lower(), "value_prefix": h.value_prefix})
    out["from_params"] = list(p.from_params)
    out["from_cookies"] = list(p.from_cookies)
    out["forward"] = p.forward
    out["forward_payload_header"] = p.forward_payload_header
    out["pad_forward_payload_header"] = p.pad_forward_payload_header
    out["payload_in_metadata"] = p.payload_in_metadata
    if p.HasField("normalize_payload_in_metadata"):
        claims = p.normalize_payload_in_metadata.space_delimited_claims
        out["space_delimited_claims"] = list(claims)
    out["claim_to_headers"] = [
        {"header_name": c.header_name, "claim_name": c.claim_name} for c in p.claim_to_headers
    ]
    out["clock_skew_seconds"] = p.clock_skew_seconds or 60
    out["require_expiration"] = p.require_expiration
    if p.HasField("jwt_cache_config"):
        out["jwt_cache_size"] = p.jwt_cache_config.jwt_cache_size
        out["jwt_max_token_size"] = p.jwt_cache_config.jwt_max_token_size
    if p.HasField("max_lifetime"):
        out["max_lifetime_s"] = duration_ms(p.max_lifetime) // 1000
    return out


def _requirement(r: jwt.JwtRequirement, path: str, problems: Problems) -> Any:
    kind = r.WhichOneof("requires_type")
    if kind == "provider_name":
        return {"provider_name": r.provider_name}
    if kind == "provider_and_audiences":
        pa = r.provider_and_audiences
        return {
            "provider_and_audiences": {
                "provider_name": pa.provider_name,
                "audiences": list(pa.audiences),
            }
        }
    if kind in ("requires_any", "requires_all"):
        items_path = paths.field(paths.field(path, kind), "requirements")
        items = getattr(r, kind).requirements
        return {
            kind: [
                _requirement(c, paths.item(items_path, i), problems) for i, c in enumerate(items)
            ]
        }
    if kind in ("allow_missing_or_failed", "allow_missing"):
        return kind
    problems.add(path, "a requirement must set one of its fields")
    return "allow_missing_or_failed"


def jwt_authn(config: jwt.JwtAuthentication, path: str, problems: Problems) -> dict[str, Any]:
    """The snapshot `JwtAuthn` for `config` (at `path`)."""
    providers_path = paths.field(path, "providers")
    providers = [
        _provider(name, config.providers[name], paths.item(providers_path, name), problems)
        for name in sorted(config.providers)
    ]
    rules_path = paths.field(path, "rules")
    rules = []
    for i, rule in enumerate(config.rules):
        at = paths.item(rules_path, i)
        out: dict[str, Any] = {
            "match": translate_routes.route_match(rule.match, paths.field(at, "match"), problems)
        }
        if rule.HasField("requires"):
            out["requires"] = _requirement(rule.requires, paths.field(at, "requires"), problems)
        elif rule.requirement_name:
            out["requirement_name"] = rule.requirement_name
        rules.append(out)
    map_path = paths.field(path, "requirement_map")
    named = [
        {
            "name": name,
            "requires": _requirement(
                config.requirement_map[name], paths.item(map_path, name), problems
            ),
        }
        for name in sorted(config.requirement_map)
    ]
    return {
        "providers": providers,
        "rules": rules,
        "requirement_map": named,
        "bypass_cors_preflight": config.bypass_cors_preflight,
    }


def jwt_per_route(config: jwt.PerRouteConfig, path: str, problems: Problems) -> Any:
    """The snapshot `JwtPerRoute` for a route's `PerRouteConfig`."""
    if config.WhichOneof("requirement_specifier") == "requirement_name":
        return {"requirement_name": config.requirement_name}
    if not config.disabled:
        problems.add(path, "one of disabled: true or requirement_name is required")
    return "disabled"


def jwt_filter_config(config: Message, path: str, problems: Problems) -> dict[str, Any]:
    """The snapshot `HttpFilterConfig` of a jwt_authn filter or per-route config."""
    if config.DESCRIPTOR.full_name == JWT_AUTHN:
        return {"jwt_authn": jwt_authn(cast(jwt.JwtAuthentication, config), path, problems)}
    return {"jwt_authn_per_route": jwt_per_route(cast(jwt.PerRouteConfig, config), path, problems)}

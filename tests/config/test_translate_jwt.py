"""jwt_authn (`JwtAuthentication`, `PerRouteConfig`) into the snapshot, checked against the
Rust types; unsupported fields and bad values are problems naming their path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .builders import ROUTER_TYPE, base, hcm, load, problems, route, static_cluster

JWT = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig"
FILTER = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0]"
JWKS = json.dumps(
    {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}
)


def _with_jwt(config: dict[str, Any]) -> dict[str, Any]:
    b = base()
    hcm(b)["http_filters"] = [
        {"name": "jwt", "typed_config": {"@type": JWT, **config}},
        {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}},
    ]
    return b


def _filter(b: dict[str, Any]) -> Any:
    manager = load(b).snapshot["listeners"][0]["filter_chains"][0]["filter"][
        "http_connection_manager"
    ]
    return manager["http_filters"][0]["config"]


def test_providers_rules_and_requirements(tmp_path: Path) -> None:
    keys = tmp_path / "jwks.json"
    keys.write_text(JWKS)
    b = _with_jwt(
        {
            "providers": {
                "local": {
                    "issuer": "https://a",
                    "audiences": ["api"],
                    "local_jwks": {"filename": str(keys)},
                    "from_headers": [{"name": "X-Token", "value_prefix": "T "}],
                    "forward_payload_header": "x-payload",
                    "payload_in_metadata": "claims",
                    "normalize_payload_in_metadata": {"space_delimited_claims": ["scope"]},
                    "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"}],
                    "clock_skew_seconds": 5,
                    "max_lifetime": "3600s",
                    "jwt_cache_config": {"jwt_cache_size": 50},
                },
                "remote": {
                    "remote_jwks": {
                        "http_uri": {
                            "uri": "http://idp/jwks",
                            "cluster": "backend",
                            "timeout": "2s",
                        },
                        "retry_policy": {"num_retries": 3},
                    },
                },
            },
            "rules": [
                {"match": {"prefix": "/public"}},
                {"match": {"prefix": "/named"}, "requirement_name": "either"},
                {
                    "match": {"prefix": "/", "headers": [{"name": "x-a", "exact_match": "1"}]},
                    "requires": {
                        "requires_all": {
                            "requirements": [
                                {
                                    "provider_and_audiences": {
                                        "provider_name": "local",
                                        "audiences": ["b"],
                                    }
                                },
                                {"allow_missing": {}},
                            ]
                        }
                    },
                },
            ],
            "requirement_map": {
                "either": {
                    "requires_any": {
                        "requirements": [{"provider_name": "local"}, {"provider_name": "remote"}]
                    }
                }
            },
            "bypass_cors_preflight": True,
        }
    )
    config = _filter(b)["jwt_authn"]
    local, remote = config["providers"]
    assert local["name"] == "local" and local["jwks"] == {"local": JWKS}
    assert local["from_headers"] == [{"name": "x-token", "value_prefix": "T "}]
    assert local["space_delimited_claims"] == ["scope"]
    assert (local["clock_skew_seconds"], local["max_lifetime_s"]) == (5, 3600)
    assert (local["jwt_cache_size"], local["jwt_max_token_size"]) == (50, 0)
    assert "jwt_cache_size" not in remote
    assert remote["jwks"]["remote"] == {
        "key": "backend|http://idp/jwks",
        "uri": "http://idp/jwks",
        "cluster": "backend",
        "timeout_ms": 2000,
        "cache_duration_ms": 600_000,
        "num_retries": 3,
        "retry_base_ms": 1000,
        "retry_max_ms": 10_000,
    }
    assert remote["clock_skew_seconds"] == 60
    assert config["rules"][0] == {
        "match": {
            "path": {"prefix": "/public"},
            "case_sensitive": True,
        }
    }
    assert config["rules"][1]["requirement_name"] == "either"
    assert config["rules"][2]["requires"] == {
        "requires_all": [
            {"provider_and_audiences": {"provider_name": "local", "audiences": ["b"]}},
            "allow_missing",
        ]
    }
    assert config["requirement_map"] == [
        {
            "name": "either",
            "requires": {"requires_any": [{"provider_name": "local"}, {"provider_name": "remote"}]},
        }
    ]
    assert config["bypass_cors_preflight"] is True


def test_per_route_configs() -> None:
    b = _with_jwt({"providers": {"p": {"local_jwks": {"inline_string": JWKS}}}})
    route(b)["typed_per_filter_config"] = {"jwt": {"@type": PER_ROUTE, "disabled": True}}
    snapshot = load(b).snapshot
    manager = snapshot["listeners"][0]["filter_chains"][0]["filter"]["http_connection_manager"]
    r = manager["route_config"]["virtual_hosts"][0]["routes"][0]
    assert r["typed_per_filter_config"] == [
        {"name": "jwt", "config": {"jwt_authn_per_route": "disabled"}}
    ]
    route(b)["typed_per_filter_config"] = {"jwt": {"@type": PER_ROUTE, "requirement_name": "x"}}
    manager = load(b).snapshot["listeners"][0]["filter_chains"][0]["filter"][
        "http_connection_manager"
    ]
    r = manager["route_config"]["virtual_hosts"][0]["routes"][0]
    assert r["typed_per_filter_config"][0]["config"] == {
        "jwt_authn_per_route": {"requirement_name": "x"}
    }


def test_problems_name_their_path() -> None:
    b = _with_jwt(
        {
            "providers": {
                "p": {
                    "local_jwks": {"filename": "/nonexistent/jwks.json"},
                    "header_in_metadata": "h",
                },
                "r": {
                    "remote_jwks": {
                        "http_uri": {
                            "uri": "https://idp/jwks",
                            "cluster": "backend",
                            "timeout": "1s",
                        }
                    }
                },
            },
            "stat_prefix": "x",
        }
    )
    found = problems(b)
    p = f"{FILTER}.typed_config.providers"
    assert (
        f"{p}[p].local_jwks.filename: cannot read '/nonexistent/jwks.json': "
        "No such file or directory" in found
    )
    assert f"{p}[p].header_in_metadata: header_in_metadata is not supported yet" in found
    assert (
        f"{p}[r].remote_jwks.http_uri.uri: only http:// JWKS URIs are supported "
        "(the fetch is HTTP/1.1 without TLS)" in found
    )
    assert f"{FILTER}.typed_config.stat_prefix: stat_prefix is not supported yet" in found


def test_extra_cluster_is_fine() -> None:
    b = _with_jwt({"providers": {"p": {"local_jwks": {"inline_string": JWKS}}}})
    b["static_resources"]["clusters"].append(static_cluster("idp", 1))
    assert _filter(b)["jwt_authn"]["providers"][0]["name"] == "p"

"""RBAC (`envoy.filters.http.rbac`, `RBACPerRoute`, `envoy.filters.network.rbac`) into the
snapshot, checked against snapshot.rs / rbac.rs; what meshcore does not implement is a
problem naming its path."""

from __future__ import annotations

from typing import Any

from .builders import ROUTER_TYPE, base, hcm, listener, load, problems, route

RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute"
NETWORK_RBAC = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
CHAIN = "static_resources.listeners[0].filter_chains[0]"
FILTER = f"{CHAIN}.filters[0].typed_config.http_filters[0].typed_config"


def _with_rbac(config: dict[str, Any]) -> dict[str, Any]:
    b = base()
    hcm(b)["http_filters"] = [
        {"name": "envoy.filters.http.rbac", "typed_config": {"@type": RBAC, **config}},
        {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}},
    ]
    return b


def _filter_config(b: dict[str, Any]) -> Any:
    manager = load(b).snapshot["listeners"][0]["filter_chains"][0]["filter"][
        "http_connection_manager"
    ]
    return manager["http_filters"][0]["config"]


def _policy(permission: Any, principal: Any) -> dict[str, Any]:
    return {"permissions": [permission], "principals": [principal]}


def test_http_rbac_translates_every_kind() -> None:
    permissions = [
        {"any": True},
        {"header": {"name": "X-Role", "string_match": {"exact": "admin"}}},
        {"url_path": {"path": {"prefix": "/api", "ignore_case": True}}},
        {"destination_ip": {"address_prefix": "10.0.0.0", "prefix_len": 8}},
        {"destination_port": 8080},
        {"destination_port_range": {"start": 8000, "end": 9000}},
        {"requested_server_name": {"suffix": ".example.com"}},
        {"not_rule": {"or_rules": {"rules": [{"destination_port": 1}]}}},
        {"and_rules": {"rules": [{"any": True}]}},
        {
            "metadata": {
                "filter": "envoy.filters.http.jwt_authn",
                "path": [{"key": "payload"}, {"key": "aud"}],
                "value": {"list_match": {"one_of": {"string_match": {"exact": "api"}}}},
            }
        },
    ]
    principals = [
        {"authenticated": {"principal_name": {"exact": "spiffe://td/ns/a/sa/b"}}},
        {"authenticated": {}},
        {"source_ip": {"address_prefix": "127.0.0.1"}},
        {"remote_ip": {"address_prefix": "::1", "prefix_len": 128}},
        {"not_id": {"and_ids": {"ids": [{"any": True}]}}},
        {
            "metadata": {
                "filter": "f",
                "path": [{"key": "k"}],
                "value": {"double_match": {"range": {"start": 1, "end": 2}}},
                "invert": True,
            }
        },
    ]
    config = _filter_config(
        _with_rbac(
            {
                "rules": {
                    "action": "DENY",
                    "policies": {"b": {"permissions": permissions, "principals": principals}},
                },
                "shadow_rules": {"policies": {"z": _policy({"any": True}, {"any": True})}},
                "shadow_rules_stat_prefix": "s.",
            }
        )
    )["rbac"]
    rules = config["rules"]
    assert rules["action"] == "deny"
    translated = rules["policies"][0]
    assert translated["name"] == "b"
    assert translated["permissions"][0] == "any"
    assert translated["permissions"][1]["header"]["name"] == "x-role"
    assert translated["permissions"][2] == {
        "url_path": {"pattern": {"prefix": "/api"}, "ignore_case": True}
    }
    assert translated["permissions"][9]["metadata"] == {
        "filter": "envoy.filters.http.jwt_authn",
        "path": ["payload", "aud"],
        "value": {
            "list_one_of": {"string_match": {"pattern": {"exact": "api"}, "ignore_case": False}}
        },
        "invert": False,
    }
    assert translated["principals"][1] == {"authenticated": None}
    # source_ip is the deprecated spelling of direct_remote_ip; prefix_len defaults to 0.
    assert translated["principals"][2] == {
        "direct_remote_ip": {"address_prefix": "127.0.0.1", "prefix_len": 0}
    }
    assert config["shadow_rules"]["action"] == "allow"
    assert (config["rules_stat_prefix"], config["shadow_rules_stat_prefix"]) == ("", "s.")


def test_policies_are_sorted_by_name() -> None:
    policies = {name: _policy({"any": True}, {"any": True}) for name in ("b", "a", "c")}
    config = _filter_config(_with_rbac({"rules": {"policies": policies}}))
    assert [p["name"] for p in config["rbac"]["rules"]["policies"]] == ["a", "b", "c"]


def test_per_route_config_and_disable() -> None:
    b = _with_rbac({})
    route(b)["typed_per_filter_config"] = {
        "envoy.filters.http.rbac": {"@type": PER_ROUTE},
    }
    manager = load(b).snapshot["listeners"][0]["filter_chains"][0]["filter"][
        "http_connection_manager"
    ]
    per = manager["route_config"]["virtual_hosts"][0]["routes"][0]["typed_per_filter_config"]
    assert per == [
        {"name": "envoy.filters.http.rbac", "config": {"rbac_per_route": {"rbac": None}}}
    ]


def test_unsupported_fields_name_their_path() -> None:
    found = problems(
        _with_rbac(
            {
                "track_per_rule_stats": True,
                "rules": {
                    "policies": {
                        "p": {
                            "permissions": [
                                {"uri_template": {"name": "x", "typed_config": {"@type": RBAC}}}
                            ],
                            "principals": [
                                {"filter_state": {"key": "k", "string_match": {"exact": "v"}}}
                            ],
                            "condition": {"const_expr": {"bool_value": True}},
                        }
                    }
                },
            }
        )
    )
    policy = f"{FILTER}.rules.policies[p]"
    assert f"{FILTER}.track_per_rule_stats: track_per_rule_stats is not supported yet" in found
    assert f"{policy}.permissions[0].uri_template: uri_template is not supported yet" in found
    assert f"{policy}.principals[0].filter_state: filter_state is not supported yet" in found
    assert f"{policy}.condition: condition is not supported yet" in found


def test_bad_cidr_is_a_problem() -> None:
    found = problems(
        _with_rbac(
            {
                "rules": {
                    "policies": {
                        "p": _policy(
                            {"destination_ip": {"address_prefix": "10.0.0.0", "prefix_len": 33}},
                            {"remote_ip": {"address_prefix": "nope"}},
                        )
                    }
                }
            }
        )
    )
    policy = f"{FILTER}.rules.policies[p]"
    assert any(
        p.startswith(f"{policy}.permissions[0].destination_ip.prefix_len: 33") for p in found
    ), found
    assert f"{policy}.principals[0].remote_ip.address_prefix: malformed IP address: 'nope'" in found


def _network(config: dict[str, Any]) -> dict[str, Any]:
    b = base()
    chain = listener(b)["filter_chains"][0]
    chain["filters"].insert(
        0,
        {"name": "envoy.filters.network.rbac", "typed_config": {"@type": NETWORK_RBAC, **config}},
    )
    return b


def test_network_rbac_before_the_connection_manager() -> None:
    rules = {"action": "DENY", "policies": {"p": _policy({"destination_port": 1}, {"any": True})}}
    snapshot = load(
        _network({"stat_prefix": "net", "rules": rules, "enforcement_type": "CONTINUOUS"})
    ).snapshot
    (rbac,) = snapshot["listeners"][0]["filter_chains"][0]["rbac"]
    assert rbac["stat_prefix"] == "net"
    assert rbac["enforcement_type"] == "continuous"
    assert rbac["rules"]["action"] == "deny"


def test_network_rbac_refuses_header_rules_and_delay_deny() -> None:
    header = {"header": {"name": "x", "present_match": True}}
    rules = {"policies": {"p": _policy({"and_rules": {"rules": [header]}}, {"not_id": header})}}
    found = problems(_network({"stat_prefix": "net", "rules": rules, "delay_deny": "1s"}))
    at = f"{CHAIN}.filters[0].typed_config"
    policy = f"{at}.rules.policies[p]"
    assert any(
        p.startswith(f"{policy}.permissions[0].and_rules.rules[0].header: header rules")
        for p in found
    ), found
    assert any(
        p.startswith(f"{policy}.principals[0].not_id.header: header rules") for p in found
    ), found
    assert f"{at}.delay_deny: delay_deny is not supported yet" in found


def test_network_rbac_cannot_end_the_chain() -> None:
    b = base()
    listener(b)["filter_chains"][0]["filters"] = [
        {
            "name": "envoy.filters.network.rbac",
            "typed_config": {"@type": NETWORK_RBAC, "stat_prefix": "n"},
        }
    ]
    assert f"{CHAIN}.filters[0]: rbac cannot be the last filter" in problems(b)

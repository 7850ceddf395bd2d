"""Envoy's field rules (protoc-gen-validate), reported at the path of the offending field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from meshcore.config import pgv
from meshcore.config.errors import Problems
from meshcore.config.pgv import _errors, _rephrase, check
from meshcore.config.schema import parse_bootstrap
from meshcore.config.supported import MESSAGES
from meshcore.config.type_urls import message_class
from protoc_gen_validate import validator

from .builders import (
    CLUSTER,
    HCM,
    LB_ENDPOINT,
    LISTENER,
    ROUTE,
    VHOST,
    base,
    cluster,
    hcm,
    lb_endpoint,
    listener,
    problems,
    route,
    static_cluster,
    vhost,
)


def test_port_above_65535() -> None:
    b = base()
    listener(b)["address"]["socket_address"]["port_value"] = 70000
    assert problems(b) == [
        f"{LISTENER}.address.socket_address.port_value: 70000 must be at most 65535"
    ]


def test_the_same_rule_broken_in_two_places_gets_two_paths() -> None:
    b = base()
    b["static_resources"]["clusters"].append(static_cluster("other", 99999))
    lb_endpoint(b)["endpoint"]["address"]["socket_address"]["port_value"] = 65536
    first = f"{LB_ENDPOINT}.endpoint.address.socket_address.port_value"
    other = "static_resources.clusters[1].load_assignment.endpoints[0].lb_endpoints[0]"
    assert sorted(problems(b)) == sorted(
        [
            f"{first}: 65536 must be at most 65535",
            f"{other}.endpoint.address.socket_address.port_value: 99999 must be at most 65535",
        ]
    )


def test_empty_cluster_name() -> None:
    b = base()
    cluster(b)["name"] = ""
    cluster(b)["load_assignment"]["cluster_name"] = ""
    assert sorted(problems(b)) == sorted(
        [
            f"{CLUSTER}.name: must not be empty",
            f"{CLUSTER}.load_assignment.cluster_name: must not be empty",
            f"{ROUTE}.route.cluster: unknown cluster 'backend' (not in static_resources.clusters)",
        ]
    )


def test_minimum_durations() -> None:
    b = base()
    cluster(b)["connect_timeout"] = "0s"
    cluster(b)["type"] = "STRICT_DNS"
    cluster(b)["dns_refresh_rate"] = "0.0005s"
    assert sorted(problems(b)) == [
        f"{CLUSTER}.connect_timeout: 0s must be greater than 0s",
        f"{CLUSTER}.dns_refresh_rate: 0.0005s must be greater than 0.001s",
    ]


def test_wrapped_minimum() -> None:
    b = base()
    lb_endpoint(b)["load_balancing_weight"] = 0
    assert problems(b) == [f"{LB_ENDPOINT}.load_balancing_weight: 0 must be at least 1"]


def test_required_oneof() -> None:
    b = base()
    lb_endpoint(b)["endpoint"]["address"] = {}
    assert problems(b) == [
        f"{LB_ENDPOINT}.endpoint.address: one of socket_address, pipe, envoy_internal_address "
        "is required"
    ]


def test_rules_inside_typed_configs() -> None:
    b = base()
    hcm(b)["stat_prefix"] = ""
    vhost(b)["domains"] = []
    del route(b)["route"]
    route(b)["direct_response"] = {"status": 700}
    assert sorted(problems(b)) == sorted(
        [
            f"{HCM}.stat_prefix: must not be empty",
            f"{VHOST}.domains: must not be empty",
            f"{ROUTE}.direct_response.status: is not in range (600, 200)",
        ]
    )


def test_a_valid_bootstrap_has_no_pgv_problems() -> None:
    found = Problems()
    bootstrap = parse_bootstrap(base(), found)
    assert bootstrap is not None
    check(bootstrap, found)
    assert list(found) == []


def test_rephrasing_of_pgv_messages() -> None:
    assert _rephrase("is not lesser than or equal to 65535", "70000", False) == (
        "70000 must be at most 65535"
    )
    assert _rephrase("is not greater than 0.001", "0s", True) == "0s must be greater than 0.001s"
    assert _rephrase("length is less than 1", None, False) == "must not be empty"
    assert _rephrase("length is less than 3", None, False) == "must be at least 3 characters long"
    assert _rephrase("needs to contain at least 2 items", None, False) == "needs at least 2 items"
    assert _rephrase("pattern does not match x", None, False) == "pattern does not match x"


def test_pgv_can_check_every_supported_message_type() -> None:
    """_errors() returns None only when PGV's generated code fails; none of ours does."""
    for full_name in MESSAGES:
        cls = message_class(f"type.googleapis.com/{full_name}")
        assert cls is not None
        assert _errors(cls()) is not None, full_name


def _broken_in_three_places() -> Any:
    b = base()
    listener(b)["address"]["socket_address"]["port_value"] = 70000
    hcm(b)["stat_prefix"] = ""
    lb_endpoint(b)["load_balancing_weight"] = 0
    found = Problems()
    bootstrap = parse_bootstrap(b, found)
    assert bootstrap is not None and not found
    return bootstrap


def test_validators_looked_up_by_descriptor_are_pgvs(monkeypatch: pytest.MonkeyPatch) -> None:
    """meshcore installs its by-descriptor lookup as PGV's `_validate_all`; PGV's own lookup
    gives the same errors for a bootstrap and a typed config inside it."""
    assert validator._validate_all is pgv._validate_all
    bootstrap = _broken_in_three_places()
    manager = pgv.typed_configs(bootstrap, "")[0][1]
    ours = [pgv._validate_all(bootstrap), pgv._validate_all(manager)]
    monkeypatch.setattr(validator, "_validate_all", pgv._PGV_VALIDATE_ALL)
    assert [validator._validate_all(bootstrap), validator._validate_all(manager)] == ours
    assert ours == [
        [
            "p.port_value is not lesser than or equal to 65535",
            "p.load_balancing_weight.value is not greater than or equal to 1",
        ],
        ["p.stat_prefix length is less than 1"],
    ]


def test_generating_validators_keeps_pgvs_deprecation_warning_quiet() -> None:
    """PGV reads a deprecated descriptor attribute while it generates a type's validator;
    that warning is silenced there, so even `-W error` (a fresh process: nothing generated
    yet) loses no problem."""
    script = (
        "from tests.config.test_pgv import _broken_in_three_places\n"
        "from meshcore.config import pgv\n"
        "from meshcore.config.errors import Problems\n"
        "found = Problems()\n"
        "pgv.check(_broken_in_three_places(), found)\n"
        "print('\\n'.join(str(p) for p in found))\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.stdout.splitlines() == [
        f"{LISTENER}.address.socket_address.port_value: 70000 must be at most 65535",
        f"{LB_ENDPOINT}.load_balancing_weight: 0 must be at least 1",
        f"{HCM}.stat_prefix: must not be empty",
    ]

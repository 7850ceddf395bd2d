"""An RDS route config checked against its last accepted version (`rds_reuse`) equals the
whole check of the new version: snapshot, cluster references (with the paths of their new
places) and problems, for every kind of edit a control plane makes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2  # noqa: F401 - @type
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2  # noqa: F401
from google.protobuf import json_format
from meshcore.config import rds_reuse
from meshcore.config.errors import Problem
from meshcore.config.xds_resources import RouteResource, check_route_config

PATH = "route_configs[r]"
FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
RL = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
Json = dict[str, Any]


def _service(i: int) -> Json:
    """An Istio-like outbound virtual host with a retry policy."""
    return {
        "name": f"svc{i}",
        "domains": [f"svc{i}.ns.svc.cluster.local", f"svc{i}.ns", f"svc{i}"],
        "routes": [
            {
                "name": "default",
                "match": {"prefix": "/"},
                "route": {
                    "cluster": f"c{i % 3}",
                    "timeout": "0s",
                    "retry_policy": {"retry_on": "connect-failure", "num_retries": 2},
                },
            }
        ],
    }


def _rich() -> Json:
    """A virtual host with most of what translates: host-level retry and mirror policies,
    per-filter configs, weighted clusters, header matchers and mutations, a direct
    response with a body, a redirect."""
    return {
        "name": "rich",
        "domains": ["Rich.Example", "rich:8080"],
        "retry_policy": {"retry_on": "5xx", "num_retries": 3},
        "per_request_buffer_limit_bytes": 2048,
        "include_request_attempt_count": True,
        "request_mirror_policies": [{"cluster": "mirror"}],
        "request_headers_to_add": [{"header": {"key": "x-vh", "value": "1"}}],
        "typed_per_filter_config": {
            "envoy.filters.http.fault": {
                "@type": FAULT,
                "abort": {"http_status": 503, "percentage": {"numerator": 1}},
            }
        },
        "routes": [
            {
                "match": {
                    "prefix": "/w",
                    "headers": [{"name": "X-Canary", "string_match": {"exact": "yes"}}],
                },
                "route": {
                    "weighted_clusters": {
                        "clusters": [{"name": "c0", "weight": 1}, {"name": "c1", "weight": 3}]
                    },
                    "prefix_rewrite": "/",
                },
                "typed_per_filter_config": {
                    "envoy.filters.http.local_ratelimit": {"@type": RL, "stat_prefix": "r"}
                },
            },
            {
                "match": {"path": "/body"},
                "direct_response": {"status": 200, "body": {"inline_string": "hello"}},
            },
            {"match": {"prefix": "/old"}, "redirect": {"path_redirect": "/new"}},
            {"match": {"safe_regex": {"regex": "/r/.*"}}, "route": {"cluster": "c2"}},
        ],
    }


def _config(hosts: list[Json], **root: Any) -> Json:
    catch_all = {
        "name": "all",
        "domains": ["*"],
        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "c0"}}],
    }
    return {"name": "r", "virtual_hosts": [*hosts, catch_all], **root}


def _base() -> Json:
    return _config([_service(0), _rich(), *(_service(i) for i in range(1, 6))])


def _parse(data: Json) -> route_pb2.RouteConfiguration:
    return json_format.ParseDict(data, route_pb2.RouteConfiguration())


def _accepted(data: Json) -> RouteResource:
    resource, problems = check_route_config(_parse(data), PATH)
    assert problems == [] and resource is not None and resource.memo is not None
    return resource


def _same_as_whole(
    previous: RouteResource, data: Json
) -> tuple[RouteResource | None, list[Problem]]:
    """The new version checked against `previous` and as a whole agree; returns it."""
    msg = _parse(data)
    got, got_problems = check_route_config(msg, PATH, previous)
    want, want_problems = check_route_config(msg, PATH)
    assert got_problems == want_problems
    if want is None:
        assert got is None
        return None, got_problems
    assert got is not None
    assert got.snapshot == want.snapshot
    assert got.refs == want.refs
    return got, got_problems


def _change_service(data: Json) -> None:
    data["virtual_hosts"][3]["routes"][0]["route"]["cluster"] = "c9"


def _add_first(data: Json) -> None:
    data["virtual_hosts"].insert(0, _service(40))


def _remove_rich(data: Json) -> None:
    del data["virtual_hosts"][1]


def _reverse(data: Json) -> None:
    data["virtual_hosts"][:-1] = data["virtual_hosts"][-2::-1]


def _flip_catch_all(data: Json) -> None:
    data["virtual_hosts"][-1]["routes"][0]["route"]["cluster"] = "c1"


EDITS: dict[str, tuple[Callable[[Json], None], int]] = {
    # edit, how many virtual hosts the new version takes from the old one
    "one changed": (_change_service, 7),
    "one added first": (_add_first, 8),
    "one removed": (_remove_rich, 7),
    "reordered": (_reverse, 8),
    "catch-all flipped": (_flip_catch_all, 7),
}


@pytest.mark.parametrize("edit", EDITS)
def test_an_edit_reuses_the_unchanged_hosts_and_equals_the_whole_check(edit: str) -> None:
    change, reusable = EDITS[edit]
    previous = _accepted(_base())
    data = _base()
    change(data)
    got, _ = _same_as_whole(previous, data)
    assert got is not None
    reused = rds_reuse.translate(_parse(data), PATH, previous.memo)
    assert reused is not None and reused.reused == reusable
    assert reused.snapshot == got.snapshot


def test_a_reused_hosts_references_name_its_new_place() -> None:
    previous = _accepted(_base())
    data = _base()
    _add_first(data)
    data["virtual_hosts"].insert(0, _service(41))
    got, _ = _same_as_whole(previous, data)
    assert got is not None
    # `rich` was at index 1 and is at 3 now; the two added hosts name c1 and c2.
    moved = [
        (p.replace(".virtual_hosts[1].", ".virtual_hosts[3]."), c)
        for p, c in previous.refs
        if ".virtual_hosts[1]." in p
    ]
    assert (f"{PATH}.virtual_hosts[3].request_mirror_policies[0].cluster", "mirror") in moved
    assert [(p, c) for p, c in got.refs if ".virtual_hosts[3]." in p] == moved
    assert [c for p, c in got.refs if ".virtual_hosts[1]." in p] == ["c1"]


@pytest.mark.parametrize(
    "root",
    [
        {"max_direct_response_body_size_bytes": 3},  # the body of `rich` no longer fits
        {"max_direct_response_body_size_bytes": 8192},
        {"request_headers_to_add": [{"header": {"key": "x-root", "value": "1"}}]},
    ],
)
def test_a_root_change_is_checked_as_a_whole(root: Json) -> None:
    previous = _accepted(_base())
    data = {**_base(), **root}
    assert rds_reuse.translate(_parse(data), PATH, previous.memo) is None
    _same_as_whole(previous, data)


def _unsupported(data: Json) -> None:
    data["virtual_hosts"][4]["rate_limits"] = [{"actions": [{"remote_address": {}}]}]


def _pgv(data: Json) -> None:
    data["virtual_hosts"][4]["request_headers_to_add"] = [{"header": {"key": "", "value": "x"}}]


def _pgv_name(data: Json) -> None:
    data["virtual_hosts"][4]["name"] = ""


def _duplicate(data: Json) -> None:
    data["virtual_hosts"][4]["domains"].append("SVC0")


def _translation(data: Json) -> None:
    data["virtual_hosts"][4]["routes"][0]["route"] = {
        "weighted_clusters": {"clusters": [{"name": "c0", "weight": 0}]}
    }


BAD: dict[str, tuple[Callable[[Json], None], str]] = {
    "unsupported field": (_unsupported, f"{PATH}.virtual_hosts[4].rate_limits"),
    "PGV length": (_pgv, f"{PATH}.virtual_hosts[4].request_headers_to_add[0].header.key"),
    "PGV required": (_pgv_name, f"{PATH}.virtual_hosts[4].name"),
    "duplicate domain": (_duplicate, f"{PATH}.virtual_hosts[4].domains[3]"),
    "translation": (_translation, f"{PATH}.virtual_hosts[4].routes[0].route.weighted_clusters"),
}


@pytest.mark.parametrize("bad", BAD)
def test_a_bad_change_in_one_host_is_reported_at_its_path_then_fixed(bad: str) -> None:
    spoil, where = BAD[bad]
    previous = _accepted(_base())
    data = _base()
    _change_service(data)
    spoil(data)
    got, problems = _same_as_whole(previous, data)
    assert got is None
    assert any(p.path.startswith(where) for p in problems), problems
    # The fix is checked against the last accepted version (the bad one never was).
    fixed = _base()
    _change_service(fixed)
    again, problems = _same_as_whole(previous, fixed)
    assert again is not None and problems == []
    reused = rds_reuse.translate(_parse(fixed), PATH, previous.memo)
    assert reused is not None and reused.reused == 7


def test_a_chain_of_versions_each_against_the_last_equals_the_whole_check() -> None:
    resource = _accepted(_base())
    data = _base()
    for change in (_change_service, _add_first, _reverse, _remove_rich, _flip_catch_all):
        change(data)
        got, _ = _same_as_whole(resource, data)
        assert got is not None
        resource = got


def test_reused_snapshots_are_not_changed_by_the_next_version() -> None:
    previous = _accepted(_base())
    kept = copy.deepcopy(previous.snapshot)
    data = _base()
    _reverse(data)
    got, _ = _same_as_whole(previous, data)
    assert got is not None
    assert previous.snapshot == kept
    assert got.snapshot["virtual_hosts"][0] is previous.snapshot["virtual_hosts"][6]


def test_the_root_shell_has_every_field_but_the_virtual_hosts() -> None:
    data = _base() | {
        "request_headers_to_add": [{"header": {"key": "x-root", "value": "1"}}],
        "response_headers_to_remove": ["x-gone"],
        "internal_only_headers": ["x-internal"],
        "max_direct_response_body_size_bytes": 100,
        "validate_clusters": False,
        "most_specific_header_mutations_wins": True,
        "metadata": {"filter_metadata": {"m": {"k": "v"}}},
        "typed_per_filter_config": {"envoy.filters.http.fault": {"@type": FAULT}},
    }
    config = _parse(data)
    want = route_pb2.RouteConfiguration()
    want.CopyFrom(config)
    want.ClearField("virtual_hosts")
    assert rds_reuse.root_shell(config) == want
    assert len(want.ListFields()) == len(data) - 1

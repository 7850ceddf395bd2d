"""An EDS update checked as a diff against the last accepted version (`eds_reuse`) gives
what the full check of the new version gives: the same hosts in the same order, the same
problems with the same paths; unchanged endpoints keep the accepted version's hosts, and a
NACKed version is never the one reused."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
from envoy.config.endpoint.v3 import endpoint_pb2
from meshcore.config.eds_reuse import _shell, endpoint_keys, reuse_hosts
from meshcore.config.xds_resources import EndpointsResource, check_assignment
from meshcore.xds.resources import Rejected, ResourceStore

from .builders import ASSIGNMENT, CLUSTER, Json, eds_cluster, parse, xds_bootstrap
from .harness import load_bootstrap
from .test_resources import apply, update

PATH = "endpoints[a]"
Edit = Callable[[Json], None]


def _endpoint(i: int, **extra: object) -> Json:
    address = {"socket_address": {"address": f"10.0.{i // 200}.{1 + i % 200}", "port_value": 80}}
    return {"endpoint": {"address": address}, **extra}


def base() -> Json:
    """Two priority groups, some endpoints with a weight, a health status or metadata."""
    first = [_endpoint(i) for i in range(12)]
    first[3]["load_balancing_weight"] = 5
    first[4]["health_status"] = "DRAINING"
    first[5]["metadata"] = {"filter_metadata": {"istio": {"workload": "w5", "b": "x"}}}
    second = [_endpoint(100 + i) for i in range(6)]
    return {
        "cluster_name": "a",
        "policy": {"overprovisioning_factor": 140},
        "endpoints": [
            {"priority": 0, "lb_endpoints": first},
            {"priority": 1, "lb_endpoints": second},
        ],
    }


def _lb(data: Json, group: int) -> list[Json]:
    endpoints: list[Json] = data["endpoints"][group]["lb_endpoints"]
    return endpoints


def _port(data: Json, group: int, index: int, port: int) -> None:
    _lb(data, group)[index]["endpoint"]["address"]["socket_address"]["port_value"] = port


def _move(data: Json) -> None:
    _lb(data, 1).append(_lb(data, 0).pop(2))


def _swap_priorities(data: Json) -> None:
    data["endpoints"][0]["priority"], data["endpoints"][1]["priority"] = 1, 0


def _health(data: Json) -> None:
    _lb(data, 0)[0]["health_status"] = "UNHEALTHY"
    _lb(data, 0)[4]["health_status"] = "HEALTHY"


def _metadata_order(data: Json) -> None:
    """The same metadata with its keys in another order: the same endpoint."""
    _lb(data, 0)[5]["metadata"] = {"filter_metadata": {"istio": {"b": "x", "workload": "w5"}}}


EDITS: dict[str, Edit] = {
    "unchanged": lambda d: None,
    "one endpoint changed": lambda d: _port(d, 0, 7, 81),
    "an address changed": lambda d: _lb(d, 0)[9]["endpoint"]["address"]["socket_address"].update(
        address="10.9.9.9"
    ),
    "endpoints reordered": lambda d: _lb(d, 0).reverse(),
    "metadata changed": lambda d: _lb(d, 0)[5]["metadata"]["filter_metadata"]["istio"].update(
        workload="w6"
    ),
    "one endpoint added": lambda d: _lb(d, 0).insert(0, _endpoint(50)),
    "one endpoint removed": lambda d: _lb(d, 1).pop(3),
    "an endpoint moved between groups": _move,
    "the groups' priorities swapped": _swap_priorities,
    "a priority group added": lambda d: d["endpoints"].append(
        {"priority": 2, "lb_endpoints": [_endpoint(300)]}
    ),
    "a group emptied": lambda d: _lb(d, 1).clear(),
    "health status changed": _health,
    "weight changed": lambda d: _lb(d, 0)[3].update(load_balancing_weight=6),
    "metadata keys reordered": _metadata_order,
    "a duplicate endpoint": lambda d: _lb(d, 0).append(copy.deepcopy(_lb(d, 0)[1])),
    "a hostname added": lambda d: _lb(d, 1)[0]["endpoint"].update(hostname="h"),
    "policy changed": lambda d: d["policy"].update(overprovisioning_factor=200),
}
# Rejected ones: the problems of the full check, paths and all.
REJECTED: dict[str, Edit] = {
    "an endpoint with a hostname": lambda d: _lb(d, 0)[7]["endpoint"]["address"][
        "socket_address"
    ].update(address="backend.local"),
    "an endpoint with a bad port": lambda d: _port(d, 1, 2, 70000),
    "an endpoint with an unsupported field": lambda d: _lb(d, 0)[1]["endpoint"].update(
        health_check_config={"port_value": 9}
    ),
    "an endpoint named, not addressed": lambda d: _lb(d, 0).__setitem__(
        2, {"endpoint_name": "named"}
    ),
    "an endpoint without address": lambda d: _lb(d, 0)[2].update(endpoint={}),
    "a group's priority out of range": lambda d: d["endpoints"][1].update(priority=129),
    "a priority skipped": lambda d: d["endpoints"][1].update(priority=2),
    "a group with a locality": lambda d: d["endpoints"][0].update(locality={"zone": "z"}),
    "a group with a weight (not supported)": lambda d: d["endpoints"][0].update(
        load_balancing_weight=3
    ),
    "an unsupported policy field": lambda d: d["policy"].update(weighted_priority_health=True),
}


def _message(data: Json) -> endpoint_pb2.ClusterLoadAssignment:
    return parse(endpoint_pb2.ClusterLoadAssignment, data)


def _accepted(data: Json) -> EndpointsResource:
    resource, problems = check_assignment(_message(data), PATH)
    assert problems == [] and resource is not None and resource.keys
    return resource


@pytest.mark.parametrize("name", [*EDITS, *REJECTED])
def test_a_diff_against_the_accepted_version_equals_the_full_check(name: str) -> None:
    previous = _accepted(base())
    data = base()
    {**EDITS, **REJECTED}[name](data)
    new = _message(data)
    incremental = check_assignment(new, PATH, previous)
    assert incremental == check_assignment(new, PATH)
    resource, problems = incremental
    diff = reuse_hosts(new, PATH, previous.endpoints, previous.keys)
    if name in REJECTED:
        assert resource is None and problems and diff is None
    else:  # served by the diff, not by the full check it falls back to
        assert resource is not None and problems == []
        assert diff == (resource.endpoints, resource.keys)


def test_unchanged_endpoints_keep_the_accepted_hosts() -> None:
    previous = _accepted(base())
    data = base()
    _port(data, 0, 7, 81)
    resource, _ = check_assignment(_message(data), PATH, previous)
    assert resource is not None
    changed = [
        i
        for i, (a, b) in enumerate(zip(resource.endpoints, previous.endpoints, strict=True))
        if a is not b
    ]
    assert changed == [7]
    assert resource.endpoints[7] == {**previous.endpoints[7], "port": 81}


def test_a_priority_change_gives_the_reused_hosts_the_new_priority() -> None:
    previous = _accepted(base())
    data = base()
    _swap_priorities(data)
    resource, _ = check_assignment(_message(data), PATH, previous)
    assert resource is not None
    assert [h["priority"] for h in resource.endpoints] == [1] * 12 + [0] * 6
    assert [{**h, "priority": 0} for h in resource.endpoints] == [
        {**h, "priority": 0} for h in previous.endpoints
    ]
    assert not any(a is b for a, b in zip(resource.endpoints, previous.endpoints, strict=True))


def test_the_problems_name_the_changed_endpoint() -> None:
    previous = _accepted(base())
    data = base()
    _lb(data, 0)[7]["endpoint"]["address"]["socket_address"]["address"] = "10.0.0.300"
    _port(data, 1, 2, 65536 + 80)  # not a uint32 overflow: PGV's lte 65535
    resource, problems = check_assignment(_message(data), PATH, previous)
    assert resource is None
    assert [str(p) for p in problems] == [
        "endpoints[a].endpoints[1].lb_endpoints[2].endpoint.address.socket_address.port_value:"
        " 65616 must be at most 65535",
        "endpoints[a].endpoints[0].lb_endpoints[7].endpoint.address.socket_address.address:"
        " malformed IP address: '10.0.0.300'; STATIC clusters need IP literals"
        " (use STRICT_DNS for names)",
    ]


def _store() -> ResourceStore:
    store = ResourceStore(load_bootstrap(xds_bootstrap(18000, node="n")), ads=True)
    apply(store, update(CLUSTER, eds_cluster("a")))
    return store


def _hosts(store: ResourceStore) -> list[dict[str, object]]:
    endpoints: list[dict[str, object]] = store.accepted[ASSIGNMENT]["a"].checked.endpoints
    return endpoints


def test_the_store_reuses_the_last_accepted_version_never_a_nacked_one() -> None:
    store = _store()
    apply(store, update(ASSIGNMENT, _message(base()), version="1"))
    accepted = _hosts(store)

    bad = base()
    _lb(bad, 0)[7]["endpoint"]["address"]["socket_address"]["address"] = "not-an-ip"
    _port(bad, 0, 8, 81)  # a good change beside the bad one: not kept either
    with pytest.raises(Rejected) as nack:
        store.stage(update(ASSIGNMENT, _message(bad), version="2"), 0.0)
    assert nack.value.lines == [
        "endpoints[a].endpoints[0].lb_endpoints[7].endpoint.address.socket_address.address:"
        " malformed IP address: 'not-an-ip'; STATIC clusters need IP literals"
        " (use STRICT_DNS for names)"
    ]
    assert _hosts(store) is accepted

    fixed = base()
    _port(fixed, 0, 7, 82)
    plan = apply(store, update(ASSIGNMENT, _message(fixed), version="3"))
    hosts = _hosts(store)
    full, _ = check_assignment(_message(fixed), PATH)
    assert full is not None and hosts == full.endpoints
    assert plan.endpoint_updates == {"a": hosts}
    # Reused from version 1, the last accepted: all but the changed endpoint.
    assert [i for i, h in enumerate(hosts) if h is not accepted[i]] == [7]
    assert hosts[8]["port"] == 80


def test_a_resource_sent_again_after_removal_is_checked_in_full() -> None:
    store = _store()
    apply(store, update(ASSIGNMENT, _message(base()), version="1"))
    first = _hosts(store)
    apply(store, update(ASSIGNMENT, removed=["a"], version="2"))
    assert "a" not in store.accepted[ASSIGNMENT]
    apply(store, update(ASSIGNMENT, _message(base()), version="3"))
    again = _hosts(store)
    assert again == first and not any(a is b for a, b in zip(again, first, strict=True))


def test_no_keys_when_some_endpoint_gave_no_host() -> None:
    msg = _message(base())
    resource = _accepted(base())
    assert endpoint_keys(msg, resource.endpoints) == resource.keys
    assert len(resource.keys) == len(resource.endpoints) == 18
    assert endpoint_keys(msg, resource.endpoints[1:]) == ()


def test_the_shell_is_the_assignment_without_its_endpoints() -> None:
    """`_shell` builds field by field what a copy with the groups' `lb_endpoints` cleared is:
    every kind of field (scalar, message, empty message, map, repeated, oneof) kept."""
    data = base()
    data["named_endpoints"] = {"n": _endpoint(1)["endpoint"]}
    data["policy"]["drop_overloads"] = [{"category": "c", "drop_percentage": {"numerator": 3}}]
    data["endpoints"][0].update(locality={}, load_balancing_weight=4)
    data["endpoints"][0]["metadata"] = {"filter_metadata": {"m": {"k": 1}}}
    data["endpoints"][1]["leds_cluster_locality_config"] = {"leds_collection_name": "x"}
    data["endpoints"].append({"priority": 2})
    msg = _message(data)
    expected = endpoint_pb2.ClusterLoadAssignment()
    expected.CopyFrom(msg)
    for group in expected.endpoints:
        group.ClearField("lb_endpoints")
    shell = _shell(msg)
    assert shell == expected
    assert shell.endpoints[0].HasField("locality")
    assert len(msg.endpoints[0].lb_endpoints) == 12  # the original is left as it was

"""The first pass of `rules.check` (no paths; PGV's parts for the set fields only, PGV's
rewritten functions) agrees with the reporting passes: nothing for a valid message, the very
problems of `pgv.check` and `unsupported.check` (texts, paths, order) for a bad one."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2  # noqa: F401 - @type
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2  # noqa: F401
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from meshcore.config import pgv, pgv_codegen, pgv_split, rules, unsupported
from meshcore.config.errors import Problems
from protoc_gen_validate import validator

from .test_rds_reuse import FAULT, _rich, _service

# PGV's own generation (compared with here) reads the deprecated FieldDescriptor.label.
pytestmark = pytest.mark.filterwarnings(r"ignore:label\(\) is deprecated:DeprecationWarning")
PATH = "route_configs[r]"
Json = dict[str, Any]


def _config() -> Json:
    return {
        "name": "r",
        "response_headers_to_add": [{"header": {"key": "x-rc", "value": "1"}}],
        "virtual_hosts": [_rich(), *(_service(i) for i in range(5))],
    }


def _set(path: list[Any], value: Any) -> Callable[[Json], None]:
    def edit(data: Json) -> None:
        at: Any = data
        for key in path[:-1]:
            at = at[key]
        at[path[-1]] = value

    return edit


def _drop(path: list[Any]) -> Callable[[Json], None]:
    def edit(data: Json) -> None:
        at: Any = data
        for key in path[:-1]:
            at = at[key]
        del at[path[-1]]

    return edit


VH, ROUTE = ["virtual_hosts", 2], ["virtual_hosts", 2, "routes", 0]
FILTER = ["virtual_hosts", 0, "typed_per_filter_config", "envoy.filters.http.fault"]
EDITS: dict[str, Callable[[Json], None]] = {
    "valid": lambda data: None,
    "host name empty": _set([*VH, "name"], ""),
    "no domains": _set([*VH, "domains"], []),
    "route without action": _drop([*ROUTE, "route"]),
    "route without match": _drop([*ROUTE, "match"]),
    "match without path": _set([*ROUTE, "match"], {"headers": [{"name": "x"}]}),
    "empty cluster": _set([*ROUTE, "route", "cluster"], ""),
    "bad back off": _set(
        [*ROUTE, "route", "retry_policy", "retry_back_off"], {"base_interval": "0s"}
    ),
    "unsupported field": _set([*VH, "matcher"], {}),
    "unsupported enum": _set([*VH, "require_tls"], "ALL"),
    "unsupported root field": _set(["vhds"], {"config_source": {"ads": {}}}),
    "bad typed config": _set([*FILTER, "abort", "http_status"], 99),
    "typed config of another type": _set(
        FILTER,
        {"@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "name": "x"},
    ),
    "two problems": lambda data: (_set([*VH, "name"], "")(data), _set([*VH, "matcher"], {})(data)),
}


def _parse(data: Json) -> route_pb2.RouteConfiguration:
    return json_format.ParseDict(data, route_pb2.RouteConfiguration())


def _slow(msg: Message, path: str) -> list[Any]:
    problems = Problems()
    pgv.check(msg, problems, path)
    unsupported.check(msg, path, problems)
    return problems.as_list()


@pytest.mark.parametrize("edit", EDITS)
def test_the_first_pass_agrees_with_the_reporting_passes(edit: str) -> None:
    data = copy.deepcopy(_config())
    EDITS[edit](data)
    msg = _parse(data)
    want = _slow(msg, PATH)
    assert (want == []) == (edit == "valid")  # each edit is a problem
    problems = Problems()
    rules.check(msg, PATH, problems)
    assert problems.as_list() == want
    assert rules.clean(msg) == (want == [])


def test_pgv_checks_the_typed_configs_the_table_does_not_look_into() -> None:
    """A route's `metadata` is opaque to the table, but PGV checks the typed configs in it."""
    data = copy.deepcopy(_config())
    bad = {"@type": FAULT, "abort": {"http_status": 99, "percentage": {"numerator": 1}}}
    data["virtual_hosts"][3]["routes"][0]["metadata"] = {"typed_filter_metadata": {"x": bad}}
    msg = _parse(data)
    want = _slow(msg, PATH)
    assert [p.path for p in want] == [
        "route_configs[r].virtual_hosts[3].routes[0].metadata.typed_filter_metadata[x]"
        ".abort.http_status"
    ]
    assert not rules.clean(msg)
    bad["abort"]["http_status"] = 503
    fine = _parse(data)
    assert _slow(fine, PATH) == [] and rules.clean(fine)


def _pgv_own(msg: Message) -> list[str]:
    """PGV's own generated function's errors (its `_validate_all` for the messages inside)."""
    saved = validator._validate_all
    validator._validate_all = lambda m: validator._validate_all_inner(
        validator.ValidatingMessage(m)
    )(m)
    try:
        errors: list[str] = validator._validate_all(msg)
    finally:
        validator._validate_all = saved
    return errors


@pytest.mark.parametrize("edit", EDITS)
def test_the_rewritten_functions_give_pgvs_errors(edit: str) -> None:
    data = copy.deepcopy(_config())
    EDITS[edit](data)
    msg = _parse(data)
    errors = pgv._validate_all(msg)
    assert errors == _pgv_own(msg)
    assert bool(pgv_split.quick_errors(msg)) == bool(errors)


def _types(root: Descriptor, limit: int) -> list[Descriptor]:
    """Message types reachable from `root` by message fields, breadth first."""
    seen = {root}
    order = [root]
    for descriptor in order:
        for fd in descriptor.fields:
            child = fd.message_type
            if child is not None and child not in seen and len(order) < limit:
                seen.add(child)
                order.append(child)
    return order


def _empty_and_filled(limit: int) -> Iterator[tuple[Descriptor, Message]]:
    """For the first `limit` types reachable from the bootstrap (map entries left out): an
    empty message, then one with each singular message field set to an empty message."""
    for descriptor in _types(bootstrap_pb2.Bootstrap.DESCRIPTOR, limit):
        if descriptor.GetOptions().map_entry:
            continue
        cls = message_factory.GetMessageClass(descriptor)
        filled = cls()
        for fd in descriptor.fields:
            if fd.message_type is not None and not fd.is_repeated:
                getattr(filled, fd.name).SetInParent()
        yield descriptor, cls()
        yield descriptor, filled


def test_every_type_agrees_on_empty_and_filled_messages() -> None:
    """For types reachable from the bootstrap: the rewritten function gives PGV's errors and
    the parts their verdict, on an empty message (required fields, oneofs) and on one with
    each singular message field set to an empty message."""
    checked, failing = 0, 0
    for descriptor, msg in _empty_and_filled(250):
        try:
            want = _pgv_own(msg)
        except Exception:
            continue  # PGV's own code fails on it: `pgv.check` handles that
        assert pgv._validate_all(msg) == want, descriptor.full_name
        assert bool(pgv_split.quick_errors(msg)) == bool(want), descriptor.full_name
        checked += 1
        failing += bool(want)
    assert checked > 300 and 50 < failing < checked - 50


def test_has_field_rewrite_matches_pgvs_helper() -> None:
    msg = _parse(_config()).virtual_hosts[0]
    for fd in msg.DESCRIPTOR.fields:
        rewritten = msg.HasField(fd.name) if fd.has_presence and not fd.is_repeated else True
        assert validator._has_field(msg, fd.name) == rewritten, fd.name
    source = pgv_codegen.pgv_source(msg)
    assert "_has_field(p, 'retry_policy')" in source  # what the rewrite looks for


def test_without_pgvs_source_pgvs_own_functions_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another PGV version whose source cannot be had or rewritten: PGV's own function, for
    the errors and for the first pass."""
    data = copy.deepcopy(_config())
    EDITS["bad back off"](data)
    msg = _parse(data)
    want = _pgv_own(msg)
    assert want

    def fails(_: Message) -> str:
        raise AttributeError("no file_template")

    monkeypatch.setattr(pgv_codegen, "pgv_source", fails)
    monkeypatch.setattr(pgv, "_GENERATED", {})
    monkeypatch.setattr(pgv_split, "_QUICK", {})
    assert pgv._validate_all(msg) == want
    assert pgv_split.quick_errors(msg) == want
    assert not rules.clean(msg)


def test_the_first_pass_agrees_on_every_type() -> None:
    """`rules.clean` against the reporting passes on the types reachable from the bootstrap:
    empty, and with each singular message field set to an empty message (mostly fields the
    table reports; the rest reach PGV's parts and the walk's descents)."""
    checked, clean = 0, 0
    for descriptor, msg in _empty_and_filled(250):
        want = _slow(msg, "x")
        assert rules.clean(msg) == (want == []), (descriptor.full_name, want)
        checked += 1
        clean += want == []
    assert checked > 400 and 50 < clean < checked - 50

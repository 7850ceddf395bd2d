"""Header mutations: append semantics, formatters, protected headers."""

from __future__ import annotations

from typing import Any

import pytest
from envoy.config.route.v3 import route_components_pb2 as rc
from meshcore.config.errors import Problems
from meshcore.config.translate_headers import header_mutations, literal_value, with_header_mutations

from .builders import NO_HEADERS, ROUTE, base, problems, route, snapshot_route


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("plain", "plain"),
        ("", ""),
        ("100%%", "100%"),
        ("%%a%%b", "%a%b"),
        ("%REQ(x-id)%", None),
        ("%UPSTREAM_HOST%", None),
        ("50%", None),
        ("a%%%b", None),
    ],
)
def test_literal_values(value: str, literal: str | None) -> None:
    assert literal_value(value) == literal


def _added(option: dict[str, Any]) -> dict[str, Any]:
    b = base()
    route(b)["response_headers_to_add"] = [option]
    (added,) = snapshot_route(b)["headers"]["response_headers_to_add"]
    return added


@pytest.mark.parametrize(
    ("extra", "action"),
    [
        ({}, "append_if_exists_or_add"),
        ({"append": True}, "append_if_exists_or_add"),
        ({"append": False}, "overwrite_if_exists_or_add"),
        ({"append_action": "ADD_IF_ABSENT"}, "add_if_absent"),
        ({"append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}, "overwrite_if_exists_or_add"),
        ({"append_action": "OVERWRITE_IF_EXISTS"}, "overwrite_if_exists"),
    ],
)
def test_append_semantics(extra: dict[str, Any], action: str) -> None:
    added = _added({"header": {"key": "X-A", "value": "1"}, **extra})
    assert added == {"key": "x-a", "value": "1", "append_action": action, "keep_empty_value": False}


def test_keep_empty_value_and_escaped_percent() -> None:
    added = _added({"header": {"key": "x-empty", "value": "100%%"}, "keep_empty_value": True})
    assert (added["value"], added["keep_empty_value"]) == ("100%", True)


def test_formatters_are_not_supported_yet() -> None:
    b = base()
    route(b)["request_headers_to_add"] = [
        {"header": {"key": "x-ok", "value": "fine"}},
        {"header": {"key": "x-client", "value": "%DOWNSTREAM_REMOTE_ADDRESS%"}},
    ]
    assert problems(b) == [
        f"{ROUTE}.request_headers_to_add[1].header.value: header formatters (%COMMAND%) are not "
        "supported yet; write %% for a literal %"
    ]


def test_append_and_append_action_together() -> None:
    b = base()
    route(b)["request_headers_to_add"] = [
        {"header": {"key": "x", "value": "v"}, "append": True, "append_action": "ADD_IF_ABSENT"}
    ]
    assert problems(b) == [
        f"{ROUTE}.request_headers_to_add[0]: append and append_action cannot both be set"
    ]


def test_protected_headers() -> None:
    b = base()
    route(b)["request_headers_to_add"] = [{"header": {"key": "Host", "value": "x"}}]
    route(b)["response_headers_to_add"] = [{"header": {"key": ":status", "value": "200"}}]
    route(b)["request_headers_to_remove"] = ["x-fine", ":authority"]
    assert problems(b) == [
        f"{ROUTE}.request_headers_to_add[0].header.key: :-prefixed or host headers may not be "
        "modified",
        f"{ROUTE}.request_headers_to_remove[1]: :-prefixed or host headers may not be removed",
        f"{ROUTE}.response_headers_to_add[0].header.key: :-prefixed or host headers may not be "
        "modified",
    ]


def test_header_mutations_of_a_message_without_headers() -> None:
    """A message without header lists gives no lists (the snapshot's default: four empty
    ones), a new dict each time; one with any gives all four."""
    found = Problems()
    first = header_mutations(rc.Route(), "r", found)
    second = header_mutations(rc.Route(), "r", found)
    assert first == {} == second
    assert first is not second
    out = {"name": "r"}
    assert with_header_mutations(out, rc.Route(), "r", found) == {"name": "r"}
    one = rc.Route(response_headers_to_remove=["x-b"])
    expected = {**NO_HEADERS, "response_headers_to_remove": ["x-b"]}
    assert header_mutations(one, "r", found) == expected
    assert with_header_mutations({"name": "r"}, one, "r", found) == {
        "name": "r",
        "headers": expected,
    }
    assert not found

"""The contract checker itself: it must catch wrong values of the snapshot's fields (here the
newest ones), or the translation tests that lean on it would prove nothing."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from .builders import base, hcm, listener, load
from .snapshot_contract import snapshot_errors


def _full_snapshot() -> dict[str, Any]:
    b = base()
    listener(b)["stat_prefix"] = "edge"
    hcm(b)["strip_matching_host_port"] = True
    hcm(b)["http_protocol_options"] = {"accept_http_10": True, "default_host_for_http_10": "a"}
    return load(b).snapshot


def test_a_translated_snapshot_with_every_new_field_passes() -> None:
    snapshot = _full_snapshot()
    assert snapshot_errors(snapshot) == []
    manager = snapshot["listeners"][0]["filter_chains"][0]["filter"]["http_connection_manager"]
    assert manager["strip_port_mode"] == "matching"
    assert snapshot["listeners"][0]["stat_prefix"] == "edge"


@pytest.mark.parametrize(
    ("where", "key", "value", "error"),
    [
        ("root", "local_address", None, "snapshot.local_address: expected a string, got None"),
        ("listener", "stat_prefix", 7, "snapshot.listeners[0].stat_prefix: expected a string"),
        ("hcm", "strip_port_mode", "both", "'both' is not a unit variant of StripPortMode"),
        ("hcm", "accept_http_10", "yes", "accept_http_10: expected a bool, got 'yes'"),
        ("hcm", "default_host_for_http_10", 1, "default_host_for_http_10: expected a string"),
        ("hcm", "strip_any_host_port", True, "strip_any_host_port: unknown field"),
    ],
)
def test_wrong_values_of_the_new_fields_are_caught(
    where: str, key: str, value: object, error: str
) -> None:
    snapshot = copy.deepcopy(_full_snapshot())
    targets = {
        "root": snapshot,
        "listener": snapshot["listeners"][0],
        "hcm": snapshot["listeners"][0]["filter_chains"][0]["filter"]["http_connection_manager"],
    }
    targets[where][key] = value
    (found,) = snapshot_errors(snapshot)
    assert error in found

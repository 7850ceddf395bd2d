"""CONNECT configuration into the snapshot: `connect_matcher`, `upgrade_configs` CONNECT on the
connection manager and routes, the route's `connect_config`, and `allow_connect`."""

from __future__ import annotations

from typing import Any

from .builders import base, hcm, load, problems, route, snapshot_route


def _hcm_snapshot(b: dict[str, Any]) -> dict[str, Any]:
    chain = load(b).snapshot["listeners"][0]["filter_chains"][0]
    result: dict[str, Any] = chain["filter"]["http_connection_manager"]
    return result


def test_connect_matcher_and_a_terminating_route() -> None:
    b = base()
    hcm(b)["upgrade_configs"] = [{"upgrade_type": "CONNECT"}]
    route(b)["match"] = {"connect_matcher": {}}
    route(b)["route"]["upgrade_configs"] = [{"upgrade_type": "CONNECT", "connect_config": {}}]
    r = snapshot_route(b)
    assert r["match"]["path"] == {"connect_matcher": {}}
    assert r["action"]["route"]["upgrade_configs"] == [
        {"upgrade_type": "connect", "enabled": True, "connect_config": {}}
    ]
    assert _hcm_snapshot(b)["upgrade_configs"] == [{"upgrade_type": "connect", "enabled": True}]


def test_a_forwarding_connect_route_has_no_connect_config() -> None:
    b = base()
    route(b)["route"]["upgrade_configs"] = [{"upgrade_type": "CONNECT", "enabled": False}]
    assert snapshot_route(b)["action"]["route"]["upgrade_configs"] == [
        {"upgrade_type": "connect", "enabled": False}
    ]


def test_allow_post_is_refused_by_its_path() -> None:
    b = base()
    route(b)["route"]["upgrade_configs"] = [
        {"upgrade_type": "CONNECT", "connect_config": {"allow_post": True}}
    ]
    found = problems(b)
    assert any(
        "route.upgrade_configs[0].connect_config.allow_post" in p and "not supported" in p
        for p in found
    ), found


def test_connect_config_needs_a_connect_entry() -> None:
    b = base()
    route(b)["route"]["upgrade_configs"] = [{"upgrade_type": "websocket", "connect_config": {}}]
    found = problems(b)
    assert any("route.upgrade_configs[0].connect_config" in p for p in found), found


def test_allow_connect_reaches_the_http2_options() -> None:
    b = base()
    hcm(b)["http2_protocol_options"] = {"allow_connect": True}
    assert _hcm_snapshot(b)["http2"]["allow_connect"] is True
    b = base()
    hcm(b)["http2_protocol_options"] = {}
    assert "allow_connect" not in _hcm_snapshot(b)["http2"]

"""Envoy's HTTP/2 flood limits in config: accepted on a connection manager (PGV rules, left
out of the snapshot at Envoy's defaults), refused on a cluster naming the field's path."""

from __future__ import annotations

from typing import Any

from .builders import CLUSTER, HCM, UPSTREAM_OPTIONS, base, cluster, hcm, load, problems

FLOOD_MSG = (
    "flood limits are not supported on upstream connections yet "
    "(meshcore enforces them on downstream connections only)"
)


def _http2_snapshot(b: dict[str, Any]) -> dict[str, Any]:
    listener = load(b).snapshot["listeners"][0]
    manager = listener["filter_chains"][0]["filter"]["http_connection_manager"]
    options: dict[str, Any] = manager["http2"]
    return options


def test_flood_limits_reach_the_snapshot() -> None:
    b = base()
    hcm(b)["http2_protocol_options"] = {
        "max_outbound_frames": 5,
        "max_outbound_control_frames": 6,
        "max_consecutive_inbound_frames_with_empty_payload": 0,
        "max_inbound_priority_frames_per_stream": 0,
        "max_inbound_window_update_frames_per_data_frame_sent": 3,
    }
    options = _http2_snapshot(b)
    assert options["max_outbound_frames"] == 5
    assert options["max_outbound_control_frames"] == 6
    assert options["max_consecutive_inbound_frames_with_empty_payload"] == 0
    assert options["max_inbound_priority_frames_per_stream"] == 0
    assert options["max_inbound_window_update_frames_per_data_frame_sent"] == 3


def test_flood_limits_are_left_out_at_their_defaults() -> None:
    b = base()
    hcm(b)["http2_protocol_options"] = {}
    options = _http2_snapshot(b)
    assert not any(name.startswith("max_outbound") for name in options)
    assert "max_inbound_priority_frames_per_stream" not in options


def test_pgv_rules_name_the_field() -> None:
    b = base()
    hcm(b)["http2_protocol_options"] = {
        "max_outbound_frames": 0,
        "max_outbound_control_frames": 0,
        "max_inbound_window_update_frames_per_data_frame_sent": 0,
    }
    found = problems(b)
    for name in (
        "max_outbound_frames",
        "max_outbound_control_frames",
        "max_inbound_window_update_frames_per_data_frame_sent",
    ):
        assert any(p.startswith(f"{HCM}.http2_protocol_options.{name}") for p in found), found
    assert len(found) == 3, found


def test_flood_limits_on_a_cluster_are_refused_with_their_path() -> None:
    b = base()
    cluster(b)["http2_protocol_options"] = {"max_outbound_control_frames": 10}
    assert problems(b) == [
        f"{CLUSTER}.http2_protocol_options.max_outbound_control_frames: {FLOOD_MSG}"
    ]
    b = base()
    cluster(b)["typed_extension_protocol_options"] = {
        UPSTREAM_OPTIONS: {
            "@type": f"type.googleapis.com/{UPSTREAM_OPTIONS}",
            "explicit_http_config": {
                "http2_protocol_options": {"max_inbound_priority_frames_per_stream": 1}
            },
        }
    }
    assert problems(b) == [
        f"{CLUSTER}.typed_extension_protocol_options[{UPSTREAM_OPTIONS}].explicit_http_config"
        f".http2_protocol_options.max_inbound_priority_frames_per_stream: {FLOOD_MSG}"
    ]

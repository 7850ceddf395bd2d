"""Envoy's HTTP/2 flood limits in config: accepted on a connection manager and on a cluster's
HTTP/2 options (all three forms), PGV rules naming the field's path, left out of the snapshot
at Envoy's defaults."""

from __future__ import annotations

from typing import Any

from .builders import CLUSTER, HCM, UPSTREAM_OPTIONS, base, cluster, hcm, load, problems


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


def _cluster_http2(b: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = load(b).snapshot["clusters"][0]["http2"]
    return options


def _protocol_options(kind: str, http2: dict[str, Any]) -> dict[str, Any]:
    return {
        UPSTREAM_OPTIONS: {
            "@type": f"type.googleapis.com/{UPSTREAM_OPTIONS}",
            kind: {"http2_protocol_options": http2}
            if kind != "auto_config"
            else {"http_protocol_options": {}, "http2_protocol_options": http2},
        }
    }


def test_flood_limits_on_a_cluster_reach_the_snapshot() -> None:
    b = base()
    cluster(b)["http2_protocol_options"] = {"max_outbound_control_frames": 10}
    assert _cluster_http2(b)["max_outbound_control_frames"] == 10
    for kind in ("explicit_http_config", "use_downstream_protocol_config", "auto_config"):
        b = base()
        http2 = {
            "max_inbound_priority_frames_per_stream": 1,
            "max_consecutive_inbound_frames_with_empty_payload": 0,
            "max_outbound_frames": 7,
        }
        if kind == "auto_config":
            # auto_config speaks HTTP/2 only over TLS (ALPN).
            cluster(b)["transport_socket"] = {
                "name": "envoy.transport_sockets.tls",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
                    "UpstreamTlsContext"
                },
            }
        cluster(b)["typed_extension_protocol_options"] = _protocol_options(kind, http2)
        options = _cluster_http2(b)
        assert options["max_inbound_priority_frames_per_stream"] == 1, kind
        assert options["max_consecutive_inbound_frames_with_empty_payload"] == 0, kind
        assert options["max_outbound_frames"] == 7, kind
        assert "max_outbound_control_frames" not in options, kind


def test_pgv_rules_on_a_cluster_name_the_field() -> None:
    b = base()
    cluster(b)["typed_extension_protocol_options"] = _protocol_options(
        "explicit_http_config", {"max_outbound_frames": 0}
    )
    found = problems(b)
    prefix = (
        f"{CLUSTER}.typed_extension_protocol_options[{UPSTREAM_OPTIONS}].explicit_http_config"
        ".http2_protocol_options.max_outbound_frames"
    )
    assert len(found) == 1 and found[0].startswith(prefix), found

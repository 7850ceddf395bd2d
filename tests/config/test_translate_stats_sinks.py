"""`stats_sinks` (statsd over UDP) and `stats_flush_interval` into the `MeshConfig`, and
problems naming the field's path."""

from __future__ import annotations

from typing import Any

import pytest
from meshcore.sinks.target import StatsdTarget

from .builders import base, load, problems

STATSD = "type.googleapis.com/envoy.config.metrics.v3.StatsdSink"
DOG = "type.googleapis.com/envoy.config.metrics.v3.DogStatsdSink"


def with_sink(typed_config: dict[str, Any]) -> dict[str, Any]:
    b = base()
    b["stats_sinks"] = [{"name": "envoy.stat_sinks.statsd", "typed_config": typed_config}]
    return b


def udp(address: str = "127.0.0.1", port: int = 8125) -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}


def test_statsd_sink_with_defaults() -> None:
    config = load(with_sink({"@type": STATSD, "address": udp()}))
    assert config.stats_sinks == (StatsdTarget("127.0.0.1", 8125, "envoy"),)
    assert config.stats_flush_interval_s == 5.0


def test_prefix_and_flush_interval() -> None:
    b = with_sink({"@type": STATSD, "address": udp("::1", 9125), "prefix": "mesh"})
    b["stats_flush_interval"] = "0.25s"
    config = load(b)
    assert config.stats_sinks == (StatsdTarget("::1", 9125, "mesh"),)
    assert config.stats_flush_interval_s == 0.25


def test_no_sinks() -> None:
    assert load(base()).stats_sinks == ()


@pytest.mark.parametrize(
    ("typed_config", "expected"),
    [
        (
            {"@type": STATSD, "tcp_cluster_name": "statsd"},
            "stats_sinks[0].typed_config.tcp_cluster_name: tcp_cluster_name is not supported yet",
        ),
        (
            {"@type": STATSD, "address": udp("statsd.local")},
            "stats_sinks[0].typed_config.address.socket_address.address: malformed IP "
            "address: 'statsd.local'",
        ),
        (
            {"@type": STATSD, "address": udp(port=0)},
            "stats_sinks[0].typed_config.address.socket_address.port_value: must be set",
        ),
        (
            {"@type": STATSD},
            "stats_sinks[0].typed_config: one of address or tcp_cluster_name is required",
        ),
    ],
)
def test_problems_name_the_field(typed_config: dict[str, Any], expected: str) -> None:
    found = problems(with_sink(typed_config))
    assert expected in found, found


def test_other_sink_types_are_refused() -> None:
    found = problems(with_sink({"@type": DOG, "address": udp()}))
    assert any(p.startswith("stats_sinks[0].typed_config") for p in found), found

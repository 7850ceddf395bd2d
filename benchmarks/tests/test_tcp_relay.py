"""The TCP relay benchmark's table (medians, the ratio to direct, the CPU columns), its
bootstraps and the proxy commands."""

from pathlib import Path

import pytest

from benchmarks import tcp_relay
from benchmarks.tcp_relay import Run, report, tcp_bootstrap


def test_report_medians_ratio_and_cpu_columns():
    direct = [Run(2000, 0, 3, 100, 0), Run(3000, 0, 1, 100, 0), Run(2500, 0, 2, 99, 0)]
    relay = [Run(1000, 300, 50, 90, 4), Run(2000, 280, 60, 95, 6), Run(1500, 310, None, 97, 5)]
    lines = report({"direct": direct, "meshcore": relay}).splitlines()
    assert lines[0].startswith("| path | MiB/s | of direct | proxy CPU per MiB |")
    assert lines[2] == "| direct | 2500 | 1.00 | – | 2% / 100% | – |"
    # CPU 0's busy time is the median of the runs that had one (55 of 50 and 60).
    assert lines[3] == "| meshcore | 1500 | 0.60 | 300 µs | 55% / 95% | 5 ms/s |"


def test_report_without_direct_or_cpu_figures():
    lines = report({"envoy": [Run(800, 400, None, None, 0)]}).splitlines()
    assert lines[2] == "| envoy | 800 | – | 400 µs | ? / ? | 0 ms/s |"


def test_bootstrap_relays_the_listener_to_the_sink():
    b = tcp_bootstrap(1000, 1001, 1002)
    listener = b["static_resources"]["listeners"][0]  # type: ignore[index]
    assert listener["address"]["socket_address"]["port_value"] == 1000
    cluster = b["static_resources"]["clusters"][0]  # type: ignore[index]
    ep = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert ep["address"]["socket_address"]["port_value"] == 1002


def test_meshcore_b_runs_the_given_interpreter_and_needs_one(monkeypatch):
    config = Path("/tmp/x.yaml")
    monkeypatch.setattr(tcp_relay, "MESHCORE_B", {})
    with pytest.raises(SystemExit, match="--meshcore-b PYTHON"):
        tcp_relay.command("meshcore-b", config)
    monkeypatch.setattr(tcp_relay, "MESHCORE_B", {"python": "/opt/b/bin/python"})
    cmd = tcp_relay.command("meshcore-b", config)
    assert cmd[:3] == ["/opt/b/bin/python", "-m", "meshcore"]
    assert tcp_relay.command("meshcore", config)[0] != "/opt/b/bin/python"


def test_bootstrap_sink_across_the_link():
    b = tcp_bootstrap(1000, 1001, 5201, "10.201.0.2")
    listener = b["static_resources"]["listeners"][0]  # type: ignore[index]
    assert listener["address"]["socket_address"]["address"] == "127.0.0.1"
    cluster = b["static_resources"]["clusters"][0]  # type: ignore[index]
    ep = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert ep["address"]["socket_address"] == {"address": "10.201.0.2", "port_value": 5201}

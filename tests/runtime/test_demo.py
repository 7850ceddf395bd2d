"""`meshcore demo`: the embedded config, its port substitution and printed instructions."""

from __future__ import annotations

import subprocess

import yaml
from meshcore import demo
from meshcore.app import ReadyInfo

from tests.support.envoy import envoy_binary


def ports_of(doc: dict) -> dict[str, int]:
    static = doc["static_resources"]
    out = {"admin": doc["admin"]["address"]["socket_address"]["port_value"]}
    for lst in static["listeners"]:
        out[lst["name"]] = lst["address"]["socket_address"]["port_value"]
    for c in static["clusters"]:
        (locality,) = c["load_assignment"]["endpoints"]
        (lb,) = locality["lb_endpoints"]
        out[c["name"]] = lb["endpoint"]["address"]["socket_address"]["port_value"]
    return out


def test_template_is_the_documented_demo():
    doc = yaml.safe_load(demo.template())
    assert ports_of(doc) == {
        "admin": 9901,
        "main": 10000,
        "service_v1_upstream": 10001,
        "service_v2_upstream": 10002,
        "service_v1": 10001,
        "service_v2": 10002,
    }
    routes = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"
    ]["route_config"]["virtual_hosts"][0]["routes"]
    assert routes[0]["match"]["headers"] == [
        {"name": "x-canary", "string_match": {"exact": "true"}}
    ]
    assert routes[0]["route"] == {"cluster": "service_v2"}
    assert routes[1]["route"]["weighted_clusters"]["clusters"] == [
        {"name": "service_v1", "weight": 90},
        {"name": "service_v2", "weight": 10},
    ]


def test_demo_yaml_moves_every_port_consistently():
    text = demo.demo_yaml(18000, 0, {"service_v1_upstream": 18101, "service_v2_upstream": 18102})
    assert ports_of(yaml.safe_load(text)) == {
        "admin": 0,
        "main": 18000,
        "service_v1_upstream": 18101,
        "service_v2_upstream": 18102,
        "service_v1": 18101,
        "service_v2": 18102,
    }


def test_free_ports_are_distinct_and_bindable():
    ports = {demo.free_port() for _ in range(3)}
    assert len(ports) == 3
    assert all(1024 <= p <= 65535 for p in ports)


def test_instructions_use_the_bound_addresses():
    ready = ReadyInfo(
        [
            ("main", "127.0.0.1", 10000),
            ("service_v1_upstream", "127.0.0.1", 41001),
            ("service_v2_upstream", "127.0.0.1", 41002),
        ],
        ("127.0.0.1", 9901),
    )
    text = demo.instructions(ready)
    assert "  for i in $(seq 20); do curl -s 127.0.0.1:10000/; done" in text.splitlines()
    assert "  curl -s -H 'x-canary: true' 127.0.0.1:10000/" in text.splitlines()
    assert "  curl -s 127.0.0.1:9901/stats | grep upstream_rq" in text.splitlines()
    assert "service_v2 is served by the engine itself on 127.0.0.1:41002." in text


def test_demo_config_is_valid_for_real_envoy(tmp_path):
    path = tmp_path / "demo.yaml"
    path.write_text(
        demo.demo_yaml(18000, 0, {"service_v1_upstream": 18101, "service_v2_upstream": 18102})
    )
    command = [envoy_binary(), "--mode", "validate", "-c", str(path), "--disable-hot-restart"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"configuration '{path}' OK" in out.stdout


def test_demo_config_translates_with_meshcore_config():
    from meshcore.config import load_text

    cfg = load_text(
        demo.demo_yaml(18000, 0, {"service_v1_upstream": 18101, "service_v2_upstream": 18102})
    )
    listeners = {lst["name"]: lst["port"] for lst in cfg.snapshot["listeners"]}
    assert listeners == {"main": 18000, "service_v1_upstream": 18101, "service_v2_upstream": 18102}
    clusters = {c["name"]: [e["port"] for e in c["endpoints"]] for c in cfg.snapshot["clusters"]}
    assert clusters == {"service_v1": [18101], "service_v2": [18102]}
    assert cfg.admin is not None and (cfg.admin.address, cfg.admin.port) == ("127.0.0.1", 0)

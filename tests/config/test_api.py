"""The public API of meshcore.config: load_file, load_text, validate_file, errors, model."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest
import yaml
from meshcore.config import (
    AdminConfig,
    ConfigError,
    MeshConfig,
    Problem,
    load_file,
    load_text,
    validate_file,
)

from .builders import CLUSTER, HCM, LISTENER, ROUTE, base, cluster, hcm, listener, route
from .snapshot_contract import snapshot_errors

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "front-proxy.yaml"


def test_problem_renders_as_path_colon_message() -> None:
    problem = Problem("static_resources.clusters[2].lb_policy", "MAGLEV is not supported")
    assert str(problem) == "static_resources.clusters[2].lb_policy: MAGLEV is not supported"


def test_config_error_lists_one_problem_per_line() -> None:
    problems = [Problem("a.b", "first"), Problem("c[0]", "second")]
    error = ConfigError(problems)
    assert error.problems == problems
    assert str(error) == "a.b: first\nc[0]: second"


def test_example_front_proxy_loads() -> None:
    config = load_file(EXAMPLE)
    assert snapshot_errors(config.snapshot) == []
    assert config.admin == AdminConfig("127.0.0.1", 9901)
    assert (config.node_id, config.node_cluster) == ("front-proxy-1", "front-proxy")
    assert config.dns_clusters == ()
    (edge,) = config.snapshot["listeners"]
    assert (edge["name"], edge["address"], edge["port"]) == ("edge", "0.0.0.0", 10000)
    routes = edge["filter_chains"][0]["filter"]["http_connection_manager"]["route_config"][
        "virtual_hosts"
    ][0]
    assert routes["domains"] == ["*"]
    by_name = {r["name"]: r for r in routes["routes"]}
    assert by_name["healthz"]["action"] == {"direct_response": {"status": 200, "body": "ok\n"}}
    assert by_name["old"]["action"]["redirect"]["path_redirect"] == "/new"
    assert by_name["v2-api"]["action"]["route"]["prefix_rewrite"] == "/"
    assert by_name["canary"]["match"]["headers"][0]["name"] == "x-canary"
    split = by_name["split"]["action"]["route"]["target"]["weighted_clusters"]
    assert [(c["name"], c["weight"]) for c in split] == [("service_v1", 90), ("service_v2", 10)]
    ports = {c["name"]: c["endpoints"][0]["port"] for c in config.snapshot["clusters"]}
    assert ports == {"service_v1": 8081, "service_v2": 8082}


def test_snapshot_bytes_is_the_snapshot_as_json() -> None:
    config = load_file(EXAMPLE)
    assert config.snapshot_bytes() == orjson.dumps(config.snapshot)
    assert json.loads(config.snapshot_bytes()) == config.snapshot


def test_bootstrap_keeps_proto_field_names_for_config_dump() -> None:
    config = load_file(EXAMPLE)
    listener_json = config.bootstrap["static_resources"]["listeners"][0]
    typed = listener_json["filter_chains"][0]["filters"][0]["typed_config"]
    assert typed["@type"].endswith("HttpConnectionManager")
    assert typed["stat_prefix"] == "edge"
    assert config.bootstrap["static_resources"]["clusters"][0]["connect_timeout"] == "1s"


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml", ".conf"])
def test_load_file_reads_json_and_yaml_by_suffix(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"envoy{suffix}"
    text = json.dumps(base()) if suffix in (".json", ".conf") else yaml.safe_dump(base())
    path.write_text(text)
    config = load_file(path)
    assert config.snapshot["listeners"][0]["name"] == "ingress"


def test_json_file_must_be_json(tmp_path: Path) -> None:
    path = tmp_path / "envoy.json"
    path.write_text("admin: {}\n")
    problems = validate_file(path)
    assert len(problems) == 1
    assert problems[0].path == str(path)
    assert problems[0].message.startswith("line 1, column 1")


def test_load_text_yaml_and_json() -> None:
    assert load_text(yaml.safe_dump(base())).admin == AdminConfig("127.0.0.1", 9901)
    assert load_text(json.dumps(base()), fmt="json").admin == AdminConfig("127.0.0.1", 9901)


def test_load_text_raises_config_error_with_problems() -> None:
    b = base()
    cluster(b)["lb_policy"] = "CLUSTER_PROVIDED"
    with pytest.raises(ConfigError) as caught:
        load_text(json.dumps(b), fmt="json")
    assert [str(p) for p in caught.value.problems] == [
        f"{CLUSTER}.lb_policy: CLUSTER_PROVIDED is not supported"
    ]


def test_validate_file_is_empty_for_a_valid_file() -> None:
    assert validate_file(EXAMPLE) == []


def test_validate_file_reports_a_missing_file_without_raising(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    problems = validate_file(missing)
    assert problems == [Problem(str(missing), "cannot read the file: No such file or directory")]
    with pytest.raises(ConfigError):
        load_file(missing)


def test_all_problems_are_collected_at_once(tmp_path: Path) -> None:
    b = base()
    cluster(b)["conect_timeout"] = "1s"  # schema
    listener(b)["address"]["socket_address"]["port_value"] = 70000  # PGV
    cluster(b)["lb_policy"] = "CLUSTER_PROVIDED"  # unsupported
    route(b)["route"]["cluster"] = "missing"  # translation
    hcm(b)["http2_protocol_options"] = {"hpack_table_size": 5}  # unsupported (later)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(b))
    assert sorted(str(p) for p in validate_file(path)) == sorted(
        [
            f'{CLUSTER}.conect_timeout: unknown field (did you mean "connect_timeout"?)',
            f"{LISTENER}.address.socket_address.port_value: 70000 must be at most 65535",
            f"{CLUSTER}.lb_policy: CLUSTER_PROVIDED is not supported",
            f"{ROUTE}.route.cluster: unknown cluster 'missing' (not in static_resources.clusters)",
            f"{HCM}.http2_protocol_options.hpack_table_size: hpack_table_size is not supported yet",
        ]
    )


def test_mesh_config_is_frozen() -> None:
    config = load_file(EXAMPLE)
    assert isinstance(config, MeshConfig)
    with pytest.raises(AttributeError):
        config.node_id = "other"  # type: ignore[misc]


def test_typed_config_modules_are_imported_on_demand(tmp_path: Path) -> None:
    """Loading a config imports the `_pb2` modules it needs, not all of xds-protos."""
    script = textwrap.dedent(
        f"""
        import sys
        from meshcore.config import load_file
        load_file({str(EXAMPLE)!r})
        pb2 = [m for m in sys.modules if m.endswith("_pb2")]
        print(len(pb2))
        print("cors" in " ".join(pb2), "tcp_proxy" in " ".join(pb2))
        print("http_connection_manager_pb2" in " ".join(pb2))
        """
    )
    env_path = [p for p in sys.path if p]
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": ":".join(env_path), "PATH": "/usr/bin:/bin"},
    )
    count, unrelated, needed = result.stdout.split("\n")[:3]
    assert int(count) < 200  # xds-protos has ~600
    assert unrelated == "False False"
    assert needed == "True"

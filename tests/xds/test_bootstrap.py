"""`dynamic_resources` in the bootstrap: what loads into `DynamicConfig`, and each mistake
named by its path; loading it never imports gRPC."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from meshcore.config import ConfigError

from .builders import xds_bootstrap
from .harness import load_bootstrap

ADS = "dynamic_resources.ads_config"


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_bootstrap(data)
    return [str(p) for p in info.value.problems]


def test_a_dynamic_bootstrap_loads() -> None:
    data = xds_bootstrap(18000, node="n1", delta=True, initial_fetch_timeout="2.5s")
    data["dynamic_resources"]["ads_config"]["set_node_on_first_message_only"] = True
    config = load_bootstrap(data)
    dynamic = config.dynamic
    assert dynamic is not None and dynamic.ads is not None
    assert dynamic.ads.cluster == "xds_cluster"
    assert dynamic.ads.target == "ipv4:127.0.0.1:18000"
    assert dynamic.ads.delta and dynamic.ads.http2 and dynamic.ads.node_on_first_message_only
    assert dynamic.lds is not None and dynamic.lds.file is None
    assert dynamic.lds.initial_fetch_timeout_s == 2.5
    assert dynamic.cds is not None and dynamic.cds.path == "dynamic_resources.cds_config"
    assert b"n1" in dynamic.node
    # The xDS cluster is in the snapshot like any static cluster.
    assert [c["name"] for c in config.snapshot["clusters"]] == ["xds_cluster"]


def test_a_dns_xds_cluster_becomes_a_dns_target() -> None:
    data = xds_bootstrap(18000, node="n1")
    xds = data["static_resources"]["clusters"][0]
    xds["type"] = "STRICT_DNS"
    xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
        "socket_address"
    ]["address"] = "xds.internal"
    config = load_bootstrap(data)
    assert config.dynamic.ads.target == "dns:///xds.internal:18000"


def test_watched_files_for_lds_and_cds() -> None:
    files = {"path_config_source": {"path": "/etc/lds.yaml", "watched_directory": {"path": "/etc"}}}
    data = xds_bootstrap(18000, node="n", lds=files, cds={"path_config_source": {"path": "/c"}})
    del data["dynamic_resources"]["ads_config"]
    data["static_resources"]["clusters"][0].pop("typed_extension_protocol_options")
    dynamic = load_bootstrap(data).dynamic
    assert dynamic.ads is None
    assert (dynamic.lds.file, dynamic.lds.watched_directory) == ("/etc/lds.yaml", "/etc")
    assert dynamic.cds.file == "/c"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["dynamic_resources"]["ads_config"].update(api_type="REST"),
            f"{ADS}.api_type: REST is not supported",
        ),
        (
            lambda d: d["dynamic_resources"]["ads_config"]["grpc_services"][0].update(
                envoy_grpc={"cluster_name": "nope"}
            ),
            f"{ADS}.grpc_services[0].envoy_grpc.cluster_name: unknown cluster 'nope' (the xDS "
            "cluster must be static)",
        ),
        (
            lambda d: d["dynamic_resources"]["ads_config"]["grpc_services"].append(
                {"envoy_grpc": {"cluster_name": "xds_cluster"}}
            ),
            f"{ADS}.grpc_services: exactly one gRPC service is supported, found 2",
        ),
        (
            lambda d: d["dynamic_resources"]["ads_config"]["grpc_services"].__setitem__(
                0, {"google_grpc": {"target_uri": "x:1", "stat_prefix": "x"}}
            ),
            f"{ADS}.grpc_services[0].google_grpc: google_grpc is not supported yet",
        ),
        (
            lambda d: d["dynamic_resources"].pop("ads_config"),
            "dynamic_resources.lds_config.ads: needs dynamic_resources.ads_config",
        ),
        (
            lambda d: d["dynamic_resources"]["cds_config"].update(resource_api_version="V2"),
            "dynamic_resources.cds_config.resource_api_version: V2 is not supported",
        ),
        (
            lambda d: d["dynamic_resources"].update(
                cds_config={"api_config_source": {"api_type": "GRPC"}}
            ),
            "dynamic_resources.cds_config.api_config_source: is supported for SDS "
            "(sds_config) only yet; use ads",
        ),
    ],
)
def test_mistakes_are_named_by_path(change, expected) -> None:
    data = xds_bootstrap(18000, node="n")
    change(data)
    assert expected in problems(data)


def test_loading_a_dynamic_bootstrap_does_not_import_grpc(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump(xds_bootstrap(18000, node="n")))
    code = (
        "import sys; from meshcore.config import load_file; "
        f"assert load_file({str(path)!r}).dynamic is not None; print('grpc' in sys.modules)"
    )
    src = str(Path(__file__).resolve().parents[2] / "python")
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": src},
    )
    assert out.stdout.strip() == "False"

"""The engine snapshots the Rust snapshot fuzzer (`fastpath/tests/snapshot_fuzz.rs`) starts
from: real bootstraps (the demo, the example front proxy, the benchmark's feature-rich one and
one with every listener-side feature) translated by meshcore's own config path, so the
fuzzer mutates what users really produce. `python -m tests.config.snapshot_corpus` rewrites
`fastpath/tests/corpus/`; `test_snapshot_corpus.py` fails when the files are stale."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
from meshcore.config import MeshConfig, load_file, load_text

from benchmarks.bootstrap import with_recovery_features
from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fastpath" / "tests" / "corpus"
FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
NET_RL = "type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit"


def _edge() -> dict[str, Any]:
    """Listener-side features: routing kinds, header mutations, access logs, normalization,
    a tcp_proxy listener with weighted clusters and a connection rate limit."""
    routes = [
        route({"prefix": "/r"}, redirect={"path_redirect": "/x", "response_code": "SEE_OTHER"}),
        route({"path": "/d"}, direct_response={"status": 418, "body": {"inline_string": "t"}}),
        route(
            {
                "safe_regex": {"regex": "/w/[0-9]+"},
                "headers": [{"name": "x-a", "present_match": True}],
            },
            weighted_clusters={
                "clusters": [{"name": "a", "weight": 3}, {"name": "b", "weight": 1}]
            },
        ),
        route(
            {"prefix": "/", "query_parameters": [{"name": "q", "string_match": {"exact": "1"}}]},
            cluster="b",
            hash_policy=[{"header": {"header_name": "x-user"}}],
            prefix_rewrite="/p",
        ),
        route({"prefix": "/"}, cluster="a", timeout="3s"),
    ]
    vh = virtual_host(
        "edge",
        ["example.com", "*.example.com"],
        routes,
        request_headers_to_add=[{"header": {"key": "x-vh", "value": "1"}}],
    )
    log = {
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": FILE_LOG,
            "path": "/dev/null",
            "log_format": {
                "json_format": {"s": "%RESPONSE_CODE%", "p": "%REQ(:PATH)%", "d": "%DURATION%"}
            },
        },
        "filter": {
            "status_code_filter": {
                "comparison": {"op": "GE", "value": {"default_value": 500, "runtime_key": "k"}}
            }
        },
    }
    http = http_listener(
        "edge",
        0,
        route_config([vh, virtual_host("rest", ["*"], [route({"prefix": "/"}, cluster="a")])]),
        access_log=[log],
        access_log_options={
            "flush_access_log_on_new_request": True,
            "access_log_flush_interval": "10s",
        },
        tracing={
            "random_sampling": {"value": 25},
            "custom_tags": [
                {"tag": "t", "literal": {"value": "v"}},
                {"tag": "h", "request_header": {"name": "x-h", "default_value": "-"}},
            ],
            "provider": {
                "name": "envoy.tracers.zipkin",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
                    "collector_cluster": "a",
                    "collector_endpoint": "/api/v2/spans",
                    "collector_endpoint_version": "HTTP_JSON",
                },
            },
        },
        normalize_path=True,
        merge_slashes=True,
        path_with_escaped_slashes_action="UNESCAPE_AND_FORWARD",
        use_remote_address=True,
        xff_num_trusted_hops=1,
        http2_protocol_options={"max_outbound_control_frames": 500, "max_outbound_frames": 9},
    )
    tcp = {
        "name": "tcp",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "access_log": [log],
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.local_ratelimit",
                        "typed_config": {
                            "@type": NET_RL,
                            "stat_prefix": "rl",
                            "token_bucket": {"max_tokens": 5, "fill_interval": "1s"},
                        },
                    },
                    {
                        "name": "envoy.filters.network.tcp_proxy",
                        "typed_config": {
                            "@type": TCP_PROXY,
                            "stat_prefix": "tcp",
                            "weighted_clusters": {
                                "clusters": [{"name": "a", "weight": 1}, {"name": "b", "weight": 2}]
                            },
                            "idle_timeout": "10s",
                            "max_connect_attempts": 2,
                            "access_log": [log],
                            "access_log_options": {
                                "access_log_flush_interval": "60s",
                                "flush_access_log_on_connected": True,
                            },
                        },
                    },
                ]
            }
        ],
    }
    clusters = [
        static_cluster("a", [("127.0.0.1", 1), ("127.0.0.1", 2)]),
        static_cluster("b", [("127.0.0.1", 3)], alt_stat_name="b_stats"),
    ]
    clusters[0]["lb_policy"] = "RING_HASH"
    clusters[1]["lb_policy"] = "LEAST_REQUEST"
    return bootstrap([http, tcp], clusters)


def _port_zero(raw: dict[str, Any]) -> dict[str, Any]:
    for listener in raw.get("static_resources", {}).get("listeners", []):
        listener["address"]["socket_address"]["port_value"] = 0
    raw.pop("admin", None)
    return raw


def _load(raw: dict[str, Any]) -> MeshConfig:
    return load_text(orjson.dumps(raw).decode(), fmt="json")


def snapshots() -> dict[str, bytes]:
    """Corpus file name → snapshot JSON (pretty, stable)."""
    configs = {
        "demo": load_file(ROOT / "python" / "meshcore" / "demo.yaml"),
        "front_proxy": load_file(ROOT / "examples" / "front-proxy.yaml"),
        "recovery": _load(_port_zero(with_recovery_features(0, 0, 1))),
        "edge": _load(_edge()),
    }
    return {
        f"{name}.json": orjson.dumps(
            orjson.loads(cfg.snapshot_bytes()), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
        )
        + b"\n"
        for name, cfg in configs.items()
    }


def main() -> int:
    CORPUS.mkdir(parents=True, exist_ok=True)
    for name, data in snapshots().items():
        (CORPUS / name).write_bytes(data)
        print(f"wrote {CORPUS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

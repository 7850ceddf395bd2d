"""The configurations every target runs: same routes, upstream keep-alive, one worker."""

import json
from pathlib import Path

import pytest

from benchmarks import backend, bootstrap, proxy_confs, scenarios, targets


def test_nginx_proxy_keeps_upstream_connections_alive():
    conf = proxy_confs.nginx_conf(Path("/tmp/w"), 8080, 9090, 20000)
    assert "worker_processes 1;" in conf
    assert "server 127.0.0.1:9090;" in conf
    assert f"keepalive {proxy_confs.NGINX_UPSTREAM_KEEPALIVE};" in conf
    assert (
        max(s.connections for s in scenarios.ALL if s.kind == "wrk")
        <= proxy_confs.NGINX_UPSTREAM_KEEPALIVE
    )
    assert "proxy_http_version 1.1;" in conf
    assert 'proxy_set_header Connection "";' in conf
    assert "listen 127.0.0.1:8080" in conf
    assert "worker_rlimit_nofile 20000;" in conf
    assert "proxy_max_temp_file_size 0;" in conf


def test_haproxy_one_thread_and_reuse():
    conf = proxy_confs.haproxy_conf(8080, 9090, 20000)
    assert "nbthread 1" in conf
    assert "http-reuse always" in conf
    assert "bind 127.0.0.1:8080" in conf
    assert "server backend 127.0.0.1:9090" in conf
    assert "mode http" in conf


def test_bootstrap_routes_every_path_to_the_backend():
    b = bootstrap.bootstrap(8080, 9901, 9090)
    listener = b["static_resources"]["listeners"][0]  # type: ignore[index]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    route = hcm["route_config"]["virtual_hosts"][0]["routes"][0]
    assert route == {"match": {"prefix": "/"}, "route": {"cluster": "backend"}}
    cluster = b["static_resources"]["clusters"][0]  # type: ignore[index]
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"]["port_value"] == 9090
    assert listener["address"]["socket_address"]["port_value"] == 8080


def test_stub_status_accepts():
    page = (
        "Active connections: 3 \nserver accepts handled requests\n 1042 1042 99812 \n"
        "Reading: 0 Writing: 1 Waiting: 2 \n"
    )
    assert backend.parse_accepts("HTTP/1.1 200 OK\r\n\r\n" + page) == 1042
    with pytest.raises(ValueError, match="stub_status"):
        backend.parse_accepts("HTTP/1.1 404 Not Found\r\n\r\n")


def test_unknown_target_is_explained():
    assert targets.availability("direct") is None
    why = targets.availability("traefik")
    assert why is not None and "unknown target" in why and "haproxy" in why


def test_scenarios_cover_the_issue():
    names = {s.name for s in scenarios.ALL}
    assert {"get_c1", "get_c50", "get_c200", "post_64k", "download_1m", "conn_close"} <= names
    assert scenarios.BY_NAME["conn_close"].headers == ("Connection: close",)
    assert scenarios.BY_NAME["download_1m"].path == backend.DOWNLOAD_PATH
    assert scenarios.BY_NAME["download_1m"].per_mib
    assert scenarios.BY_NAME["idle_5k"].kind == "idle"
    assert scenarios.BY_NAME["post_64k"].lua == "post64k.lua"


def test_missing_proxies_are_skipped_with_the_install_hint(monkeypatch):
    monkeypatch.setattr(targets, "haproxy_binary", lambda: None)
    monkeypatch.setattr(targets, "nginx_binary", lambda: None)
    monkeypatch.setattr(targets, "envoy_binary", lambda: None)
    assert "apt-get install -y haproxy" in (targets.availability("haproxy") or "")
    assert "nginx-light" in (targets.availability("nginx") or "")
    assert "MESHCORE_ENVOY_BIN" in (targets.availability("envoy") or "")


def test_recovery_features_bootstrap_loads_and_configures_every_feature():
    from meshcore.config import load_text

    b = bootstrap.with_recovery_features(8080, 9901, 9090)
    config = load_text(json.dumps(b), fmt="json")
    (cluster,) = [c for c in config.snapshot["clusters"] if c["name"] == "backend"]
    assert cluster["outlier_detection"] and cluster["circuit_breakers"]
    assert [h.cluster for h in config.health_checks] == ["backend"]
    hcm = b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    names = [f["name"] for f in hcm["http_filters"]]
    assert names == [
        "envoy.filters.http.fault",
        "envoy.filters.http.local_ratelimit",
        "envoy.filters.http.router",
    ]
    route = hcm["route_config"]["virtual_hosts"][0]["routes"][0]["route"]
    assert route["retry_policy"]["num_retries"] == 2


def test_filter_cost_ratios_are_per_round_medians():
    from benchmarks import filter_cost

    def s(rps: float, cpu: float) -> dict[str, float | None]:
        return {"rps": rps, "cpu_us_per_rq": cpu, "p99_ms": 1.0, "errors": 0.0}

    samples = {
        "meshcore": [s(100, 10), s(50, 10), s(100, 10)],
        "meshcore+features": [s(95, 10.5), s(50, 10.2), s(90, 11)],
        "envoy": [s(30, 40), s(30, 40), s(30, 40)],
        "envoy+features": [s(27, 44), s(27, 44), s(27, 44)],
    }
    got = filter_cost.summarize(samples)
    assert got["cost"]["meshcore"]["rps_ratio"] == 0.95
    assert got["cost"]["meshcore"]["cpu_ratio"] == 1.05
    assert abs(got["cost"]["envoy"]["rps_ratio"] - 0.9) < 1e-9
    assert got["variants"]["meshcore"]["rps"] == 100
    assert "| meshcore | 0.950 | 1.050 |" in filter_cost.markdown(got, 3, 5.0)

"""`meshcore explain` on a config file: chosen filter chain, virtual host and route, the near
misses before it, the action, and the errors for bad configs and bad requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from meshcore.cli import main

from tests.explain.configs import explain_config
from tests.support.bootstrap import write_bootstrap

pytestmark = pytest.mark.meshcore_only


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ports = {"a": 1, "b": 2, "c": 3, "fallback": 4}
    path = tmp_path_factory.mktemp("explain") / "envoy.yaml"
    return write_bootstrap(path, explain_config(10000, ports))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["explain", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def explain_json(capsys: pytest.CaptureFixture[str], config: Path, *argv: str) -> Any:
    code, out, err = run(capsys, "-c", str(config), "--json", *argv)
    assert code == 0, err
    return orjson.loads(out)


def test_header_route_wins_when_its_header_matches(capsys, config_path):
    data = explain_json(
        capsys, config_path, "GET http://api.example.com/v1/users", "-H", "x-canary: 1"
    )
    assert data["filter_chain"]["name"] == "main"
    assert data["virtual_host"]["name"] == "api"
    assert data["route"]["name"] == "canary"
    assert data["action"]["clusters"] == [{"name": "c", "weight": 1, "probability": 1.0}]
    assert data["outcome"]["kind"] == "forward"
    assert [r["name"] for r in data["routes"]] == ["canary"]


def test_near_misses_name_the_failing_header_and_query_conditions(capsys, config_path):
    data = explain_json(
        capsys, config_path, "GET http://api.example.com/v1/users", "-H", "x-canary: 2"
    )
    routes = data["routes"]
    assert [r["name"] for r in routes] == ["canary", "debug", "users"]
    canary, debug, users = routes
    assert canary["near_miss"] and debug["near_miss"] and users["matched"]
    failing = [c for c in canary["conditions"] if not c["matched"]]
    assert [(c["field"], c["request_value"]) for c in failing] == [("headers[0]", ["2"])]
    assert 'header "x-canary" exact "1"' in failing[0]["rule"]
    failing = [c for c in debug["conditions"] if not c["matched"]]
    assert [(c["field"], c["request_value"]) for c in failing] == [("query_parameters[0]", None)]
    assert data["action"]["upstream_path"] == "/v2/users"
    assert data["action"]["prefix_rewrite"] == {"from": "/v1/users", "to": "/v2/users"}

    code, text, _ = run(
        capsys, "-c", str(config_path), "GET http://api.example.com/v1/users", "-H", "x-canary: 2"
    )
    assert code == 0
    assert (
        'routes[0] "canary" prefix "/v1"  near miss: the path matched, headers[0] did not' in text
    )
    assert 'FAIL headers[0]: header "x-canary" exact "1"  (request: [\'2\'])' in text
    assert "near miss: the path matched, query_parameters[0] did not" in text
    assert 'routes[2] "users" path "/v1/users"  <- MATCHED' in text
    assert "prefix_rewrite: /v1/users -> /v2/users" in text
    assert 'Outcome       forward: forwarded to cluster "a"' in text


def test_weighted_clusters_give_probabilities_and_the_pick_for_a_random_value(capsys, config_path):
    data = explain_json(capsys, config_path, "GET http://api.example.com/v1/orders")
    action = data["action"]
    assert data["route"]["name"] == "split"
    assert action["weighted"] is True
    assert action["clusters"] == [
        {"name": "a", "weight": 75, "probability": 0.75},
        {"name": "b", "weight": 25, "probability": 0.25},
    ]
    assert action["picked"] is None
    assert action["timeouts"]["route_ms"] == 2000
    assert action["timeouts"]["per_try_ms"] == 500
    assert action["retry_policy"]["num_retries"] == 3
    assert action["retry_policy"]["retry_on"] == ["5xx", "reset"]
    # The data path walks cumulative weights with random % 100.
    for random, cluster in ((0, "a"), (74, "a"), (75, "b"), (199, "b")):
        data = explain_json(
            capsys, config_path, "GET http://api.example.com/v1/orders", "--random", str(random)
        )
        assert data["action"]["picked"]["cluster"] == cluster, random
    code, text, _ = run(capsys, "-c", str(config_path), "GET http://api.example.com/v1/orders")
    assert "weighted random choice" in text
    assert '"a" weight 75: p = 0.75' in text
    assert "retry policy: retry_on 5xx,reset, num_retries 3, per_try_timeout 500 ms" in text


def test_regex_path_redirect_direct_response_and_host_rewrite(capsys, config_path):
    data = explain_json(capsys, config_path, "GET http://api.example.com/items/42")
    assert data["route"]["name"] == "item"
    assert data["routes"][0]["conditions"][0]["matched"] is False
    assert data["action"]["clusters"][0]["name"] == "b"

    data = explain_json(capsys, config_path, "GET http://api.example.com/old/page?x=1")
    assert data["outcome"]["kind"] == "redirect"
    assert data["action"] == {
        "kind": "redirect",
        "status": 301,
        "location": "http://api.example.com/new/page?x=1",
    }

    data = explain_json(capsys, config_path, "GET http://www.example.org/anything")
    assert data["virtual_host"]["matched_domain"] == "*.example.org"
    assert data["virtual_host"]["match_kind"] == "suffix wildcard"
    assert data["action"] == {"kind": "direct_response", "status": 200, "body": "hi"}

    data = explain_json(capsys, config_path, "GET http://api.example.com/host")
    assert data["action"]["host_rewrite"] == "internal.svc"

    data = explain_json(capsys, config_path, "GET http://api.example.com:8443/v1")
    assert data["virtual_host"]["name"] == "fallback"
    assert any("keeps its port" in note for note in data["request"]["notes"])

    data = explain_json(capsys, config_path, "GET http://unknown.test/x")
    assert data["virtual_host"]["match_kind"] == "catch-all"
    assert data["action"]["clusters"][0]["name"] == "fallback"


def test_filter_chain_by_sni(capsys, config_path):
    data = explain_json(
        capsys, config_path, "GET https://api.example.com/v1/users", "--sni", "secure.example.com"
    )
    chain = data["filter_chain"]
    assert (chain["index"], chain["name"]) == (0, "secure")
    assert chain["match"] == {"server_names": ["secure.example.com"]}
    assert data["connection"]["sni"] == "secure.example.com"
    assert data["action"]["clusters"][0]["name"] == "b"
    # An https URL sends its host as SNI: another name falls to the catch-all chain.
    data = explain_json(capsys, config_path, "GET https://api.example.com/v1/users")
    assert data["connection"]["sni"] == "api.example.com"
    assert data["filter_chain"]["name"] == "main"
    code, text, _ = run(
        capsys, "-c", str(config_path), "GET http://x/", "--sni", "secure.example.com"
    )
    assert 'Filter chain  filter_chains[0] "secure": server_names=' in text


def test_listener_choice_errors_and_malformed_requests(capsys, config_path):
    for argv, message in (
        (["GET"], "expected 'METHOD URL'"),
        (["GET ftp://a/b"], "must be http://host/path or https://host/path"),
        (["GET /path"], "an origin-form target needs -H 'host: NAME'"),
        (["G@T http://a/"], "is not an HTTP method"),
        (["GET http://a/", "-H", "no-colon"], "expected 'name: value'"),
        (["GET http://a/", "--listener", "nope"], 'no listener named "nope" (listeners: edge'),
        (["GET http://a/", "--port", "1"], "no listener on port 1"),
        (["GET http://a/", "--source", "10.0.0.1"], "request.source:"),
    ):
        code, out, err = run(capsys, "-c", str(config_path), *argv)
        assert code == 2, (argv, out, err)
        assert message in err, (argv, err)
    data = explain_json(capsys, config_path, "GET /v1/users", "-H", "host: api.example.com")
    assert data["route"]["name"] == "users"
    data = explain_json(capsys, config_path, "GET http://api.example.com/x", "--port", "10000")
    assert data["listener"]["chosen_by"] == "--port"


def test_invalid_config_gives_the_same_errors_as_validate(capsys, tmp_path):
    config = explain_config(10000, {"a": 1, "b": 2, "c": 3, "fallback": 4})
    listener = config["static_resources"]["listeners"][0]
    hcm = listener["filter_chains"][1]["filters"][0]["typed_config"]
    hcm["route_config"]["virtual_hosts"][0]["routes"][2]["route"]["cluster"] = "missing"
    path = write_bootstrap(tmp_path / "bad.yaml", config)
    code, _, validate_err = run_validate(capsys, path)
    assert code == 1 and "missing" in validate_err
    code, out, err = run(capsys, "-c", str(path), "GET http://api.example.com/")
    assert code == 1 and out == ""
    assert err == validate_err
    assert "static_resources.listeners[0].filter_chains[1]" in err


def run_validate(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str, str]:
    code = main(["validate", "-c", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_rbac_filter_verdict_is_the_filter_chains_own(capsys, tmp_path):
    config = explain_config(10000, {"a": 1, "b": 2, "c": 3, "fallback": 4})
    chain = config["static_resources"]["listeners"][0]["filter_chains"][1]
    hcm = chain["filters"][0]["typed_config"]
    rbac = {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
        "rules": {
            "action": "DENY",
            "policies": {
                "blocked": {
                    "permissions": [{"header": {"name": "x-block", "present_match": True}}],
                    "principals": [{"any": True}],
                }
            },
        },
    }
    hcm["http_filters"].insert(0, {"name": "envoy.filters.http.rbac", "typed_config": rbac})
    path = write_bootstrap(tmp_path / "rbac.yaml", config)
    data = explain_json(capsys, path, "GET http://api.example.com/v1/users", "-H", "x-block: 1")
    assert data["http_filters"] == [{"name": "envoy.filters.http.rbac", "type": "rbac"}]
    verdict = data["filters_verdict"]
    assert (verdict["outcome"], verdict["status"]) == ("reply", 403)
    assert "blocked" in verdict["details"]
    assert data["outcome"]["kind"] == "rejected_by_filter"
    assert data["outcome"]["status"] == 403
    # The route is still reported: the filters ran on the routed request.
    assert data["route"]["name"] == "users"
    data = explain_json(capsys, path, "GET http://api.example.com/v1/users")
    assert data["filters_verdict"]["outcome"] == "continue"
    assert data["outcome"]["kind"] == "forward"

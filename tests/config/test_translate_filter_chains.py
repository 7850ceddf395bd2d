"""Several filter chains, `filter_chain_match`, `default_filter_chain` and the TLS inspector
into the snapshot; the problems of what meshcore cannot run, with their paths."""

from __future__ import annotations

import copy
from typing import Any

from .builders import LISTENER, base, listener, load, problems

TLS_INSPECTOR = (
    "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
)
CHAINS = f"{LISTENER}.filter_chains"


def _two_chains(match0: dict[str, Any], match1: dict[str, Any] | None = None) -> dict[str, Any]:
    b = base()
    chain = listener(b)["filter_chains"][0]
    second = copy.deepcopy(chain)
    chain["filter_chain_match"] = match0
    if match1 is not None:
        second["filter_chain_match"] = match1
    second["name"] = "second"
    listener(b)["filter_chains"].append(second)
    return b


def test_every_criterion_reaches_the_snapshot() -> None:
    b = _two_chains(
        {
            "destination_port": 443,
            "prefix_ranges": [{"address_prefix": "10.0.0.0", "prefix_len": 8}],
            "server_names": ["API.example.com", "*.Example.org"],
            "transport_protocol": "tls",
            "application_protocols": ["h2", "http/1.1"],
            "direct_source_prefix_ranges": [{"address_prefix": "192.168.0.0", "prefix_len": 16}],
            "source_type": "SAME_IP_OR_LOOPBACK",
            "source_prefix_ranges": [{"address_prefix": "::1", "prefix_len": 128}],
            "source_ports": [1, 2],
        }
    )
    chains = load(b).snapshot["listeners"][0]["filter_chains"]
    assert chains[0]["filter_chain_match"] == {
        "destination_port": 443,
        "prefix_ranges": [{"address_prefix": "10.0.0.0", "prefix_len": 8}],
        "server_names": ["api.example.com", "*.example.org"],
        "transport_protocol": "tls",
        "application_protocols": ["h2", "http/1.1"],
        "direct_source_prefix_ranges": [{"address_prefix": "192.168.0.0", "prefix_len": 16}],
        "source_type": "same_ip_or_loopback",
        "source_prefix_ranges": [{"address_prefix": "::1", "prefix_len": 128}],
        "source_ports": [1, 2],
    }
    # A chain without a match matches everything: no `filter_chain_match` in the snapshot.
    assert "filter_chain_match" not in chains[1]
    assert chains[1]["name"] == "second"
    assert "http_connection_manager" in chains[1]["filter"]


def test_default_chain_and_tls_inspector() -> None:
    b = base()
    listener(b)["default_filter_chain"] = copy.deepcopy(listener(b)["filter_chains"][0])
    listener(b)["filter_chains"][0]["filter_chain_match"] = {"server_names": ["a.example"]}
    listener(b)["listener_filters"] = [
        {
            "name": "envoy.filters.listener.tls_inspector",
            "typed_config": {"@type": TLS_INSPECTOR, "max_client_hello_size": 4096},
        }
    ]
    listener(b)["listener_filters_timeout"] = "2s"
    listener(b)["continue_on_listener_filters_timeout"] = True
    (translated,) = load(b).snapshot["listeners"]
    assert translated["tls_inspector"] == {"max_client_hello_size": 4096}
    assert translated["listener_filters_timeout_ms"] == 2000
    assert translated["continue_on_listener_filters_timeout"] is True
    assert "http_connection_manager" in translated["default_filter_chain"]["filter"]


def test_only_a_default_chain_is_a_listener() -> None:
    b = base()
    listener(b)["default_filter_chain"] = listener(b).pop("filter_chains")[0]
    (translated,) = load(b).snapshot["listeners"]
    assert translated["filter_chains"] == []
    assert "default_filter_chain" in translated


def test_no_chain_at_all_is_a_problem() -> None:
    b = base()
    del listener(b)["filter_chains"]
    assert problems(b) == [f"{CHAINS}: a listener needs a filter chain or a default_filter_chain"]


def test_identical_matches_are_a_problem() -> None:
    b = _two_chains({"server_names": ["a.com"]}, {"server_names": ["a.com"]})
    assert problems(b) == [
        f"{CHAINS}[1].filter_chain_match: the same matching rules as {CHAINS}[0]"
    ]
    assert problems(_two_chains({})) == [
        f"{CHAINS}[1].filter_chain_match: the same matching rules as {CHAINS}[0]"
    ]


def test_bad_match_values_name_their_path() -> None:
    b = _two_chains(
        {
            "server_names": ["a.*.com"],
            "transport_protocol": "quic",
            "source_prefix_ranges": [{"address_prefix": "10.0.0.0", "prefix_len": 40}],
            "prefix_ranges": [{"address_prefix": "not-an-ip"}],
        }
    )
    match = f"{CHAINS}[0].filter_chain_match"
    assert sorted(problems(b)) == [
        f"{match}.prefix_ranges[0].address_prefix: 'not-an-ip' is not an IP address",
        f"{match}.server_names[0]: 'a.*.com': partial wildcards are not supported "
        "(only a leading '*.')",
        f"{match}.source_prefix_ranges[0].prefix_len: 40 is longer than the address (32 bits)",
        f"{match}.transport_protocol: 'quic' is never detected (meshcore detects 'tls' with "
        "the TLS inspector, else 'raw_buffer')",
    ]

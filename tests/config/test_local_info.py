"""The node's `local_info` address (`Snapshot.local_address`), as Envoy picks it."""

from __future__ import annotations

import ipaddress

from meshcore.config.local_info import LOOPBACK, first_non_loopback, local_address

from tests.support.netinfo import envoy_local_address

from .builders import base, load


def test_local_address_is_a_non_loopback_ipv4_or_127_0_0_1() -> None:
    address = local_address()
    parsed = ipaddress.ip_address(address)  # raises if it is not an IP literal
    assert parsed.version == 4
    assert address == LOOPBACK or not parsed.is_loopback


def test_local_address_is_the_one_the_integration_tests_expect_from_envoy() -> None:
    assert local_address() == envoy_local_address()


def test_every_snapshot_carries_the_local_address() -> None:
    assert load(base()).snapshot["local_address"] == local_address()
    empty = {"static_resources": {}}
    assert load(empty).snapshot == {
        "listeners": [],
        "clusters": [],
        "local_address": local_address(),
    }


def test_the_first_non_loopback_interface_wins() -> None:
    addresses = {"lo": "127.0.0.1", "eth0": "10.1.2.3", "eth1": "192.168.0.9"}
    assert first_non_loopback(["lo", "eth0", "eth1"], addresses.get) == "10.1.2.3"
    assert first_non_loopback(["lo", "eth1", "eth0"], addresses.get) == "192.168.0.9"


def test_interfaces_without_an_ipv4_address_are_skipped() -> None:
    addresses = {"lo": "127.0.0.1", "eth0": None, "wg0": "100.64.0.7"}
    assert first_non_loopback(["lo", "eth0", "wg0"], addresses.get) == "100.64.0.7"


def test_only_loopback_or_nothing_gives_127_0_0_1() -> None:
    assert first_non_loopback([], {}.get) == "127.0.0.1"
    assert first_non_loopback(["lo", "lo2"], {"lo": "127.0.0.1", "lo2": "127.0.1.1"}.get) == (
        "127.0.0.1"
    )

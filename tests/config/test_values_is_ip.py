"""`values.is_ip` (inet_pton first, `ipaddress` for what it rejects) accepts and rejects
exactly what `ipaddress.ip_address` does."""

from __future__ import annotations

import ipaddress
import random

import pytest
from meshcore.config.values import is_ip


def _reference(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


ACCEPTED = [
    "0.0.0.0",
    "127.0.0.1",
    "255.255.255.255",
    "10.0.0.0",
    "::",
    "::1",
    "fe80::1",
    "FE80::ABCD",
    "fe80::1%eth0",  # scoped: inet_pton refuses it, ipaddress takes it
    "fe80::1%1",
    "::ffff:1.2.3.4",
    "::1.2.3.4",
    "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:1.2.3.4",
    "1:2:3:4:5:6:7::",
    "::2:3:4:5:6:7:8",
    "0001:02:003:4::",
]
REJECTED = [
    "",
    " ",
    "01.2.3.4",  # leading zeros
    "1.2.3.04",
    "1.2.3.00",
    "1.2.3",
    "1.2.3.4.5",
    "1.2.3.256",
    "1.2.3.-1",
    "0x1.2.3.4",
    "1.2.3.4 ",  # whitespace
    " 1.2.3.4",
    "1.2.3.4\n",
    "::1 ",
    "1.2.3.4\x00",
    "１.２.３.４",  # fullwidth digits
    "١.٢.٣.٤",  # Arabic-Indic digits
    "1.2.3.4%eth0",
    "fe80::1%",
    "fe80::1%a%b",
    "::ffff:01.2.3.4",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7:8::",
    "1::2::3",
    "00001::",
    ":::",
    "1:2:3:4:5:6:7:1.2.3.4",
    "localhost",
    "example.com",
    "[::1]",
]


@pytest.mark.parametrize("text", ACCEPTED)
def test_accepted(text: str) -> None:
    assert _reference(text) and is_ip(text)


@pytest.mark.parametrize("text", REJECTED)
def test_rejected(text: str) -> None:
    assert not _reference(text) and not is_ip(text)


def _mutations(rng: random.Random) -> list[str]:
    """Random near-addresses: valid ones with characters inserted, dropped or replaced."""
    alphabet = "0123456789abcdefABCDEFxX:.% \t"
    seeds = [*ACCEPTED, "192.168.0.1", "2001:db8::8a2e:370:7334", "::ffff:10.0.0.1"]
    out = []
    for _ in range(20_000):
        text = list(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(text) + 1)
            action = rng.randrange(3)
            if action == 0:
                text.insert(at, rng.choice(alphabet))
            elif text and action == 1:
                del text[min(at, len(text) - 1)]
            elif text:
                text[min(at, len(text) - 1)] = rng.choice(alphabet)
        out.append("".join(text))
    return out


def test_agrees_with_ipaddress_on_random_near_addresses() -> None:
    texts = _mutations(random.Random(7))
    accepted = [t for t in texts if _reference(t)]
    assert len(accepted) > 1_000  # the sample has both kinds
    assert [t for t in texts if is_ip(t) != _reference(t)] == []

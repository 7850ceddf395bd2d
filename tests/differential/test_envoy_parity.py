"""The same bootstrap (examples/front-proxy.yaml) and the same requests to real Envoy and to
meshcore: status codes, answering cluster, response headers and what the upstream saw must
agree.

`MESHCORE_PARITY_SUBJECT=envoy` compares Envoy with a second Envoy (checks the harness)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import trio

from tests.differential.front_proxy import (
    Probe,
    fixed_probes,
    load_front_proxy,
    localize,
    route_probes,
    start_upstreams,
)
from tests.support.client import RawConnection
from tests.support.load import count_upstreams
from tests.support.ports import free_port
from tests.support.proxy import Proxy, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

SUBJECT = os.environ.get("MESHCORE_PARITY_SUBJECT", "meshcore")
pytestmark = [pytest.mark.meshcore_only] if SUBJECT == "meshcore" else []

# Envoy-internal headers left out of the comparison (meshcore may or may not send them):
# x-envoy-upstream-service-time (response; a timing), x-envoy-expected-rq-timeout-ms and
# x-envoy-external-address (upstream request). Every other header, x-envoy-original-path
# included, must match. `date` changes every second and x-request-id is random: only their
# presence is compared.
IGNORED_RESPONSE = {"x-envoy-upstream-service-time"}
IGNORED_UPSTREAM = {"x-envoy-expected-rq-timeout-ms", "x-envoy-external-address"}
PRESENCE_ONLY = {"date", "x-request-id"}

CONFIG = load_front_proxy()
ROUTE_PROBES = route_probes(CONFIG)
DETERMINISTIC = [p for p in ROUTE_PROBES if not p.weighted]
WEIGHTED = [p for p in ROUTE_PROBES if p.weighted]
FORWARDING = [p for p in DETERMINISTIC if p.forwards]
PROBES = DETERMINISTIC + (fixed_probes(FORWARDING[-1]) if FORWARDING else [])


@dataclass
class Observation:
    status: int
    cluster: str | None
    response_headers: list[tuple[str, str]]
    body: bytes | None
    upstream_saw: list[tuple[str, str, list[tuple[str, str]], bytes]]


def normalise(headers: list[tuple[str, str]], ignored: set[str]) -> list[tuple[str, str]]:
    return sorted(
        (k, "<present>" if k in PRESENCE_ONLY else v) for k, v in headers if k not in ignored
    )


@pytest.fixture(scope="module")
def upstreams(upstream_server: UpstreamServer) -> dict[str, list[Upstream]]:
    return start_upstreams(CONFIG, upstream_server)


@pytest.fixture(scope="module")
def proxies(upstreams, tmp_path_factory) -> Iterator[dict[str, Proxy]]:
    listeners = len(CONFIG["static_resources"]["listeners"])
    running: dict[str, Proxy] = {}
    try:
        for role, kind in (("envoy", "envoy"), ("subject", SUBJECT)):
            config = localize(CONFIG, upstreams, [free_port() for _ in range(listeners)])
            running[role] = start_proxy(kind, config, tmp_path_factory)
        yield running
    finally:
        for proxy in running.values():
            proxy.stop()


async def observe(proxy: Proxy, probe: Probe, upstreams: dict[str, list[Upstream]]) -> Observation:
    every = [u for group in upstreams.values() for u in group]
    for upstream in every:
        upstream.clear()
    async with await RawConnection.open(proxy.port) as conn:
        response = await conn.request(
            probe.method, probe.target, host=probe.host, headers=probe.headers, body=probe.body
        )
    saw = [
        (r.method, r.target, normalise(r.headers, IGNORED_UPSTREAM), bytes(r.body))
        for u in every
        for r in u.requests
    ]
    return Observation(
        status=response.status,
        cluster=response.upstream.split("#")[0] if response.upstream else None,
        response_headers=normalise(response.headers, IGNORED_RESPONSE),
        body=response.body,
        upstream_saw=saw,
    )


def differences(expected: Observation, actual: Observation) -> list[str]:
    """Readable field-by-field differences (empty when the observations agree)."""
    out = []
    for name in ("status", "cluster", "body"):
        if getattr(expected, name) != getattr(actual, name):
            out.append(
                f"{name}: envoy {getattr(expected, name)!r}, {SUBJECT} {getattr(actual, name)!r}"
            )
    for name, left, right in (
        ("response header", expected.response_headers, actual.response_headers),
        *(
            ("upstream saw header", e[2], a[2])
            for e, a in zip(expected.upstream_saw, actual.upstream_saw, strict=False)
        ),
    ):
        for header in sorted(set(left) - set(right)):
            out.append(f"{name} only from envoy: {header}")
        for header in sorted(set(right) - set(left)):
            out.append(f"{name} only from {SUBJECT}: {header}")
    if [u[:2] + u[3:] for u in expected.upstream_saw] != [
        u[:2] + u[3:] for u in actual.upstream_saw
    ]:
        out.append(
            f"upstream requests: envoy {[u[:2] for u in expected.upstream_saw]}, "
            f"{SUBJECT} {[u[:2] for u in actual.upstream_saw]}"
        )
    return out


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
async def test_same_answer(proxies, upstreams, probe):
    with trio.fail_after(10):
        expected = await observe(proxies["envoy"], probe, upstreams)
        actual = await observe(proxies["subject"], probe, upstreams)
    diff = differences(expected, actual)
    assert not diff, "\n".join(diff)
    assert actual == expected


@pytest.mark.parametrize("probe", WEIGHTED, ids=[p.name for p in WEIGHTED])
async def test_same_weighted_split(proxies, probe):
    async def split(proxy: Proxy) -> Counter[str]:
        counts = await count_upstreams(
            proxy.port, 1000, target=probe.target, host=probe.host, connections=4
        )
        return Counter({name.split("#")[0]: n for name, n in counts.items()})

    with trio.fail_after(60):
        expected = await split(proxies["envoy"])
        actual = await split(proxies["subject"])
    assert set(actual) == set(expected)
    for cluster, count in expected.items():
        assert abs(actual[cluster] - count) <= 60, (expected, actual)


async def test_same_malformed_request_answer(proxies):
    async def hostile(proxy: Proxy) -> tuple[int, bytes, bool]:
        async with await RawConnection.open(proxy.port) as conn:
            await conn.send(
                b"POST / HTTP/1.1\r\nHost: parity.test\r\nContent-Length: 3\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            )
            response = await conn.read_response()
            return response.status, response.body, await conn.is_closed_by_peer()

    with trio.fail_after(10):
        assert await hostile(proxies["subject"]) == await hostile(proxies["envoy"])


def test_probes_cover_the_example():
    """The derivation found the example's routes (so a changed example is noticed)."""
    assert len(ROUTE_PROBES) >= 3
    assert FORWARDING, "no deterministic forwarding route to send the fixed probes along"

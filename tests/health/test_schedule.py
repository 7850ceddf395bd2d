"""Which interval follows a check, and Envoy's jitter arithmetic."""

from __future__ import annotations

import random

import pytest
from meshcore.health.schedule import initial_delay_ms, next_interval_ms, with_jitter
from meshcore.health.spec import ClusterHealthCheck
from meshcore.health.state import Transition

SPEC = ClusterHealthCheck(
    cluster="svc",
    timeout_ms=1000,
    interval_ms=100,
    unhealthy_threshold=3,
    healthy_threshold=2,
    no_traffic_interval_ms=6000,
    unhealthy_interval_ms=300,
    unhealthy_edge_interval_ms=50,
    healthy_edge_interval_ms=70,
)


class MaxRandom(random.Random):
    """Always draws the largest value allowed (`randrange(n)` -> n - 1)."""

    def randrange(self, start, stop=None, step=1):  # type: ignore[override]
        return (start if stop is None else stop) - 1


@pytest.mark.parametrize(
    ("passed", "transition", "traffic", "expected"),
    [
        (True, Transition.UNCHANGED, True, 100),
        (True, Transition.CHANGED, True, 100),
        (True, Transition.CHANGE_PENDING, True, 70),
        (False, Transition.UNCHANGED, True, 300),
        (False, Transition.CHANGED, True, 300),
        (False, Transition.CHANGE_PENDING, True, 50),
        (True, Transition.UNCHANGED, False, 6000),
        (False, Transition.CHANGE_PENDING, False, 6000),
    ],
)
def test_interval_choice(passed, transition, traffic, expected):
    assert next_interval_ms(SPEC, passed, transition, traffic, random.Random(1)) == expected


def test_envoy_fallbacks_for_unset_intervals():
    spec = ClusterHealthCheck("svc", 1000, 250, 3, 2, no_traffic_interval_ms=900)
    assert spec.unhealthy_interval_ms == 250
    assert spec.unhealthy_edge_interval_ms == 250
    assert spec.healthy_edge_interval_ms == 250
    assert spec.no_traffic_healthy_interval_ms == 900
    spec = ClusterHealthCheck("svc", 1000, 250, 3, 2, unhealthy_interval_ms=400)
    assert spec.unhealthy_edge_interval_ms == 400
    assert spec.no_traffic_interval_ms == 60_000


def test_no_traffic_healthy_interval_applies_after_a_settled_pass():
    spec = ClusterHealthCheck(
        "svc", 1000, 100, 3, 2, no_traffic_interval_ms=5000, no_traffic_healthy_interval_ms=9000
    )
    rng = random.Random(1)
    assert next_interval_ms(spec, True, Transition.UNCHANGED, False, rng) == 9000
    assert next_interval_ms(spec, True, Transition.CHANGE_PENDING, False, rng) == 5000
    assert next_interval_ms(spec, False, Transition.UNCHANGED, False, rng) == 5000


def test_jitter_bounds():
    assert with_jitter(1000, 0, 0, MaxRandom()) == 1000
    # percent: random() % (10% of 1000); then random() % 250
    assert with_jitter(1000, 250, 10, MaxRandom()) == 1000 + 99 + 249
    draws = {with_jitter(1000, 250, 10, random.Random(seed)) for seed in range(200)}
    assert min(draws) >= 1000 and max(draws) <= 1348 and len(draws) > 50
    assert with_jitter(0, 0, 50, MaxRandom()) == 1  # never 0


def test_initial_jitter():
    spec = ClusterHealthCheck("svc", 1000, 100, 3, 2, initial_jitter_ms=400)
    assert initial_delay_ms(spec, MaxRandom()) == 399
    assert initial_delay_ms(SPEC, MaxRandom()) == 0

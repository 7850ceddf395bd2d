"""When the next check runs: Envoy's `HealthCheckerImplBase::interval()` and
`intervalWithJitter()`, in milliseconds."""

from __future__ import annotations

import random

from .spec import ClusterHealthCheck
from .state import Transition


def with_jitter(base_ms: int, jitter_ms: int, jitter_percent: int, rng: random.Random) -> int:
    """`base_ms` plus up to `jitter_percent`% of it plus up to `jitter_ms` (each a uniform
    draw below the bound, as Envoy's `random() % bound`); at least 1 ms."""
    percent_bound = jitter_percent * base_ms // 100
    if percent_bound > 0:
        base_ms += rng.randrange(percent_bound)
    if jitter_ms > 0:
        base_ms += rng.randrange(jitter_ms)
    return max(1, base_ms)


def next_interval_ms(
    spec: ClusterHealthCheck,
    passed: bool,
    transition: Transition,
    had_traffic: bool,
    rng: random.Random,
) -> int:
    """The wait after a check that `passed` (or not) and caused `transition`.

    With traffic: `interval` / `unhealthy_interval`, or the edge intervals while a change
    waits for its threshold. Without (the cluster never had an upstream connection):
    `no_traffic_interval`, or `no_traffic_healthy_interval` after a pass that is not
    pending."""
    pending = transition is Transition.CHANGE_PENDING
    if had_traffic:
        if passed:
            base = spec.healthy_edge_interval_ms if pending else spec.interval_ms
        else:
            base = spec.unhealthy_edge_interval_ms if pending else spec.unhealthy_interval_ms
    elif passed and not pending:
        base = spec.no_traffic_healthy_interval_ms
    else:
        base = spec.no_traffic_interval_ms
    return with_jitter(base, spec.interval_jitter_ms, spec.interval_jitter_percent, rng)


def initial_delay_ms(spec: ClusterHealthCheck, rng: random.Random) -> int:
    """Delay of a new host's first check: none, or up to `initial_jitter`."""
    if spec.initial_jitter_ms == 0:
        return 0
    return with_jitter(0, spec.initial_jitter_ms, 0, rng)

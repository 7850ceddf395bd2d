"""The per-host health state machine, step by step against Envoy's rules."""

from __future__ import annotations

from meshcore.health.state import Failure, HostHealth, Outcome, Transition

OK = Outcome.success()
DEGRADED = Outcome.success(degraded=True)
BAD_STATUS = Outcome.fail(Failure.ACTIVE, "HTTP 503")
RETRIABLE = Outcome.fail(Failure.ACTIVE, "HTTP 429", retriable=True)
REFUSED = Outcome.fail(Failure.NETWORK, "refused")
TIMEOUT = Outcome.fail(Failure.NETWORK_TIMEOUT, "timeout")


def run(health: HostHealth, *outcomes: Outcome, healthy: int = 2, unhealthy: int = 3):
    return [health.record(o, healthy, unhealthy) for o in outcomes]


def test_a_new_host_fails_until_its_first_check_which_counts_at_once():
    health = HostHealth()
    assert health.failed and health.flags_text() == "/failed_active_hc"
    assert run(health, OK, healthy=5) == [Transition.CHANGED]
    assert not health.failed and health.flags_text() == "healthy"


def test_a_failing_first_check_leaves_the_host_failed_until_healthy_threshold_passes():
    health = HostHealth()
    assert run(health, BAD_STATUS, OK, OK) == [
        Transition.UNCHANGED,
        Transition.CHANGE_PENDING,
        Transition.CHANGED,
    ]
    assert not health.failed


def test_a_failure_between_passes_restarts_the_healthy_count():
    health = HostHealth()
    run(health, REFUSED)
    assert run(health, OK, REFUSED, OK) == [
        Transition.CHANGE_PENDING,
        Transition.UNCHANGED,
        Transition.CHANGE_PENDING,
    ]
    assert health.failed
    assert run(health, OK) == [Transition.CHANGED]


def test_a_wrong_answer_fails_a_healthy_host_at_once():
    health = HostHealth()
    run(health, OK)
    assert run(health, BAD_STATUS) == [Transition.CHANGED]
    assert health.failed and not health.timed_out


def test_network_failures_need_unhealthy_threshold_in_a_row():
    health = HostHealth()
    run(health, OK)
    assert run(health, REFUSED, TIMEOUT, OK, REFUSED, REFUSED) == [
        Transition.CHANGE_PENDING,
        Transition.CHANGE_PENDING,
        Transition.UNCHANGED,  # a pass resets the count
        Transition.CHANGE_PENDING,
        Transition.CHANGE_PENDING,
    ]
    assert not health.failed
    assert run(health, REFUSED) == [Transition.CHANGED]
    assert health.failed and not health.timed_out


def test_retriable_statuses_count_like_network_failures():
    health = HostHealth()
    run(health, OK)
    assert run(health, RETRIABLE, RETRIABLE, RETRIABLE) == [
        Transition.CHANGE_PENDING,
        Transition.CHANGE_PENDING,
        Transition.CHANGED,
    ]


def test_timeout_flag_follows_the_last_failure_of_a_failed_host():
    health = HostHealth()
    run(health, TIMEOUT)
    assert health.flags_text() == "/failed_active_hc/active_hc_timeout"
    run(health, REFUSED)
    assert health.flags_text() == "/failed_active_hc"
    run(health, TIMEOUT, OK)  # pending pass: still failed, flag kept
    assert health.timed_out
    run(health, OK)
    assert health.flags_text() == "healthy"


def test_timeout_of_a_healthy_host_below_threshold_sets_no_flag():
    health = HostHealth()
    run(health, OK, TIMEOUT)
    assert not health.failed and not health.timed_out


def test_degraded_and_excluded_flags():
    health = HostHealth()
    assert run(health, DEGRADED) == [Transition.CHANGED]
    assert health.flags_text() == "/degraded_active_hc"
    assert run(health, DEGRADED) == [Transition.UNCHANGED]
    assert run(health, OK) == [Transition.CHANGED]  # no longer degraded
    immediate = Outcome.fail(Failure.ACTIVE, "HTTP 503", excluded=True)
    run(health, immediate)
    assert health.flags_text() == "/failed_active_hc/excluded_via_immediate_hc_fail"
    assert health.health_status_json(eds_healthy=False) == {
        "failed_active_health_check": True,
        "eds_health_status": "UNHEALTHY",
        "excluded_via_immediate_hc_fail": True,
    }
    run(health, OK, OK)
    assert health.flags_text() == "healthy"
    assert health.flags_text(eds_healthy=False) == "/failed_eds_health"

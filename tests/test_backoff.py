"""The one retry schedule: exponential, capped, jittered, with its random source pinned so
the delays are asserted exactly."""

from __future__ import annotations

import pytest

from mountdns.backoff import DEFAULT_MAXIMUM, Backoff


def test_delays_double_from_the_initial_delay_up_to_the_cap_without_jitter():
    backoff = Backoff(initial=0.5, maximum=4.0, rand=lambda: 0.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_jitter_shortens_a_delay_by_at_most_its_fraction():
    shortest = Backoff(initial=1.0, maximum=4.0, jitter=0.5, rand=lambda: 1.0)
    assert [shortest.next_delay() for _ in range(4)] == [0.5, 1.0, 2.0, 2.0]
    halfway = Backoff(initial=1.0, maximum=4.0, jitter=0.5, rand=lambda: 0.5)
    assert halfway.next_delay() == 0.75


def test_the_default_cap_keeps_every_retry_within_five_seconds_of_recovery():
    backoff = Backoff()
    delays = [backoff.next_delay() for _ in range(50)]
    assert DEFAULT_MAXIMUM < 5
    assert max(delays) <= DEFAULT_MAXIMUM
    assert min(delays[10:]) >= DEFAULT_MAXIMUM / 2  # at the cap, jitter takes off at most half


def test_a_long_outage_does_not_overflow_the_schedule():
    backoff = Backoff(initial=0.2, maximum=4.0, rand=lambda: 0.0)
    for _ in range(5000):
        delay = backoff.next_delay()
    assert delay == 4.0


def test_reset_starts_over_from_the_initial_delay():
    backoff = Backoff(initial=0.25, maximum=4.0, rand=lambda: 0.0)
    assert [backoff.next_delay() for _ in range(3)] == [0.25, 0.5, 1.0]
    backoff.reset()
    assert backoff.next_delay() == 0.25


@pytest.mark.parametrize("options", [dict(initial=5.0, maximum=4.0), dict(initial=-1.0),
                                     dict(factor=0.5), dict(jitter=1.5)])
def test_a_schedule_that_cannot_work_is_refused(options):
    with pytest.raises(ValueError):
        Backoff(**options)

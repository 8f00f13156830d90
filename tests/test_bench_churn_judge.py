"""The churn benchmark's judgement of its backlog (bench/churn.py: backlog_growing):
a backlog that rises through the run is growing; one that holds steady, with a spike
that drains, is not."""

from __future__ import annotations

from bench.churn import backlog_growing


def test_a_steady_backlog_with_one_spike_in_the_second_half_is_not_growing():
    steady = [110, 95, 130, 120, 100, 105, 115, 125, 90, 100]
    assert not backlog_growing(steady[:5] + [803, 640] + steady[7:])


def test_a_backlog_that_rises_second_after_second_is_growing():
    assert backlog_growing([100 * second for second in range(1, 61)])


def test_a_backlog_that_doubles_and_stays_there_is_growing():
    assert backlog_growing([100] * 30 + [450] * 30)


def test_an_empty_or_idle_backlog_is_not_growing():
    assert not backlog_growing([])
    assert not backlog_growing([0] * 60)
    assert not backlog_growing([0] * 30 + [1, 2] * 15)

"""Rate-limited logging (pdns_backend.loglimit) with an injected clock."""

import logging

import pytest

from pdns_backend.loglimit import LogLimiter


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def limiter(clock):
    return LogLimiter(logging.getLogger("test.loglimit"), interval=10.0, clock=clock)


def messages(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "test.loglimit"]


def test_repeats_within_the_interval_are_counted_not_logged(limiter, clock, caplog):
    with caplog.at_level(logging.INFO, logger="test.loglimit"):
        for i in range(1000):
            clock.now = i * 0.005
            limiter.log("store unavailable", logging.ERROR, "store unavailable: connection refused")
    assert messages(caplog) == ["store unavailable: connection refused"]


def test_the_count_comes_with_the_next_line_after_the_interval(limiter, clock, caplog):
    with caplog.at_level(logging.INFO, logger="test.loglimit"):
        for _ in range(5):
            limiter.log("k", logging.WARNING, "bad request")
        clock.now = 10.5
        limiter.log("k", logging.WARNING, "bad request")
    assert messages(caplog) == ["bad request", "bad request (and 4 more like this in the previous 10 s)"]


def test_flush_reports_the_count_once_the_interval_is_over(limiter, clock, caplog):
    with caplog.at_level(logging.INFO, logger="test.loglimit"):
        for _ in range(3):
            limiter.log("k", logging.WARNING, "refused")
        clock.now = 5.0
        limiter.flush()
        assert messages(caplog) == ["refused"]
        clock.now = 11.0
        limiter.flush()
        limiter.flush()
    assert messages(caplog) == ["refused", "refused (2 more like this in the last 10 s)"]


def test_distinct_problems_each_get_their_line(limiter, caplog):
    with caplog.at_level(logging.INFO, logger="test.loglimit"):
        for _ in range(3):
            limiter.log("a", logging.WARNING, "problem a")
            limiter.log("b", logging.ERROR, "problem b")
    assert messages(caplog) == ["problem a", "problem b"]

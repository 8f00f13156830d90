"""Exponential backoff with jitter, capped: the one retry schedule of every loop that
reconnects or retries (the Kubernetes watchers, the sync's Redis writes, the PowerDNS
cache purges).

The cap is what bounds recovery: once the API server, Redis or PowerDNS is back, the
next attempt comes at most `maximum` seconds later, so a change made after the outage
shows within about that long (the default 4 s keeps it under 5 s). The jitter keeps
many daemons from reconnecting to a recovering server in step. The random source is a
parameter so tests can pin the schedule exactly instead of timing it.
"""

from __future__ import annotations

import random
from typing import Callable

DEFAULT_MAXIMUM = 4.0


class Backoff:
    """Delays `initial`, `initial * factor`, ... up to `maximum`, each scaled by a random
    factor in [1 - jitter, 1]; `reset()` after a success starts over."""

    def __init__(self, initial: float = 0.2, maximum: float = DEFAULT_MAXIMUM, factor: float = 2.0, *,
                 jitter: float = 0.5, rand: Callable[[], float] = random.random):
        if not 0 <= initial <= maximum:
            raise ValueError(f"backoff: need 0 <= initial <= maximum, got {initial} and {maximum}")
        if factor < 1 or not 0 <= jitter <= 1:
            raise ValueError(f"backoff: need factor >= 1 and 0 <= jitter <= 1, got {factor} and {jitter}")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self.rand = rand
        self.attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt, after one more failure."""
        # The exponent stops growing at the cap: factor ** attempt would overflow a float
        # after ~1,000 failures in a row (a long outage), not just exceed the cap.
        delay = self.initial * self.factor ** self.attempt
        if delay < self.maximum:
            self.attempt += 1
        delay = min(self.maximum, delay)
        return delay * (1.0 - self.jitter * self.rand())

    def reset(self) -> None:
        """Start over from `initial` (after a success)."""
        self.attempt = 0

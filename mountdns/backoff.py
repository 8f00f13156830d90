"""Exponential backoff with jitter between reconnects and retries."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, initial: float = 0.2, maximum: float = 30.0, factor: float = 2.0):
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.attempt = 0

    def next_delay(self) -> float:
        delay = min(self.maximum, self.initial * (self.factor ** self.attempt))
        self.attempt += 1
        # Jitter keeps many daemons from reconnecting to a recovering API server in step.
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.attempt = 0

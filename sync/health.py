"""Liveness and readiness of the sync, as answers to two different questions.

Liveness (`/healthz`): is the main loop still turning? The loop calls `beat()` at least
every `HEARTBEAT_INTERVAL` seconds, even when idle; a heartbeat older than
`stall_after` means it is stuck (a hung call, a deadlock) and a restart would help.
Readiness (`/readyz`): can this sync do its job now? Its cache has every kind listed
and, on the leader, a batch has reached Redis and the last one did not fail. A sync that
is not the leader is ready once its cache is synced: it stands by to take over.

Time comes from an injected clock, so tests move it instead of sleeping.
"""

from __future__ import annotations

import time
from typing import Callable

HEARTBEAT_INTERVAL = 5.0  # the loop wakes at least this often, even with nothing to do
STALL_AFTER = 60.0  # several times the longest batch seen (seconds for 100,000 Containers)


class Health:
    """What /healthz and /readyz answer. `cache_synced` is the cache's `listed`;
    `metrics` a SyncMetrics (leadership, first batch done, last store error)."""

    def __init__(self, cache_synced: Callable[[], bool], metrics, *,
                 clock: Callable[[], float] = time.monotonic, stall_after: float = STALL_AFTER):
        if stall_after <= 0:
            raise ValueError(f"stall_after must be positive, got {stall_after}")
        self.cache_synced = cache_synced
        self.metrics = metrics
        self.clock = clock
        self.stall_after = stall_after
        self._last_beat = clock()

    def beat(self, now: float | None = None) -> None:
        """The main loop is alive at `now` (default: the clock)."""
        self._last_beat = self.clock() if now is None else now

    def liveness(self) -> tuple[bool, str]:
        age = self.clock() - self._last_beat
        if age > self.stall_after:
            return False, f"main loop stuck: no heartbeat for {age:.0f}s (limit {self.stall_after:.0f}s)"
        return True, "ok"

    def readiness(self) -> tuple[bool, str]:
        if not self.cache_synced():
            return False, "cache not synced"
        if not self.metrics.is_leader:
            return True, "ok (standby, not the leader)"
        if self.metrics.last_error is not None:
            return False, f"last write failed: {self.metrics.last_error}"
        if not self.metrics.reconciled_once:
            return False, "not written yet"
        return True, "ok"

"""Noticing that Redis lost our data, within seconds rather than at the next resync.

Redis can come back empty: FLUSHALL, a restart without persistence, a failover to an
empty replica. The sync's own memory of what it wrote (the reconciler's `known`) would
then hide the loss until the next full resync, minutes later. Every full write of the
sync leaves a marker key in the store; this heartbeat checks every `interval` seconds
that it is still there (so also on the first check after a reconnect) and, when it is
gone, makes the daemon rewrite everything at once. The loss itself is noted (logged, and
counted as one rewrite when the rewrite commits) by `Reconciler.data_lost`, the one place
every way of noticing it goes through.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from mountdns.store import StoreError

log = logging.getLogger("mountdns.sync")


class MarkerWatch:
    """The heartbeat. `clock` is injectable so tests move time instead of sleeping."""

    def __init__(self, reconciler, interval: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.reconciler = reconciler
        self.interval = interval
        self.clock = clock
        self.next_check = clock() + interval
        self.losses = 0

    def seconds_to_next(self, now: float | None = None) -> float:
        return max(0.0, self.next_check - (self.clock() if now is None else now))

    def data_lost(self, now: float | None = None) -> bool:
        """When due at `now` (default: the clock), check the marker; True when it is gone
        and everything must be rewritten (the reconciler then forgets what it believed
        the store holds)."""
        now = self.clock() if now is None else now
        if now < self.next_check:
            return False
        self.next_check = now + self.interval
        reconciler = self.reconciler
        if not reconciler.marked or reconciler.dry_run:
            return False  # nothing written yet to lose; the first full write will mark it
        check = getattr(reconciler.store, "marker_present", None)
        if check is None:
            return False  # a store without a marker (a test double) cannot tell
        try:
            present = check()
        except StoreError as exc:
            log.debug("marker check failed (%s); checking again after reconnecting", exc)
            return False
        if present or not reconciler.data_lost("its marker is gone"):
            return False
        self.losses += 1
        return True

"""The sync loop: wait for the cache to change, gather a burst of events, reconcile once.

Coalescing is what turns a burst of 1,000 watch events into a few Redis transactions:
after the first change the loop waits `coalesce_seconds` more, then reconciles whatever
the cache holds. Nothing is written before every kind has been listed once. A store
failure is logged and retried with backoff; the watchers keep running meanwhile. A full
resync (re-list, re-read Redis, collect garbage) runs every `resync_interval`.

The decisions live in `step(now)`, one iteration at a given time, which never sleeps: it
says what to wait for next (`Wait`). `run` only sleeps as told and calls `step` again,
so tests drive `step` with a clock of their own instead of waiting on a real one.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from mountdns.backoff import Backoff
from mountdns.store import StoreError
from sync import allocator
from sync.data_loss import MarkerWatch
from sync.reconciler import Reconciler
from sync.sources import heap
from sync.sources.cache import ObjectCache
from sync.leader import NotLeading
from sync.health import HEARTBEAT_INTERVAL

log = logging.getLogger("mountdns.sync")

# How long a resync's full batch waits for the re-list it asked for (a re-list of a
# million Containers takes ~30 s), at most half the resync interval; past it, garbage is
# collected against what is held.
RELIST_WAIT = 120.0


@dataclass(frozen=True)
class Wait:
    """What the loop waits for after a step: the time `until`, and whether a change to
    the cache should end the wait sooner (only when idle: while a burst is gathered or a
    failed write backs off, further changes join the batch that is coming anyway)."""
    until: float
    on_change: bool


class SyncDaemon:
    def __init__(self, cache: ObjectCache, source, reconciler: Reconciler, *,
                 resync_interval: float = 300.0, coalesce_seconds: float = 0.05,
                 backoff: Backoff | None = None, clock: Callable[[], float] = time.monotonic, leader=None,
                 health=None, marker_watch: MarkerWatch | None = None):
        self.cache = cache
        self.source = source
        self.reconciler = reconciler
        self.resync_interval = resync_interval
        self.coalesce_seconds = coalesce_seconds
        self.backoff = backoff or Backoff(initial=0.2)
        self.clock = clock
        self.store_failures = 0
        self.batches = 0  # successful reconciliations
        self.next_resync: float | None = None  # set by the first step
        self.full = True  # the next batch re-reads the store (first batch, resync, after a failure)
        # A resync's full batch waits for the re-list it asked for, until this time at most.
        self.relist_deadline: float | None = None
        self.batch_due = True  # a batch is wanted even if the cache did not change
        self.gathering_since: float | None = None  # first change of the batch being gathered
        self.retry_at: float | None = None  # after a failed write: no batch before this
        # The last batch collected a round of stale records and Redis holds more: the
        # next batch follows at once (Outcome.more_garbage).
        self.collecting = False
        self.leader = leader  # leader election: a sync.leader.LeaderElector, or None to always write
        self.health = health  # sync.health.Health: the loop's heartbeat, or None
        # Redis data loss, noticed within seconds: checked on the loop's own clock.
        self.marker_watch = marker_watch or MarkerWatch(reconciler, clock=clock)

    # -- one iteration -----------------------------------------------------------------
    def step(self, now: float) -> Wait:
        """Do what is due at `now`: start a periodic resync, start gathering a batch,
        reconcile a gathered one (or schedule its retry); return what to wait for next."""
        self._resync_if_due(now)
        if self.relist_deadline is not None and now >= self.relist_deadline:
            self.relist_deadline = None  # the re-list is late: collect garbage with what is held
            self.batch_due = True
        if self.marker_watch.data_lost(now):
            self.request_full()  # Redis came back empty: rewrite everything now, not at the resync
        if self.retry_at is not None:
            if now < self.retry_at:
                return Wait(min(self.retry_at, self.next_resync), on_change=False)
            self.retry_at = None
        if self.gathering_since is None:
            if not (self.batch_due or self.cache.changed.is_set()):
                return Wait(self._next_wake(), on_change=True)
            self.gathering_since = now
        batch_at = self.gathering_since + self.coalesce_seconds
        if now < batch_at:
            return Wait(min(batch_at, self.next_resync), on_change=False)
        self.gathering_since = None
        self._reconcile(now)
        if self.retry_at is not None:
            return Wait(min(self.retry_at, self.next_resync), on_change=False)
        if self.collecting:
            return Wait(now, on_change=False)  # the next round of garbage collection
        return Wait(self._next_wake(), on_change=True)

    def _next_wake(self) -> float:
        return self.next_resync if self.relist_deadline is None else min(self.relist_deadline, self.next_resync)

    def request_full(self) -> None:
        """Run a full batch soon: re-read the store (which may have lost data) and rewrite."""
        self.full = True
        self.batch_due = True
        self.relist_deadline = None  # not to wait for a re-list: Redis may have lost data

    def _full_waits_for_relist(self, now: float) -> bool:
        """A resync's full batch waits until the re-list is in: it then reads Redis once
        against what the cluster holds now, and the re-list's pages and the full read's
        replies are not in memory at the same time (they were the sync's peak). Batches
        meanwhile are incremental, so a change is not held back."""
        return self.relist_deadline is not None and now < self.relist_deadline and self.cache.relisting()

    def _resync_if_due(self, now: float) -> None:
        if self.next_resync is None:
            self.next_resync = now + self.resync_interval
        elif now >= self.next_resync:
            log.info("periodic resync")
            self.source.request_resync()
            self.next_resync = now + self.resync_interval
            waiting = self.relist_deadline  # still waiting for the last one: no later than asked then
            self.request_full()
            self.relist_deadline = waiting if waiting is not None else \
                now + min(RELIST_WAIT, self.resync_interval / 2)

    def _reconcile(self, now: float) -> None:
        """One batch of whatever the cache holds now; a store failure schedules a retry."""
        # Cleared before the snapshot: a change after this point sets it again and makes
        # another batch, so none is lost between the snapshot and the write.
        self.cache.changed.clear()
        self.batch_due = False
        self.collecting = False
        if not self.cache.listed():
            return  # not every kind listed yet: writing now could only be partial
        if self.leader is not None and not self.leader.may_write():
            self.reconciler.known = None  # the leader writes meanwhile: re-read Redis once leading
            log.debug("not the leader: cache updated, nothing written")
            return  # a follower keeps its cache warm; the elector wakes the loop when we lead
        full = self.full and not self._full_waits_for_relist(now)
        try:
            with heap.batch():  # over a big cluster: see sync.sources.heap
                outcome = self.reconciler.reconcile(self.cache.snapshot(), full=full)
        except NotLeading as exc:
            log.info("not written: %s", exc)  # stepped down mid-batch; the elector wakes the loop
            self.request_full()
            return
        except StoreError as exc:
            self.store_failures += 1
            delay = self.backoff.next_delay()
            log.error("Redis failed (%s); nothing is lost, retrying in %.1fs", exc, delay)
            self.request_full()  # unsure what was written: re-read the store on the retry
            self.retry_at = now + delay
            return
        # Every batch, written or not, so a reader of the debug log (or a test) can tell
        # that a batch ran after something happened.
        log.debug("%s batch done: %s", "full" if full else "incremental", outcome.changes.summary())
        if outcome.more_garbage:
            self.collecting = self.batch_due = True
        if full:
            allocator.release_freed()
            self.full = False
            self.relist_deadline = None
        self.batches += 1
        self.backoff.reset()

    # -- the loops -----------------------------------------------------------------------
    def run_once(self) -> int:
        """List everything once, reconcile fully, return the number of key writes."""
        self.source.list_once()
        writes, more = self._full_round()
        # Stale records beyond one round: a round each until none is left. Bounded: each
        # round deletes some (more_garbage says so), and nothing adds any meanwhile.
        while more:
            written, more = self._full_round()
            writes += written
        return writes

    def _full_round(self) -> tuple[int, bool]:
        """One full reconciliation: its key writes, and whether garbage is left. Only
        those outlive it: its outcome (the changes, every name it deleted) is let go
        before the next round reads Redis, as the loop's step lets go of its own."""
        with heap.batch():  # the rules' objects kept out of collections, as the list's are
            outcome = self.reconciler.reconcile(self.cache.snapshot(), full=True)
        return outcome.changes.key_writes(), outcome.more_garbage

    def run(self, stop: threading.Event, max_batches: int | None = None) -> None:
        """Run until `stop` is set (or `max_batches` reconciliations, for tests)."""
        self.source.start()
        # The loop may sleep on the cache's event: wake it when asked to stop.
        threading.Thread(target=lambda: (stop.wait(), self.cache.changed.set()),
                         name="stop-waker", daemon=True).start()
        try:
            while not stop.is_set() and (max_batches is None or self.batches < max_batches):
                if self.health is not None:
                    self.health.beat()  # on the health's own clock, which its probes read
                wait = self.step(self.clock())
                # Wake at least every heartbeat interval, so /healthz sees a live loop when idle,
                # and whenever the data-loss marker is due for a check.
                timeout = max(0.0, min(wait.until - self.clock(), HEARTBEAT_INTERVAL,
                                       self.marker_watch.seconds_to_next(self.clock())))
                if wait.on_change:
                    self.cache.changed.wait(timeout)
                else:
                    stop.wait(timeout)
        finally:
            self.source.close()

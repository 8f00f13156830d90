"""Keeping CPython's cycle collector off the objects of a big list.

A list of a million Containers leaves millions of dicts and lists alive in the cache.
CPython's cycle collector scans every tracked object on each collection of its oldest
generation, and starts one whenever the long-lived objects grew by a quarter: while the
pages are parsed, and again while the rules run over them, collection after collection
rescans the whole cache. Measured at 1M Containers on a 2-core machine: about half of a
61 s initial sync (33 s with the collector off). None of those objects is part of a
cycle (parsed JSON, and dicts built from it), so scanning them finds nothing.

- `paused(...)` turns automatic collection off while a list is read. Counted, because
  the watchers list in parallel threads: the last one to finish turns it back on.
- When the last list ends and the lists read at least `FREEZE_AT` objects,
  `gc.freeze()` moves every object alive into the permanent generation, which
  collections never scan. Frozen objects are still freed by reference counting, as the
  cache's replaced objects are; only a cycle among them would outlive its use. So the
  next list of a kind frozen this way (a re-list), before it reads anything, undoes the
  freeze and collects once: whatever cyclic garbage was frozen is freed then. That
  collection is not made right after a list (where it would scan the million objects
  just read: 1.5-3.3 s at 1M) but before the kind's next one.
- `batch()` does the same for a batch of the rules over such a heap: no automatic
  collection while it runs, and what it leaves alive frozen. What a batch makes is young
  (the rules' records, and, before they were layered (sync.layered), copies of the
  published records and a tuple of the cache's objects, 100,000 entries each): the next
  collections of the young generations traversed it, then the next full one. Running the churn benchmark's changes
  through the batch path in one process (100,000 names, nothing frozen), collections took
  23% of batches of 440 changes, and batches of 88 went from 51 to 32 ms with collection
  off during each and a freeze after it. Cyclic garbage a batch leaves (10 unreachable
  objects after 200 such batches) waits for the next re-list's collection, which the
  periodic resync brings at least every resync interval (300 s by default).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from typing import Iterator

log = logging.getLogger("mountdns.sync.heap")

# Lists smaller than this leave the collector as it was: its rescans of them cost little.
FREEZE_AT = 50_000


class _Pauses:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._was_enabled = False
        self._listed = 0  # objects read by the lists of this round (since collection went off)
        self._kinds: set[str] = set()  # the kinds listed this round
        self._thawed = False  # this round undid a freeze
        self._frozen_kinds: set[str] = set()  # the kinds whose lists were frozen last
        self._batched = False  # a batch over a frozen heap ran this round
        # Whether we froze the heap (and have not undone it since). Kept here because
        # gc.get_freeze_count() walks every frozen object: ~40 ms at 100,000 Containers.
        self._frozen = False

    def _enter(self) -> None:
        """One more holder (the lock held): the first turns automatic collection off."""
        if self._holders == 0:
            self._was_enabled = gc.isenabled()
            self._listed, self._kinds, self._thawed, self._batched = 0, set(), False, False
            gc.disable()
        self._holders += 1

    def _exit(self) -> None:
        """One holder fewer (the lock held): the last freezes what is alive when the round
        read a big list, undid a freeze, or ran a batch over a frozen heap, and turns
        collection back on if it was."""
        self._holders -= 1
        if self._holders == 0:
            # Refrozen after a thaw even when this round was small: what the thaw let
            # go of is still alive, and the rules would scan it again.
            if self._listed >= FREEZE_AT or self._thawed or self._batched:
                gc.freeze()
                self._frozen = True
                self._frozen_kinds |= self._kinds
                if self._kinds and log.isEnabledFor(logging.DEBUG):
                    log.debug("after a list of %d objects: %d objects frozen", self._listed,
                              gc.get_freeze_count())
            if self._was_enabled:
                gc.enable()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """No automatic cycle collection while a batch runs over a heap a big list froze,
        and what the batch leaves alive frozen after it; over an unfrozen heap (a small
        cluster) nothing changes."""
        with self._lock:
            frozen = self._frozen
            if frozen:
                self._enter()
                self._batched = True
        try:
            yield
        finally:
            if frozen:
                with self._lock:
                    self._exit()

    @contextlib.contextmanager
    def paused(self, kind: str) -> Iterator["_Counter"]:
        """No automatic cycle collection inside; yields a counter the caller adds the
        number of objects it read to. A list of a kind frozen before (a re-list: its
        objects are about to be replaced) first undoes the freeze and collects; a list
        of another kind (the Pods listed right after the Containers) does not."""
        with self._lock:
            self._enter()
            self._kinds.add(kind)
            if kind in self._frozen_kinds and self._frozen:
                _thaw()
                self._frozen = False
                self._frozen_kinds = set()
                self._thawed = True
        counter = _Counter()
        try:
            yield counter
        finally:
            with self._lock:
                self._listed += counter.objects
                self._exit()


class _Counter:
    objects = 0

    def add(self, n: int) -> None:
        self.objects += n


def _thaw() -> None:
    """Undo the last freeze and collect once: cycles frozen with the last list are freed."""
    started = time.monotonic()
    # Counted for the debug line only: the count walks every frozen object.
    frozen = gc.get_freeze_count() if log.isEnabledFor(logging.DEBUG) else None
    gc.unfreeze()
    found = gc.collect()
    if frozen is not None:
        log.debug("before a list: %d objects unfrozen, full collection (%d unreachable) in %.0f ms",
                  frozen, found, (time.monotonic() - started) * 1000)


_PAUSES = _Pauses()
paused = _PAUSES.paused
batch = _PAUSES.batch

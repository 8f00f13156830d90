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
- When the last list ends and the lists read at least `FREEZE_AT` objects, one full
  collection frees whatever cyclic garbage was made meanwhile, then `gc.freeze()` moves
  every object alive into the permanent generation, which collections never scan. The
  previous freeze is undone first, so that full collection also sees what was frozen
  before (a cycle that became garbage since is freed then, not kept for good). Frozen
  objects are still freed by reference counting, as the cache's replaced objects are.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from typing import Iterator

log = logging.getLogger("mountdns.sync.heap")

# Below this many listed objects a pause is cheaper than the full collection that settles it.
FREEZE_AT = 50_000


class _Pauses:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._was_enabled = False
        self._listed = 0

    @contextlib.contextmanager
    def paused(self) -> Iterator["_Counter"]:
        """No automatic cycle collection inside; yields a counter the caller adds the
        number of objects it read to."""
        with self._lock:
            if self._holders == 0:
                self._was_enabled = gc.isenabled()
                self._listed = 0
                gc.disable()
            self._holders += 1
        counter = _Counter()
        try:
            yield counter
        finally:
            with self._lock:
                self._holders -= 1
                self._listed += counter.objects
                if self._holders == 0:
                    if self._listed >= FREEZE_AT:
                        _settle(self._listed)
                    if self._was_enabled:
                        gc.enable()


class _Counter:
    objects = 0

    def add(self, n: int) -> None:
        self.objects += n


def _settle(listed: int) -> None:
    started = time.monotonic()
    gc.unfreeze()
    found = gc.collect()
    gc.freeze()
    log.debug("after a list of %d objects: full collection (%d unreachable) and %d objects frozen in %.0f ms",
              listed, found, gc.get_freeze_count(), (time.monotonic() - started) * 1000)


_PAUSES = _Pauses()
paused = _PAUSES.paused

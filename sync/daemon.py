"""The sync loop: wait for the cache to change, gather a burst of events, reconcile once.

Coalescing is what turns a burst of 1,000 watch events into a few Redis transactions:
after the first change the loop waits `coalesce_seconds` more, then reconciles whatever
the cache holds. Nothing is written before every kind has been listed once. A store
failure is logged and retried with backoff; the watchers keep running meanwhile. A full
resync (re-list, re-read Redis, collect garbage) runs every `resync_interval`.
"""

from __future__ import annotations

import logging
import threading
import time

from mountdns.store import StoreError
from mountdns.backoff import Backoff
from sync.data_loss import MarkerWatch
from sync.sources.cache import ObjectCache
from sync.reconciler import Reconciler

log = logging.getLogger("mountdns.sync")


class SyncDaemon:
    def __init__(self, cache: ObjectCache, source, reconciler: Reconciler, *,
                 resync_interval: float = 300.0, coalesce_seconds: float = 0.05,
                 marker_watch: MarkerWatch | None = None):
        self.cache = cache
        self.source = source
        self.reconciler = reconciler
        self.resync_interval = resync_interval
        self.coalesce_seconds = coalesce_seconds
        self.backoff = Backoff(initial=0.2, maximum=10.0)
        self.store_failures = 0
        self.marker_watch = marker_watch or MarkerWatch(reconciler)  # Redis data loss, within seconds

    def run_once(self) -> int:
        """List everything once, reconcile fully, return the number of key writes."""
        self.source.list_once()
        snapshot = self.cache.snapshot()
        outcome = self.reconciler.reconcile(snapshot, full=True)
        return outcome.changes.key_writes()

    def run(self, stop: threading.Event, max_batches: int | None = None) -> None:
        """Run until `stop` is set (or `max_batches` reconciliations, for tests)."""
        self.source.start()
        # The loop sleeps on the cache's event: wake it when asked to stop.
        threading.Thread(target=lambda: (stop.wait(), self.cache.changed.set()),
                         name="stop-waker", daemon=True).start()
        next_resync = time.monotonic() + self.resync_interval
        full = True
        batches = 0
        try:
            while not stop.is_set() and (max_batches is None or batches < max_batches):
                timeout = max(0.0, min(next_resync - time.monotonic(), self.marker_watch.seconds_to_next()))
                self.cache.changed.wait(timeout)
                if stop.is_set():
                    break
                if self.marker_watch.data_lost():
                    full = True
                if time.monotonic() >= next_resync:
                    log.info("periodic resync")
                    self.source.request_resync()
                    next_resync = time.monotonic() + self.resync_interval
                    full = True
                if not self.cache.changed.is_set() and not full:
                    continue
                stop.wait(self.coalesce_seconds)
                self.cache.changed.clear()
                if not self.cache.listed():
                    continue  # not every kind listed yet: writing now could only be partial
                try:
                    self.reconciler.reconcile(self.cache.snapshot(), full=full)
                    full = False
                    batches += 1
                    self.backoff.reset()
                except StoreError as exc:
                    self.store_failures += 1
                    delay = self.backoff.next_delay()
                    log.error("Redis failed (%s); nothing is lost, retrying in %.1fs", exc, delay)
                    full = True
                    self.cache.changed.set()  # come back to it after the delay
                    stop.wait(delay)
        finally:
            self.source.close()

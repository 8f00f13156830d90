"""The purge follower: purges this backend's PowerDNS caches of the names the sync changed.

The sync announces the names each batch changes on a Redis Stream, in the transaction that
writes them (mountdns.announce). One follower per backend instance (it runs in
gunicorn's master process, see pdns_backend.cli, not in every worker) reads that stream
on the same Redis the workers read, and flushes each name from its own PowerDNS through
the HTTP API (`--pdns-api-url`/`--pdns-api-key`). Because replication applies each
transaction whole and in order, the data is in the replica before the announcement is.

Gaps: the follower remembers the last entry ID it handled. When it starts, reconnects,
finds entries it never saw trimmed from the stream, or the stream's history replaced
(Redis restarted empty, a replica resynchronised from another primary), it cannot know
what changed meanwhile, so it purges every zone whole.

Lookups in flight: a lookup that read Redis just before a write but reaches PowerDNS's
caches just after the purge puts the old answer back for a whole cache TTL. Under load,
when lookups queue in PowerDNS and in the backend, that window is wide. So every purge is
sent again after each delay in `repeat_after`; the last one is longer than PowerDNS's
backend timeout (2 s in pdns/pdns.conf), past which PowerDNS drops a lookup's answer.

A purge that fails is counted and retried with backoff; it never holds up reading the
stream (entries read meanwhile merge into what is still owed).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import quote

import redis
import urllib3
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mountdns import announce
from mountdns.backoff import Backoff
from mountdns.keyspace import DEFAULT_PREFIX, Keys
from mountdns.names import absolute
from mountdns.purge import merge_waves, purge_targets

log = logging.getLogger("mountdns.backend.purge")

# Sent again after these many seconds: soon (most in-flight lookups finish within
# milliseconds), then once more after PowerDNS's 2 s backend timeout has passed.
REPEAT_AFTER = (0.1, 0.5, 2.5)
READ_COUNT = 100  # entries per XREAD
BLOCK_SECONDS = 1.0  # longest XREAD wait: also how soon a replaced history is noticed
MAX_BACKOFF = 5.0


class PurgeError(RuntimeError):
    """PowerDNS did not flush a name from its caches."""


class PdnsApi:
    """One PowerDNS's cache flush endpoint (PUT /api/v1/servers/localhost/cache/flush)."""

    def __init__(self, url: str, api_key: str, timeout: float = 2.0):
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False)

    def flush(self, name: str) -> None:
        """Flush `name` and everything below it from the packet and query caches."""
        endpoint = f"{self.url}/api/v1/servers/localhost/cache/flush?domain={quote(absolute(name))}"
        try:
            response = self.http.request("PUT", endpoint, headers={"X-API-Key": self.api_key})
        except urllib3.exceptions.HTTPError as exc:
            raise PurgeError(f"PowerDNS at {self.url} unreachable: {exc}") from exc
        if response.status != 200:
            raise PurgeError(f"PowerDNS at {self.url} answered HTTP {response.status}: {response.data[:200]!r}")


class FollowerMetrics:
    """Counters of one follower, in their own registry (exposed by whoever serves metrics)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.purges_sent = Counter("mountdns_backend_purges_sent", "cache flushes PowerDNS accepted", registry=r)
        self.purges_failed = Counter("mountdns_backend_purges_failed", "cache flushes that failed (each is retried)",
                                     registry=r)
        self.announcements = Counter("mountdns_backend_announcements_read", "announcements read from the stream",
                                     registry=r)
        self.gaps = Counter("mountdns_backend_announcement_gaps", "times every zone was purged whole, by reason",
                            ["reason"], registry=r)
        self.lag = Histogram("mountdns_backend_announcement_lag_seconds",
                             "announcement read time minus its write time (the primary's clock)",
                             buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                             registry=r)
        # Only the master process sets it; "max" keeps one series when the backend's
        # workers merge the master's metrics into their /metrics (multiprocess mode).
        self.pending = Gauge("mountdns_backend_purges_pending", "names or zones owed a flush (incl. repeats)",
                             registry=r, multiprocess_mode="max")


@dataclass
class _Due:
    at: float
    waves: list[set[str]]


class PurgeFollower:
    """Follows the announcements on `client` and flushes the names from `api`.

    `read()` and `purge_due()` each do one step and never sleep, so tests drive them with
    a fake `clock`; `run(stop)` loops over both until `stop` is set.
    """

    def __init__(self, client: redis.Redis, api: PdnsApi, prefix: str = DEFAULT_PREFIX, *,
                 repeat_after: Iterable[float] = REPEAT_AFTER, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time, max_backoff: float = MAX_BACKOFF,
                 metrics: FollowerMetrics | None = None):
        self.redis = client
        self.api = api
        self.keys = Keys(prefix)
        self.repeat_after = tuple(sorted(repeat_after))
        self.clock = clock
        self.wall_clock = wall_clock
        self.max_backoff = max_backoff
        self.metrics = metrics or FollowerMetrics()
        self.last_id: str | None = None  # None: not in step with the stream (start, or a gap)
        self.replication_id: str | None = None
        self.zones: set[str] = set()
        self.due: list[_Due] = []
        self._backoff = Backoff(initial=0.1, maximum=max_backoff)  # between failed flushes

    # -- reading the stream ---------------------------------------------------------
    def read(self, block: float | None = None) -> int:
        """Read the announcements after the last one handled (waiting up to `block`
        seconds for one), and queue their purges. After a gap every zone is queued whole.
        Returns the entries read. Raises redis.RedisError; the caller then calls
        `lost_connection()`."""
        if self.last_id is None:
            self._resynchronise("start" if self.replication_id is None else "reconnect")
        nxt = self.next_due()
        if block is not None and nxt is not None:  # wake up for the next purge that falls due
            block = min(block, nxt - self.clock())
        block_ms = None if block is None or block <= 0 else max(1, int(block * 1000))
        reply = self.redis.xread({self.keys.announcements: self.last_id}, count=READ_COUNT, block=block_ms)
        entries = reply[0][1] if reply else []
        gap = self._history_gap()
        if gap:
            self._resynchronise(gap)
            return 0
        now_wall = self.wall_clock()
        for entry_id, fields in entries:
            self.last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            self.metrics.announcements.inc()
            self.metrics.lag.observe(max(0.0, now_wall - announce.parse_id(self.last_id)[0] / 1000))
            try:
                item = announce.decode(fields)
            except announce.AnnouncementError as exc:
                log.warning("%s; purging every zone", exc)
                self._queue([set(self.zones)])
                continue
            self.zones |= item.zones
            self._queue([set(w) for w in item.waves])
        return len(entries)

    def lost_connection(self, error: Exception) -> None:
        """Redis failed: once back, resynchronise (which purges every zone)."""
        if self.last_id is not None:
            log.warning("lost the announcement stream (will purge every zone when back): %s", error)
        self.last_id = None
        self.replication_id = self.replication_id or ""  # resuming, not starting

    def _resynchronise(self, reason: str) -> None:
        """Take the stream's end as the position and purge every zone whole: whatever
        was announced before it may not have been purged."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.xrevrange(self.keys.announcements, count=1)
        pipe.smembers(self.keys.zones)
        pipe.info("replication")
        last, zones, replication = pipe.execute()
        self.last_id = _text(last[0][0]) if last else "0-0"
        self.replication_id = str(replication.get("master_replid", ""))
        self.zones = {_text(z) for z in zones}
        self.metrics.gaps.labels(reason).inc()
        # A gap after the start is worth an operator's attention: it costs every zone's caches.
        log.log(logging.INFO if reason == "start" else logging.WARNING,
                "announcements followed from %s (%s): purging zones %s whole", self.last_id, reason,
                sorted(self.zones))
        self._queue([set(self.zones)])

    def _history_gap(self) -> str | None:
        """Why the announcements after last_id cannot all be read any more, if they cannot."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(self.keys.announcements)
        pipe.info("replication")
        exists, replication = pipe.execute()
        if str(replication.get("master_replid", "")) != self.replication_id:
            return "replication"  # resynchronised from another primary: its history may differ
        last = announce.parse_id(self.last_id)
        if not exists:
            return "stream-reset" if last != (0, 0) else None
        try:
            info = self.redis.xinfo_stream(self.keys.announcements)
        except redis.ResponseError:  # deleted between the two calls
            return "stream-reset"
        if announce.parse_id(info.get("last-generated-id", b"0-0")) < last:
            return "stream-reset"  # restarted empty, or a primary that never had our entries
        # Trimming drops the oldest entries first (and does not move max-deleted-entry-id):
        # when the oldest entry left is past ours, ours is gone and maybe some after it.
        first = info.get("first-entry")
        if first and announce.parse_id(first[0]) > last:
            if last != (0, 0):
                return "trimmed"
            if int(info.get("entries-added", 0)) > int(info.get("length", 0)):
                return "trimmed"  # followed from an empty stream, and entries are gone
        return None

    # -- purging ----------------------------------------------------------------------
    def _queue(self, waves: list[set[str]]) -> None:
        waves = [w for w in waves if w]
        if not waves:
            return
        now = self.clock()
        for delay in (0.0, *self.repeat_after):
            self.due.append(_Due(now + delay, [set(w) for w in waves]))
        self._update_pending()

    def next_due(self) -> float | None:
        return min((d.at for d in self.due), default=None)

    def purge_due(self) -> int:
        """Flush everything due now, in wave order; on a failure keep the rest for later
        (with backoff). Returns the flushes PowerDNS accepted."""
        now = self.clock()
        ready = [d for d in self.due if d.at <= now]
        if not ready:
            return 0
        self.due = [d for d in self.due if d.at > now]
        waves: list[set[str]] = []
        for item in ready:
            waves = merge_waves(waves, item.waves)
        targets = _without_covered(purge_targets(waves, self.zones))
        sent = 0
        for i, target in enumerate(targets):
            try:
                self.api.flush(target)
            except PurgeError as exc:
                self.metrics.purges_failed.inc()
                delay = self._backoff.next_delay()
                log.warning("purging %s failed (retrying in %.1f s): %s", target, delay, exc)
                self.due.append(_Due(now + delay, [set(targets[i:])]))
                break
            self.metrics.purges_sent.inc()
            sent += 1
        else:
            self._backoff.reset()
        self._update_pending()
        log.debug("purged %s", targets[:sent])
        return sent

    def _update_pending(self) -> None:
        self.metrics.pending.set(sum(len(w) for d in self.due for w in d.waves))

    # -- the loop ---------------------------------------------------------------------
    def run(self, stop: threading.Event, block: float = BLOCK_SECONDS,
            ready: Callable[[], bool] | None = None, ready_timeout: float = 30.0) -> None:
        """Read and purge until `stop` is set. Redis errors are logged and retried with
        backoff; every resumption purges every zone.

        `ready` says whether the backend answers lookups yet: PowerDNS's cache flush calls
        the backend, and while no worker answers it fails after PowerDNS's 2 s backend
        timeout (HTTP 500), so the first purge waits for it (at most `ready_timeout`)."""
        deadline = self.clock() + ready_timeout
        while ready is not None and not stop.is_set() and self.clock() < deadline:
            try:
                if ready():
                    break
            except Exception:  # noqa: BLE001 - not ready yet
                pass
            stop.wait(0.02)
        backoff = Backoff(initial=0.1, maximum=self.max_backoff)  # between reconnects to Redis
        while not stop.is_set():
            try:
                self.purge_due()
                self.read(block)
                backoff.reset()
            except redis.RedisError as exc:
                self.lost_connection(exc)
                delay = backoff.next_delay()
                nxt = self.next_due()
                stop.wait(delay if nxt is None else max(0.0, min(delay, nxt - self.clock())))
            except Exception:  # noqa: BLE001 - the follower must outlive any surprise; logged
                log.exception("purge follower error; resynchronising")
                self.last_id = None
                stop.wait(1.0)


class FollowerThread:
    """A PurgeFollower on a daemon thread, stoppable."""

    def __init__(self, follower: PurgeFollower, ready: Callable[[], bool] | None = None):
        self.follower = follower
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=follower.run, args=(self.stop_event,), kwargs={"ready": ready},
                                       name="purge-follower", daemon=True)

    def start(self) -> "FollowerThread":
        self.thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)


def _without_covered(targets: list[str]) -> list[str]:
    """Drop names below another target: PowerDNS flushes a name and everything below it,
    so after a gap the whole zones make the announced names in them redundant."""
    chosen = set(targets)
    return [t for t in targets if not any(t.endswith("." + other) for other in chosen)]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

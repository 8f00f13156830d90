"""PowerDNS's SOA probes answered from memory, with a freshness bound.

With its caches off, PowerDNS starts every query by asking the backend for the zone's
apex (`lookup/<zone>/ANY`, the SOA probe), and does it again for a CNAME's target: a
third of the lookups behind a parent query and of those behind a child's. Every other
lookup's Redis reply already carries the zone it fell in, whole (the resolve script
returns the zone's SOA and NS fields with the name's record), so a worker sees the
current definition of each zone it serves many times a second under load.

The table keeps, per zone, the definition from the latest Redis reply and the time of
that read. An apex lookup is answered from the table only while that read is at most
`max_age` seconds old; otherwise it goes to Redis like any lookup, and its reply renews
the entry. So an apex answer is never older than `max_age`: a zone added, changed (its
serial, NS, SOA fields) or removed in Redis, or a Redis restarted empty, is answered as
Redis holds it within `max_age` of the change, whatever happens to the announcement
stream. With PowerDNS's shipped caches the same answers are cached for up to
`cache-ttl`/`query-cache-ttl` (20 s) anyway; the bound here is far inside that.

What a reply teaches, besides the zone it names: Redis found that zone by walking up
from the asked name, so no name between the two is a zone now; "outside" means none of
the name's suffixes is. Those entries are dropped at once.

Only apex lookups are answered here; a name's own records always come from Redis.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from mountdns.records import Resolution, Zone


def suffixes(name: str):
    """`name` and every name above it, longest first (`a.b.c`, `b.c`, `c`)."""
    while True:
        yield name
        dot = name.find(".")
        if dot < 0:
            return
        name = name[dot + 1:]


class ZoneTable:
    """Zone definitions as last read from Redis, each trusted for `max_age` seconds."""

    def __init__(self, max_age: float, clock: Callable[[], float] = time.monotonic):
        if max_age < 0:
            raise ValueError(f"max_age must not be negative, got {max_age}")
        self.max_age = max_age
        self.clock = clock
        self._zones: dict[str, tuple[Zone, float]] = {}
        self._lock = threading.Lock()  # a worker may run several event loops

    @property
    def enabled(self) -> bool:
        return self.max_age > 0

    def apex(self, qname: str, now: float | None = None) -> Resolution | None:
        """The apex Resolution of normalized `qname` when it is a zone read from Redis
        at most `max_age` ago, else None (ask Redis)."""
        entry = self._zones.get(qname)
        if entry is None:
            return None
        zone, read_at = entry
        if (self.clock() if now is None else now) - read_at > self.max_age:
            return None
        return Resolution("apex", zone)

    def learn(self, qname: str, resolution: Resolution, read_at: float) -> None:
        """Take in what Redis answered for normalized `qname`, read at `read_at` (a time
        taken before the command was sent, so an entry never looks fresher than it is)."""
        if not self.enabled:
            return
        zone = resolution.zone
        with self._lock:
            for name in suffixes(qname):
                if zone is not None and name == zone.name:
                    held = self._zones.get(name)
                    if held is None or held[1] <= read_at:  # never replace a newer read by an older one
                        self._zones[name] = (zone, read_at)
                    return
                # Redis walked past this name (or found no zone at all): not a zone now.
                self._zones.pop(name, None)

    def forget(self) -> None:
        """Drop everything (after a store error the next apex lookups go to Redis)."""
        with self._lock:
            self._zones.clear()

    def __len__(self) -> int:
        return len(self._zones)

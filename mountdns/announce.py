"""Announcements: the names each committed batch changed, written in the batch's own write.

Every backend instance purges its own PowerDNS's caches, so the sync cannot call them all
(it does not know them, and in a cluster they come and go). Instead the sync appends one
entry per batch to a Redis Stream (`Keys.announcements`) inside the script call that
writes the records (mountdns.store.scripts), and each backend follows the stream on the Redis it reads
(pdns_backend.purge_follower). Replication applies a transaction as a whole, in order,
so when a follower reading a replica sees the entry, the replica already holds the data
the entry announces: a purge can never land before the new data.

Why a Stream and not Pub/Sub: Pub/Sub drops whatever is published while a subscriber is
disconnected, and the subscriber cannot tell. A Stream keeps the last `MAXLEN` entries
with increasing IDs; a follower remembers the last ID it handled, resumes from it after a
reconnect, and can tell when entries it never saw were trimmed (`max-deleted-entry-id`)
or when the stream's history was replaced (a Redis restarted empty, a replica resynced
from a new primary), and then purges the affected zones whole. The entry ID also carries
the primary's clock at the write, which gives the follower its announcement lag.

An entry, as redis-cli shows it (waves: names to purge in order, parents before the
children chained to them; zones: the zones the batch touched):

    xrevrange mountdns:announcements + - count 1
    1) 1) "1764633600000-0"
       2) 1) "waves"  2) "[[\"container_b_0.domain.foo.bar\"],[\"container_d_0.domain.foo.bar\"]]"
          3) "zones"  4) "[\"domain.foo.bar\"]"
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable, Iterator

from mountdns.names import zone_finder
from mountdns.plan import Changes
from mountdns.purge import MAX_NAMES_PER_PURGE, purge_waves
from mountdns.records import State

# Entries kept (approximately: trimming works on whole stream nodes, which is much
# cheaper). A follower more than this many batches behind purges its zones whole.
MAXLEN = 1000


class AnnouncementError(ValueError):
    """A stream entry is not an announcement this version can read."""


@dataclass(frozen=True)
class Announcement:
    """Names to purge, wave by wave (a name in wave i+1 is answered from one in wave i),
    and the zones they lie in."""

    waves: tuple[frozenset[str], ...]
    zones: frozenset[str]

    @property
    def names(self) -> frozenset[str]:
        return frozenset().union(*self.waves)


def from_changes(changes: Changes, before: State, after: State, zones: Iterable[str],
                 extra_waves: Iterable[set[str]] = (), waves: list[set[str]] | None = None) -> Announcement | None:
    """The announcement for a batch taking the store from `before` to `after`, or None
    when no answer changes (a serial bump alone). `extra_waves` are purged after the
    batch's own (the names of an earlier write whose outcome was unknown). Past
    MAX_NAMES_PER_PURGE names the waves become the zones themselves (PowerDNS flushes a
    name and all below it), which keeps an entry small even for the first sync of
    100,000 names. `waves`, if given, are what purge_waves would find (a caller that
    keeps indexes of the records finds them without a pass over every name)."""
    extra_waves = [set(w) for w in extra_waves if w]
    zone_of = zone_finder(zones)
    if waves is None and (any(len(names) > MAX_NAMES_PER_PURGE for names in _first_wave_parts(changes))
                          or any(len(wave) > MAX_NAMES_PER_PURGE for wave in extra_waves)):
        # Zones for sure: found without the waves' sets of every name (a full write's or a
        # garbage collection's 100,000, at the sync's peak).
        return _collapsed(_purged_names(changes, before, after, extra_waves), zone_of)
    waves = (purge_waves(changes, before, after) if waves is None else waves) + extra_waves
    if not waves:
        return None
    if _more_than(waves, MAX_NAMES_PER_PURGE):
        return _collapsed((name for wave in waves for name in wave), zone_of)
    names = set().union(*waves)
    touched = frozenset(z for z in map(zone_of, names) if z)
    return Announcement(tuple(frozenset(w) for w in waves), touched)


def _collapsed(names: Iterable[str], zone_of) -> Announcement:
    """The announcement of so many names that their zones are purged instead: name by
    name, without a set of them (repeats are harmless)."""
    collapsed, touched = set(), set()
    for name in names:
        zone = zone_of(name)
        if zone:
            collapsed.add(zone)
            touched.add(zone)
        else:
            collapsed.add(name)
    return Announcement((frozenset(collapsed),), frozenset(touched))


def _first_wave_parts(changes: Changes) -> tuple:
    """The sections of `changes` whose names purge_waves's first wave holds (with the
    parents on moved nodes)."""
    return (changes.parents_put, changes.parents_delete, changes.children_put, changes.children_delete,
            changes.zones_put)


def _purged_names(changes: Changes, before: State, after: State, extra_waves: list[set[str]]) -> Iterator[str]:
    """Every name of purge_waves(changes, before, after) and of `extra_waves`, some more
    than once, found from the changes and the states themselves: the first wave is asked
    of the sections it is made of rather than built, and only the (few) names chained to
    it below are collected into sets."""
    parts = _first_wave_parts(changes)
    moved = set(changes.nodes_put) | set(changes.nodes_delete)
    before_parents, after_parents = before.parents, after.parents
    for part in parts:
        yield from part
    if moved:
        for state in (before, after):
            yield from (p for p, node in state.parents.items() if node in moved)

    parents_put, parents_delete, children_put, children_delete, zones_put = parts

    def first(name: str) -> bool:
        return (name in parents_put or name in parents_delete or name in children_put or name in children_delete
                or name in zones_put
                or bool(moved) and (before_parents.get(name) in moved or after_parents.get(name) in moved))

    later: list[set[str]] = []
    frontier = None  # the first wave
    while True:
        if frontier is None:
            found = {child for state in (before, after) for child, target in state.children.items()
                     if first(target) and not first(child)}
        else:
            found = {child for state in (before, after) for child, target in state.children.items()
                     if target in frontier and not first(child) and not any(child in wave for wave in later)}
        if not found:
            break
        later.append(found)
        frontier = found
        yield from found
    for wave in extra_waves:
        yield from wave


def _more_than(waves: list[set[str]], limit: int) -> bool:
    """Whether the waves name more than `limit` names together (a union of at most
    2 * `limit` of them is built on the way)."""
    seen: set[str] = set()
    for wave in waves:
        if len(wave) > limit:
            return True
        seen |= wave
        if len(seen) > limit:
            return True
    return False


def encode(announcement: Announcement) -> dict[str, str]:
    return {
        "waves": json.dumps([sorted(w) for w in announcement.waves], separators=(",", ":")),
        "zones": json.dumps(sorted(announcement.zones), separators=(",", ":")),
    }


def decode(fields: dict) -> Announcement:
    """An Announcement from a stream entry's fields (bytes or str)."""
    f = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
    try:
        waves = json.loads(f["waves"])
        zones = json.loads(f["zones"])
        if not (isinstance(waves, list) and all(isinstance(w, list) for w in waves)
                and isinstance(zones, list)):
            raise TypeError("waves must be a list of lists and zones a list")
        return Announcement(tuple(frozenset(str(n) for n in w) for w in waves if w),
                            frozenset(str(z) for z in zones))
    except (KeyError, TypeError, ValueError) as exc:
        raise AnnouncementError(f"unreadable announcement {fields!r}: {exc}") from exc


def parse_id(entry_id: bytes | str) -> tuple[int, int]:
    """A stream ID as (milliseconds, sequence), to compare IDs and measure lag."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError as exc:
        raise AnnouncementError(f"not a stream ID: {text!r}") from exc

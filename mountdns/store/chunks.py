"""Splitting a big batch into chunks a reader can live with.

One script call blocks every other Redis client while it runs: writing 200,000 names
at once held Redis for 250-450 ms, long enough for a backend lookup to time out and
PowerDNS to answer SERVFAIL. A batch of more than `size` record keys is therefore
written as several calls of at most `size` keys each, in an order that keeps every
record a lookup can reach complete between two calls:

  puts     nodes, then parents, then children   (what a name points at exists first)
  deletes  children, then parents, then nodes   (nothing left points at what goes)

Zones are put with the first chunk and deleted with the last, and the serial bumps ride
on the last chunk, so the SOA serial moves once, when everything is there.
"""

from __future__ import annotations

from itertools import islice
from typing import Iterator

from mountdns.plan import Changes

DEFAULT_CHUNK_KEYS = 1000

# Sections of Changes in write order; (field, is a put mapping).
_ORDER = (
    ("nodes_put", True),
    ("parents_put", True),
    ("children_put", True),
    ("children_delete", False),
    ("parents_delete", False),
    ("nodes_delete", False),
)


def count(changes: Changes, size: int = DEFAULT_CHUNK_KEYS) -> int:
    """How many batches `split` makes of `changes`."""
    if size < 1:
        raise ValueError(f"chunk size {size} must be at least 1")
    writes = changes.key_writes()
    return 1 if writes <= size else -(-writes // size)


def split(changes: Changes, size: int = DEFAULT_CHUNK_KEYS) -> list[Changes]:
    """`changes` as a list of batches of at most `size` record keys each, in write order.
    A batch within the bound comes back as it is (one call, as before)."""
    return list(pieces(changes, size))


def pieces(changes: Changes, size: int = DEFAULT_CHUNK_KEYS) -> Iterator[Changes]:
    """The batches of `split`, one at a time: a writer holds one chunk's copy of the
    changes, not a second copy of a whole garbage collection's."""
    total = count(changes, size)
    if total == 1:
        yield changes
        return
    current: dict = {}
    room, made = size, 0

    def finish(chunk: dict) -> Changes:
        if made == 0:
            chunk["zones_put"] = changes.zones_put
        if made == total - 1:
            chunk["zones_delete"] = changes.zones_delete
            chunk["bump_serials"] = changes.bump_serials
        return Changes(**chunk)

    for field, is_put in _ORDER:
        section = getattr(changes, field)
        items = section.items() if is_put else sorted(section)
        iterator = iter(items)
        while True:
            piece = list(islice(iterator, room))
            if not piece:
                break
            current[field] = dict(piece) if is_put else frozenset(piece)
            room -= len(piece)
            if room == 0:
                yield finish(current)
                made += 1
                current, room = {}, size
    if current:
        yield finish(current)

"""Where published records live: Redis in production, memory in unit tests.

Both stores answer the same small interface, so the sync's reconciler and the backend's
lookup run unchanged against either:

  resolve(qname) -> Resolution     everything about one name, in one round trip
  zones() / zone(name)             the zones served
  read_state(like=, extra_limit=) / zone_state(zone)
                                   this owner's published state (in the objects of
                                   the desired state `like` where they agree, at most
                                   `extra_limit` records `like` lacks), or one zone's (AXFR)
  apply(changes, term=, mark=, require_marker=, announcement=, announce_always=) -> Applied
                                   a plan's changes, all or nothing, fenced by term, with
                                   the announcement of the names it changed
  take_term(term)                  a sync starting to lead records its term
  write_marker() / marker_present()  the owner's data-loss marker
  ping()                           reachable or not

A store is built for one owner id: it reads and writes that owner's records, and never
overwrites or deletes a name another owner holds (see `mountdns.keyspace`).
"""

from __future__ import annotations

from dataclasses import dataclass


class StoreError(RuntimeError):
    """The store (Redis) could not be read or written."""


class Fenced(StoreError):
    """A newer writer's term is recorded in the store: this writer must stop writing."""

    def __init__(self, message: str, recorded: int | None = None):
        super().__init__(message)
        self.recorded = recorded


class DataLost(StoreError):
    """The store no longer holds this owner's marker: its data was lost and must be rewritten."""


class UnknownOutcome(StoreError):
    """A write may or may not have been applied (the reply never came): re-read, never assume."""


@dataclass(frozen=True)
class Applied:
    """What a store did with a batch.

    `owned_elsewhere`: names (fqdns) the batch would have written or deleted but another
    owner holds; nothing of them was touched. `zones_elsewhere`: zones this owner
    configures differently from the owner that defined them first (the first one's
    definition stays).
    """

    owned_elsewhere: frozenset[str] = frozenset()
    zones_elsewhere: frozenset[str] = frozenset()


NOTHING_APPLIED = Applied()

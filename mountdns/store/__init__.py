"""Where published records live: Redis in production, memory in tests and dry runs.

Both stores answer the same small interface, so the sync's reconciler and the backend's
lookup run unchanged against either:

  resolve(qname) -> Resolution     everything about one name, in one round trip
  zones() / zone(name)             the zones served
  read_state() / zone_state(zone)  the whole published state, or one zone's (AXFR)
  apply(changes)                   a plan's changes, all or nothing
  ping()                           reachable or not
"""

from __future__ import annotations


class StoreError(RuntimeError):
    """The store (Redis) could not be read or written."""

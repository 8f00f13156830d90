"""Which names to purge from PowerDNS's caches after a batch, and in what order (pure).

PowerDNS caches whole answers (packet cache) and backend lookups (query cache); a child's
cached answer holds its parent's address, so when a node moves, the parents on it AND
every child chained to them must be purged, parents first. The sync computes the waves
with `purge_waves` and announces them with its write (`mountdns.announce`); each
backend's purge follower turns them into PowerDNS API calls with `purge_targets`.
"""

from __future__ import annotations

from typing import Iterable

from mountdns.names import containing_zone
from mountdns.plan import Changes
from mountdns.records import State

# Past this many names, purging the zones wholesale (one call each) is cheaper than
# one call per name, and PowerDNS refills its caches on demand anyway.
MAX_NAMES_PER_PURGE = 32


def purge_waves(changes: Changes, before: State, after: State) -> list[set[str]]:
    """The names whose answers may differ after `changes`, in the order to purge them:
    first the names that changed (and the parents on moved nodes), then the children
    chained to them, one level of nesting per wave.

    The order matters: a child's cached answer is rebuilt from its parent's cached
    records, so purging a child before its parent lets a query in between re-cache the
    old address for a whole cache TTL."""
    # One set grown in place, and no copies of it below: a full write changes every name,
    # and each set of 100,000 names is 4 MiB more at the sync's peak.
    names = set(changes.parents_put)
    for changed in (changes.parents_delete, changes.children_put, changes.children_delete):
        names.update(changed)
    moved_nodes = set(changes.nodes_put) | set(changes.nodes_delete)
    if moved_nodes:
        for state in (before, after):
            names.update(p for p, node in state.parents.items() if node in moved_nodes)
    # Not the apex for a mere serial bump: PowerDNS's cache flush takes a name AND all
    # below it, so purging the apex would empty the zone's caches on every batch. A stale
    # serial in a cached SOA lives at most one cache TTL. A changed zone definition (NS,
    # SOA fields, TTL) does change every answer: then the whole zone goes.
    names.update(changes.zones_put)
    waves = [names] if names else []
    # One scan of the children per level of nesting: unlike an index of every child by
    # target, it allocates nothing per child (that index cost 35-160 ms per batch at 100,000).
    # A child seen already is in one of the (few) waves: asked there rather than in a
    # union of them all.
    frontier = names
    while frontier:
        later = waves[1:]
        frontier = {child for state in (before, after) for child, target in state.children.items()
                    if target in frontier and child not in names
                    and not (later and any(child in wave for wave in later))}
        if frontier:
            waves.append(frontier)
    return waves


def purge_targets(waves: list[set[str]], zones: Iterable[str]) -> list[str]:
    """The API `domain` values to flush, in order: the names wave by wave, or whole zones
    when there are many (one call each instead of one per name; PowerDNS flushes the
    given name and everything below it)."""
    total = set().union(*waves) if waves else set()
    if len(total) <= MAX_NAMES_PER_PURGE:
        ordered, seen = [], set()
        for wave in waves:
            ordered += sorted(wave - seen)
            seen |= wave
        return ordered
    zones = list(zones)
    return sorted({containing_zone(n, zones) or n for n in total})


def merge_waves(first: list[set[str]], second: list[set[str]]) -> list[set[str]]:
    """Wave i of both, together; a name keeps its earliest wave."""
    merged = [set(a) | set(b) for a, b in zip(first, second)] + [set(w) for w in (first[len(second):] or second[len(first):])]
    seen = set()
    for wave in merged:
        wave -= seen
        seen |= wave
    return [w for w in merged if w]

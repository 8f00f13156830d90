"""A store's read given in the desired state's own objects wherever the two agree.

A full read of the store sits next to the desired state it is diffed against: at a
million names, a second million keys and values read into fresh strings, in fresh dicts,
only to find that nearly all of them equal the desired ones. `read_state(like=desired)`
of both stores therefore reads each mapping (nodes, parents, children) as three small
parts, what differs from `desired`:

  missing    desired names the store does not hold (as this owner's)
  differing  desired names it holds with another value: name -> that value
  extra      names it holds that are not desired: name -> value

and `compose` gives back the mapping the plain read would have given, equal to it key for
key, but made of `desired`'s own key and value objects wherever they agree, and `desired`
itself (no dict at all) when the store holds exactly it, and otherwise a read-only
`Composed` mapping over the four parts (no dict of every name either). Only the
differing values and the extra names (which a diff deletes, so it needs them anyway) are
fresh objects.
"""

from __future__ import annotations

from itertools import chain, filterfalse, islice
from typing import Collection, ItemsView, Iterator, Mapping

_ABSENT = object()


def compose(desired: Mapping, missing: Collection, differing: Mapping, extra: dict) -> Mapping:
    """The store's mapping: `desired` less `missing`, with `differing`'s values, plus
    `extra`. `missing` and `differing` name only keys of `desired`, `extra` none; `extra`
    (a dict the caller made for this) may come back as it is."""
    if not missing and not differing and not extra:
        return desired
    if len(missing) == len(desired):
        return extra  # nothing desired held (a first write): no dict of desired names
    return Composed(desired, missing, differing, extra)


class Composed(Mapping):
    """`desired` less `missing`, with `differing`'s values, plus `extra`, as one read-only
    mapping over the four: no dict of every name (at a garbage collection of as many
    stale names as live ones, a dict of both would be twice the size of the desired one,
    next to it). Lookups cost a few dict lookups, iteration chains the parts' own."""

    __slots__ = ("_desired", "_missing", "_differing", "_extra")

    def __init__(self, desired: Mapping, missing: Collection, differing: Mapping, extra: Mapping):
        self._desired = desired
        self._missing = missing if isinstance(missing, (set, frozenset)) else frozenset(missing)
        self._differing = differing
        self._extra = extra

    def get(self, key, default=None):
        value = self._desired.get(key, _ABSENT)
        if value is _ABSENT:
            return self._extra.get(key, default)
        if key in self._missing:
            return default
        return self._differing.get(key, value)

    def __getitem__(self, key):
        value = self.get(key, _ABSENT)
        if value is _ABSENT:
            raise KeyError(key)
        return value

    def __contains__(self, key) -> bool:
        return key in self._extra if key not in self._desired else key not in self._missing

    def __len__(self) -> int:
        return len(self._desired) - len(self._missing) + len(self._extra)

    def __iter__(self) -> Iterator:
        desired = self._desired if not self._missing else filterfalse(self._missing.__contains__, self._desired)
        return chain(desired, self._extra)

    def items(self) -> ItemsView:
        return _ComposedItems(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self.items())!r})"


class _ComposedItems(ItemsView):
    """The items of a Composed, iterated from its parts' own items."""

    def __iter__(self) -> Iterator:
        composed = self._mapping
        desired, missing, differing = composed._desired, composed._missing, composed._differing
        if missing or differing:
            held = ((key, differing.get(key, value)) for key, value in desired.items() if key not in missing)
        else:
            held = desired.items()
        return chain(held, composed._extra.items())


def parts(held: Mapping, desired: Mapping) -> tuple[list, dict, dict]:
    """(missing, differing, extra) of a mapping a store holds against `desired`, the keys
    of `missing` and `differing` being `desired`'s own objects."""
    missing, differing = [], {}
    for key, value in desired.items():
        if key not in held:
            missing.append(key)
        elif held[key] != value:
            differing[key] = held[key]
    extra = {key: value for key, value in held.items() if key not in desired}
    return missing, differing, extra


class ExtraRoom:
    """How many records the desired state does not have a bounded read still gathers
    (`read_state(extra_limit=)`), over all mappings together. A full batch deletes every
    extra record it reads: a Redis that outlived a cluster (or a namespace) of 500,000
    Containers held that many stale names, all read into strings at once next to the
    desired state (at 100,000 Containers and as many stale names, the collecting batch
    was the sync's peak). Read in rounds of a bounded number instead, each written before
    the next is read, the garbage no longer sets the peak, whatever its size.

    A store reads children, then parents, then nodes: once the room is used up nothing
    more is gathered (`cut`), so no stale parent is collected before all the stale
    children that might point at it, nor a stale node or zone before the parents in it.
    `limit` None: no bound."""

    __slots__ = ("left", "cut")

    def __init__(self, limit: int | None):
        if limit is not None and limit < 1:
            raise ValueError(f"extra_limit must be at least 1, not {limit}")
        self.left = limit
        self.cut = False  # stopped gathering: the store may hold more than was read

    def open(self) -> bool:
        return self.left is None or self.left > 0

    def take(self) -> bool:
        """One more extra record found: True when it is gathered."""
        if self.left is None:
            return True
        if self.left == 0:
            self.cut = True
            return False
        self.left -= 1
        return True

    def trim(self, extra: dict) -> dict:
        """`extra` with no more names than the room has left (for a store that finds
        them all at once, as the memory store does)."""
        if self.left is None or len(extra) <= self.left:
            if self.left is not None:
                self.left -= len(extra)
            return extra
        kept = dict(islice(extra.items(), self.left))
        self.left, self.cut = 0, True
        return kept

    def zones(self, held: dict, desired: Mapping) -> dict:
        """The zones a read returns: those held, less the ones no longer desired while
        names in them may be left uncollected (a zone goes with the last round)."""
        if not self.cut:
            return held
        return {name: zone for name, zone in held.items() if name in desired}

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

from itertools import chain, filterfalse
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

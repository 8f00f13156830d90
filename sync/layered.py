"""A dict edited in small steps and handed out whole after each: `LayeredDict`.

The incremental rules keep the published records (claims by key, parents, children:
100,000 to 1,000,000 entries each) and edit a few hundred of them a batch; after each
batch they hand the records out (the reconciler keeps them as what Redis holds, the
status writer reads them from its thread), so the next batch must not edit what was
handed out. Copying each dict before editing it cost a batch three copies of the whole
and, when the copies were dropped, freeing them: at 100,000 names ~12 of a lone change's
~19 ms, and ten times that at 1,000,000 -- a batch then cost the cluster, not its change.

A LayeredDict is a base dict that is never edited once a snapshot has handed it out, and
a small top dict of the keys changed since (a removed key held there as a marker). `snapshot()` hands out a
read-only `LayeredView` of the two as they are (the base itself when nothing is on top);
the next edit starts a new top from a copy of the old one, which is as small as the
changes since the base was made. When the top outgrows `_top_limit(len(base))`, a
snapshot first folds it into a new base: that copy of the whole is made once every few
thousand changes, not once a batch. Edits and snapshots come from one thread (the rules'
batch); views are read from any.
"""

from __future__ import annotations

from collections.abc import ItemsView, KeysView, Mapping, Sequence, ValuesView
from math import isqrt

__all__ = ["LayeredDict", "LayeredView", "Values"]


class _Removed:
    """The top's marker for a key the base holds and the layered dict no longer does."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<removed>"


_REMOVED = _Removed()
_ABSENT = object()


def _top_limit(base_size: int) -> int:
    # Each batch copies its top (at most this big) and the fold copies the base once per
    # this many changes: for B changes a batch over N names the two costs per change,
    # limit / 2B and N / limit, are even at sqrt(2BN); 16 * sqrt(N) is that for batches of
    # about a hundred changes, and never below a few hundred keys.
    return max(512, 16 * isqrt(base_size))


class LayeredView(Mapping):
    """The mapping a LayeredDict held when its snapshot was taken; read-only, and no later
    edit of the LayeredDict changes it."""

    __slots__ = ("_base", "_top", "_size")

    def __init__(self, base: dict, top: dict, size: int):
        self._base, self._top, self._size = base, top, size

    def __getitem__(self, key):
        value = self._top.get(key, _ABSENT)
        if value is _ABSENT:
            return self._base[key]
        if value is _REMOVED:
            raise KeyError(key)
        return value

    def get(self, key, default=None):
        # Mapping's get() goes through __getitem__ and an exception for a missing key:
        # the rules and the status writer read a few keys a change through here.
        value = self._top.get(key, _ABSENT)
        if value is _ABSENT:
            return self._base.get(key, default)
        return default if value is _REMOVED else value

    def __contains__(self, key) -> bool:
        value = self._top.get(key, _ABSENT)
        if value is _ABSENT:
            return key in self._base
        return value is not _REMOVED

    def __len__(self) -> int:
        return self._size

    def __iter__(self):
        top = self._top
        if not top:
            return iter(self._base)
        return self._iter(top)

    def _iter(self, top: dict):
        # A dict's order: the base's keys where they are (a key set again keeps its place,
        # as in a dict; one removed and set again too, where a dict would move it to the
        # end), then the keys the base does not have, in the order they were added. Readers
        # match objects by position (the rules find moved Nodes so).
        base = self._base
        for key in base:
            if top.get(key, _ABSENT) is not _REMOVED:
                yield key
        for key, value in top.items():
            if value is not _REMOVED and key not in base:
                yield key

    def iter_values(self):
        """The values, in __iter__'s order, without a lookup per key."""
        top = self._top
        if not top:
            yield from self._base.values()
            return
        base = self._base
        for key, value in base.items():
            held = top.get(key, _ABSENT)
            if held is _ABSENT:
                yield value
            elif held is not _REMOVED:
                yield held
        for key, value in top.items():
            if value is not _REMOVED and key not in base:
                yield value

    def keys(self):
        return self._base.keys() if not self._top else KeysView(self)

    def items(self):
        return self._base.items() if not self._top else ItemsView(self)

    def values(self):
        return self._base.values() if not self._top else ValuesView(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self.items())!r})"


class LayeredDict(LayeredView):
    """A mutable mapping for one writer: set, delete and pop like a dict; `snapshot()`
    for a read-only view of what it holds now."""

    __slots__ = ("_shared", "_base_shared", "_view")

    def __init__(self, base: dict | None = None):
        """`base`: the entries to start from; the LayeredDict owns it from now on (no one
        else edits it; once a snapshot has handed it out, no one does)."""
        super().__init__({} if base is None else base, {}, 0)
        self._size = len(self._base)
        self._shared = False  # the top was handed out in a view: copy it before an edit
        # The base was handed out (in a view, or as the snapshot itself). Until it is, no
        # reader can see it, and edits go into it while nothing is on top: a first batch
        # fills one dict, not a top as big as everything and then a base made of it.
        self._base_shared = False
        self._view: Mapping | None = None  # the last snapshot, while nothing changed since

    def _own_top(self) -> dict:
        if self._shared:
            self._top, self._shared = self._top.copy(), False
        self._view = None
        return self._top

    def __setitem__(self, key, value) -> None:
        if not self._base_shared and not self._top:  # as a dict (with a top, a new key goes after it)
            base = self._base
            if key not in base:
                self._size += 1
            base[key] = value
            self._view = None
            return
        top = self._own_top()
        held = top.get(key, _ABSENT)
        if held is _ABSENT:
            if key not in self._base:
                self._size += 1
        elif held is _REMOVED:
            self._size += 1
        top[key] = value

    def __delitem__(self, key) -> None:
        if key not in self:
            raise KeyError(key)
        if not self._base_shared and not self._top:
            del self._base[key]
            self._size -= 1
            self._view = None
            return
        top = self._own_top()
        if key in self._base:
            top[key] = _REMOVED
        else:
            del top[key]
        self._size -= 1

    def pop(self, key, default=_ABSENT):
        value = self.get(key, _ABSENT)
        if value is _ABSENT:
            if default is _ABSENT:
                raise KeyError(key)
            return default
        del self[key]
        return value

    def snapshot(self) -> Mapping:
        """What this holds now, read-only: the same object again while nothing changed
        (readers tell an unchanged result by identity), the base dict itself when nothing
        is on top."""
        if self._view is not None:
            return self._view
        top = self._top
        if len(top) > _top_limit(len(self._base)):
            self._fold()
            top = self._top
        if not top:
            self._view = self._base
        else:
            self._view = LayeredView(self._base, top, self._size)
            self._shared = True
        self._base_shared = True
        return self._view

    def fold(self) -> None:
        """Fold the top into a new base now (a reader about to pass over every key goes at
        dict speed then, and may set keys as it goes)."""
        if self._top:
            self._fold()
            self._view = None

    def _fold(self) -> None:
        """A new base with the top applied (the old base may be held by views)."""
        if not self._base:
            # Everything is on top (a first batch): the top becomes the base as it is. It
            # holds no removal marker (a key the base lacks is deleted from the top), and
            # a view that holds it as its top never sees it edited: edits go to a new top.
            self._base, self._top = self._top, {}
            self._base_shared, self._shared = self._shared, False
            return
        base = self._base.copy()
        for key, value in self._top.items():
            if value is _REMOVED:
                del base[key]
            else:
                base[key] = value
        self._base, self._top, self._shared, self._base_shared = base, {}, False, False

    @property
    def top_size(self) -> int:
        """Keys changed since the base was made (tests read it to see a fold happen)."""
        return len(self._top)


class Values(Sequence):
    """The values of a snapshot (a dict or a LayeredView) where a tuple of them was made
    before: the object cache hands each batch its objects this way, so a batch no longer
    copies 100,000 references into a tuple whatever it changed. Length and iteration are
    the mapping's own; indexing builds a tuple first (readers iterate; tests index), and
    it equals a tuple or list of the same objects in the same order."""

    __slots__ = ("_mapping",)

    def __init__(self, mapping: Mapping):
        self._mapping = mapping

    def __len__(self) -> int:
        return len(self._mapping)

    def __iter__(self):
        mapping = self._mapping  # a snapshot: a dict, or a LayeredView
        return iter(mapping.values()) if type(mapping) is dict else mapping.iter_values()

    def __getitem__(self, index):
        return tuple(self)[index]

    def __eq__(self, other) -> bool:
        if isinstance(other, (tuple, list, Values)):
            return len(self) == len(other) and tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        return f"Values({tuple(self)!r})"

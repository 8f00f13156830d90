"""A listed object held in memory as one flat tuple instead of nested dicts.

The cache holds every Container (and every Pod a Container or the pod source names)
for as long as the sync runs. Slimmed, a Container was still four dicts (the object, its
metadata, spec and status) at ~200 bytes each before a single value: ~60% of the
sync's memory at 100,000 Containers. A FlatObject keeps the same content as one tuple:
a shared layout (the top-level keys, and the keys of each top-level dict, in order)
followed by the values. Reading `obj["metadata"]` builds that dict afresh, so readers
keep reading mappings as before; they must not expect to change the object through
what they read (the cache never edits a held object's parts either: it replaces them).

Lossless by construction: any object, whatever its top-level values, comes back equal,
key order included, so the rules see exactly what the API server sent (malformed fields
too, which they report). That holds for the values held in another form or place as
well: a metadata.resourceVersion of decimal digits is held as an int (see _NUMBERED_KEY)
and read back as the same string, and the few fields whose values a whole cluster shares
a handful of (see _HELD_TOP) are held in the layout rather than in the tuple, by every
read.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice
from operator import itemgetter

# Layouts are few (one per shape of object: a Container with or without a status, with
# or without mountedTo..., and per the values held in it: see _HELD_TOP), so each is held
# once; past this many distinct ones (a cluster of objects with ever new keys) new ones
# are simply not shared.
_MAX_LAYOUTS = 4096

# Values held in the layout instead of in each object's tuple: the top-level apiVersion and
# kind, metadata.namespace, spec.type and status.deviceStatus. A cluster has a handful of
# each (one API version and kind per resource, few namespaces, a few device types and
# states), and every object held one 8-byte slot apiece for them: ~36 bytes a Container
# (~34 MB at a million) for values the layout can name once. The layout is then chosen by
# those values too: objects of another namespace or type get another layout, shared as
# any. Only a str of at most _MAX_HELD_CHARS is held so (a name is at most 253): anything
# else (a malformed field: a number, a list, a long text) stays in the tuple, the layout
# saying which. Only str, too, because a layout is found by its values (Layout.variants),
# and 1, 1.0 and True are one dict key: a str is equal to no value of another type JSON
# gives. (A str subclass equal to a held str would be read back as that str: nothing
# builds one.)
_HELD_TOP = frozenset(("apiVersion", "kind"))
_HELD_IN = {"metadata": "namespace", "spec": "type", "status": "deviceStatus"}  # part -> its field held
_MAX_HELD_CHARS = 253
# Layouts holding values take _LAYOUTS only up to this many: past it, an object whose
# values would make a new one is built without holding any, in the value-free layout of
# its shape (which the rest of _LAYOUTS keeps room to share), never in a layout of its
# own. A cluster of very many namespaces x types x states so gets those objects' slots
# back, not a Layout (~2 KB) an object.
_MAX_HELD_LAYOUTS = _MAX_LAYOUTS - 1024

# The one value held as a number: metadata.resourceVersion, which every object the API
# server sends carries as a decimal string (etcd's revision) and which no two objects
# share. A str of 7 digits is 56 bytes, an int below 2**30 28 (32 below 2**60):
# ~24 MB at a million Containers. Kubernetes documents the value as opaque, so only a
# string that int() and str() give back exactly is converted (ASCII digits, no leading
# zero, at most _MAX_DIGITS of them: below 2**63); anything else is held as it is. No
# other value: a name or a time of digits is rare, and each converted key costs a check
# on every object built.
_NUMBERED_PART, _NUMBERED_KEY = "metadata", "resourceVersion"
_MAX_DIGITS = 18

# How a value is held in a top-level dict (Layout.parts): as it is, a one-item list as its
# item, a decimal string as its int (each at a position of the flat tuple), or in the
# layout (Layout.parts then gives the value itself instead of a position).
_PLAIN, _LISTED, _NUMBER, _HELD = 0, 1, 2, 3


class Layout:
    """The keys of a flattened object: `keys` at the top, and for each top-level key
    whose value was a dict, that dict's keys (`None` for a value kept as it is), and
    which of them held a list of one item, kept as the item (`lists`: positions in that
    dict's keys; a status's one condition, a Pod's Ready one: the list object and its
    item array were 64 bytes a Container), and which held a decimal string, kept as its
    int (`numbers`, likewise: see _NUMBERED_KEY), and the values held here and not in
    the flat tuple (`held`: ((key, subkey or None for a top-level value), value) pairs:
    see _HELD_TOP)."""

    __slots__ = ("keys", "nested", "lists", "numbers", "held", "starts", "parts", "spans", "candidates", "pick",
                 "variants", "_hash")

    def __init__(self, keys: tuple[str, ...], nested: tuple[tuple[str, ...] | None, ...],
                 lists: tuple[tuple[str, ...], ...] = (), numbers: tuple[tuple[str, ...], ...] = (),
                 held: tuple[tuple[tuple[str, str | None], str], ...] = ()):
        self.keys, self.nested, self.held = keys, nested, held
        self.lists, self.numbers = lists or ((),) * len(keys), numbers or ((),) * len(keys)
        here = dict(held)
        # key -> (where its value starts in the flat tuple, the keys of its dict whose values
        # are in the tuple there (None: not a dict), its lists, its numbers, and for a dict
        # holding values here the dict of all its keys in order with those values; for a
        # top-level value held here, (that value,)).
        starts, parts, position = {}, {}, 1  # values start after the layout in the flat tuple
        # The object's values in order, all of them, after a place for the layout (as
        # FlatObject's constructor lists them before it knows its layout): which of them may
        # be held here (`candidates`: in _HELD_TOP or _HELD_IN, and not a one-item list),
        # and which are in the tuple.
        candidates, stored_at, index = [], [0], 1
        for key, sub, listed, numbered in zip(keys, nested, self.lists, self.numbers):
            if sub is None:
                if key in _HELD_TOP:
                    candidates.append(index)
                if (key, None) in here:
                    starts[key] = (position, None, (), (), (here[key, None],))
                else:
                    starts[key] = (position, None, (), (), None)
                    stored_at.append(index)
                    position += 1
                index += 1
                continue
            field = _HELD_IN.get(key)
            if field is not None and field in sub and field not in listed:
                candidates.append(index + sub.index(field))
            stored_at.extend(index + number for number, sub_key in enumerate(sub) if (key, sub_key) not in here)
            index += len(sub)
            stored = tuple(sub_key for sub_key in sub if (key, sub_key) not in here)
            starts[key] = (position, stored, listed, numbered,
                           None if len(stored) == len(sub) else {sub_key: here.get((key, sub_key)) for sub_key in sub})
            # For each top-level dict, subkey -> (where its value is in the flat tuple, how
            # it is held there: _PLAIN, _LISTED or _NUMBER), or (its value, _HELD): every
            # read of a nested field goes through here.
            fields = parts[key] = {}
            for sub_key in sub:
                if (key, sub_key) in here:
                    fields[sub_key] = (here[key, sub_key], _HELD)
                else:
                    fields[sub_key] = (position, _LISTED if sub_key in listed else
                                       _NUMBER if sub_key in numbered else _PLAIN)
                    position += 1
        self.starts, self.parts = starts, parts
        self.spans: dict = {}  # fields -> their spans in the flat tuple (FlatObject.same_at)
        # The candidates' values out of an object's full list (one, or a tuple of them), and
        # its flat tuple out of that list, the layout first (None: the whole list). C calls,
        # each one per object built.
        self.candidates = None if not candidates else itemgetter(*candidates)
        self.pick = None if not held else itemgetter(*stored_at) if len(stored_at) > 1 else \
            (lambda values: (values[0],))
        # On the value-free layout of a shape (the one _LAYOUTS holds under the shape): the
        # candidates' values -> the layout of that shape holding them (see FlatObject).
        self.variants: dict = {}
        self._hash = hash((keys, nested, self.lists, self.numbers, held))

    def __eq__(self, other) -> bool:
        # `numbers` counts: an int held for "5" is not an int 5 the object was given; and
        # `held`: the values not in the tuple.
        return self is other or (isinstance(other, Layout) and self.keys == other.keys
                                 and self.nested == other.nested and self.lists == other.lists
                                 and self.numbers == other.numbers and self.held == other.held)

    def __hash__(self) -> int:
        return self._hash


_LAYOUTS: dict[tuple, Layout] = {}


class Held:
    """A value a FlatObject holds without the fields of its own dict that it repeats, and
    gives back joined with them (`attach`). Held values of equal content may be one
    object, shared by every object that holds one (sync.status.Condition: its message
    is made of the status's fqdn and target; without them, the conditions written in the
    same second are one value)."""

    __slots__ = ()

    def attach(self, part: Mapping):
        """The value as it was given, `part` being the dict it is in (or a Part of it)."""
        raise NotImplementedError


class Detachable:
    """A value that a FlatObject may hold as a `Held` one (see Held)."""

    __slots__ = ()

    def detach(self, part: Mapping):
        """What to hold for this value in `part` (the dict it is in): a Held whose
        attach(part) gives it back equal, or the value itself."""
        raise NotImplementedError


def _layout(keys: tuple, nested: tuple, lists: tuple, numbered: int) -> Layout:
    """The value-free layout of these keys (holding no value: see _HELD_TOP), `numbered`
    being the position in `keys` of the dict holding a number (-1: none): a number, not
    a tuple to make for every object built."""
    numbers = () if numbered < 0 else \
        ((),) * numbered + ((_NUMBERED_KEY,),) + ((),) * (len(keys) - numbered - 1)
    layout = Layout(keys, nested, lists, numbers)
    if len(_LAYOUTS) < _MAX_LAYOUTS:
        _LAYOUTS[(keys, nested, lists, numbered)] = layout
    else:
        layout.candidates = None  # not shared: neither are layouts made from it
    return layout


def _variant(plain: Layout, found) -> Layout:
    """The layout of `plain`'s shape holding what it may of `found` (its candidates'
    values: one, or a tuple of them): `plain` itself when it holds none, or when _LAYOUTS
    has no room for another layout holding values (_MAX_HELD_LAYOUTS). Kept in
    plain.variants under the values held, None for the others: an object whose other
    values are None (a JSON null: equal to nothing else) finds it there next time; one
    with a value not held (malformed) comes back here."""
    values = found if type(found) is tuple else (found,)
    at = tuple(index for index, value in enumerate(values)
               if type(value) is str and len(value) <= _MAX_HELD_CHARS)
    kept = tuple(values[index] if index in at else None for index in range(len(values)))
    layout = plain.variants.get(kept if type(found) is tuple else kept[0])
    if layout is None:
        if not at:
            layout = plain
        else:
            key = (plain.keys, plain.nested, plain.lists, plain.numbers, kept)
            layout = _LAYOUTS.get(key)
            if layout is None and len(_LAYOUTS) >= _MAX_HELD_LAYOUTS:
                # No room: the value-free layout, remembered for these values (up to a bound:
                # many namespaces x types, not one entry each without end) so that the next
                # object with them does not come back here.
                if len(plain.variants) < _MAX_HELD_LAYOUTS:
                    plain.variants[kept if type(found) is tuple else kept[0]] = plain
                return plain
            if layout is None:
                fields = _fields(plain)
                layout = _LAYOUTS[key] = Layout(plain.keys, plain.nested, plain.lists, plain.numbers,
                                                tuple((fields[index], values[index]) for index in at))
        plain.variants[kept if type(found) is tuple else kept[0]] = layout
    return layout


def _fields(plain: Layout) -> list:
    """(key, subkey or None) of each candidate of `plain` (see Layout.candidates), in order."""
    fields = []
    for key, sub, listed in zip(plain.keys, plain.nested, plain.lists):
        if sub is None:
            if key in _HELD_TOP:
                fields.append((key, None))
        elif (field := _HELD_IN.get(key)) is not None and field in sub and field not in listed:
            fields.append((key, field))
    return fields


class FlatObject(Mapping):
    """A read-only mapping equal to the dict it was made from (see the module's doc).
    `adopt` is the one way to change it: the cache swaps a Container's metadata and
    status in place when only they changed (one attribute store, so a reader sees the
    old object or the new one, never half of each)."""

    # `key`: the cache's key tuple for the object, set by the cache (sync.sources.cache's
    # object_key): the rules' Claim and the status writer then share that one tuple
    # instead of each making an equal one (~70 bytes a Container each).
    __slots__ = ("_flat", "key")

    def __init__(self, obj: Mapping):
        self.key = None
        nested, lists, values = [], [], [None]  # values[0]: the layout, once known
        numbered = -1  # the top-level dict holding a number, if any
        for top, value in obj.items():
            if type(value) is dict:
                nested.append(sub := tuple(value))
                listed = ()
                for key, item in value.items():
                    if type(item) is list and len(item) == 1:
                        listed += (key,)
                        item = item[0]
                        if isinstance(item, Detachable):
                            item = item.detach(value)
                    values.append(item)
                lists.append(listed)
                if top == _NUMBERED_PART:
                    # Held as its int when str() of that int gives it back: ASCII digits
                    # (int() would take "+1", " 1", "1_0" or other scripts' digits too), no
                    # leading zero but "0" itself. Inline: this runs for every object built.
                    version = value.get(_NUMBERED_KEY)
                    if (type(version) is str and 0 < len(version) <= _MAX_DIGITS and version.isascii()
                            and version.isdecimal() and (version[0] != "0" or len(version) == 1)):
                        values[len(values) - len(sub) + sub.index(_NUMBERED_KEY)] = int(version)
                        numbered = len(nested) - 1
            else:
                nested.append(None)
                lists.append(())
                values.append(value)
        # The layout of the object's shape, then the one of that shape holding its values of
        # _HELD_TOP: found by those values (C calls: this runs for every object built), the
        # tuple then keeps only the other values.
        keys = tuple(obj)
        layout = _LAYOUTS.get((keys, nested := tuple(nested), lists := tuple(lists), numbered)) or \
            _layout(keys, nested, lists, numbered)
        candidates = layout.candidates
        if candidates is not None:
            found = candidates(values)
            try:
                variant = layout.variants.get(found)
            except TypeError:  # a list or a dict where a str was expected: held in the tuple
                variant = None
            layout = variant or _variant(layout, found)
            if layout.pick is not None:
                values[0] = layout
                self._flat = layout.pick(values)
                return
        values[0] = layout
        self._flat = tuple(values)

    def adopt(self, other: "FlatObject") -> None:
        self._flat = other._flat

    def __getitem__(self, key):
        flat = self._flat
        return _value(flat, *flat[0].starts[key])

    def get(self, key, default=None):
        # Mapping's get() goes through an exception for a missing key: this is read for
        # every object of every list, so look first.
        flat = self._flat
        found = flat[0].starts.get(key)
        return default if found is None else _value(flat, *found)

    def __contains__(self, key) -> bool:
        return key in self._flat[0].starts

    def __iter__(self):
        return iter(self._flat[0].keys)

    def __len__(self) -> int:
        return len(self._flat[0].keys)

    def __eq__(self, other) -> bool:
        if isinstance(other, FlatObject):
            mine, theirs = self._flat, other._flat
            if mine[0] == theirs[0]:
                return mine == theirs  # one layout: the values decide, no dict built
            return self.to_dict() == other.to_dict()  # the same keys in another order are equal
        if isinstance(other, Mapping):
            return self.to_dict() == dict(other.items())
        return NotImplemented

    __hash__ = None  # a mapping, and adopt() changes it

    def get_in(self, key, subkey, default=None):
        """`self[key][subkey]` when `self[key]` is a dict holding `subkey`, else `default`:
        read from the flat tuple, no dict built (most readers want one or two fields of a
        part, and building the part cost more than reading them)."""
        flat = self._flat
        fields = flat[0].parts.get(key, _NO_FIELDS)
        found = fields.get(subkey)
        if found is None:
            return default  # absent, not a dict, or not in it
        how = found[1]
        if not how:
            return flat[found[0]]
        if how == _LISTED:
            return [_attached(flat[found[0]], flat, fields)]
        return str(flat[found[0]]) if how == _NUMBER else found[0]

    def held_at(self, key, subkey, default=None):
        """What the flat tuple holds for `self[key][subkey]` (for a one-item list, the item
        itself, which get_in wraps in a new list; a Held one as held), or `default`: one
        lookup, nothing built. A value held as a number comes back as the string it was
        (a new one: not the object given, which nobody shares), never as the int; one held
        in the layout as the layout's string (equal to the one given)."""
        flat = self._flat
        found = flat[0].parts.get(key, _NO_FIELDS).get(subkey)
        if found is None:
            return default
        how = found[1]
        if how == _NUMBER:
            return str(flat[found[0]])
        return found[0] if how == _HELD else flat[found[0]]

    def part(self, key) -> "Part | None":
        """`self[key]` read in place when it is a dict (None when absent or not a dict):
        equal to the dict `self[key]` builds, without building it."""
        flat = self._flat
        fields = flat[0].parts.get(key)
        return None if fields is None else Part(flat, fields)

    def is_dict(self, key) -> bool:
        """Whether `self[key]` is a dict (held flattened), without building it."""
        found = self._flat[0].starts.get(key)
        return found is not None and found[1] is not None

    def same_at(self, other: "FlatObject", fields: tuple[tuple[str, str | None], ...]) -> bool | None:
        """Whether `other` holds what this object holds at `fields`, each a top-level key
        (its whole value) or a (key, subkey) pair (that value in the dict at key): read
        from both flat tuples, no dict built (a watch event compares the old and new
        object's parts this way). A field neither holds counts as equal. None when the two
        have different layouts: compare them as mappings then (so a value held in the
        layout is the same in both)."""
        mine, theirs = self._flat, other._flat
        layout = mine[0]
        if theirs[0] is not layout:
            return None
        spans = layout.spans.get(fields)
        if spans is None:
            spans = _spans(layout, fields)
            if len(layout.spans) < _MAX_SPANS:
                layout.spans[fields] = spans  # kept with the layout: as many as the field sets asked
        for start, end in spans:
            if end == start + 1:
                if mine[start] != theirs[start]:
                    return False
            elif mine[start:end] != theirs[start:end]:
                return False
        return True

    def share(self, fields: tuple[tuple[str, str, object], ...]) -> None:
        """Hold each `value` itself where this object holds an equal value of the same
        type at (key, subkey) (the item, for a one-item list), instead of its own copy:
        the same content, one string where two objects held equal ones (a mounted
        child's spec.mountedTo and status.target are its parent's name and fqdn). A value
        held in the layout is left as it is (one already, for every object of the layout).
        One store of the flat tuple, so a reader sees the object before or after, equal
        either way."""
        flat = self._flat
        parts = flat[0].parts
        swapped = None
        for key, subkey, value in fields:
            found = parts.get(key, _NO_FIELDS).get(subkey)
            if found is None or found[1] == _HELD:
                continue  # absent, not in a dict, or in the layout
            at = found[0]
            held = flat[at]
            if held is not value and type(held) is type(value) and held == value:
                if swapped is None:
                    swapped = list(flat)
                swapped[at] = value
        if swapped is not None:
            self._flat = tuple(swapped)

    def copy(self) -> "FlatObject":
        """The object as it is now, which a later adopt() does not change."""
        clone = FlatObject.__new__(FlatObject)
        clone._flat, clone.key = self._flat, self.key
        return clone

    def to_dict(self) -> dict:
        """A plain dict (nested dicts included) equal to this object."""
        return {key: self[key] for key in self._flat[0].keys}

    def __repr__(self) -> str:
        return f"FlatObject({self.to_dict()!r})"


_MISSING = object()
_NO_FIELDS: dict = {}  # the parts of a key that is absent or not a dict (never written to)


class Part(Mapping):
    """One top-level dict of a FlatObject, read from the flat tuple it was taken from (so
    from one version of the object). The rules read two to five fields of a Container's
    metadata, spec and status for each Container a batch reads; building those three
    dicts cost more than the reads. A one-item list comes back as a new one-item list,
    as the built dict has it (a Held item attached)."""

    __slots__ = ("_flat", "_fields")

    def __init__(self, flat: tuple, fields: dict):
        self._flat, self._fields = flat, fields

    def get(self, key, default=None):
        # FlatObject.get_in's reading, inline rather than shared: the rules read a few
        # fields of every Container a batch reads this way, and a call each adds up.
        found = self._fields.get(key)
        if found is None:
            return default
        how = found[1]
        if not how:
            return self._flat[found[0]]
        if how == _LISTED:
            return [_attached(self._flat[found[0]], self._flat, self._fields)]
        return str(self._flat[found[0]]) if how == _NUMBER else found[0]

    def __getitem__(self, key):
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key) -> bool:
        return key in self._fields

    def __iter__(self):
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"Part({dict(self.items())!r})"

# The field sets FlatObject.same_at keeps the spans of, a layout (the code asks a few).
_MAX_SPANS = 64


def _spans(layout: Layout, fields: tuple[tuple[str, str | None], ...]) -> tuple[tuple[int, int], ...]:
    """The spans of the flat tuple `fields` cover in `layout`: none for a field absent
    (from both objects, of one layout) or held in the layout (the same in both)."""
    spans = []
    for key, subkey in fields:
        found = layout.starts.get(key)
        if found is None:
            continue
        start, sub = found[0], found[1]  # sub: the keys whose values are in the tuple
        if subkey is None:
            if sub is None:
                if found[4] is None:
                    spans.append((start, start + 1))
            elif sub:
                spans.append((start, start + len(sub)))
        elif sub is not None and subkey in sub:
            at = start + sub.index(subkey)
            spans.append((at, at + 1))
    return tuple(spans)


def _value(flat: tuple, start: int, sub: tuple[str, ...] | None, lists: tuple[str, ...],
           numbers: tuple[str, ...], template: dict | tuple | None):
    """The top-level value at `start` (a Layout.starts entry): kept as it was, or its dict
    built afresh (read from one tuple, so from one version of the object), one-item lists,
    numbers and the values held in the layout too (`template`: see Layout.starts)."""
    if sub is None:
        return flat[start] if template is None else template[0]
    if template is None:
        built = dict(zip(sub, islice(flat, start, start + len(sub))))
    else:
        built = template.copy()  # the keys in order, the values held in the layout
        built.update(zip(sub, islice(flat, start, start + len(sub))))
    for key in numbers:  # first: a Held item attached below reads the dict as given
        built[key] = str(built[key])
    for key in lists:
        item = built[key]
        built[key] = [item.attach(built) if isinstance(item, Held) else item]
    return built


def _attached(item, flat: tuple, fields: dict):
    """A one-item list's item as given: a Held one joined with the fields of its dict."""
    return item.attach(Part(flat, fields)) if isinstance(item, Held) else item


# What a listed object may be once held: `isinstance(obj, OBJECT_TYPES)` where code
# checked `isinstance(obj, dict)` (a plain Mapping check costs an ABC lookup per object).
OBJECT_TYPES = (dict, FlatObject)


def flat(obj):
    """`obj` held flat when it is a dict; anything else (malformed) as it is."""
    return FlatObject(obj) if type(obj) is dict else obj

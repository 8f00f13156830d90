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
itself (no dict at all) when the store holds exactly it. Only the differing values and
the extra names (which a diff deletes, so it needs them anyway) are fresh objects.
"""

from __future__ import annotations

from typing import Collection, Mapping


def compose(desired: Mapping, missing: Collection, differing: Mapping, extra: Mapping) -> Mapping:
    """The store's mapping: `desired` less `missing`, with `differing`'s values, plus
    `extra`. `missing` and `differing` name only keys of `desired`, `extra` none; `extra`
    (a dict the caller made for this) may come back as it is."""
    if not missing and not differing and not extra:
        return desired
    if len(missing) == len(desired):
        return extra  # nothing desired held (a first write): no dict of desired names
    if missing:
        skip = missing if isinstance(missing, (set, frozenset)) else set(missing)
        result = {key: value for key, value in desired.items() if key not in skip}
    else:
        result = dict(desired)  # keys and values shared, only the dict is new
    result.update(differing)  # a key already in `result` keeps its (desired's) object
    result.update(extra)
    return result


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

"""The plan: what to write and delete so that a store holding one State holds another.

`diff(current, desired)` is pure: the sync computes the changes between what its rules
want and what a store holds, and the store applies them in one transaction. Tested
scenario by scenario with exact changes (first sync, second sync, node moved, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

from mountdns.names import zone_finder
from mountdns.records import State, Zone


@dataclass(frozen=True)
class Changes:
    """What to write and delete so that a store holding one state holds another.

    `*_put` maps a key's name to its new value; `*_delete` names keys to remove;
    `bump_serials` are the zones whose SOA serial must move with this batch.
    """

    zones_put: Mapping[str, Zone] = field(default_factory=dict)
    zones_delete: frozenset[str] = frozenset()
    nodes_put: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    nodes_delete: frozenset[str] = frozenset()
    parents_put: Mapping[str, str] = field(default_factory=dict)
    parents_delete: frozenset[str] = frozenset()
    children_put: Mapping[str, str] = field(default_factory=dict)
    children_delete: frozenset[str] = frozenset()
    bump_serials: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not (
            self.zones_put or self.zones_delete or self.nodes_put or self.nodes_delete
            or self.parents_put or self.parents_delete or self.children_put
            or self.children_delete
        )

    def key_writes(self) -> int:
        """How many record keys the batch writes or deletes (zone bookkeeping aside)."""
        return (
            len(self.nodes_put) + len(self.nodes_delete) + len(self.parents_put)
            + len(self.parents_delete) + len(self.children_put) + len(self.children_delete)
        )

    def summary(self) -> str:
        parts = []
        for label, put, delete in (
            ("zones", self.zones_put, self.zones_delete),
            ("nodes", self.nodes_put, self.nodes_delete),
            ("parents", self.parents_put, self.parents_delete),
            ("children", self.children_put, self.children_delete),
        ):
            if put or delete:
                parts.append(f"{label} +{len(put)}/-{len(delete)}")
        return ", ".join(parts) or "no changes"


def _map_diff(current: Mapping, desired: Mapping) -> tuple[dict, frozenset]:
    if not current:
        # A first write: everything is new. The desired mapping itself (nobody edits a
        # state once made), not a copy of a million names next to it.
        return desired, frozenset()
    put = {k: v for k, v in desired.items() if current.get(k) != v}
    delete = frozenset(k for k in current if k not in desired)
    return put, delete


def diff(current: State, desired: State, *, collect_garbage: bool = True) -> Changes:
    """The changes that turn `current` into `desired`.

    With `collect_garbage=False` nothing is deleted: the caller does not trust that
    `desired` is complete (a list that failed or was cut short must never remove records).
    """
    zones_put = {
        name: zone for name, zone in desired.zones.items()
        if name not in current.zones or current.zones[name].definition() != zone.definition()
    }
    zones_delete = frozenset(z for z in current.zones if z not in desired.zones)
    nodes_put, nodes_delete = _map_diff(current.nodes, desired.nodes)
    parents_put, parents_delete = _map_diff(current.parents, desired.parents)
    children_put, children_delete = _map_diff(current.children, desired.children)
    if not collect_garbage:
        zones_delete = nodes_delete = parents_delete = children_delete = frozenset()

    zone_of = zone_finder(set(desired.zones) | set(current.zones))
    bump = set(zones_put)
    for names in (parents_put, parents_delete, children_put, children_delete):
        bump.update(zone_of(name) for name in names)
    bump.discard(None)
    if nodes_put or nodes_delete:
        # A node's address is part of the answer for every parent on it, in any zone.
        bump.update(desired.zones)
    bump -= zones_delete

    return Changes(
        zones_put=zones_put, zones_delete=zones_delete,
        nodes_put=nodes_put, nodes_delete=nodes_delete,
        parents_put=parents_put, parents_delete=parents_delete,
        children_put=children_put, children_delete=children_delete,
        bump_serials=frozenset(bump),
    )


def applied(state: State, changes: Changes) -> State:
    """The state a store holds after applying `changes` to `state` (serials aside)."""
    def merge(current, put, delete):
        result = {k: v for k, v in current.items() if k not in delete}
        result.update(put)
        return result
    return State(
        zones=merge(state.zones, changes.zones_put, changes.zones_delete),
        nodes=merge(state.nodes, changes.nodes_put, changes.nodes_delete),
        parents=merge(state.parents, changes.parents_put, changes.parents_delete),
        children=merge(state.children, changes.children_put, changes.children_delete),
    )


def applied_in_full(state: State, changes: Changes, desired: State) -> State:
    """`applied(state, changes)` for changes that `diff(state, desired)` made with garbage
    collection: `desired`'s own records (nothing else is left), so what a store holds after
    a full write shares the desired state's dicts instead of being a second copy of a
    million names; zones as `applied` makes them (their serials are the store's)."""
    def merge(current, put, delete):
        result = {k: v for k, v in current.items() if k not in delete}
        result.update(put)
        return result
    return State(zones=merge(state.zones, changes.zones_put, changes.zones_delete),
                 nodes=desired.nodes, parents=desired.parents, children=desired.children)


def without_names(state: State, names) -> State:
    """`state` less the parents and children named (names a store refused to write)."""
    if not names:
        return state
    return replace(state, parents={k: v for k, v in state.parents.items() if k not in names},
                   children={k: v for k, v in state.children.items() if k not in names})

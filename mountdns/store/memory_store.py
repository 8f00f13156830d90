"""An in-memory store with the RedisStore interface, for unit tests and the demo.

Like external-dns's in-memory provider: the same reconciler and lookup code runs against
it unchanged, so a scenario can be checked without a Redis server.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from mountdns.names import containing_zone, is_within
from mountdns.plan import Changes
from mountdns.records import OUTSIDE, Resolution, State, Zone, initial_serial


class MemoryStore:
    def __init__(self, state: State | None = None):
        state = state or State()
        self._lock = threading.Lock()
        self._zones: dict[str, Zone] = dict(state.zones)
        self._nodes = dict(state.nodes)
        self._parents = dict(state.parents)
        self._children = dict(state.children)
        self.batches: list[Changes] = []  # every non-empty batch applied, for dry runs and tests
        self.announcements: list = []  # every announcement applied with a batch (mountdns.announce)

    def resolve(self, qname: str) -> Resolution:
        with self._lock:
            zone_name = containing_zone(qname, self._zones)
            if zone_name is None:
                return OUTSIDE
            zone = self._zones[zone_name]
            if qname == zone_name:
                return Resolution("apex", zone)
            if qname in self._children:
                return Resolution("child", zone, target=self._children[qname])
            if qname in self._parents:
                return Resolution("parent", zone, addresses=self._nodes.get(self._parents[qname], ()))
            return Resolution("none", zone)

    def zones(self) -> list[Zone]:
        with self._lock:
            return [self._zones[n] for n in sorted(self._zones)]

    def zone(self, name: str) -> Zone | None:
        with self._lock:
            return self._zones.get(name)

    def read_state(self) -> State:
        with self._lock:
            return State(dict(self._zones), dict(self._nodes), dict(self._parents), dict(self._children))

    def zone_state(self, zone: str) -> State:
        with self._lock:
            parents = {k: v for k, v in self._parents.items() if k != zone and is_within(k, zone)}
            children = {k: v for k, v in self._children.items() if k != zone and is_within(k, zone)}
            nodes = {n: self._nodes[n] for n in set(parents.values()) if n in self._nodes}
            return State(parents=parents, children=children, nodes=nodes)

    def ping(self) -> bool:
        return True

    def apply(self, changes: Changes, pipeline=None, announcement=None) -> None:
        if changes.empty and not changes.bump_serials:
            return
        if announcement is not None:
            self.announcements.append(announcement)  # nobody follows them: kept for tests
        with self._lock:
            for name, zone in changes.zones_put.items():
                old = self._zones.get(name)
                self._zones[name] = replace(zone, serial=old.serial if old else initial_serial())
            for name in changes.zones_delete:
                self._zones.pop(name, None)
            for target, put, delete in (
                (self._nodes, changes.nodes_put, changes.nodes_delete),
                (self._parents, changes.parents_put, changes.parents_delete),
                (self._children, changes.children_put, changes.children_delete),
            ):
                target.update(put)
                for name in delete:
                    target.pop(name, None)
            for name in changes.bump_serials:
                if name in self._zones:
                    zone = self._zones[name]
                    self._zones[name] = replace(zone, serial=zone.serial + 1)
            self.batches.append(changes)

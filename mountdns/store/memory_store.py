"""An in-memory store with the RedisStore interface, for unit tests and the demo.

Like external-dns's in-memory provider: the same reconciler and lookup code runs against
it unchanged, so a scenario can be checked without a Redis server. It follows the same
rules as the Redis scripts: names held by another owner are refused, a newer fenced term
refuses a batch, a missing marker refuses a batch that requires it. Several owners share
one store through `view(owner)`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace

from mountdns.keyspace import DEFAULT_OWNER, check_owner, owned
from mountdns.names import containing_zone, is_within
from mountdns.plan import Changes
from mountdns.records import OUTSIDE, Resolution, State, Zone, initial_serial
from mountdns.store import NOTHING_APPLIED, Applied, DataLost, Fenced
from mountdns.store.like import ExtraRoom, compose, parts


@dataclass
class _Data:
    """What Redis would hold, shared by every owner's view."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    zones: dict[str, Zone] = field(default_factory=dict)
    zone_definers: dict[str, str] = field(default_factory=dict)
    zone_owners: dict[str, set[str]] = field(default_factory=dict)
    nodes: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)  # (owner, node)
    names: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # fqdn -> (kind, owner, value)
    fences: dict[str, int] = field(default_factory=dict)
    markers: dict[str, int] = field(default_factory=dict)


class MemoryStore:
    def __init__(self, state: State | None = None, owner: str = DEFAULT_OWNER, *, _data: _Data | None = None):
        self.owner = check_owner(owner)
        self._data = _data if _data is not None else _Data()
        self._lock = self._data.lock
        self.batches: list[Changes] = []  # every non-empty batch applied, for dry runs and tests
        if state is not None:
            d = self._data
            for name, zone in state.zones.items():
                d.zones[name] = zone
                d.zone_definers[name] = owner
                d.zone_owners.setdefault(name, set()).add(owner)
            d.nodes.update({(owner, n): a for n, a in state.nodes.items()})
            d.names.update({n: ("parent", owner, v) for n, v in state.parents.items()})
            d.names.update({n: ("child", owner, v) for n, v in state.children.items()})
        self.announcements: list = []  # every announcement applied with a batch (mountdns.announce)

    def view(self, owner: str) -> "MemoryStore":
        """The same data, read and written as another owner (another cluster's sync)."""
        return MemoryStore(owner=owner, _data=self._data)

    def flush(self) -> None:
        """Forget everything, as Redis does on FLUSHALL or a restart without persistence."""
        with self._lock:
            fresh = _Data()
            for name in vars(fresh):
                if name != "lock":
                    setattr(self._data, name, getattr(fresh, name))

    # -- reading -----------------------------------------------------------------
    def resolve(self, qname: str) -> Resolution:
        d = self._data
        with self._lock:
            zone_name = containing_zone(qname, d.zones)
            if zone_name is None:
                return OUTSIDE
            zone = d.zones[zone_name]
            if qname == zone_name:
                return Resolution("apex", zone)
            entry = d.names.get(qname)
            if entry is None:
                return Resolution("none", zone)
            kind, owner, value = entry
            if kind == "child":
                return Resolution("child", zone, target=value)
            return Resolution("parent", zone, addresses=d.nodes.get((owner, value), ()))

    def zones(self) -> list[Zone]:
        with self._lock:
            return [self._data.zones[n] for n in sorted(self._data.zones)]

    def zone(self, name: str) -> Zone | None:
        with self._lock:
            return self._data.zones.get(name)

    def read_state(self, like: State | None = None, extra_limit: int | None = None) -> State:
        """This owner's records only; with `like`, in its objects wherever they agree and
        as its own dicts where they are equal, and with `extra_limit` at most that many
        records `like` does not have (see RedisStore.read_state)."""
        d, me = self._data, self.owner
        with self._lock:
            held = State(
                zones={n: z for n, z in d.zones.items() if me in d.zone_owners.get(n, ())},
                nodes={n: a for (o, n), a in d.nodes.items() if o == me},
                parents={n: v for n, (k, o, v) in d.names.items() if k == "parent" and o == me},
                children={n: v for n, (k, o, v) in d.names.items() if k == "child" and o == me},
            )
        if like is None and extra_limit is None:
            return held
        like = State() if like is None else like
        room = ExtraRoom(extra_limit)

        def read(mapping: str):  # children, then parents, then nodes: see ExtraRoom
            missing, differing, extra = parts(getattr(held, mapping), getattr(like, mapping))
            return compose(getattr(like, mapping), missing, differing, room.trim(extra))

        children = read("children")
        parents = read("parents")
        nodes = read("nodes")
        return State(zones=room.zones(held.zones, like.zones), nodes=nodes, parents=parents, children=children,
                     more_extra=room.cut)

    def zone_state(self, zone: str) -> State:
        """One zone's records, whoever owns them; parents point at `<owner>/<node>`."""
        d = self._data
        with self._lock:
            inside = {n: e for n, e in d.names.items() if n != zone and is_within(n, zone)}
            parents = {n: owned(o, v) for n, (k, o, v) in inside.items() if k == "parent"}
            children = {n: v for n, (k, o, v) in inside.items() if k == "child"}
            nodes = {owned(o, n): d.nodes[(o, n)] for (_, o, n) in
                     {inside[p] for p in parents} if (o, n) in d.nodes}
            return State(parents=parents, children=children, nodes=nodes)

    def ping(self) -> bool:
        return True

    def marker_present(self) -> bool:
        with self._lock:
            return self.owner in self._data.markers

    # -- writing -----------------------------------------------------------------
    def take_term(self, term: int) -> None:
        with self._lock:
            recorded = self._data.fences.get(self.owner, -1)
            if recorded > term:
                raise Fenced(f"owner {self.owner!r} is fenced at term {recorded}, newer than {term}",
                             recorded=recorded)
            self._data.fences[self.owner] = term

    def write_marker(self, *, term: int | None = None) -> None:
        self.apply(Changes(), term=term, mark=True)

    def apply(self, changes: Changes, *, term: int | None = None, mark: bool = False,
              require_marker: bool = False, announcement=None, announce_always: bool = False) -> Applied:
        if changes.empty and not changes.bump_serials and not mark and not (announcement and announce_always):
            return NOTHING_APPLIED
        d, me = self._data, self.owner
        with self._lock:
            recorded = d.fences.get(me, -1)
            if term is not None and recorded > term:
                raise Fenced(f"write of {changes.summary()} refused: owner {me!r} is fenced at term "
                             f"{recorded}, this writer has {term}", recorded=recorded)
            if require_marker and not mark and me not in d.markers:
                raise DataLost(f"write of {changes.summary()} refused: the marker of owner {me!r} is gone")
            wrote = False
            refused: set[str] = set()
            zones_elsewhere: set[str] = set()
            for name, zone in changes.zones_put.items():
                d.zone_owners.setdefault(name, set()).add(me)
                definer = d.zone_definers.get(name)
                if definer in (None, me):
                    old = d.zones.get(name)
                    d.zones[name] = replace(zone, serial=old.serial if old else initial_serial())
                    d.zone_definers[name] = me
                    wrote = True
                elif d.zones[name].definition() != zone.definition():
                    zones_elsewhere.add(name)
            for name in changes.zones_delete:
                owners = d.zone_owners.get(name, set())
                owners.discard(me)
                if not owners:
                    d.zones.pop(name, None)
                    d.zone_definers.pop(name, None)
                    d.zone_owners.pop(name, None)
                    wrote = True
                elif d.zone_definers.get(name) == me:
                    d.zone_definers[name] = min(owners)
            for name, addresses in changes.nodes_put.items():
                d.nodes[(me, name)] = addresses
                wrote = True
            for name in changes.nodes_delete:
                d.nodes.pop((me, name), None)
                wrote = True
            for kind, put in (("parent", changes.parents_put), ("child", changes.children_put)):
                for name, value in put.items():
                    holder = d.names.get(name)
                    if holder is None or holder[1] == me:
                        d.names[name] = (kind, me, value)
                        wrote = True
                    else:
                        refused.add(name)
            for kind, delete in (("parent", changes.parents_delete), ("child", changes.children_delete)):
                for name in delete:
                    holder = d.names.get(name)
                    if holder is not None and holder[0] == kind and holder[1] == me:
                        del d.names[name]
                        wrote = True
            if wrote:
                for name in changes.bump_serials:
                    if name in d.zones:
                        d.zones[name] = replace(d.zones[name], serial=d.zones[name].serial + 1)
            if mark:
                d.markers[me] = int(time.time())
            if announcement is not None and (wrote or announce_always):
                self.announcements.append(announcement)  # nobody follows them here: kept for tests
            if not changes.empty or changes.bump_serials:
                self.batches.append(changes)
            return Applied(owned_elsewhere=frozenset(refused), zones_elsewhere=frozenset(zones_elsewhere))

"""The rules kept up to date between batches: a batch costs what changed, not the cluster.

`sync.rules.desired_state` reads every Container and resolves every conflict and mount
on each call: ~1 s at 100,000 Containers, so under a steady 1,000 changes/s the batches
grew and changes waited seconds for Redis. `IncrementalRules` holds, between batches,
each object's read result (its claim, or why it has none) and the indexes the rules need
(claims by key, keys by fqdn, keys by the name they are mounted to, Containers by the
Pod they name), and on each batch:

  1. takes the objects that changed from the cache's snapshot (the old and new dict of
     each changed key), or finds them by identity when not told (the cache replaces an
     object's dict on every change, so the same dict is the same object);
  2. reads only those, the Containers whose Pod's placement changed and the Nodes that
     changed;
  3. re-decides conflicts for the fqdns they held or claim, and mounts for the keys
     touched and everything mounted below them (a key's outcome depends only on its own
     claims, its fqdn's other claimants and the chain above it);
  4. edits the published records, skips and nodes' parents in place, and hands them out
     in a `Desired` as snapshots the next batch's edits leave alone (`sync.layered`: the
     reconciler keeps the last state it wrote, the status writer reads it from its
     thread; no copy of 100,000 records a batch).

The result is the same as `desired_state` over the whole snapshot (tests apply random
changes and compare after each); `desired_state` stays the reference, and the function
for one-shot runs. Pure: no Redis, no Kubernetes client.

What is kept is kept once per Container, since it is held for as long as the sync runs
(100,000 to 1,000,000 of them): the claim itself is the entry (an `_Entry` is a Claim
with the object it was read from), so the claims handed out in `Desired.published` are
the rules' own; the only dicts with an item per Container are claims by key and keys by
fqdn (and keys by mount target, per child). Whatever follows from those is derived when
asked rather than stored: which copy of a key listed twice is used and which claimant
keeps an fqdn (a look at the one or few claimants), a published key's mount depth (a walk
up its chain of published parents, at most max_mount_depth steps), the children whose
records point at a name. An index value is the one member itself, a set only past one.
That took the bookkeeping from ~516 to ~150 bytes per Container.

Each `Desired` also says which keys' outcome and which names' records may have changed
since the previous one (`Desired.changes`): the reconciler diffs those names only, and
takes the purge waves from these indexes (`purge_waves`), and the status writer
re-checks those keys, not every Container.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import partial
from itertools import compress
from operator import attrgetter, is_, is_not
from typing import Callable, Iterable, Iterator

from mountdns.records import State
from sync.flat_object import OBJECT_TYPES, FlatObject
from sync.layered import LayeredDict
from sync.published_claims import HIDDEN, ClaimsByKey, PublishedClaims
from sync.objects import (DEFAULT_NAMESPACE, POD_KEY_PREFIX, Claim, ContainerReader, NotPublishable, ObjectKey,
                          PodPlacement, RulesConfig, SkipCode, ipv4_first, is_published_pod, pod_placement)
from sync.rules import Desired, Skip, _identity, _mount_chain, _read_nodes, _seniority, settle, unresolved_parents

__all__ = ["Changes", "IncrementalRules"]

_claim_fields = attrgetter(*(f.name for f in fields(Claim)))
# What a claim says before its mount target is resolved: a re-read object that says the
# same keeps its entry.
_read_fields = attrgetter(*(f.name for f in fields(Claim) if f.name != "mounted_to"), "raw_target")


class _Entry(Claim):
    """A Container's Claim as the rules hold it: with the object it was read from (a later
    batch tells by identity whether that object is still listed) and spec.mountedTo as
    written (`mounted_to` holds it resolved to a Container's or a Pod's name). One object
    per Container: the same one goes into Desired.published, so the rules keep no
    second object per claim. Equal to a Claim with the same fields."""

    __slots__ = ("obj", "raw_target")
    from_pod = False  # read from a Pod of the pod source (a class of its own: no slot per object)

    def __eq__(self, other):
        if isinstance(other, Claim):
            return _claim_fields(self) == _claim_fields(other)
        return NotImplemented

    __hash__ = None


class _PodEntry(_Entry):
    """The Claim of a Pod of the pod source."""

    __slots__ = ()
    from_pod = True


def _entry(claim: Claim, obj, kind: type[_Entry], raw_target: str | None) -> _Entry:
    entry = kind(*_claim_fields(claim))
    entry.obj, entry.raw_target = obj, raw_target
    return entry


class _Unread:
    """A listed object without a claim: unreadable (`skip` says why, and its key counts
    as listed, as in desired_state), or a Pod of the pod source not labelled to be
    published (`skip` None: it counts for nothing)."""

    __slots__ = ("obj", "key", "skip", "from_pod")

    def __init__(self, obj, key: ObjectKey, skip: Skip | None, from_pod: bool):
        self.obj, self.key, self.skip, self.from_pod = obj, key, skip, from_pod


class _Noted:
    """The keys a batch touched and the names whose claimants changed, until so many that
    the batch decides every key at once anyway (the first batch, most Containers
    changed): from then on nothing is noted, since a set of every key and another of every
    name were the largest passing cost of a first batch (~80 bytes per Container)."""

    __slots__ = ("keys", "fqdns", "limit", "claims")

    def __init__(self, limit: int, claims: ClaimsByKey):
        self.keys: set[ObjectKey] | None = set()
        self.fqdns: set[str] | None = set()
        self.limit = limit
        self.claims = claims  # whose written keys stop being noted too

    def key(self, key: ObjectKey) -> None:
        if self.keys is not None:
            self.keys.add(key)
            if len(self.keys) > self.limit:
                self.keys = self.fqdns = self.claims.written = None

    def fqdn(self, fqdn: str) -> None:
        if self.fqdns is not None:
            self.fqdns.add(fqdn)


# The three kinds the rules read, as numbered in `IncrementalRules._counts` and `changed`.
CONTAINERS, PODS, SOURCE_PODS = 0, 1, 2


class _Listed:
    """`key in listed`: a claim or an unreadable object has the key (as in desired_state)."""

    __slots__ = ("rules",)

    def __init__(self, rules: "IncrementalRules"):
        self.rules = rules

    def __contains__(self, key) -> bool:
        return key in self.rules._claims or key in self.rules._unreadable


class _Winners:
    """rules.settle's `winners` (key -> the claim that keeps its fqdn), asked of the
    indexes rather than held: most keys have one copy and sole claim to their fqdn."""

    __slots__ = ("winner",)

    def __init__(self, rules: "IncrementalRules"):
        self.winner = rules._winner

    def __contains__(self, key) -> bool:
        return self.winner(key) is not None

    def __getitem__(self, key) -> Claim:
        claim = self.winner(key)
        if claim is None:
            raise KeyError(key)
        return claim


class _Depths:
    """rules.settle's `depth` (key -> mount depth of a key settled as published) for a
    batch that decides some keys afresh, without a dict of every key's depth: a published
    key's depth is the length of its chain of published parents (at most max_mount_depth),
    walked when asked. `unsettled`: the keys this pass decides afresh, whose earlier
    publication does not count; what the pass settles goes into `fresh`. (A rebuild,
    where nothing was settled before, uses _Settled.)"""

    __slots__ = ("published", "unsettled", "fresh")

    def __init__(self, published: Mapping, unsettled, fresh: dict):
        self.published, self.unsettled, self.fresh = published, unsettled, fresh

    def __contains__(self, key) -> bool:
        return key in self.fresh or (key not in self.unsettled and key in self.published)

    def __getitem__(self, key) -> int:
        fresh, published = self.fresh, self.published
        level = 0
        while True:
            if key in fresh:
                return level + fresh[key]
            claim = published[key]
            if claim.mounted_to is None:
                return level
            key, level = (claim.namespace, claim.mounted_to), level + 1

    def __setitem__(self, key, level: int) -> None:
        self.fresh[key] = level


# A rebuild keeps the depths of at most about this many children between mount chains.
_SETTLED_CHILDREN = 4096


class _Settled:
    """rules.settle's `depth` for a rebuild, without a dict of every key published: a key
    whose claim keeps its fqdn, mounted to nothing and on a node, is a parent published at
    depth 0 (told by its claim); a child's depth is kept from its chain's settling until
    `children` is cleared between chains. A child walked again after that (from a child
    mounted below it) settles as before: the rules are a function of the claims. What a
    rebuild publishes is then every key that keeps its fqdn and is not rejected."""

    __slots__ = ("winner", "children")

    def __init__(self, winner: Callable[[ObjectKey], Claim | None]):
        self.winner, self.children = winner, {}

    def __contains__(self, key) -> bool:
        if key in self.children:
            return True
        claim = self.winner(key)
        return claim is not None and claim.mounted_to is None and bool(claim.node)

    def __getitem__(self, key) -> int:
        level = self.children.get(key)
        if level is not None:
            return level
        if key in self:
            return 0
        raise KeyError(key)

    def __setitem__(self, key, level: int) -> None:
        self.children[key] = level


def _add(index: dict, key, value) -> None:
    """index[key] holds one value, or a set of several (most hold one: no set each)."""
    held = index.get(key)
    if held is None:
        index[key] = value
    elif type(held) is set:
        held.add(value)
    elif held != value:
        index[key] = {held, value}


def _discard(index: dict, key, value) -> None:
    held = index.get(key)
    if held is None:
        return
    if type(held) is set:
        held.discard(value)
        if len(held) == 1:
            index[key] = next(iter(held))
        elif not held:
            del index[key]
    elif held == value:
        del index[key]


def _members(index: dict, key) -> tuple:
    held = index.get(key)
    if held is None:
        return ()
    return tuple(held) if type(held) is set else (held,)


def _hold(index: dict, key, item) -> None:
    """index[key] holds one item, or a list of several (objects and entries are not
    hashable by content, and a key is listed twice only by malformed input)."""
    held = index.get(key)
    if held is None:
        index[key] = item
    elif type(held) is list:
        held.append(item)
    else:
        index[key] = [held, item]


def _unhold(index: dict, key, item) -> None:
    held = index[key]
    if type(held) is list:
        # By identity: two copies may be equal (as claims, or as dicts) and still be two.
        del held[next(i for i, other in enumerate(held) if other is item)]
        if len(held) == 1:
            index[key] = held[0]
    else:
        del index[key]


def _held(index: dict, key) -> list:
    held = index.get(key)
    if held is None:
        return []
    return list(held) if type(held) is list else [held]


def _object_keys(obj, prefix: str) -> tuple[ObjectKey, ...]:
    """The keys an object may be held under: its claim's (namespace/name as read) and,
    should it not read, desired_state's for an unreadable one (cut short, repr'd)."""
    namespace, name = _identity(obj)
    fallback = (namespace, prefix + name)
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    if isinstance(meta, Mapping):
        namespace, name = meta.get("namespace") or DEFAULT_NAMESPACE, meta.get("name")
        if type(namespace) is str and type(name) is str and (namespace, prefix + name) != fallback:
            return (namespace, prefix + name), fallback
    return (fallback,)


def _parent_names(name: str) -> tuple[str, ...]:
    """The spec.mountedTo values that may resolve to the key named `name`: a target names a
    Container or a Pod ("pod/" + it), whichever is listed."""
    return (name, name[len(POD_KEY_PREFIX):]) if name.startswith(POD_KEY_PREFIX) else (name,)


@dataclass(frozen=True)
class Changes:
    """The keys whose outcome (published, its records, or its skip) may differ from the
    previous `Desired` of the same rules, numbered `base`; `keys` None means any.
    `names`: the fqdns whose parent or child record may differ (None: any), so the
    reconciler diffs those against what it wrote last, not every name."""

    base: int
    keys: frozenset | None
    names: frozenset | None = None


class IncrementalRules:
    """`desired_state`, kept up to date from batch to batch (see the module docstring)."""

    def __init__(self, config: RulesConfig):
        self.config = config
        self.generation = 0
        self.scans = 0  # times every object of a kind was compared, for want of (or despite) being told
        self._counts = [0, 0, 0]  # objects held per kind (CONTAINERS, PODS, SOURCE_PODS)
        # Per Container (the only items kept per object):
        # A list only for a key listed twice. Layered: the published claims handed out
        # are read against it (sync.published_claims).
        self._claims = ClaimsByKey()
        self._fqdns: dict[str, object] = {}  # fqdn -> key(s) with a claim to it
        self._children: dict[str, dict[str, object]] = {}  # namespace -> spec.mountedTo -> key(s) of its claims
        # Rare: objects without a claim, and what is decided against a key.
        self._unreadable: dict[ObjectKey, _Unread | list[_Unread]] = {}
        self._ignored: dict[ObjectKey, _Unread | list[_Unread]] = {}  # Pods of the pod source not published
        self._rejected: dict[ObjectKey, tuple[str, SkipCode]] = {}
        self._too_deep: dict[ObjectKey, int] = {}
        self._key_skips: dict[ObjectKey, tuple[Skip, ...]] = {}  # the skips in the result, per key
        self._skips: list[Skip] = []  # sorted
        self._skipped: tuple[Skip, ...] = ()
        # Pods a Container's spec.podRef may name.
        self._pods: dict[ObjectKey, object] = {}  # key -> the Pod(s) listed under it
        self._placed = 0  # Pods held that have a placement
        self._placements: dict[ObjectKey, PodPlacement] = {}
        self._dependents: dict[ObjectKey, object] = {}  # Pod key -> key(s) of the Containers naming it
        # The result, edited in place and handed out as snapshots (sync.layered): the
        # next batch's edits do not change what the last one handed out.
        self._published = PublishedClaims(self._claims)  # key -> Claim, as what differs from _claims
        self._parents: LayeredDict = LayeredDict()  # fqdn -> node
        self._child_records: LayeredDict = LayeredDict()  # fqdn -> parent fqdn
        self._node_keys: dict[str, tuple[ObjectKey, ...]] = {}  # node -> its published parents
        # The nodes with parents and no address, worked out again only when either key set
        # may have changed (a set difference of 10,000 nodes each batch was a tenth of it).
        self._addressless: set[str] | None = None
        # Since the last result: key -> True added to the node, False taken off it (a key
        # taken off and put back on the same node, or put and taken off, has no entry).
        self._node_edits: dict[str, dict[ObjectKey, bool]] = {}
        self._names: set[str] = set()  # fqdns whose record changed since the last result
        self._nodes_seen: tuple | None = None
        self._node_reads: dict[int, tuple] = {}  # id() of a Node -> (it, what _read_nodes makes of it alone)
        self._node_part: tuple = ({}, frozenset(), [])
        self._shared_names: frozenset[str] = frozenset()  # names more than one listed Node gives

    # -- the batch -----------------------------------------------------------------------
    def update(self, containers: tuple, nodes: tuple, pods: tuple = (), published_pods: tuple = (),
               changed: tuple | None = None) -> Desired:
        """The desired state for these objects (the same as desired_state over them).
        `changed`: what changed since the last call, if the caller knows, as (removed,
        added) objects for the Containers, the Pods and the Pods of the pod source."""
        told = changed or (None, None, None)
        reader = ContainerReader(self.config, self._placements)
        noted = _Noted((len(self._claims) + len(self._unreadable)) // 2, self._claims)
        self._update_pods(pods, noted, reader, told[PODS])
        for kind, objects, read in ((CONTAINERS, containers, self._read), (SOURCE_PODS, published_pods,
                                                                           self._read_pod)):
            from_pod = kind == SOURCE_PODS
            added, removed = self._changes(kind, objects, told[kind], partial(self._find, from_pod=from_pod),
                                           partial(self._every, from_pod))
            self._apply(removed, added, partial(read, reader), noted)
        if noted.keys is None:
            self._rebuild()  # the first batch, or most keys touched: decided at once, as desired_state does
            changed = None
        else:
            changed = self._settle(noted.keys, noted.fqdns) | noted.keys
        return self._result(nodes, changed)

    def _changes(self, kind: int, objects: tuple, told: tuple[list, list] | None,
                 find: Callable, every: Callable[[], Iterator]) -> tuple[list, list]:
        """(added objects, what was held for the removed ones) of one kind since the last
        call. `told`, the (removed, added) objects as the cache says, saves a pass over
        every object (what a batch of a few changes among 100,000 cost most); it is
        checked against the count held and what is held, and the objects compared one by
        one when it does not add up. Objects are found by the key they are held under and
        their identity: no index of every object by id()."""
        count = self._counts[kind]
        if told is not None:
            removed, added = told
            if count - len(removed) + len(added) == len(objects):
                gone = [find(obj) for obj in removed]
                if None not in gone and not any(find(obj) is not None for obj in added):
                    self._counts[kind] = len(objects)
                    return list(added), gone
        self.scans += 1
        self._counts[kind] = len(objects)
        if not count:
            return list(objects), []  # nothing held (a first batch): no object to look for
        added, found = [], 0
        for obj in objects:
            if find(obj) is None:
                added.append(obj)
            else:
                found += 1
        gone = []
        if found != count:
            now = {id(obj) for obj in objects}
            gone = [held for obj, held in every() if id(obj) not in now]
        return added, gone

    def _find(self, obj, from_pod: bool):
        """What is held for a Container (or Pod of the pod source) object, or None."""
        for key in _object_keys(obj, POD_KEY_PREFIX if from_pod else ""):
            for index in (self._claims, self._unreadable, self._ignored):
                for held in _held(index, key):
                    if held.obj is obj:
                        return held
        return None

    def _every(self, from_pod: bool) -> Iterator[tuple[object, object]]:
        """(object, what is held for it) for every object of one kind."""
        for index in (self._claims, self._unreadable, self._ignored):
            for value in index.values():
                for held in value if type(value) is list else (value,):
                    if held.from_pod == from_pod:
                        yield held.obj, held

    def _update_pods(self, pods: tuple, noted: _Noted, reader: ContainerReader, told) -> None:
        """New placements, and the Containers naming a Pod whose placement changed read again."""
        added, removed = self._changes(PODS, pods, told, self._find_pod, self._every_pod)
        if not (added or removed):
            return
        moved: set[ObjectKey] = set()
        for obj in removed:
            read = pod_placement(obj)
            _unhold(self._pods, read[0] if read else _identity(obj), obj)
            if read is not None:
                self._placed -= 1
                moved.add(read[0])
        fresh: dict[ObjectKey, PodPlacement] = {}
        for obj in added:
            read = pod_placement(obj)
            _hold(self._pods, read[0] if read else _identity(obj), obj)
            if read is not None:
                self._placed += 1
                fresh[read[0]] = read[1]
        for key in moved:
            if key not in fresh:
                self._placements.pop(key, None)
        for key, placement in fresh.items():
            if self._placements.get(key) != placement:
                self._placements[key] = placement
                moved.add(key)
        if self._placed != len(self._placements):
            # Two listed Pods with one key (only malformed objects can): which one counts
            # depends on their order, so every placement is read again in order.
            self._placements.clear()
            for obj in pods:
                read = pod_placement(obj)
                if read is not None:
                    self._placements[read[0]] = read[1]
            moved = set(self._dependents)
        for pod in moved:
            for key in _members(self._dependents, pod):
                for held in _held(self._claims, key) + _held(self._unreadable, key):
                    if not held.from_pod and _pod_named(held.obj) == pod:
                        self._apply([held], [held.obj], partial(self._read, reader), noted)

    def _find_pod(self, obj):
        read = pod_placement(obj)
        for held in _held(self._pods, read[0] if read else _identity(obj)):
            if held is obj:
                return held
        return None

    def _every_pod(self) -> Iterator[tuple[object, object]]:
        for value in self._pods.values():
            for obj in value if type(value) is list else (value,):
                yield obj, obj

    # -- reading one object -----------------------------------------------------------------
    def _read(self, reader: ContainerReader, obj) -> _Entry | _Unread:
        try:
            claim = reader.read(obj)
        except Exception as exc:  # noqa: BLE001 - as desired_state: one odd object never stops the others
            return _Unread(obj, _identity(obj), _skip_for(obj, exc, ""), False)
        return _entry(claim, obj, _Entry, claim.mounted_to)

    def _read_pod(self, reader: ContainerReader, obj) -> _Entry | _Unread:
        if not is_published_pod(obj):
            namespace, name = _identity(obj)
            return _Unread(obj, (namespace, POD_KEY_PREFIX + name), None, True)
        try:
            claim = reader.read_pod(obj)
        except Exception as exc:  # noqa: BLE001
            namespace, name = _identity(obj)
            return _Unread(obj, (namespace, POD_KEY_PREFIX + name), _skip_for(obj, exc, POD_KEY_PREFIX), True)
        return _entry(claim, obj, _PodEntry, claim.mounted_to)

    # -- the indexes -----------------------------------------------------------------------
    def _apply(self, removed: list, added: list, read: Callable, noted: _Noted) -> None:
        """Drop what was held for the removed objects and keep what the added ones read
        to (`read`, one at a time: no list of every entry in a first batch). An object
        replaced by one that reads to the same claim keeps its entry, with the new object
        in it: nothing to decide (a change to a field the rules do not read), and the old
        object is not kept alive by it. An entry replaced by another of the same key takes
        the old one's key tuple, and its fqdn string if equal: the records and indexes
        that still hold them do not keep a second copy each."""
        olds = {held.key: held for held in removed if type(held) is not _Unread} if removed and added else {}
        if not olds:
            for held in removed:
                self._drop(held, noted)
            for obj in added:
                new = read(obj)
                self._keep(new, noted, self._pod_of(new, always=True))
            return
        reused, fresh = set(), []
        for new in map(read, added):
            pod = self._pod_of(new, always=True)
            old = olds.pop(new.key, None) if olds and type(new) is not _Unread else None
            if old is not None and type(old) is type(new):
                if _read_fields(old) == _read_fields(new) and self._pod_of(old) == pod:
                    old.obj = new.obj  # not a Claim field: what a handed-out result says is unchanged
                    reused.add(id(old))
                    continue
                new.key = old.key
                if new.fqdn == old.fqdn:
                    new.fqdn = old.fqdn
            fresh.append((new, pod))
        for held in removed:
            if id(held) not in reused:
                self._drop(held, noted)
        for new, pod in fresh:
            self._keep(new, noted, pod)

    def _pod_of(self, held: _Entry | _Unread, always: bool = False) -> ObjectKey | None:
        """The Pod a Container's spec.podRef names (see _pod_named). Unless `always`, None
        while no Container held names one (most clusters): reading spec.podRef again for
        every object dropped was a tenth of a batch."""
        if held.from_pod or not (always or self._dependents):
            return None
        return _pod_named(held.obj)

    def _keep(self, held: _Entry | _Unread, noted: _Noted, pod: ObjectKey | None) -> None:
        """Index what was read of one object; `pod`: the Pod its spec.podRef names."""
        key = held.key
        if pod is not None:
            _add(self._dependents, pod, key)
        if type(held) is _Unread:
            if held.skip is None:
                _hold(self._ignored, key, held)
                return
            _hold(self._unreadable, key, held)
            bisect.insort(self._skips, held.skip)
            self._skipped = None
        else:
            _hold(self._claims, key, held)
            _add(self._fqdns, held.fqdn, key)
            noted.fqdn(held.fqdn)
            if held.raw_target is not None:
                _add(self._children.setdefault(key[0], {}), held.raw_target, key)
        noted.key(key)

    def _drop(self, held: _Entry | _Unread, noted: _Noted) -> None:
        key = held.key
        if type(held) is _Unread:
            if held.skip is None:
                _unhold(self._ignored, key, held)
            else:
                _unhold(self._unreadable, key, held)
                del self._skips[bisect.bisect_left(self._skips, held.skip)]
                self._skipped = None
                noted.key(key)
        else:
            _unhold(self._claims, key, held)
            copies = _held(self._claims, key)
            if not any(copy.fqdn == held.fqdn for copy in copies):
                _discard(self._fqdns, held.fqdn, key)
            noted.fqdn(held.fqdn)
            if held.raw_target is not None and not any(copy.raw_target == held.raw_target for copy in copies):
                children = self._children[key[0]]
                _discard(children, held.raw_target, key)
                if not children:
                    del self._children[key[0]]
            noted.key(key)
        pod = self._pod_of(held)
        if pod is not None and not any(not other.from_pod and _pod_named(other.obj) == pod
                                       for other in _held(self._claims, key) + _held(self._unreadable, key)):
            _discard(self._dependents, pod, key)

    def _mounted_to(self, key: ObjectKey) -> tuple[ObjectKey, ...]:
        """The keys with a claim whose spec.mountedTo may name `key`."""
        children = self._children.get(key[0])
        if children is None:
            return ()
        found = ()
        for name in _parent_names(key[1]):
            found += _members(children, name)
        return found

    # -- what is derived from the indexes ---------------------------------------------------
    def _chosen(self, key: ObjectKey) -> _Entry | None:
        """The copy of `key` that counts (the most senior, when it is listed twice)."""
        held = self._claims.get(key)
        if type(held) is list:
            return min(held, key=_seniority)
        return held

    def _owner(self, fqdn: str) -> _Entry | None:
        """The claim that keeps `fqdn`: the most senior of the chosen copies claiming it."""
        best = None
        for key in _members(self._fqdns, fqdn):
            claim = self._chosen(key)
            if claim is not None and claim.fqdn == fqdn and (best is None or _seniority(claim) < _seniority(best)):
                best = claim
        return best

    def _winner(self, key: ObjectKey) -> _Entry | None:
        """The claim of `key` if it keeps its fqdn, else None."""
        claim = self._claims.get(key)
        if claim is None:
            return None
        if type(claim) is list:
            claim = min(claim, key=_seniority)
        if type(self._fqdns[claim.fqdn]) is not set:
            return claim  # the only key claiming the name: the common case
        return claim if self._owner(claim.fqdn) is claim else None

    def _lost(self, key: ObjectKey) -> list[Skip]:
        """The skips of the copies of `key` not used, and of its claim if its fqdn is taken."""
        copies = _held(self._claims, key)
        if not copies:
            return []
        chosen = min(copies, key=_seniority)
        lost = [Skip(key[0], key[1], "listed twice; one copy is used", SkipCode.NAME_CONFLICT)
                for copy in copies if copy is not chosen]
        owner = self._owner(chosen.fqdn)
        if owner is not chosen:
            why = "older" if owner.created < chosen.created else "as old and first by namespace/name"
            lost.append(Skip(key[0], key[1], f"fqdn {chosen.fqdn} is taken by {owner.namespace}/{owner.name} "
                                             f"({why})", SkipCode.NAME_CONFLICT))
        return lost

    # -- deciding ------------------------------------------------------------------------------
    def _resolve_target(self, entry: _Entry, listed: _Listed) -> _Entry:
        """As desired_state's _resolve_mount_targets, without editing a claim someone may
        hold (the last Desired does): a changed one is a new entry, returned."""
        if entry.raw_target is None:
            return entry
        namespace, target = entry.key[0], entry.raw_target
        same, other = ((POD_KEY_PREFIX + target, target) if entry.from_pod else (target, POD_KEY_PREFIX + target))
        resolved = other if (namespace, same) not in listed and (namespace, other) in listed else same
        if entry.mounted_to == resolved:
            return entry
        # The target's own key string when it has a claim, not an equal "pod/" copy per child.
        held = self._claims.get((namespace, resolved))
        if held is not None:
            resolved = (held[0] if type(held) is list else held).key[1]
        changed = _entry(entry, entry.obj, type(entry), entry.raw_target)
        changed.mounted_to = resolved
        return changed

    def _resolve(self, key: ObjectKey, listed: _Listed) -> None:
        """Resolve the mount targets of every copy of `key` again."""
        held = self._claims.get(key)
        if type(held) is list:
            held[:] = [self._resolve_target(entry, listed) for entry in held]
        elif held is not None and held.raw_target is not None:
            self._claims[key] = self._resolve_target(held, listed)

    def _rebuild(self) -> None:
        """Decide every key at once from the objects read (desired_state's way, linear):
        for the first batch and after a re-list, where most keys changed."""
        listed = _Listed(self)
        claims = self._claims
        claims.fold()  # passed over key by key below, at dict speed
        for key in claims:
            self._resolve(key, listed)  # replaces values only: the dict's size stays
        self._rejected, self._too_deep, self._key_skips = {}, {}, {}
        rejected, winner = self._rejected, self._winner
        for key in claims:
            claim = winner(key)
            if claim is not None and claim.mounted_to is None and not claim.node:
                rejected[key] = claim.unmounted
        winners = _Winners(self)
        settled = _Settled(winner)
        max_depth = self.config.max_mount_depth
        for start in claims:
            if start in settled or start in rejected or winner(start) is None:
                continue
            if len(settled.children) > _SETTLED_CHILDREN:
                settled.children.clear()  # between chains: one walked again settles the same way
            settle(*_mount_chain(start, winners, settled, rejected), settled, rejected, self._too_deep, listed,
                   max_depth)
        del settled
        # Every key that keeps its fqdn is now published or rejected. Built as plain dicts
        # (at dict speed), then the bases of the layered ones; the published claims as the
        # claims but for the few that are not published (sync.published_claims).
        parents, children, by_node, hidden = {}, {}, {}, {}
        published = 0
        for key, held in claims.items():
            claim = winner(key)
            if claim is None or key in rejected:
                if type(held) is not list:
                    hidden[key] = HIDDEN
                continue
            published += 1
            if type(held) is list:
                hidden[key] = claim  # published as the copy in use, not as the list
            if claim.mounted_to is None:
                parents[claim.fqdn] = claim.node
                keys = by_node.get(claim.node)
                if keys is None:
                    keys = by_node[claim.node] = []
                keys.append(key)
            else:
                children[claim.fqdn] = winner((claim.namespace, claim.mounted_to)).fqdn
        self._published = PublishedClaims(claims, hidden, published)
        self._parents, self._child_records = LayeredDict(parents), LayeredDict(children)
        self._node_keys = {node: tuple(keys) for node, keys in by_node.items()}
        self._addressless = None
        self._node_edits = {}
        self._skips = [held.skip for value in self._unreadable.values()
                       for held in (value if type(value) is list else (value,))]
        lost = {key for key, held in claims.items() if type(held) is list}
        lost.update(key for held in self._fqdns.values() if type(held) is set for key in held)
        for key in lost | rejected.keys():
            skips = self._skips_of(key)
            if skips:
                self._key_skips[key] = skips
                self._skips += skips
        self._skips.sort()
        self._skipped = None

    def _settle(self, touched: set[ObjectKey], fqdns: set[str]) -> set[ObjectKey]:
        """Re-decide what the touched keys change; the keys whose outcome may differ.
        `fqdns`: the names whose claimants changed."""
        if not touched:
            return set()
        listed = _Listed(self)
        # A key appearing or going changes how names mounted to it resolve (Container or Pod).
        resolve = set(touched)
        for key in touched:
            resolve.update(self._mounted_to(key))
        for key in resolve:
            self._resolve(key, listed)
            fqdns.update(copy.fqdn for copy in _held(self._claims, key))  # its copy in use may change
        affected = set(resolve)
        for fqdn in fqdns:
            affected.update(_members(self._fqdns, fqdn))
        return self._remount(affected, listed)

    def _remount(self, affected: set[ObjectKey], listed: _Listed) -> set[ObjectKey]:
        """Mount depths again for the affected keys and every key mounted below them."""
        todo = set()
        stack = list(affected)
        while stack:
            key = stack.pop()
            if key in todo:
                continue
            todo.add(key)
            stack.extend(self._mounted_to(key))
        rejected, too_deep, winner = self._rejected, self._too_deep, self._winner
        for key in todo:
            rejected.pop(key, None)
            too_deep.pop(key, None)
        fresh: dict[ObjectKey, int] = {}
        winners = _Winners(self)
        depths = _Depths(self._published, todo, fresh)
        for key in todo:
            claim = winner(key)
            if claim is not None and claim.mounted_to is None:
                if claim.node:
                    fresh[key] = 0
                else:
                    rejected[key] = claim.unmounted
        max_depth = self.config.max_mount_depth
        for start in todo:
            if start in fresh or start in rejected or winner(start) is None:
                continue
            settle(*_mount_chain(start, winners, depths, rejected), depths, rejected, too_deep, listed, max_depth)
        now, swaps = {}, []
        for key in todo:
            outcome = self._outcome(key, fresh)
            if outcome != self._published_outcome(key):
                now[key] = outcome
            elif outcome[0] is not None and self._published[key] is not outcome[0][0]:
                swaps.append((key, outcome[0][0]))
        for key, claim in swaps:
            self._published[key] = claim  # an equal claim of another copy: the one in use
        # Records: every old one out first, so an fqdn passing between keys is not lost.
        for key in now:
            self._unpublish(key)
        for key, outcome in now.items():
            self._publish(key, outcome)
        return todo

    def _skips_of(self, key: ObjectKey) -> tuple[Skip, ...]:
        skips = tuple(self._lost(key))
        rejected = self._rejected.get(key)
        if rejected is not None:
            skips += (Skip(key[0], key[1], rejected[0], rejected[1]),)
        return skips

    def _outcome(self, key: ObjectKey, fresh: dict[ObjectKey, int]) -> tuple:
        """What the result should hold for `key` (settled in `fresh` if published): (claim,
        target) if published, its skips."""
        record = None
        if key in fresh:
            claim = self._winner(key)
            record = (claim, claim.node if claim.mounted_to is None
                      else self._winner((claim.namespace, claim.mounted_to)).fqdn)
        return record, self._skips_of(key)

    def _published_outcome(self, key: ObjectKey) -> tuple:
        """What the result holds for `key` now, in the same form as _outcome."""
        claim = self._published.get(key)
        record = None
        if claim is not None:
            record = (claim, self._parents[claim.fqdn] if claim.mounted_to is None
                      else self._child_records[claim.fqdn])
        return record, self._key_skips.get(key, ())

    def _unpublish(self, key: ObjectKey) -> None:
        record, skips = self._published_outcome(key)
        if record is not None:
            claim, target = record
            self._published.pop(key, None)
            self._names.add(claim.fqdn)
            if claim.mounted_to is None:
                if self._parents.get(claim.fqdn) == target:
                    del self._parents[claim.fqdn]
                edits = self._node_edits.setdefault(claim.node, {})
                if edits.pop(key, None) is not True:  # added this batch: gone again, as before it
                    edits[key] = False
            elif self._child_records.get(claim.fqdn) == target:
                del self._child_records[claim.fqdn]
        if skips:
            del self._key_skips[key]
        for skip in skips:
            del self._skips[bisect.bisect_left(self._skips, skip)]
            self._skipped = None

    def _publish(self, key: ObjectKey, outcome: tuple) -> None:
        record, skips = outcome
        if record is not None:
            claim, target = record
            self._published[key] = claim
            self._names.add(claim.fqdn)
            if claim.mounted_to is None:
                self._parents[claim.fqdn] = target
                # A parent whose claim changes while it stays on its node (its fqdn, its
                # creation time) was taken off and is put back: the node holds it as before,
                # in its place, and its tuple of parents need not be made again.
                edits = self._node_edits.setdefault(claim.node, {})
                if edits.pop(key, None) is not False:
                    edits[key] = True
            else:
                self._child_records[claim.fqdn] = target
        if skips:
            self._key_skips[key] = skips
        for skip in skips:
            bisect.insort(self._skips, skip)
            self._skipped = None

    def _read_nodes(self, nodes: tuple) -> tuple[dict, frozenset, list]:
        """sync.rules._read_nodes, reading only the Nodes that changed: a node move
        changes one of 1,000, and parsing every address each batch was a tenth of it."""
        moved = self._moved_nodes(nodes)
        if moved is not None:
            return moved
        reads, kept = self._node_reads, {}
        for node in nodes:
            read = reads.get(id(node))
            if read is None or read[0] is not node:
                read = (node, *_read_nodes((node,), self.config))
            kept[id(node)] = read
        self._node_reads = kept
        result: dict[str, tuple[str, ...]] = {}
        twice: dict[str, set[str]] = {}  # names two listed Nodes share: their addresses together
        listed: set[str] = set()
        warnings: list[str] = []
        for _, with_address, names, node_warnings in kept.values():
            warnings += node_warnings
            for name in names:
                if name in listed:
                    twice.setdefault(name, set(result.get(name, ()))).update(with_address.get(name, ()))
                elif name in with_address:
                    result[name] = with_address[name]
                listed.add(name)
        for name, addresses in twice.items():
            if addresses:
                result[name] = ipv4_first(addresses)
        self._shared_names = frozenset(twice)
        listed = frozenset(listed)
        self._addressless = None
        # Sorted once here (the plan's nodes are in name order); a node move keeps the order.
        return dict(sorted(result.items())), listed if listed != self._node_part[1] else self._node_part[1], warnings

    def _moved_nodes(self, nodes: tuple) -> tuple[dict, frozenset, list] | None:
        """_read_nodes's result when the Nodes are those seen last, in the same places, a
        few of them replaced by a version that lists the same one name, none with a
        warning then or now (a node move): the last result with those nodes' addresses
        changed, without a pass in Python over every Node (at 100 moves a second, that
        pass ran every batch). None when it is not so: then every Node is looked at."""
        seen = self._nodes_seen
        if seen is None or len(seen) != len(nodes):
            return None
        changed = list(compress(range(len(nodes)), map(is_not, nodes, seen)))
        if len(changed) > len(nodes) // 4:
            return None  # most Nodes changed (a re-list): the whole pass costs no more
        reads, (result, listed, warnings) = self._node_reads, self._node_part
        fresh = []
        for at in changed:
            old = reads.get(id(seen[at]))
            new = (nodes[at], *_read_nodes((nodes[at],), self.config))
            if (old is None or old[0] is not seen[at] or old[3] or new[3] or len(new[2]) != 1
                    or new[2] != old[2] or new[2] & self._shared_names):
                return None
            fresh.append((seen[at], new))
        result = dict(result)  # the last one is held with the last result
        added = False
        for old_node, new in fresh:
            del reads[id(old_node)]
            reads[id(new[0])] = new
            (name,) = new[2]
            if name in new[1]:
                added = added or name not in result
                result[name] = new[1][name]
            elif result.pop(name, None) is not None:
                self._addressless = None  # a node lost its address
        if added:
            result = dict(sorted(result.items()))  # a node got an address: back in name order
            self._addressless = None
        return result, listed, warnings

    def _children_of(self, fqdn: str) -> Iterable[str]:
        """The published children whose records point at `fqdn`: those mounted to the key
        that publishes it. Asked of every name a batch purges (a node move purges its
        parents', then their children's): the common cases (one key claims the name; a
        name of a Container without children) take a few dict lookups, no calls."""
        held, published = self._fqdns.get(fqdn), self._published
        if held is None:
            return ()
        if type(held) is set:
            for key in held:
                claim = published.get(key)
                if claim is not None and claim.fqdn == fqdn:
                    break
            else:
                return ()
        else:
            key, claim = held, published.get(held)
            if claim is None or claim.fqdn != fqdn:
                return ()
        by_target = self._children.get(key[0])
        name = key[1]
        if by_target is None or (name not in by_target and not name.startswith(POD_KEY_PREFIX)):
            return ()  # nothing mounted to it (_mounted_to's answer, without building it)
        found = []
        for child in self._mounted_to(key):
            claim = published.get(child)
            if claim is not None and claim.mounted_to == name:
                found.append(claim.fqdn)
        return found

    def purge_waves(self, desired: Desired, changes) -> list[set[str]]:
        """mountdns.purge.purge_waves(changes, before, after) for a batch whose `before`
        is the previous result's records and `after` the latest result's (`desired`):
        the same waves, from the indexes instead of a pass over every name per wave. (A
        parent on a moved node, or a child of a purged name, that only `before` has is a
        record the batch changed, so it is purged in the first wave either way.)"""
        names = set(changes.parents_put) | set(changes.parents_delete)
        names |= set(changes.children_put) | set(changes.children_delete)
        published = desired.published
        for node in set(changes.nodes_put) | set(changes.nodes_delete):
            names.update(published[key].fqdn for key in desired.parents_by_node.get(node, ()))
        names |= set(changes.zones_put)
        waves = [names] if names else []
        seen, frontier = set(names), set(names)
        while frontier:
            frontier = {child for target in frontier for child in self._children_of(target) if child not in seen}
            if frontier:
                waves.append(frontier)
                seen |= frontier
        return waves

    # -- the result ------------------------------------------------------------------------
    def _result(self, nodes: tuple, changed: set[ObjectKey] | None) -> Desired:
        node_changed = self._nodes_seen is None or len(nodes) != len(self._nodes_seen) or not all(
            map(is_, nodes, self._nodes_seen))
        if node_changed:
            self._node_part = self._read_nodes(nodes)
            self._nodes_seen = nodes
        node_map, node_names, node_warnings = self._node_part
        # Per node, a tuple made again only when its parents changed: a batch hands out
        # 1,000 nodes' tuples, not 100,000 keys.
        node_keys = self._node_keys
        for node, edits in self._node_edits.items():
            if not edits:
                continue  # its parents changed, each on this node before and after
            # Every key put in a batch was taken off first (_decide), so a False edit is
            # for a key the node holds and a True one for a key it does not: the held
            # tuple is copied and cut in C, not filtered key by key (50-100 keys a node
            # at 100,000 names; in the churn that filter was the sync's largest line).
            held = node_keys.get(node, ())
            removed = [key for key, present in edits.items() if not present]
            added = tuple(key for key, present in edits.items() if present)
            if removed:
                kept = list(held)
                for key in removed:
                    kept.remove(key)
                keys = (*kept, *added)
            else:
                keys = held + added
            if keys:
                if node not in node_keys:
                    self._addressless = None  # a node got its first parent
                node_keys[node] = keys
            elif node_keys.pop(node, None) is not None:
                self._addressless = None  # a node lost its last parent
        self._node_edits = {}
        warnings = list(node_warnings)
        # The nodes without an address by a set difference, not a pass over every node, and
        # only when a node came, went, got or lost an address, or its first or last parent.
        if self._addressless is None:
            self._addressless = node_keys.keys() - node_map.keys()
        warnings += (f"node {node} has no known address: its {len(node_keys[node])} parent(s) get no A/AAAA "
                     f"records until it has one" for node in self._addressless)
        if self._skipped is None:
            self._skipped = tuple(self._skips)
        parents_by_node = dict(node_keys)
        # The records are handed out as snapshots: the reconciler keeps this state as what
        # Redis holds, and the status writer reads it from its thread, while the next
        # batch edits the layered dicts (sync.layered: no copy of the whole a batch).
        self._published.rebase()
        published = self._published.snapshot()
        # node_map is in name order already (_read_nodes) and never edited once made.
        state = State(zones={zone.name: zone for zone in self.config.zones}, nodes=node_map,
                      parents=self._parents.snapshot(), children=self._child_records.snapshot())
        base, self.generation = self.generation, self.generation + 1
        names, self._names = self._names, set()
        return Desired(state=state, skipped=self._skipped, warnings=tuple(sorted(warnings)),
                       unresolved=unresolved_parents(parents_by_node, node_map, node_names),
                       parents_by_node=parents_by_node, published=published, listed_nodes=node_names,
                       changes=Changes(base, frozenset(changed) if base and changed is not None else None,
                                       frozenset(names) if base and changed is not None else None))


def _skip_for(obj, exc: Exception, prefix: str) -> Skip:
    namespace, name = _identity(obj)
    if isinstance(exc, NotPublishable):
        return Skip(namespace, prefix + name, str(exc), exc.code)
    return Skip(namespace, prefix + name, f"unreadable: {type(exc).__name__}: {exc}"[:200], SkipCode.INVALID_SPEC)


def _pod_named(obj) -> ObjectKey | None:
    """The key of the Pod a Container's spec.podRef names, when it can be told; its claim
    is read again when that Pod's placement changes."""
    if not isinstance(obj, OBJECT_TYPES):
        return None
    if type(obj) is FlatObject and obj.get_in("spec", "podRef") is None:
        return None  # no podRef, as most Containers: told without building their parts
    meta, spec = obj.get("metadata"), obj.get("spec")
    ref = spec.get("podRef") if isinstance(spec, dict) else None
    name = ref.get("name") if isinstance(ref, dict) else None
    if not isinstance(name, str) or not isinstance(meta, dict):
        return None
    namespace = meta.get("namespace") or DEFAULT_NAMESPACE
    return (namespace, name) if isinstance(namespace, str) else None

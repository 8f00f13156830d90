"""The rules kept up to date between batches: a batch costs what changed, not the cluster.

`sync.rules.desired_state` reads every Container and resolves every conflict and mount
on each call: ~1 s at 100,000 Containers, so under a steady 1,000 changes/s the batches
grew and changes waited seconds for Redis. `IncrementalRules` holds, between batches,
each object's read result (its `Claim` or `Skip`) and the indexes the rules need (claims
by key and by fqdn, children by the name they are mounted to, Containers by the Pod they
name), and on each batch:

  1. takes the objects that changed from the cache's snapshot (the old and new dict of
     each changed key), or finds them by identity when not told (the cache replaces an
     object's dict on every change, so the same dict is the same object);
  2. reads only those, the Containers whose Pod's placement changed and the Nodes that
     changed;
  3. re-decides conflicts for the fqdns they held or claim, and mounts for the keys
     touched and everything mounted below them (a key's outcome depends only on its own
     claims, its fqdn's other claimants and the chain above it);
  4. edits the published records, skips and nodes' parents in place, and hands them out
     in a `Desired`, copying them before the next batch edits them (the reconciler keeps
     the last state it wrote, the status writer reads it from its thread).

The result is the same as `desired_state` over the whole snapshot (tests apply random
changes and compare after each); `desired_state` stays the reference, and the function
for one-shot runs. Pure: no Redis, no Kubernetes client.

Each `Desired` also says which keys' outcome and which names' records may have changed
since the previous one (`Desired.changes`): the reconciler diffs those names only, and
takes the purge waves from these indexes (`purge_waves`), and the status writer
re-checks those keys, not every Container.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace
from typing import Iterable

from mountdns.records import State
from sync.flat_object import OBJECT_TYPES
from sync.objects import (DEFAULT_NAMESPACE, POD_KEY_PREFIX, Claim, ContainerReader, NotPublishable, ObjectKey,
                          PodPlacement, RulesConfig, SkipCode, ipv4_first, is_published_pod, pod_placement)
from sync.rules import (Desired, Skip, _identity, _mount_chain, _read_nodes, _resolve_mounts, _seniority,
                        settle, unresolved_parents)

__all__ = ["Changes", "IncrementalRules"]


class _Entry:
    """One listed object and what reading it gave: a Claim (with its mount target
    resolved to a key's name) or a Skip; None for a Pod that the pod source ignores."""

    __slots__ = ("obj", "key", "claim", "skip", "raw_target", "pod")

    def __init__(self, obj, key: ObjectKey, claim: Claim | None, skip: Skip | None, raw_target: str | None,
                 pod: ObjectKey | None):
        self.obj = obj
        self.key = key
        self.claim = claim
        self.skip = skip
        self.raw_target = raw_target  # spec.mountedTo as written, before it is resolved to a kind
        self.pod = pod  # the Pod named by spec.podRef, whose placement the claim depends on


class _Listed:
    """`key in listed`: a claim or an unreadable object has the key (as in desired_state)."""

    __slots__ = ("rules",)

    def __init__(self, rules: "IncrementalRules"):
        self.rules = rules

    def __contains__(self, key) -> bool:
        return key in self.rules._claims or key in self.rules._unreadable


def _bare(name: str) -> str:
    return name[len(POD_KEY_PREFIX):] if name.startswith(POD_KEY_PREFIX) else name


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


def _members(index: dict, key) -> Iterable:
    held = index.get(key)
    if held is None:
        return ()
    return tuple(held) if type(held) is set else (held,)


class _Tracked:
    """The objects of one kind seen by the last batch, by identity: id() -> the object,
    or (`entries`) -> the _Entry read from it, so the entries are the one dict kept per
    object (100,000 of them)."""

    __slots__ = ("by_id", "entries", "scans")

    def __init__(self, entries: bool = False):
        self.by_id: dict[int, object] = {}
        self.entries = entries
        self.scans = 0  # times every object was compared, for want of (or despite) being told

    def _held(self, obj) -> bool:
        value = self.by_id.get(id(obj))
        return value is not None and (value.obj if self.entries else value) is obj

    def changes(self, objects: tuple, told: tuple[list, list] | None = None) -> tuple[list, list]:
        """(added objects, what was held for the removed ones) since the last call; the
        removed are forgotten, the added held as themselves until the caller holds their
        entry. `told`, the (removed, added) objects as the cache says, saves a pass over
        every object (what a batch of a few changes among 100,000 cost most); it is
        checked against the count, and the objects compared one by one when it does not
        add up."""
        by_id = self.by_id
        if told is not None:
            removed, added = told
            if (len(by_id) - len(removed) + len(added) == len(objects) and all(map(self._held, removed))
                    and not any(id(obj) in by_id for obj in added)):
                gone = [by_id.pop(id(obj)) for obj in removed]
                for obj in added:
                    by_id[id(obj)] = obj
                return list(added), gone
        self.scans += 1
        held = self._held
        added = [obj for obj in objects if not held(obj)]
        gone = []
        if len(by_id) + len(added) != len(objects):
            now = {id(obj) for obj in objects}
            gone = [by_id.pop(i) for i in [i for i in by_id if i not in now]]
        for obj in added:
            by_id[id(obj)] = obj
        return added, gone


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
        self._containers = _Tracked(entries=True)
        self._pod_objects = _Tracked()
        self._published_pods = _Tracked(entries=True)
        self._placements: dict[ObjectKey, PodPlacement] = {}
        self._pod_keys: dict[int, ObjectKey] = {}  # id() of a Pod -> its key, while it has a placement
        self._dependents: dict[ObjectKey, object] = {}  # Pod key -> ids of the Containers naming it
        self._claims: dict[ObjectKey, object] = {}  # key -> _Entry, or a list of them (listed twice)
        self._unreadable: dict[ObjectKey, int] = {}  # keys of objects that could not be read
        self._chosen: dict[ObjectKey, Claim] = {}  # the copy used, per key
        self._fqdns: dict[str, object] = {}  # fqdn -> key(s) whose chosen copy claims it
        self._children: dict[ObjectKey, object] = {}  # (namespace, bare target) -> keys mounted to it
        self._winners: dict[ObjectKey, Claim] = {}
        self._depth: dict[ObjectKey, int] = {}
        self._rejected: dict[ObjectKey, tuple[str, SkipCode]] = {}
        self._too_deep: dict[ObjectKey, int] = {}
        self._lost: dict[ObjectKey, list[Skip]] = {}  # listed-twice and conflict skips per key
        self._key_skips: dict[ObjectKey, tuple[Skip, ...]] = {}  # the skips in the result, per key
        self._published: dict[ObjectKey, Claim] = {}
        self._parents: dict[str, str] = {}
        self._child_records: dict[str, str] = {}
        self._handed_out = False  # the last result holds _published, _parents and _child_records
        self._children_of: dict[str, object] = {}  # fqdn -> the child record(s) CNAMEd to it
        self._by_node: dict[str, dict[ObjectKey, None]] = {}
        self._node_tuples: dict[str, tuple[ObjectKey, ...]] = {}  # _by_node's keys as handed out, per node
        self._names: set[str] = set()  # fqdns whose record changed since the last result
        self._skips: list[Skip] = []  # sorted
        self._skipped: tuple[Skip, ...] = ()
        self._nodes_seen: tuple | None = None
        self._node_reads: dict[int, tuple] = {}  # id() of a Node -> (it, what _read_nodes makes of it alone)
        self._node_part: tuple = ({}, frozenset(), [])

    # -- the batch -----------------------------------------------------------------------
    def update(self, containers: tuple, nodes: tuple, pods: tuple = (), published_pods: tuple = (),
               changed: tuple | None = None) -> Desired:
        """The desired state for these objects (the same as desired_state over them).
        `changed`: what changed since the last call, if the caller knows, as (removed,
        added) objects for the Containers, the Pods and the Pods of the pod source."""
        told = changed or (None, None, None)
        self._own()
        reader = ContainerReader(self.config, self._placements)
        touched: set[ObjectKey] = set()
        self._update_pods(pods, touched, reader, told[1])
        added, removed = self._containers.changes(containers, told[0])
        for entry in removed:
            self._drop(entry, touched)
        for obj in added:
            self._keep(obj, self._read(reader, obj), touched, self._containers.by_id)
        added, removed = self._published_pods.changes(published_pods, told[2])
        for entry in removed:
            self._drop(entry, touched)
        for obj in added:
            self._keep(obj, self._read_pod(reader, obj), touched, self._published_pods.by_id)
        if len(touched) * 2 > len(self._claims) + len(self._unreadable):
            self._rebuild()  # the first batch, or a re-list: decided at once, as desired_state does
            changed = None
        else:
            changed = self._settle(touched) | touched
        return self._result(nodes, changed)

    def _own(self) -> None:
        """Copies of the records handed out with the last result, to edit from now on."""
        if self._handed_out:
            self._published, self._parents = dict(self._published), dict(self._parents)
            self._child_records = dict(self._child_records)
            self._handed_out = False

    def _update_pods(self, pods: tuple, touched: set, reader: ContainerReader, told) -> None:
        """New placements, and the Containers naming a Pod whose placement changed read again."""
        added, removed = self._pod_objects.changes(pods, told)
        if not (added or removed):
            return
        moved: set[ObjectKey] = set()
        for obj in removed:  # the Pods themselves: this kind holds no entries
            key = self._pod_keys.pop(id(obj), None)
            if key is not None:
                moved.add(key)
        fresh: dict[ObjectKey, PodPlacement] = {}
        for obj in added:
            read = pod_placement(obj)
            if read is not None:
                self._pod_keys[id(obj)] = read[0]
                fresh[read[0]] = read[1]
        for key in moved:
            if key not in fresh:
                self._placements.pop(key, None)
        for key, placement in fresh.items():
            if self._placements.get(key) != placement:
                self._placements[key] = placement
                moved.add(key)
        if len(self._pod_keys) != len(self._placements):
            # Two listed Pods with one key (only malformed objects can): which one counts
            # depends on their order, so every placement is read again in order.
            self._placements.clear()
            for obj in pods:
                read = pod_placement(obj)
                if read is not None:
                    self._placements[read[0]] = read[1]
            moved = set(self._dependents)
        for key in moved:
            for ident in _members(self._dependents, key):
                entry = self._containers.by_id[ident]
                self._drop(entry, touched)
                self._keep(entry.obj, self._read(reader, entry.obj), touched, self._containers.by_id)

    # -- reading one object -----------------------------------------------------------------
    def _read(self, reader: ContainerReader, obj) -> _Entry:
        pod = _pod_named(obj)
        try:
            claim = reader.read(obj)
        except Exception as exc:  # noqa: BLE001 - as desired_state: one odd object never stops the others
            return _Entry(obj, _identity(obj), None, _skip_for(obj, exc, ""), None, pod)
        return _Entry(obj, claim.key, claim, None, claim.mounted_to, pod)

    def _read_pod(self, reader: ContainerReader, obj) -> _Entry:
        if not is_published_pod(obj):
            return _Entry(obj, ("", ""), None, None, None, None)
        try:
            claim = reader.read_pod(obj)
        except Exception as exc:  # noqa: BLE001
            namespace, name = _identity(obj)
            return _Entry(obj, (namespace, POD_KEY_PREFIX + name), None, _skip_for(obj, exc, POD_KEY_PREFIX),
                          None, None)
        return _Entry(obj, claim.key, claim, None, claim.mounted_to, None)

    # -- the indexes -----------------------------------------------------------------------
    def _keep(self, obj, entry: _Entry, touched: set, entries: dict) -> None:
        entries[id(obj)] = entry
        if entry.pod is not None:
            _add(self._dependents, entry.pod, id(obj))
        if entry.skip is not None:
            self._unreadable[entry.key] = self._unreadable.get(entry.key, 0) + 1
            bisect.insort(self._skips, entry.skip)
            self._skipped = None
            touched.add(entry.key)
        elif entry.claim is not None:
            held = self._claims.get(entry.key)
            if held is None:
                self._claims[entry.key] = entry
            elif type(held) is list:
                held.append(entry)
            else:
                self._claims[entry.key] = [held, entry]
            if entry.raw_target is not None:
                _add(self._children, (entry.key[0], _bare(entry.raw_target)), entry.key)
            touched.add(entry.key)

    def _drop(self, entry: _Entry, touched: set) -> None:
        if entry.pod is not None:
            _discard(self._dependents, entry.pod, id(entry.obj))
        if entry.skip is not None:
            count = self._unreadable[entry.key] - 1
            if count:
                self._unreadable[entry.key] = count
            else:
                del self._unreadable[entry.key]
            del self._skips[bisect.bisect_left(self._skips, entry.skip)]
            self._skipped = None
            touched.add(entry.key)
        elif entry.claim is not None:
            held = self._claims[entry.key]
            if type(held) is list:
                held.remove(entry)
                if len(held) == 1:
                    self._claims[entry.key] = held[0]
            else:
                del self._claims[entry.key]
            if entry.raw_target is not None and not any(
                    e.raw_target is not None and _bare(e.raw_target) == _bare(entry.raw_target)
                    for e in self._copies(entry.key)):
                _discard(self._children, (entry.key[0], _bare(entry.raw_target)), entry.key)
            touched.add(entry.key)

    def _copies(self, key: ObjectKey) -> list[_Entry]:
        held = self._claims.get(key)
        if held is None:
            return []
        return held if type(held) is list else [held]

    # -- deciding ------------------------------------------------------------------------------
    def _rebuild(self) -> None:
        """Decide every key at once from the objects read (desired_state's way, linear):
        for the first batch and after a re-list, where most keys changed."""
        listed = _Listed(self)
        self._chosen, self._fqdns, self._winners, self._lost = {}, {}, {}, {}
        chosen, fqdns = self._chosen, self._fqdns
        for key, held in self._claims.items():
            if type(held) is list:
                for entry in held:
                    self._resolve_target(entry, listed)
                chosen[key] = min((e.claim for e in held), key=_seniority)
            else:
                if held.raw_target is not None:
                    self._resolve_target(held, listed)
                chosen[key] = held.claim
            fqdn = chosen[key].fqdn
            if fqdn in fqdns:
                _add(fqdns, fqdn, key)
            else:
                fqdns[fqdn] = key
        winners = self._winners
        for key, claim in chosen.items():
            if fqdns[claim.fqdn] == key and type(self._claims[key]) is not list:
                winners[key] = claim  # the only claimant of its fqdn, listed once: the common case
            else:
                self._decide_conflict(key)
        self._too_deep = {}
        self._depth, self._rejected = _resolve_mounts(winners, listed, self.config.max_mount_depth, self._too_deep)
        self._published, self._parents, self._child_records, self._by_node = {}, {}, {}, {}
        self._node_tuples, self._children_of = {}, {}
        self._key_skips = {}
        self._skips = [entry.skip for tracked in (self._containers, self._published_pods)
                       for entry in tracked.by_id.values() if entry.skip is not None]
        parents, children, by_node = self._parents, self._child_records, self._by_node
        for key, level in self._depth.items():
            claim = self._published[key] = winners[key]
            if level == 0:
                parents[claim.fqdn] = claim.node
                keys = by_node.get(claim.node)
                if keys is None:
                    keys = by_node[claim.node] = {}
                keys[key] = None
            else:
                target = children[claim.fqdn] = winners[(claim.namespace, claim.mounted_to)].fqdn
                _add(self._children_of, target, claim.fqdn)
        for key in self._lost.keys() | self._rejected.keys():
            skips = self._outcome(key)[1]
            self._key_skips[key] = skips
            self._skips += skips
        self._skips.sort()
        self._skipped = None

    def _settle(self, touched: set[ObjectKey]) -> set[ObjectKey]:
        """Re-decide what the touched keys change; the keys whose outcome may differ."""
        if not touched:
            return set()
        listed = _Listed(self)
        # A key appearing or going changes how names mounted to it resolve (Container or Pod).
        resolve = set(touched)
        for namespace, name in touched:
            resolve.update(_members(self._children, (namespace, _bare(name))))
        fqdns: set[str] = set()
        for key in resolve:
            for entry in self._copies(key):
                self._resolve_target(entry, listed)
            old = self._chosen.get(key)
            copies = self._copies(key)
            new = min((e.claim for e in copies), key=_seniority) if copies else None
            if new is old:
                continue
            if old is not None:
                _discard(self._fqdns, old.fqdn, key)
                fqdns.add(old.fqdn)
            if new is None:
                del self._chosen[key]
            else:
                self._chosen[key] = new
                _add(self._fqdns, new.fqdn, key)
                fqdns.add(new.fqdn)
        affected = set(resolve)
        for fqdn in fqdns:
            affected.update(_members(self._fqdns, fqdn))
        for key in affected:
            self._decide_conflict(key)
        return self._remount(affected, listed)

    def _resolve_target(self, entry: _Entry, listed: _Listed) -> None:
        """As desired_state's _resolve_mount_targets, without editing a claim someone may
        hold (the last Desired does): a changed one is a new Claim."""
        if entry.raw_target is None:
            return
        namespace, target = entry.key[0], entry.raw_target
        same, other = ((POD_KEY_PREFIX + target, target) if entry.key[1].startswith(POD_KEY_PREFIX)
                       else (target, POD_KEY_PREFIX + target))
        resolved = other if (namespace, same) not in listed and (namespace, other) in listed else same
        if entry.claim.mounted_to != resolved:
            # The target's own key string when it has a claim, not an equal "pod/" copy per child.
            held = self._claims.get((namespace, resolved))
            if held is not None:
                resolved = (held[0] if type(held) is list else held).key[1]
            entry.claim = replace(entry.claim, mounted_to=resolved)

    def _decide_conflict(self, key: ObjectKey) -> None:
        """Whether `key` keeps its fqdn (a winner) and the skips for its lost copies."""
        chosen = self._chosen.get(key)
        lost = [Skip(key[0], key[1], "listed twice; one copy is used", SkipCode.NAME_CONFLICT)
                for e in self._copies(key) if e.claim is not chosen]
        if chosen is None:
            self._winners.pop(key, None)
        else:
            owner_key = min(_members(self._fqdns, chosen.fqdn), key=lambda k: _seniority(self._chosen[k]))
            owner = self._chosen[owner_key]
            if owner is chosen:
                self._winners[key] = chosen
            else:
                self._winners.pop(key, None)
                why = "older" if owner.created < chosen.created else "as old and first by namespace/name"
                lost.append(Skip(key[0], key[1], f"fqdn {chosen.fqdn} is taken by {owner.namespace}/{owner.name} "
                                                 f"({why})", SkipCode.NAME_CONFLICT))
        if lost:
            self._lost[key] = lost
        else:
            self._lost.pop(key, None)

    def _remount(self, affected: set[ObjectKey], listed: _Listed) -> set[ObjectKey]:
        """Mount depths again for the affected keys and every key mounted below them."""
        todo = set()
        stack = list(affected)
        while stack:
            key = stack.pop()
            if key in todo:
                continue
            todo.add(key)
            stack.extend(_members(self._children, (key[0], _bare(key[1]))))
        depth, rejected, too_deep, winners = self._depth, self._rejected, self._too_deep, self._winners
        for key in todo:
            depth.pop(key, None)
            rejected.pop(key, None)
            too_deep.pop(key, None)
        for key in todo:
            claim = winners.get(key)
            if claim is not None and claim.mounted_to is None:
                if claim.node:
                    depth[key] = 0
                else:
                    rejected[key] = (claim.unmounted_reason, claim.unmounted_code)
        max_depth = self.config.max_mount_depth
        for start in todo:
            if start in depth or start in rejected or start not in winners:
                continue
            settle(*_mount_chain(start, winners, depth, rejected), depth, rejected, too_deep, listed, max_depth)
        now = {}
        for key in todo:
            outcome = self._outcome(key)
            if outcome != self._published_outcome(key):
                now[key] = outcome
        # Records: every old one out first, so an fqdn passing between keys is not lost.
        for key in now:
            self._unpublish(key)
        for key, outcome in now.items():
            self._publish(key, outcome)
        return todo

    def _outcome(self, key: ObjectKey) -> tuple:
        """What the result should hold for `key`: (claim, target) if published, its skips."""
        claim = self._winners.get(key) if key in self._depth else None
        record = None
        if claim is not None:
            record = (claim, claim.node if claim.mounted_to is None
                      else self._winners[(claim.namespace, claim.mounted_to)].fqdn)
        skips = tuple(self._lost.get(key, ()))
        rejected = self._rejected.get(key)
        if rejected is not None:
            skips += (Skip(key[0], key[1], rejected[0], rejected[1]),)
        return record, skips

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
                self._node_tuples.pop(claim.node, None)
                keys = self._by_node[claim.node]
                del keys[key]
                if not keys:
                    del self._by_node[claim.node]
            elif self._child_records.get(claim.fqdn) == target:
                del self._child_records[claim.fqdn]
                _discard(self._children_of, target, claim.fqdn)
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
                self._node_tuples.pop(claim.node, None)
                self._by_node.setdefault(claim.node, {})[key] = None
            else:
                self._child_records[claim.fqdn] = target
                _add(self._children_of, target, claim.fqdn)
        if skips:
            self._key_skips[key] = skips
        for skip in skips:
            bisect.insort(self._skips, skip)
            self._skipped = None

    def _read_nodes(self, nodes: tuple) -> tuple[dict, frozenset, list]:
        """sync.rules._read_nodes, reading only the Nodes that changed: a node move
        changes one of 1,000, and parsing every address each batch was a tenth of it."""
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
        return result, frozenset(listed), warnings

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
            frontier = {child for target in frontier for child in _members(self._children_of, target)
                        if child not in seen}
            if frontier:
                waves.append(frontier)
                seen |= frontier
        return waves

    # -- the result ------------------------------------------------------------------------
    def _result(self, nodes: tuple, changed: set[ObjectKey] | None) -> Desired:
        node_changed = self._nodes_seen is None or len(nodes) != len(self._nodes_seen) or not all(
            a is b for a, b in zip(nodes, self._nodes_seen))
        if node_changed:
            self._node_part = self._read_nodes(nodes)
            self._nodes_seen = nodes
        node_map, node_names, node_warnings = self._node_part
        warnings = list(node_warnings)
        warnings += (f"node {node} has no known address: its {len(keys)} parent(s) get no A/AAAA records "
                     f"until it has one" for node, keys in self._by_node.items() if node not in node_map)
        if self._skipped is None:
            self._skipped = tuple(self._skips)
        # Per node, a tuple made again only when its parents changed: a batch hands out
        # 1,000 nodes' tuples, not 100,000 keys.
        tuples = self._node_tuples
        parents_by_node = {}
        for node, keys in self._by_node.items():
            held = tuples.get(node)
            if held is None:
                held = tuples[node] = tuple(keys)
            parents_by_node[node] = held
        # The records are handed out as they are, and copied before the next batch edits
        # them (_own): the reconciler keeps this state as what Redis holds, and the status
        # writer reads it from its thread. Copying then rather than now keeps one copy, not
        # two, through this batch's diff and write (the first batch's peak).
        self._handed_out = True
        state = State(zones={zone.name: zone for zone in self.config.zones}, nodes=dict(sorted(node_map.items())),
                      parents=self._parents, children=self._child_records)
        base, self.generation = self.generation, self.generation + 1
        names, self._names = self._names, set()
        return Desired(state=state, skipped=self._skipped, warnings=tuple(sorted(warnings)),
                       unresolved=unresolved_parents(parents_by_node, node_map, node_names),
                       parents_by_node=parents_by_node, published=self._published,
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
    meta, spec = obj.get("metadata"), obj.get("spec")
    ref = spec.get("podRef") if isinstance(spec, dict) else None
    name = ref.get("name") if isinstance(ref, dict) else None
    if not isinstance(name, str) or not isinstance(meta, dict):
        return None
    namespace = meta.get("namespace") or DEFAULT_NAMESPACE
    return (namespace, name) if isinstance(namespace, str) else None

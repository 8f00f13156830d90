"""The daemon's view of the cluster: the objects a source has listed and watched.

Sources (Kubernetes watchers, the manifest reader) write here; the reconciler takes
snapshots. A kind counts as complete only after a full, successful list; until every
kind is complete nothing is written, and garbage collection waits on it as well.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sync.flat_object import OBJECT_TYPES, FlatObject, flat
from sync.layered import LayeredDict, Values
from sync.objects import (DEVICE_STATUS_ANNOTATION, MOUNTED_TO_ANNOTATION, POD_ANNOTATIONS, PUBLISH_LABEL,
                          PUBLISH_VALUE, TYPE_ANNOTATION)
from sync.status import slim_status

CONTAINER = "Container"
NODE = "Node"
POD = "Pod"  # Pods that Containers' spec.podRef may name (labelled mountdns.io/backs)
PUBLISHED_POD = "PublishedPod"  # Pods of the pod source (labelled mountdns.io/publish=true)
KINDS = (CONTAINER, NODE, POD, PUBLISHED_POD)
# Kinds a source lists only when configured to (expect()): until then the cache does not
# wait for them, and holds none.
OPTIONAL_KINDS = (POD, PUBLISHED_POD)


_KEPT_METADATA = ("name", "namespace", "creationTimestamp", "resourceVersion", "generation")
# Values a million objects share a handful of (their API version, kind, namespace, node,
# type, device status): one string object each instead of one per object, ~330 bytes a
# Container. Creation times have one-second resolution, so Containers made together
# share one (as the Pods' do). Unique values (names, fqdns, versions) are left alone:
# interning them saves nothing and costs an entry in the interpreter's table.
_SHARED_METADATA = ("namespace", "creationTimestamp")
_SHARED_SPEC = ("nodeName", "type")


def _interned(value):
    return sys.intern(value) if type(value) is str else value


def slim_pod(obj: dict, published: bool = False) -> dict:
    """A Pod as the rules read it: name, namespace, creation and deletion times,
    spec.nodeName and the Ready condition, and for the pod source
    (`published`) our label and annotations. A listed Pod is 5-20 KB
    (containers, volumes, every condition, managedFields).

    What many Pods share is shared, not copied: the values repeated across Pods are
    interned, and the `spec` of Pods on one node, their Ready status and the publish
    label are one dict each (read-only: the cache replaces a Pod's dict on every event,
    it never edits one). That halves the cost of a Pod in the cache."""
    meta, spec, status = (obj.get(part) for part in ("metadata", "spec", "status"))
    kept = {k: _shared(obj[k]) for k in ("apiVersion", "kind") if k in obj}
    kept["metadata"] = kept_meta = {k: _shared(meta[k]) if k in _INTERNED_POD_METADATA else meta[k]
                                    for k in _KEPT_POD_METADATA if k in meta}
    if published:
        # No uid (~85 bytes a Pod): a Warning Event about a Pod, rare, reads the Pod for it.
        labels, annotations = meta.get("labels"), meta.get("annotations")
        if isinstance(labels, dict) and PUBLISH_LABEL in labels:
            value = labels[PUBLISH_LABEL]
            kept_meta["labels"] = _PUBLISH_LABELS if value == PUBLISH_VALUE else {PUBLISH_LABEL: value}
        if isinstance(annotations, dict):
            ours = {k: _shared(annotations[k]) if k in _INTERNED_ANNOTATIONS else annotations[k]
                    for k in POD_ANNOTATIONS if k in annotations}
            if ours:
                kept_meta["annotations"] = FlatObject(ours)  # ~80 bytes less than a dict of up to 4 keys
        elif annotations is not None:
            kept_meta["annotations"] = annotations  # malformed: the rules report it
    if isinstance(spec, dict) and "nodeName" in spec:
        kept["spec"] = _node_spec(spec["nodeName"])
    conditions = status.get("conditions") if isinstance(status, dict) else None
    ready = [c for c in conditions if isinstance(c, dict) and c.get("type") == "Ready"] \
        if isinstance(conditions, list) else []
    if ready:
        value = ready[-1].get("status")
        kept["status"] = _READY_STATUS.get(value) if isinstance(value, str) and value in _READY_STATUS else \
            {"conditions": [{"type": "Ready", "status": value}]}
    return kept


def _shared(value):
    return sys.intern(value) if type(value) is str and len(value) <= 253 else value


def _node_spec(node) -> dict:
    if type(node) is not str or len(node) > 253:
        return {"nodeName": node}
    spec = _NODE_SPECS.get(node)
    if spec is None:
        if len(_NODE_SPECS) >= _MAX_NODE_SPECS:
            _NODE_SPECS.clear()  # bounded: a cluster has far fewer nodes; dicts already handed out stay valid
        spec = _NODE_SPECS[node] = {"nodeName": sys.intern(node)}
    return spec


_NODE_SPECS: dict[str, dict] = {}
_MAX_NODE_SPECS = 20_000
_READY_STATUS = {value: {"conditions": [{"type": "Ready", "status": value}]} for value in ("True", "False", "Unknown")}
_PUBLISH_LABELS = {PUBLISH_LABEL: PUBLISH_VALUE}
_INTERNED_POD_METADATA = frozenset({"namespace", "creationTimestamp"})
_INTERNED_ANNOTATIONS = frozenset({TYPE_ANNOTATION, DEVICE_STATUS_ANNOTATION, MOUNTED_TO_ANNOTATION})


# No resourceVersion: nothing reads a Pod's (the sync writes nothing to Pods; a watch
# resumes from the event's own), and without it a re-list finds an unchanged Pod equal to
# the one held even when only its status moved on: ~55 bytes a Pod less, and no re-read.
_KEPT_POD_METADATA = ("name", "namespace", "creationTimestamp", "deletionTimestamp")


def slim(kind: str, obj: dict) -> dict:
    """Only what the rules read. Listed objects carry managedFields, annotations and (for
    Nodes) images and conditions: keeping them made 100,000 Containers cost ~700 MiB."""
    if type(obj) is FlatObject:
        return obj  # slimmed already (a watcher slims page by page)
    meta, status, spec = (obj.get(part) for part in ("metadata", "status", "spec"))
    if not isinstance(meta, dict) or not isinstance(status, (dict, type(None))):
        return obj  # malformed: keep it whole so the rules report it as it is
    if kind in (POD, PUBLISHED_POD):
        return flat(slim_pod(obj, published=kind == PUBLISHED_POD))
    kept = {k: _interned(obj[k]) for k in ("apiVersion", "kind") if k in obj}
    kept["metadata"] = {k: _interned(meta[k]) if k in _SHARED_METADATA else meta[k]
                        for k in _KEPT_METADATA if k in meta}
    if kind == CONTAINER and spec is not None:
        if isinstance(spec, dict):
            for k in _SHARED_SPEC:
                if type(spec.get(k)) is str:
                    spec[k] = sys.intern(spec[k])  # the listed page's own dict: nobody else holds it
        kept["spec"] = spec
    if status is not None and kind == NODE:
        kept["status"] = {"addresses": status["addresses"]} if "addresses" in status else {}
    elif status is not None:
        # deviceStatus, and what the status writer compares; the name the sync wrote back
        # is held as the spec's string, not an equal copy.
        kept["status"] = slim_status(status, *((spec.get("fqdn"), bool(spec.get("mountedTo")))
                                               if isinstance(spec, dict) else (None, False)))
    # Containers are held flat (sync.flat_object): a third of the memory of four dicts.
    return flat(kept) if kind == CONTAINER else kept


def _share_with_parent(objects: Mapping, child) -> None:
    """A mounted child names its parent in spec.mountedTo, and the sync writes the
    parent's fqdn into its status.target: held as the parent's own strings (from the
    parent held under that key), not as equal copies, ~85 bytes a Container where half
    are children. A parent that comes later, or changes, leaves its children's copies be."""
    if type(child) is not FlatObject:
        return
    target = child.held_at("spec", "mountedTo")
    if type(target) is not str:
        return
    parent = objects.get(((child.key or object_key(child))[0], target))
    if type(parent) is not FlatObject:
        return
    name = (parent.key or object_key(parent))[1]
    fqdn = parent.held_at("spec", "fqdn")
    held_target = child.held_at("status", "target")
    if target is name and (held_target is fqdn or held_target is None):
        return  # shared already (a re-list keeps the objects it held)
    # (Its condition's message is made of the status's target when read: sync.status.Condition.)
    child.share((("spec", "mountedTo", name), ("status", "target", fqdn)))


def _listed_before(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Whether key `a` comes before `b` in a list from the API server: etcd's order of
    "namespace/name" as bytes (code points, for str), so namespace "a-b" lists before
    "a" ('-' < '/'), where the (namespace, name) pairs would sort it after."""
    if a[0] == b[0]:
        return a[1] < b[1]
    return a[0] + "/" < b[0] + "/"  # one string each where the namespace changes


# What the rules read of a Container that a status or metadata change leaves alone.
_RULES_FIELDS = (("spec", None), ("apiVersion", None), ("status", "deviceStatus"), ("metadata", "name"),
                 ("metadata", "namespace"), ("metadata", "creationTimestamp"))


def _same_for_rules(old: dict, new: dict) -> bool:
    """Two slimmed Containers the rules cannot tell apart (and whose metadata and status
    can be swapped as wholes)."""
    if type(old) is FlatObject and type(new) is FlatObject:
        # Compared in their flat tuples: building the six dicts below was most of a watch
        # event's cost under churn.
        same = old.same_at(new, _RULES_FIELDS)
        if same is not None:
            return same and old.is_dict("metadata") and old.is_dict("status")
    old_meta, new_meta = old.get("metadata"), new.get("metadata")
    old_status, new_status = old.get("status"), new.get("status")
    if not (isinstance(old_meta, dict) and isinstance(new_meta, dict)
            and isinstance(old_status, dict) and isinstance(new_status, dict)):
        return False
    return (old.get("spec") == new.get("spec") and old.get("apiVersion") == new.get("apiVersion")
            and old_status.get("deviceStatus") == new_status.get("deviceStatus")
            and all(old_meta.get(k) == new_meta.get(k) for k in ("name", "namespace", "creationTimestamp")))


def object_key(obj: dict) -> tuple[str, str]:
    if type(obj) is FlatObject:
        # Worked out once and kept with the object (see FlatObject.key). adopt() swaps
        # only metadata and status with the name and namespace the same.
        key = obj.key
        if key is None:
            key = obj.key = _key_of(obj)
        return key
    return _key_of(obj)


def _key_of(obj) -> tuple[str, str]:
    # Strings whatever the object holds: a list as metadata.name must not make the key
    # unhashable and stop the watcher (the rules skip such an object as InvalidSpec).
    if type(obj) is FlatObject and obj.is_dict("metadata"):  # read in place, no dict built
        namespace, name = obj.get_in("metadata", "namespace") or "", obj.get_in("metadata", "name") or ""
        return (namespace if isinstance(namespace, str) else repr(namespace)[:300],
                name if isinstance(name, str) else repr(name)[:300])
    meta = obj.get("metadata") if isinstance(obj, OBJECT_TYPES) else None
    if not isinstance(meta, dict):
        return "", repr(obj)[:300]
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    return (namespace if isinstance(namespace, str) else repr(namespace)[:300],
            name if isinstance(name, str) else repr(name)[:300])


@dataclass(frozen=True)
class Snapshot:
    # Sequences of the objects held (the cache's are sync.layered.Values; a tuple works too).
    containers: Sequence[dict]
    nodes: Sequence[dict]
    complete: bool  # every kind fully listed at least once, and the last list of each succeeded
    oldest_event: float | None = None  # monotonic receive time of the oldest watch event since the last snapshot
    pods: Sequence[dict] = ()  # the Pods that Containers' spec.podRef may name
    published_pods: Sequence[dict] = ()  # the Pods of the pod source
    # What changed since the snapshot numbered `since` (this one is `since` + 1): by kind,
    # (objects no longer held, objects held now) -- the old and new dict of each key that
    # changed, so a reader that saw snapshot `since` need not compare 100,000 objects to
    # find the few that changed. None when not told (a snapshot built by hand).
    changed: dict | None = field(default=None, compare=False, repr=False)
    since: int | None = field(default=None, compare=False, repr=False)

    @property
    def version(self) -> int | None:
        return None if self.since is None else self.since + 1


class ObjectCache:
    def __init__(self):
        self._lock = threading.Lock()
        # Per kind, key -> object; layered (sync.layered) so that a snapshot costs what
        # changed since the last one, not a tuple of every object.
        self._objects: dict[str, LayeredDict] = {kind: LayeredDict() for kind in KINDS}
        self._complete: dict[str, bool] = {kind: kind in OPTIONAL_KINDS for kind in KINDS}
        self._listed: dict[str, bool] = {kind: kind in OPTIONAL_KINDS for kind in KINDS}
        self.changed = threading.Event()
        self._oldest_event: float | None = None
        # The dict each key held at the last snapshot, for the keys changed since (None:
        # the key was not held): a snapshot then names exactly what changed.
        self._log: dict[str, dict[tuple[str, str], dict | None]] = {kind: {} for kind in KINDS}
        self._version = 0
        self._relisting: set[str] = set()  # kinds a source is re-listing (see relist_requested)

    def replace(self, kind: str, objects, *, complete: bool = True, slimmed: bool = False) -> None:
        """A list result. An incomplete one only adds and updates, never removes.
        `slimmed`: the objects went through slim() already (a watcher slims page by page)."""
        with self._lock:
            held = self._objects[kind]
            relisted = False
            if complete and held:
                if not (slimmed and isinstance(objects, Sequence)):  # read twice below
                    objects, slimmed = [o if slimmed else slim(kind, o) for o in objects], True
                relisted = self._relisted(kind, objects)
            if not relisted:
                self._replace(kind, objects if slimmed else (slim(kind, o) for o in objects), complete)
            if complete:
                self._listed[kind] = True
                self._relisting.discard(kind)
            self._complete[kind] = complete and self._listed[kind]
        self.changed.set()

    def _relisted(self, kind: str, objects: Sequence) -> bool:
        """A complete re-list applied to the objects held without a dict of the listed
        keys, when its keys come in the API server's order (each after the last: no key
        comes twice) and few objects changed or went (as at every resync); False, with
        nothing changed, otherwise.

        That dict made the re-list's peak: the list of objects is there anyway, and its
        objects are the ones held where unchanged (kept()), but the dict of their keys
        was 5 MiB more at 100,000 Containers. Without it the memory model's re-list peaks
        at 856 bytes a Container, not 935 (826 held before and after)."""
        held = self._objects[kind]
        most = len(objects) // 4  # more changed or gone: _replace() makes a new base of them
        changed, present, last = [], 0, None
        for new in objects:
            key = object_key(new)
            if last is not None and not _listed_before(last, key):
                return False  # not in the API server's order (a manifest, a hand-made list)
            last = key
            old = held.get(key)
            if old is not None:
                present += 1
                if old is new or old == new:
                    continue  # unchanged: the dict the rules and the status writer saw stays
            changed.append(new)
            if len(changed) > most:
                return False
        if len(changed) + len(held) - present > most:
            return False
        log = self._log[kind]
        gone = []
        if present < len(held):
            # Deleted while no watch told of it (rare): only then a set of the listed keys.
            listed = {object_key(o) for o in objects}
            gone = [key for key in held if key not in listed]
        for new in changed:
            key = object_key(new)
            log.setdefault(key, held.get(key))
            held[key] = new
        for key in gone:
            log.setdefault(key, held[key])
            del held[key]
        if kind == CONTAINER:
            # Held now are exactly the listed objects (as held where unchanged): parents
            # are found among them as in the listed keys' dict.
            for obj in held.iter_values():
                _share_with_parent(held, obj)
        return True

    def _replace(self, kind: str, objects, complete: bool) -> None:
        """A list result, by a dict of its keys (the last object listed under a key is the
        one kept): a first list, an incomplete one, one in no known order, one where much
        changed."""
        fresh = {object_key(o): o for o in objects}
        held, log = self._objects[kind], self._log[kind]
        changed, added = [], 0
        for key, new in fresh.items():
            old = held.get(key)
            if old is not new:
                if old is not None and old == new:
                    fresh[key] = old  # unchanged: keep the dict the rules and the status writer saw
                else:
                    log.setdefault(key, old)
                    changed.append(key)
                    added += old is None
        if kind == CONTAINER:
            for obj in fresh.values():
                _share_with_parent(fresh, obj)
        if complete:
            # Gone from the list, looked for only when some are. (Not a union of both
            # key sets: at the end of a re-list of 100,000 objects that set was another
            # 4 MiB next to both dicts.)
            gone = [key for key in held if key not in fresh] if len(held) > len(fresh) - added else []
            for key in gone:
                log.setdefault(key, held[key])
            if len(changed) + len(gone) > len(fresh) // 4:
                self._objects[kind] = LayeredDict(fresh)  # most changed (a first list): a new base
            else:
                # A re-list that found most objects as held: the changes go on top of the
                # dict held, which the last snapshots' views share, so no second dict of
                # every key stays alive until they are let go.
                for key in changed:
                    held[key] = fresh[key]
                for key in gone:
                    del held[key]
        else:
            for key in changed:
                held[key] = fresh[key]

    def kept(self, kind: str, obj: dict) -> dict:
        """The object held for `obj`'s key if it equals `obj` (slimmed), else `obj`. A
        source that re-lists passes each listed object through here, so an unchanged
        object is held once, not twice until the list is complete (a resync would double
        the peak), and stays the same dict: the rules see that nothing changed. Without
        the lock: one dict read, and replace() compares again under it."""
        held = self._objects[kind].get(object_key(obj))
        return held if held is not None and held is not obj and held == obj else obj

    def relist_requested(self, kind: str) -> None:
        """A source starts re-listing `kind` (a periodic resync): until the list is in,
        `relisting()` says so, and the loop's full batch waits for it."""
        with self._lock:
            self._relisting.add(kind)

    def relisting(self) -> bool:
        """Some kind's re-list was asked for and has not come in complete yet."""
        return bool(self._relisting)

    def expect(self, kind: str) -> None:
        """A source will list `kind` (an optional one): nothing is written before it has."""
        with self._lock:
            self._listed[kind] = self._complete[kind] = False

    def mark_incomplete(self, kind: str) -> None:
        with self._lock:
            self._complete[kind] = False

    def put(self, kind: str, obj: dict, received: float | None = None) -> None:
        """A watch event's object; `received` is when the event arrived (monotonic), for
        the event-to-write latency."""
        kept = slim(kind, obj)
        with self._lock:
            objects = self._objects[kind]
            key = object_key(kept)
            old = objects.get(key)
            if kind == CONTAINER and old is not None and _same_for_rules(old, kept):
                # Only status the sync writes (or metadata) changed, e.g. its own status write
                # coming back: keep the dict the rules saw, so the next batch reuses their
                # result instead of re-running them over every Container, and wake nobody:
                # Redis does not change. One update() swaps metadata and status together;
                # readers copy() the dict to see both from the same version.
                if type(old) is FlatObject and type(kept) is FlatObject:
                    old.adopt(kept)  # the spec is equal: the whole flat tuple may be swapped
                    _share_with_parent(objects, old)
                else:
                    old.update(metadata=kept["metadata"], status=kept["status"])
                return
            if old is not None and type(kept) is FlatObject:
                # The tuple the dict keeps as its key: one per object, not two (a layered
                # dict's top keeps the key it is given, so give it that one).
                kept.key = key = object_key(old)
            objects[key] = kept
            if kind == CONTAINER:
                _share_with_parent(objects, kept)
            self._log[kind].setdefault(key, old)
            self._note_event(received)
        self.changed.set()

    def remove(self, kind: str, obj: dict, received: float | None = None) -> None:
        with self._lock:
            key = object_key(obj)
            old = self._objects[kind].pop(key, None)
            if old is not None:
                self._log[kind].setdefault(key, old)
            self._note_event(received)
        self.changed.set()

    def note_event(self, received: float) -> None:
        """A change seen at `received` (monotonic) by a source that then replaces whole
        kinds (the manifest reader), timed like a watch event."""
        with self._lock:
            self._note_event(received)

    def _note_event(self, received: float | None) -> None:
        if received is not None and (self._oldest_event is None or received < self._oldest_event):
            self._oldest_event = received

    def listed(self) -> bool:
        """Every kind has been fully listed at least once."""
        with self._lock:
            return all(self._listed.values())

    def snapshot(self) -> Snapshot:
        """The objects now; takes the oldest pending event time with it."""
        with self._lock:
            oldest, self._oldest_event = self._oldest_event, None
            changed = {}
            for kind, log in self._log.items():
                held = self._objects[kind]
                gone, now = [], []
                for key, old in log.items():
                    new = held.get(key)
                    if new is not old:
                        if old is not None:
                            gone.append(old)
                        if new is not None:
                            now.append(new)
                changed[kind] = (gone, now)
                log.clear()
            since, self._version = self._version, self._version + 1
            objects = self._objects
            return Snapshot(
                containers=Values(objects[CONTAINER].snapshot()),
                # A tuple: Nodes are few (one for 100 Containers), and the rules find the
                # moved ones by position and identity against the last batch's.
                nodes=tuple(objects[NODE].iter_values()),
                complete=all(self._complete.values()),
                oldest_event=oldest,
                pods=Values(objects[POD].snapshot()),
                published_pods=Values(objects[PUBLISHED_POD].snapshot()),
                changed=changed,
                since=since,
            )

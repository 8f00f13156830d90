"""The daemon's view of the cluster: the objects a source has listed and watched.

Sources (Kubernetes watchers, the manifest reader) write here; the reconciler takes
snapshots. A kind counts as complete only after a full, successful list; until every
kind is complete nothing is written, and garbage collection waits on it as well.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass

from sync.status import slim_status

CONTAINER = "Container"
NODE = "Node"
KINDS = (CONTAINER, NODE)


_KEPT_METADATA = ("name", "namespace", "creationTimestamp", "resourceVersion", "generation")
# Values a million objects share a handful of (their API version, kind, namespace, node,
# type, device status): one string object each instead of one per object, ~330 bytes a
# Container. Unique values (names, fqdns, versions) are left alone: interning them saves
# nothing and costs an entry in the interpreter's table.
_SHARED_METADATA = ("namespace",)
_SHARED_SPEC = ("nodeName", "type")


def _interned(value):
    return sys.intern(value) if type(value) is str else value


def slim(kind: str, obj: dict) -> dict:
    """Only what the rules read. Listed objects carry managedFields, annotations and (for
    Nodes) images and conditions: keeping them made 100,000 Containers cost ~700 MiB."""
    meta, status, spec = (obj.get(part) for part in ("metadata", "status", "spec"))
    if not isinstance(meta, dict) or not isinstance(status, (dict, type(None))):
        return obj  # malformed: keep it whole so the rules report it as it is
    kept = {k: _interned(obj[k]) for k in ("apiVersion", "kind") if k in obj}
    kept["metadata"] = {k: _interned(meta[k]) if k in _SHARED_METADATA else meta[k]
                        for k in _KEPT_METADATA if k in meta}
    if kind != NODE and spec is not None:
        if isinstance(spec, dict):
            for k in _SHARED_SPEC:
                if type(spec.get(k)) is str:
                    spec[k] = sys.intern(spec[k])  # the listed page's own dict: nobody else holds it
        kept["spec"] = spec
    if status is not None and kind == NODE:
        kept["status"] = {"addresses": status["addresses"]} if "addresses" in status else {}
    elif status is not None:
        kept["status"] = slim_status(status)  # deviceStatus, and what the status writer compares
    return kept


def _same_for_rules(old: dict, new: dict) -> bool:
    """Two slimmed Containers the rules cannot tell apart (and whose metadata and status
    can be swapped as wholes)."""
    old_meta, new_meta = old.get("metadata"), new.get("metadata")
    old_status, new_status = old.get("status"), new.get("status")
    if not (isinstance(old_meta, dict) and isinstance(new_meta, dict)
            and isinstance(old_status, dict) and isinstance(new_status, dict)):
        return False
    return (old.get("spec") == new.get("spec") and old.get("apiVersion") == new.get("apiVersion")
            and old_status.get("deviceStatus") == new_status.get("deviceStatus")
            and all(old_meta.get(k) == new_meta.get(k) for k in ("name", "namespace", "creationTimestamp")))


def object_key(obj: dict) -> tuple[str, str]:
    # Strings whatever the object holds: a list as metadata.name must not make the key
    # unhashable and stop the watcher (the rules skip such an object as InvalidSpec).
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        return "", repr(obj)[:300]
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    return (namespace if isinstance(namespace, str) else repr(namespace)[:300],
            name if isinstance(name, str) else repr(name)[:300])


@dataclass(frozen=True)
class Snapshot:
    containers: tuple[dict, ...]
    nodes: tuple[dict, ...]
    complete: bool  # every kind fully listed at least once, and the last list of each succeeded
    oldest_event: float | None = None  # monotonic receive time of the oldest watch event since the last snapshot


class ObjectCache:
    def __init__(self):
        self._lock = threading.Lock()
        self._objects: dict[str, dict[tuple[str, str], dict]] = {kind: {} for kind in KINDS}
        self._complete: dict[str, bool] = {kind: False for kind in KINDS}
        self._listed: dict[str, bool] = {kind: False for kind in KINDS}
        self.changed = threading.Event()
        self._oldest_event: float | None = None

    def replace(self, kind: str, objects, *, complete: bool = True, slimmed: bool = False) -> None:
        """A list result. An incomplete one only adds and updates, never removes.
        `slimmed`: the objects went through slim() already (a list slims page by page)."""
        with self._lock:
            fresh = {object_key(o): o if slimmed else slim(kind, o) for o in objects}
            if complete:
                self._objects[kind] = fresh
                self._listed[kind] = True
            else:
                self._objects[kind].update(fresh)
            self._complete[kind] = complete and self._listed[kind]
        self.changed.set()

    def mark_incomplete(self, kind: str) -> None:
        with self._lock:
            self._complete[kind] = False

    def put(self, kind: str, obj: dict, received: float | None = None) -> None:
        """A watch event's object; `received` is when the event arrived (monotonic), for
        the event-to-write latency."""
        kept = slim(kind, obj)
        with self._lock:
            objects = self._objects[kind]
            key = object_key(obj)
            old = objects.get(key)
            if kind == CONTAINER and old is not None and _same_for_rules(old, kept):
                # Only status the sync writes (or metadata) changed, e.g. its own status write
                # coming back: keep the dict the rules saw, so the next batch reuses their
                # result instead of re-running them over every Container, and wake nobody:
                # Redis does not change. One update() swaps metadata and status together;
                # readers copy() the dict to see both from the same version.
                old.update(metadata=kept["metadata"], status=kept["status"])
                return
            objects[key] = kept
            self._note_event(received)
        self.changed.set()

    def remove(self, kind: str, obj: dict, received: float | None = None) -> None:
        with self._lock:
            self._objects[kind].pop(object_key(obj), None)
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
            return Snapshot(
                containers=tuple(self._objects[CONTAINER].values()),
                nodes=tuple(self._objects[NODE].values()),
                complete=all(self._complete.values()),
                oldest_event=oldest,
            )

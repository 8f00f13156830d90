"""YAML files as a source: the demo's embedded default and a way to run without Kubernetes.

Reads every *.yaml, *.yml and *.json file under a directory (multi-document YAML; a
`kind: List` is unpacked), keeps the Container (mountdns.io) and Node objects, and
follows changes by polling modification times. A file that does not parse keeps its
last good objects and makes the snapshot incomplete, so a typo never deletes records;
the error names the file.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from sync.objects import BACKS_LABEL, is_published_pod
from sync.sources.cache import CONTAINER, KINDS, NODE, POD, PUBLISHED_POD, ObjectCache

log = logging.getLogger("mountdns.sync.manifests")

SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(ValueError):
    """A manifest file could not be read or parsed."""


def _documents(path: Path) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as handle:
            documents = [d for d in yaml.safe_load_all(handle) if d is not None]
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: {exc}") from exc
    objects = []
    for document in documents:
        if not isinstance(document, dict):
            raise ManifestError(f"{path}: a document is not a mapping")
        if document.get("kind") == "List":
            objects.extend(i for i in document.get("items") or [] if isinstance(i, dict))
        else:
            objects.append(document)
    return objects


def classify(obj: dict) -> str | None:
    if obj.get("kind") == "Node" and obj.get("apiVersion", "v1") == "v1":
        return NODE
    if obj.get("kind") == "Pod" and obj.get("apiVersion", "v1") == "v1":
        return POD
    if obj.get("kind") == "Container" and str(obj.get("apiVersion", "")).startswith("mountdns.io/"):
        return CONTAINER
    return None


def _with_defaults(obj: dict, kind: str, mtime: float) -> dict:
    """Fill what the API server would: a namespace and a creation time (the file's)."""
    meta = dict(obj.get("metadata") or {})
    if kind in (CONTAINER, POD):
        meta.setdefault("namespace", "default")
    meta.setdefault("creationTimestamp",
                    datetime.fromtimestamp(mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return {**obj, "metadata": meta}


class ManifestSource:
    def __init__(self, directory: str, cache: ObjectCache, stop: threading.Event, poll_seconds: float = 0.2,
                 sources: tuple[str, ...] = ("container",)):
        self.directory = Path(directory)
        self.sources = frozenset(sources)  # "container" and/or "pod", as --source says
        self.cache = cache
        self.stop = stop
        self.poll_seconds = poll_seconds
        # None until the first scan, so that an empty directory is still listed once.
        self._seen: dict[Path, tuple[float, int]] | None = None
        self._objects: dict[Path, list[tuple[str, dict]]] = {}
        self.errors: dict[Path, str] = {}
        self.thread: threading.Thread | None = None

    def _files(self) -> dict[Path, tuple[float, int]]:
        found = {}
        for root, _, names in os.walk(self.directory):
            for name in names:
                if name.endswith(SUFFIXES) and not name.startswith("."):
                    path = Path(root) / name
                    try:
                        stat = path.stat()
                    except FileNotFoundError:
                        continue
                    found[path] = (stat.st_mtime, stat.st_size)
        return found

    def _kinds(self, kind: str, obj: dict) -> tuple[str, ...]:
        """The cache kinds a manifest object goes to, as the watches' label selectors would
        select it: a Pod backs Containers only with BACKS_LABEL, is published by the pod
        source only with mountdns.io/publish=true."""
        if kind == CONTAINER:
            return (CONTAINER,) if "container" in self.sources else ()
        if kind == POD:
            published = (PUBLISHED_POD,) if "pod" in self.sources and is_published_pod(obj) else ()
            labels = (obj.get("metadata") or {}).get("labels")
            backs = "container" in self.sources and isinstance(labels, dict) and BACKS_LABEL in labels
            return ((POD,) if backs else ()) + published
        return (kind,)

    def scan(self) -> bool:
        """Re-read changed files; publish to the cache if anything changed."""
        files = self._files()
        if files == self._seen:
            return False
        if self._seen is not None:  # an edit after the first scan: timed like a watch event
            self.cache.note_event(time.monotonic())
        for path in set(self._objects) - set(files):
            del self._objects[path]
        self.errors = {p: e for p, e in self.errors.items() if p in files}
        for path, signature in files.items():
            if (self._seen or {}).get(path) == signature:
                continue
            try:
                objects = []
                for obj in _documents(path):
                    kind = classify(obj)
                    if kind:
                        if not isinstance(obj.get("metadata") or {}, dict):
                            raise ManifestError(f"{path}: the metadata of a {kind} is not a mapping")
                        objects += ((k, _with_defaults(obj, kind, signature[0])) for k in self._kinds(kind, obj))
                self._objects[path] = objects
                if self.errors.pop(path, None):
                    log.info("%s parses again", path)
            except ManifestError as exc:
                if str(exc) != self.errors.get(path):
                    log.error("cannot use manifest (its last good objects are kept, nothing is deleted): %s", exc)
                self.errors[path] = str(exc)
        self._seen = files
        complete = not self.errors
        if not complete:
            # Before any replace: each replace marks its kind complete, and a snapshot
            # taken between it and the mark below must still find another kind incomplete.
            for kind in KINDS:
                self.cache.mark_incomplete(kind)
        for kind in KINDS:
            self.cache.replace(kind, [o for objs in self._objects.values() for k, o in objs if k == kind],
                               complete=True)
            if not complete:
                self.cache.mark_incomplete(kind)
        return True

    def list_once(self) -> None:
        self.scan()

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="manifests", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(self.poll_seconds):
            try:
                self.scan()
            except Exception:  # noqa: BLE001 - keep following the directory whatever happens
                log.exception("reading manifests failed")

    def request_resync(self) -> None:
        self._seen = None

    def close(self) -> None:
        if self.thread:
            self.thread.join(5)

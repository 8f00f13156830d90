"""Kubernetes as a source: list, then watch from the list's resourceVersion (as kopf does).

One watcher thread per kind (Containers, Nodes) keeps the ObjectCache current:
- a full paginated list replaces the kind's objects and marks it complete; a list that
  fails or is cut short replaces nothing;
- the watch starts at the list's resourceVersion and asks for bookmarks, so a
  reconnect resumes where it left off;
- 410 Gone (an ERROR event or status) re-lists; a dropped stream or any other error
  re-lists after an exponential backoff (capped at 4 s, so a recovered API server is seen
  within 5 s); a resync request re-lists at once;
- a watch silent for `idle_timeout` (no event, not even a bookmark) is dropped and
  resumed from the last resourceVersion, without a re-list.

Consuming a stream (`decode_lines`, `apply_event`, `follow`) is separate from the HTTP, so
it can be fed canned event streams.

The official client does the HTTP (configuration, auth, TLS; calls by path, see
sync.kube_rest); the watch stream is read
line by line here because the client's Watch helper cannot report 410 as an event
without deserializing every object into models, which is slow at 100,000 objects.
Pages and events are parsed with orjson: at a million Containers the standard library's
parser alone took ~8 s of the initial list.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Callable, Iterable, Iterator

import orjson
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines
from urllib3.exceptions import ReadTimeoutError

from mountdns.backoff import Backoff
from sync.kube_rest import CONTAINERS, NAMESPACED_CONTAINERS, NAMESPACED_PODS, NODES, PODS, KubeRest
from sync.objects import BACKS_LABEL, PUBLISH_LABEL, PUBLISH_VALUE
from sync.sources import heap
from sync.sources.cache import (CONTAINER, KINDS, NODE, OPTIONAL_KINDS, POD, PUBLISHED_POD, ObjectCache,
                                slim)

log = logging.getLogger("mountdns.sync.kubernetes")

# Objects per list page. A page is held raw and parsed while it is slimmed, next to every
# object already held: during a re-list of 100,000 Containers carrying their status,
# pages of 5,000 left the sync's peak 16 MiB higher than pages of 1,000 (202 -> 186 MiB),
# and were no faster (calls by path cost the client little per request). client-go's
# pager's 500 took another ~3 MiB off but made a list of 100,000 a third slower (4.9 ->
# 6.6 s: a request costs a few ms): not worth it. The API server serves any limit (it may
# send fewer).
PAGE_SIZE = 1000
# A listed Pod is 5-20 KB of JSON (a Container well under 1 KB): a page of 1,000 Pods would
# be held, raw and parsed, at once, and the sync's peak memory would keep it. Pods are
# listed in client-go's pages.
POD_PAGE_SIZE = 500
# Pods are watched through label selectors only (BACKS_LABEL for podRef, this one for the
# pod source): the API server filters, the sync never receives the cluster's other Pods.
PUBLISH_SELECTOR = f"{PUBLISH_LABEL}={PUBLISH_VALUE}"


class Gone(Exception):
    """The resourceVersion we watch from is too old (410 Gone): re-list."""


class WatchError(Exception):
    """The watch stream reported an error other than 410 Gone, or sent something that is
    not an event."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def load_client(kubeconfig: str | None) -> client.ApiClient:
    if kubeconfig:
        return config.new_client_from_config(config_file=kubeconfig)
    config.load_incluster_config()
    return client.ApiClient()


# -- consuming a watch stream (no HTTP: fed lines or events by the watcher, or by tests) ----
def decode_lines(lines: Iterable[str | bytes]) -> Iterator[dict]:
    """The events of a watch stream, one JSON object per line."""
    for line in lines:
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise WatchError(f"undecodable watch event: {line[:200]!r}") from exc
        if not isinstance(event, dict):
            raise WatchError(f"a watch event that is not an object: {line[:200]!r}")
        yield event


def apply_event(kind: str, cache: ObjectCache, event: dict, resource_version: str,
                received: float | None = None) -> str:
    """Apply one watch event to the cache; return the resourceVersion to resume from.
    Raises Gone on 410 and WatchError on any other ERROR event. `received` (monotonic)
    is when the event arrived, kept by the cache for the event-to-write histogram."""
    event_type, obj = event.get("type"), event.get("object") or {}
    if not isinstance(obj, dict):
        log.warning("ignoring %s watch event whose object is a %s", kind, type(obj).__name__)
        return resource_version
    if event_type == "ERROR":
        if obj.get("code") == 410:
            raise Gone(obj.get("message", "410 Gone"))
        raise WatchError(f"API error {obj.get('code')}: {obj.get('reason')}: {obj.get('message')}",
                         status=obj.get("code"))
    if event_type not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
        log.warning("ignoring %s watch event of unknown type %r", kind, event_type)
        return resource_version
    received = time.monotonic() if received is None else received
    if event_type in ("ADDED", "MODIFIED"):
        cache.put(kind, obj, received)
    elif event_type == "DELETED":
        cache.remove(kind, obj, received)
    return (obj.get("metadata") or {}).get("resourceVersion") or resource_version


def follow(kind: str, cache: ObjectCache, events: Iterable[dict], resource_version: str) -> Iterator[str]:
    """Apply a stream's events to the cache one by one, yielding after each the
    resourceVersion a new watch would resume from (so the caller may stop at any point
    and still knows it). Raises Gone or WatchError as apply_event does."""
    for event in events:
        resource_version = apply_event(kind, cache, event, resource_version)
        yield resource_version


class ResourceWatcher:
    """Keeps one kind of object in the cache by list-then-watch, until stopped.

    `idle_timeout` bounds how long a watch may stay silent (no event, not even a
    bookmark) before it is dropped and resumed from the last resourceVersion: a stream
    that a proxy or a half-dead connection left hanging would otherwise hide every change
    until the server-side `watch_timeout`. `sleep` waits between failed attempts (the
    stop event's wait by default, so a stop cuts it short); `backoff` schedules them.
    """

    def __init__(self, kind: str, list_call, cache: ObjectCache, stop: threading.Event, *,
                 watch_timeout: int = 300, request_timeout: float = 30.0, idle_timeout: float = 90.0,
                 backoff: Backoff | None = None, sleep: Callable[[float], object] | None = None, metrics=None):
        self.kind = kind
        self.metrics = metrics  # sync.metrics.SyncMetrics or None
        self.list_call = list_call
        self.cache = cache
        self.stop = stop
        self.watch_timeout = watch_timeout
        self.request_timeout = request_timeout
        self.idle_timeout = idle_timeout
        self.backoff = backoff or Backoff()
        self.sleep = sleep or stop.wait
        self.idle_restarts = 0  # watches dropped for silence and resumed
        self._resync = threading.Event()
        self._response = None
        self._lock = threading.Lock()
        self.thread: threading.Thread | None = None

    # -- control -------------------------------------------------------------------
    def start(self) -> "ResourceWatcher":
        self.thread = threading.Thread(target=self.run, name=f"watch-{self.kind}", daemon=True)
        self.thread.start()
        return self

    def request_resync(self) -> None:
        """Re-list now (periodic resync): end the current watch stream."""
        self.cache.relist_requested(self.kind)
        self._resync.set()
        self._close_stream()

    def close(self) -> None:
        self._close_stream()

    def _close_stream(self) -> None:
        with self._lock:
            response = self._response
        if response is not None:
            # Closing the response does not wake the watcher thread blocked reading it, and an
            # idle watch may send nothing for minutes: shut the socket down, which does.
            sock = getattr(getattr(response, "connection", None), "sock", None)
            try:
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
                else:
                    response.close()
            except Exception:  # noqa: BLE001 - closing a broken stream may fail; it is gone either way
                pass

    # -- list ----------------------------------------------------------------------
    def list_all(self) -> str:
        """Every object of the kind, page by page; the cache changes only if all pages came."""
        objects, token, resource_version = [], None, ""
        # No cycle collection while the pages are read: see sync.sources.heap.
        with heap.paused(self.kind) as listed:
            while True:
                meta = self._page(objects, token)
                resource_version = resource_version or meta.get("resourceVersion", "")
                token = meta.get("continue")
                if not token:
                    break
            self.cache.replace(self.kind, objects, complete=True, slimmed=True)
            listed.add(len(objects))
        log.info("listed %d %s objects at resourceVersion %s", len(objects), self.kind, resource_version)
        return resource_version

    def _page(self, objects: list, token: str | None) -> dict:
        """One page of the list, its objects slimmed onto `objects`; its list metadata.
        Slimmed page by page: full objects of a 100,000-item list would be held at once. An
        object equal to the one held is the one held: a re-list then costs no second copy.
        The page's body and its parsed objects go when this returns, before the next page
        is asked for: held in the loop until the next one replaced them, two pages of
        parsed objects were alive at once (~4 MB each at 1,000 Containers a page)."""
        kwargs = {"limit": POD_PAGE_SIZE if self.kind in (POD, PUBLISHED_POD) else PAGE_SIZE,
                  "_preload_content": False,
                  "_request_timeout": self.request_timeout}
        if token:
            kwargs["_continue"] = token
        body = orjson.loads(self.list_call(**kwargs).data)
        objects.extend(self.cache.kept(self.kind, slim(self.kind, o)) for o in body.get("items") or [])
        meta = body.get("metadata")
        return meta if isinstance(meta, dict) else {}

    # -- watch ---------------------------------------------------------------------
    def watch(self, resource_version: str) -> str:
        """Follow events from `resource_version` until the stream ends, stays silent for
        `idle_timeout`, or we are asked to stop or re-list; return the resourceVersion to
        resume from. Raises Gone on 410, WatchError on other errors in the stream."""
        response = self.list_call(
            watch=True, resource_version=resource_version, allow_watch_bookmarks=True,
            timeout_seconds=self.watch_timeout, _preload_content=False,
            # The read timeout applies to each read of the stream: it is the idle timeout.
            _request_timeout=(self.request_timeout, self.idle_timeout))
        with self._lock:
            self._response = response
        try:
            if self.stop.is_set() or self._resync.is_set():
                return resource_version  # asked to end before the stream was registered to close
            for resource_version in follow(self.kind, self.cache, decode_lines(iter_resp_lines(response)),
                                           resource_version):
                if self.stop.is_set() or self._resync.is_set():
                    break
        except (ReadTimeoutError, TimeoutError):
            self.idle_restarts += 1
            self._restarted()
            log.info("%s watch silent for %gs (not even a bookmark): resuming from resourceVersion %s",
                     self.kind, self.idle_timeout, resource_version)
        finally:
            with self._lock:
                self._response = None
            response.release_conn()
        return resource_version

    # -- the loop ------------------------------------------------------------------
    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._resync.clear()
                resource_version = self.list_all()
                self.backoff.reset()
                while not self.stop.is_set() and not self._resync.is_set():
                    resource_version = self.watch(resource_version)
                continue
            except Gone as exc:
                log.info("%s watch expired (%s): re-listing", self.kind, exc)
                self._restarted()
                continue
            except (ApiException, WatchError) as exc:
                self._restarted()
                if exc.status == 410:
                    log.info("%s: 410 Gone: re-listing", self.kind)
                    continue
                if isinstance(exc, ApiException):
                    self._failed(f"API error {exc.status}: {exc.reason}")
                else:
                    self._failed(str(exc))
            except Exception as exc:  # noqa: BLE001 - network errors of every kind: retry
                if self.stop.is_set():
                    break
                if self._resync.is_set():
                    continue  # we ended the stream ourselves to re-list: not a failure
                self._restarted()
                self._failed(f"{type(exc).__name__}: {exc}")

    def _restarted(self) -> None:
        """Count a list/watch started again after 410 Gone, a dropped or silent stream or an error."""
        if self.metrics is not None:
            self.metrics.watch_restarted(self.kind)

    def _failed(self, reason: str) -> None:
        delay = self.backoff.next_delay()
        log.warning("%s list/watch failed (%s); retrying in %.1fs; nothing is deleted meanwhile",
                    self.kind, reason, delay)
        self.sleep(delay)


class KubernetesSource:
    """Containers (all namespaces or one), Nodes, and the Pods labelled BACKS_LABEL, each
    by its own ResourceWatcher."""

    def __init__(self, api_client: client.ApiClient, cache: ObjectCache, stop: threading.Event,
                 namespace: str | None = None, sources: tuple[str, ...] = ("container",), **watcher_options):
        rest = KubeRest(api_client)
        if namespace:
            list_containers = rest.lister(NAMESPACED_CONTAINERS, namespace)
            list_pods = rest.lister(NAMESPACED_PODS, namespace, label_selector=BACKS_LABEL)
            list_published_pods = rest.lister(NAMESPACED_PODS, namespace, label_selector=PUBLISH_SELECTOR)
        else:
            list_containers = rest.lister(CONTAINERS)
            list_pods = rest.lister(PODS, label_selector=BACKS_LABEL)
            list_published_pods = rest.lister(PODS, label_selector=PUBLISH_SELECTOR)
        self.cache = cache
        self.watchers = [ResourceWatcher(NODE, rest.lister(NODES), cache, stop, **watcher_options)]
        if "container" in sources:
            self.watchers += [ResourceWatcher(CONTAINER, list_containers, cache, stop, **watcher_options),
                              ResourceWatcher(POD, list_pods, cache, stop, **watcher_options)]
        if "pod" in sources:
            self.watchers.append(ResourceWatcher(PUBLISHED_POD, list_published_pods, cache, stop,
                                                 **watcher_options))
        watched = {watcher.kind for watcher in self.watchers}
        for kind in KINDS:
            if kind not in watched:
                cache.replace(kind, [])  # a source not asked for: nothing of it, and nothing to wait for
            elif kind in OPTIONAL_KINDS:
                cache.expect(kind)

    def list_once(self) -> None:
        """One full list of every kind (for --once); raises on failure."""
        for watcher in self.watchers:
            watcher.list_all()

    def start(self) -> None:
        for watcher in self.watchers:
            watcher.start()

    def request_resync(self) -> None:
        for watcher in self.watchers:
            watcher.request_resync()

    def close(self) -> None:
        for watcher in self.watchers:
            watcher.close()
        for watcher in self.watchers:
            if watcher.thread:
                watcher.thread.join(5)
                if watcher.thread.is_alive():
                    log.warning("the %s watcher did not stop within 5 s", watcher.kind)

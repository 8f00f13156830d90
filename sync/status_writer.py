"""Writes Containers' status in the background: only what changed, only from the leader,
at a bounded rate, never in the way of a DNS write.

The reconciler hands over each batch's result with `offer()` (it only keeps a
reference, so the batch is not slowed); a thread of its own works out which Containers'
status differs from what it should say (`sync.status`) and patches their status
subresource, no more than `qps` API requests per second on average (a token bucket, as
client-go's rate limiter). A newer batch replaces the work not yet done, so a Container
that flaps is written in its latest state, once. On a transition into a failure reason
the Container also gets a Warning Event (`sync.events`).

Conflicts (409: someone wrote since the watch showed us the object) re-read the object
and recompute, up to a few times; other failures are logged and retried with backoff.
Nothing here is needed for DNS: with the API unreachable, Redis keeps being written.

Nothing is held per Container: a verdict is made from the rules' result when a Container
is looked at (`sync.status.Outcomes`) and compared with the status the cached object
has; the object is the one the rules' claim holds. Kept are only the Containers with a
write to make (the cache's own key tuples) or on its way back through the watch, and
the objects of the few Containers no claim holds (the skipped ones).
"""

from __future__ import annotations

import logging
import operator
import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import Callable, Mapping

from mountdns.backoff import Backoff
from sync.flat_object import OBJECT_TYPES, FlatObject
from sync.kube_rest import CONTAINER, CONTAINER_STATUS, POD, KubeRest, call
from sync.events import EventError, EventRecorder, EventsClient, rfc3339
from sync.objects import BACKS_LABEL, DEFAULT_NAMESPACE, POD_KEY_PREFIX, ObjectKey, SkipCode
from sync.incremental import Changes
from sync.rules import Desired
from sync.status import Outcomes, Verdict, enters_failure, has_foreign_conditions, part, status_patch, up_to_date

log = logging.getLogger("mountdns.sync.status")

CONFLICT_RETRIES = 3
_POD_OWN_STATE = frozenset({SkipCode.POD_NOT_READY, SkipCode.POD_NOT_SCHEDULED})


class StatusWriteError(Exception):
    """A status write failed for a reason that retrying later may fix."""


class Conflict(StatusWriteError):
    """409: the object changed since it was read."""


class NotFound(StatusWriteError):
    """404: the object is gone."""


class ContainerStatusClient:
    """Reads Containers and merge-patches their status subresource; plain dicts in and out."""

    def __init__(self, api_client):
        self.rest = KubeRest(api_client)

    def get(self, namespace: str, name: str) -> dict:
        return self._call("GET", CONTAINER, namespace, name)

    def patch_status(self, namespace: str, name: str, patch: dict) -> dict:
        # Merge patch, not strategic (which custom resources refuse with 415).
        return self._call("PATCH", CONTAINER_STATUS, namespace, name, body=patch,
                          content_type="application/merge-patch+json")

    def _call(self, method: str, path: str, namespace: str, name: str, **request) -> dict:
        return call(self.rest, method, path, path_params={"namespace": namespace, "name": name},
                    errors={409: Conflict, 404: NotFound}, failure=StatusWriteError, **request)


class PodClient:
    """Reads one Pod by name: the only Pod the sync reads that its labelled watch does not
    show it (see `StatusWriter._pod_hint`)."""

    def __init__(self, api_client):
        self.rest = KubeRest(api_client)

    def get(self, namespace: str, name: str) -> dict:
        return call(self.rest, "GET", POD,
                    path_params={"namespace": namespace, "name": name}, errors={404: NotFound},
                    failure=StatusWriteError)


class TokenBucket:
    """At most `qps` requests per second on average, `burst` at once (client-go's
    token bucket). A request may overdraw the bucket (a write that meets a conflict
    needs a read and a second patch), which the next requests then wait out."""

    def __init__(self, qps: float, burst: int, now: float):
        if qps <= 0 or burst < 1:
            raise ValueError("qps must be positive and burst at least 1")
        self.qps = qps
        self.burst = burst
        self.tokens = float(burst)
        self.updated = now

    def _fill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.qps)
        self.updated = max(self.updated, now)

    def ready(self, now: float) -> bool:
        self._fill(now)
        return self.tokens >= 1

    def take(self, now: float) -> None:
        self._fill(now)
        self.tokens -= 1

    def delay(self, now: float) -> float:
        """Seconds until a request may go."""
        self._fill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.qps


def _merged(older: Changes | None, last: Changes | None, newer: Changes | None) -> Changes | None:
    """What an offer not looked at (`older`, merged up to the result whose own changes
    are `last`) and the next one (`newer`) changed together: keys None (any) unless
    `newer` directly follows `last`."""
    if older is None or last is None or newer is None:
        return None
    if older.keys is None or newer.keys is None or newer.base != last.base + 1:
        return Changes(older.base, None)
    return Changes(older.base, older.keys | newer.keys)


def _own_namespace(obj) -> bool:
    """The object names its namespace: its key is then its own (one without would share
    the key of one in "default", and which of the two counts depends on their order)."""
    meta = obj.get("metadata") if isinstance(obj, OBJECT_TYPES) else None
    return isinstance(meta, dict) and isinstance(meta.get("namespace"), str) and bool(meta["namespace"])


def _key(obj: Mapping) -> ObjectKey:
    if type(obj) is FlatObject:  # read in place, no metadata dict built
        key = (obj.get_in("metadata", "namespace") or DEFAULT_NAMESPACE,
               str(obj.get_in("metadata", "name") or ""))
    else:
        meta = part(obj, "metadata")
        key = meta.get("namespace") or DEFAULT_NAMESPACE, str(meta.get("name") or "")
    # The cache's own tuple for the object (sync.sources.cache.object_key) when equal: a
    # key the writer keeps (100,000 of them queued on a fresh cluster) is then not a
    # second tuple per Container.
    held = getattr(obj, "key", None)
    return held if held == key else key


def _claimed(outcomes: Outcomes, key: ObjectKey):
    """The object the rules read a published Container from. The incremental rules keep
    it in the claim they publish (sync.incremental: one object per Container, the same in
    Desired.published), so the writer needs no key -> object table of its own for them;
    None for a claim without one (desired_state's, the --once mode) or no claim."""
    claim = outcomes.published.get(key)
    return None if claim is None else getattr(claim, "obj", None)


def _resource_version(obj: Mapping) -> str | None:
    return part(obj, "metadata").get("resourceVersion")


class StatusWriter:
    """The background writer of Container status and Events."""

    def __init__(self, client, events: EventRecorder | None, *, qps: float, burst: int | None = None,
                 leading: Callable[[], bool] = lambda: True, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = lambda: datetime.now(timezone.utc), pods: PodClient | None = None):
        self.client = client
        self.events = events
        self.pods = pods  # to tell, in a PodNotFound Event, a Pod that lacks our label
        self.leading = leading
        self.clock = clock
        self.wall = wall
        self.bucket = TokenBucket(qps, burst or max(1, int(qps)), clock())
        self.backoff = Backoff(initial=0.5, maximum=30.0)
        self._lock = threading.Lock()
        self._offered: tuple | None = None
        self._wake = threading.Event()
        # What is kept per Container is nothing: a verdict is made from the rules' result
        # when a Container is looked at (Outcomes), and compared with what its cached
        # status says (level-based, as controllers are). Kept are the inputs looked at
        # last -- containers, the rules' outcomes, node signature, names held by another
        # owner: references to what the cache and the rules hold anyway -- ...
        self._inputs: tuple = ((), None, None, frozenset())
        # ... the objects of the Containers whose rules' claim does not carry the object
        # (sync.incremental's does): the skipped ones, few; every one under desired_state ...
        self._unclaimed: dict[ObjectKey, Mapping] = {}
        # ... and the Containers whose status is to be written: those a full look found
        # (a queue of the cache's own key tuples, ~8 bytes each: a fresh cluster has all
        # 100,000 waiting, written at --status-qps over hours), then those found since.
        self._backlog: deque[ObjectKey] = deque()
        self._pending: dict[ObjectKey, None] = {}  # an ordered set: first in, first written
        self._sent: dict[ObjectKey, tuple[str | None, Verdict]] = {}  # written, not yet seen back
        # The number of the incremental rules' result looked at last (Desired.changes), and
        # the cache snapshot the Containers were last seen in: a batch that follows both
        # changes only a few keys.
        self._seen: int | None = None
        self._objects_seen: int | None = None
        # Pods of the pod source have no status of ours: a failure is told by a Warning Event.
        self._pods: tuple = ()
        self._pods_skipped: tuple | None = None  # the rules' skipped list the Pods were last checked against
        self._pod_reasons: dict[ObjectKey, str] = {}  # the last failure seen per failing Pod
        self._pod_events: dict[ObjectKey, tuple[Mapping, Verdict]] = {}  # an ordered set, like _pending
        self._retry_at = 0.0
        self.requests = 0
        self.full_refreshes = 0  # batches looked at whole (every key), not by what changed
        self.writes = 0
        self.failures = 0
        self.thread: threading.Thread | None = None

    # -- the reconciler's side: O(1) --------------------------------------------------
    def offer(self, containers: tuple, nodes: tuple, desired: Desired,
              owned_elsewhere: frozenset[str] = frozenset(), pods: tuple = (),
              containers_changed: tuple | None = None, recheck: bool = False) -> None:
        """The latest batch: the Containers (and Pods of the pod source) as the cache holds
        them, the rules' result and the names the store left to another owner. A batch
        not yet looked at is replaced, the keys it said changed kept with the newer ones.
        `containers_changed`: (since, version, removed, added) as the cache's snapshot
        told it, so the Containers that changed are found without comparing them all.
        `recheck`: compare every Container's status with its verdict again (after a
        resync: a status write may have been lost, or overwritten by someone else, without
        the rules or the objects telling; unchanged objects keep their dicts on a re-list)."""
        changes = desired.changes
        with self._lock:
            if self._offered is not None:
                older = self._offered
                changes = _merged(older[5], older[2].changes, changes)
                before = older[6]
                containers_changed = (None if before is None or containers_changed is None
                                      or before[1] != containers_changed[0] else
                                      (before[0], containers_changed[1], before[2] + containers_changed[2],
                                       before[3] + containers_changed[3]))
                recheck = recheck or older[7]
            self._offered = (containers, nodes, desired, owned_elsewhere, pods, changes, containers_changed, recheck)
        self._wake.set()

    # -- working out what to write --------------------------------------------------------
    def _refresh(self) -> None:
        with self._lock:
            offered, self._offered = self._offered, None
        if offered is None:
            return
        seen_objects = self._objects_seen
        containers, nodes, desired, owned_elsewhere, pods, changes, containers_changed, recheck = offered
        told, self._objects_seen = None, None if containers_changed is None else containers_changed[1]
        if (containers_changed is not None and containers_changed[0] == seen_objects and seen_objects is not None
                and all(map(_own_namespace, containers_changed[2]))
                and all(map(_own_namespace, containers_changed[3]))):
            told = containers_changed[2], containers_changed[3]
        old_containers, before, old_nodes, old_elsewhere = self._inputs
        if pods or self._pods:
            self._refresh_pods(pods, desired)
        listed = desired.listed_nodes
        if listed is None:  # a result that does not say (made by hand): read the Nodes
            listed = frozenset(str(part(n, "metadata").get("name") or "").lower()
                               for n in nodes if isinstance(n, OBJECT_TYPES))
        node_signature = (frozenset(desired.state.nodes), listed)
        outcomes = Outcomes(desired, node_signature[1], owned_elsewhere)
        self._inputs = (containers, outcomes, node_signature, owned_elsewhere)
        # The number of the newest result offered (offers not looked at merge into `changes`).
        newest = desired.changes
        seen, self._seen = self._seen, (newest.base + 1 if newest is not None else None)
        if (not recheck and told is not None and changes is not None and changes.keys is not None
                and changes.base == seen and node_signature == old_nodes and owned_elsewhere == old_elsewhere):
            self._refresh_keys(told, changes.keys, before)
            self._forget_seen(everything=True)
            return
        self.full_refreshes += 1
        log.debug("looking at every Container's status: %s", "first batch" if seen is None else
                  "after a resync" if recheck else
                  "the rules did not say what changed" if changes is None or changes.keys is None else
                  "the cache did not say which Containers changed" if told is None else
                  "a batch was not looked at" if changes.base != seen else "nodes or names held elsewhere changed")
        same_rules = (before is not None and desired.published is before.published
                      and desired.skipped is before.skipped and node_signature == old_nodes
                      and owned_elsewhere == old_elsewhere)
        same_objects = len(containers) == len(old_containers) and all(
            map(operator.is_, containers, old_containers))
        if same_rules and same_objects and not recheck:
            return  # a node moved, nothing else: no Container's status changes
        self._look_at_all(containers, outcomes)

    def _look_at_all(self, containers: tuple, outcomes: Outcomes) -> None:
        """Every Container's status against its verdict, made afresh: what is due goes to
        the backlog (the work found before is in it, if still due). The Containers the
        rules publish go first, then those they skip, as when verdicts were kept (those of
        the published ones first): a fresh cluster sees its names confirmed first."""
        unclaimed: dict[ObjectKey, Mapping] = {}
        backlog: deque[ObjectKey] = deque()
        skipped: list[ObjectKey] = []  # few, as a rule
        published = outcomes.published
        for obj in containers:
            if not isinstance(obj, OBJECT_TYPES):
                continue
            key = _key(obj)
            if _claimed(outcomes, key) is not obj:
                unclaimed[key] = obj
            verdict = outcomes.verdict(key)
            if verdict is not None and self._due(key, obj, verdict):
                (backlog if key in published else skipped).append(key)
        backlog.extend(skipped)
        self._unclaimed, self._backlog = unclaimed, backlog
        self._pending.clear()
        self._forget_seen(everything=True)

    def _due(self, key: ObjectKey, obj: Mapping, verdict: Verdict) -> bool:
        """The Container's status is to be written: it does not say `verdict` yet, and no
        write of it is on its way back through the watch."""
        seen = obj.copy()  # one version of metadata and status (the cache swaps both in place)
        if up_to_date(seen, verdict):
            self._sent.pop(key, None)  # seen back, if it was ours
            return False
        return not self._in_flight(key, seen, verdict)

    def _refresh_keys(self, told, keys: frozenset, before: Outcomes) -> None:
        """The incremental rules said which keys' outcome may have changed since the batch
        looked at last: re-check those and the Containers whose object changed, not all."""
        outcomes = self._inputs[1]
        removed, added = told
        gone = {id(obj) for obj in removed}
        touched = set(keys)
        for obj in removed:
            touched.add(_key(obj))
        fresh = {}
        for obj in added:
            # Offers merged: an object added by one batch may be removed by a later one.
            if isinstance(obj, OBJECT_TYPES) and id(obj) not in gone:
                key = _key(obj)
                fresh[key] = obj
                touched.add(key)
        unclaimed, pending = self._unclaimed, self._pending
        for key in touched:
            if key[1].startswith(POD_KEY_PREFIX):
                continue  # a Pod of the pod source: Events only (_refresh_pods)
            # Its object: the rules' claim holds it; else it changed (`fresh`), or it did
            # not and was unclaimed, or claimed in the outcome looked at before.
            claimed = _claimed(outcomes, key)
            obj = claimed if claimed is not None else fresh.get(key)
            if obj is None:
                obj = unclaimed.get(key)
                if obj is None:
                    obj = _claimed(before, key)
                if obj is not None and id(obj) in gone:
                    obj = None
            if obj is None or obj is claimed:
                unclaimed.pop(key, None)
            else:
                unclaimed[key] = obj
            verdict = None if obj is None else outcomes.verdict(key)
            if verdict is not None and self._due(key, obj, verdict):
                pending[key] = None
            else:
                pending.pop(key, None)  # one still in the backlog is passed over when its turn comes

    def _refresh_pods(self, pods: tuple, desired: Desired) -> None:
        """Queue a Warning Event for each Pod of the pod source that entered a failure
        (a name conflict it lost, a mount that does not resolve, an invalid annotation).
        PodNotReady and PodNotScheduled are not told: the Pod's own status says so."""
        if (desired.skipped is self._pods_skipped and len(pods) == len(self._pods)
                and all(map(operator.is_, pods, self._pods))):
            return  # the same Pods and the same verdicts: nothing entered a failure
        self._pods, self._pods_skipped = pods, desired.skipped
        # By namespace and bare Pod name, so a Pod is looked up without making its key: the
        # keys kept (here and in _pod_reasons) are the skips' own, for the failing Pods only,
        # not a tuple and a "pod/" name per published Pod (50,000 of them: ~120 bytes each).
        reasons = {(skip.namespace, skip.name[len(POD_KEY_PREFIX):]): skip for skip in desired.skipped
                   if skip.name.startswith(POD_KEY_PREFIX)}
        events, previous = self._pod_events, self._pod_reasons
        current = {}
        for obj in pods:
            meta = obj.get("metadata") if isinstance(obj, OBJECT_TYPES) else None
            if not (isinstance(meta, dict) and isinstance(meta.get("name"), str)):
                continue
            skip = reasons.get((meta.get("namespace") or "default", meta["name"]))
            if skip is None:
                continue  # published: an Event still queued about it goes below (not in `current`)
            key = (skip.namespace, skip.name)
            reason = current[key] = skip.code.value
            if reason != previous.get(key) and skip.code not in _POD_OWN_STATE:
                events[key] = (obj, Verdict(False, skip.code.value, skip.reason))
        for key in [k for k in events if k not in current]:
            del events[key]
        self._pod_reasons = current  # the failing Pods' reasons: a published one has none

    def _in_flight(self, key: ObjectKey, obj: Mapping, verdict: Verdict) -> bool:
        """We wrote exactly this for this version of the object; the watch has not shown
        the result yet. Writing again would only meet a conflict."""
        sent = self._sent.get(key)
        if sent is None:
            return False
        if sent[0] == _resource_version(obj) and sent[1] == verdict:
            return True
        del self._sent[key]  # the object moved on: what we sent is history
        return False

    def _forget_seen(self, everything: bool = False) -> None:
        """Forget the writes the watch has shown back (their object's version moved on, or
        it is gone): oldest first, up to the first still on its way (each step: O(1) as a
        rule), or `everything` (each batch). A status the watch shows back is swapped into
        the cached object without a batch, so nothing else would: an entry per status
        ever written would stay, 100,000 of them once every Container was written."""
        sent = self._sent
        for key in list(sent):
            obj = self._object(key)
            if obj is not None and _resource_version(obj) == sent[key][0]:
                if not everything:
                    return
            else:
                del sent[key]

    def _object(self, key: ObjectKey) -> Mapping | None:
        """The Container held under `key` as of the batch looked at last."""
        outcomes = self._inputs[1]
        obj = None if outcomes is None else _claimed(outcomes, key)
        return obj if obj is not None else self._unclaimed.get(key)

    def _next_due(self) -> ObjectKey | None:
        """The next Container to write: the backlog of the last full look, then those found
        since (first in, first written), or None."""
        if self._backlog:
            key = self._backlog.popleft()
            self._pending.pop(key, None)  # found due again since: once is enough
            return key
        if self._pending:
            key = next(iter(self._pending))
            del self._pending[key]
            return key
        return None

    @property
    def pending(self) -> int:
        """Containers waiting for a status write (one the backlog and a later batch both
        hold counts twice until its turn)."""
        return len(self._backlog) + len(self._pending)

    def _has_work(self) -> bool:
        return bool(self._backlog or self._pending or self._pod_events)

    # -- writing ---------------------------------------------------------------------------
    def step(self, now: float | None = None) -> int:
        """Write what the rate allows; returns the API requests made. Does nothing when
        not leading (the work stays pending for when it is)."""
        now = self.clock() if now is None else now
        self._refresh()
        self._forget_seen()
        if not self._has_work() or now < self._retry_at or not self.leading():
            return 0
        made = self.requests
        while self._pod_events and self.events is not None and self.bucket.ready(now):
            key = next(iter(self._pod_events))
            obj, verdict = self._pod_events.pop(key)
            self._warn(obj, verdict, now)
        if self.events is None:
            self._pod_events.clear()
        outcomes = self._inputs[1]
        while (self._backlog or self._pending) and self.bucket.ready(now):
            key = self._next_due()
            obj = self._object(key)
            verdict = None if obj is None else outcomes.verdict(key)
            # The cache swaps a Container's metadata and status in place when only they
            # change; a copy holds one version of both (a status with its resourceVersion).
            obj = obj.copy() if obj is not None else None
            if obj is None or verdict is None or up_to_date(obj, verdict) or self._in_flight(key, obj, verdict):
                continue
            try:
                self._write(key, obj, verdict, now)
                self.backoff.reset()
            except StatusWriteError as exc:
                self.failures += 1
                self._pending[key] = None  # at the back: the others get their turn
                delay = self.backoff.next_delay()
                self._retry_at = now + delay
                log.warning("status of %s/%s not written (%s); retrying in %.1fs", *key, exc, delay)
                break
        return self.requests - made

    def _request(self, now: float, call, *args):
        self.bucket.take(now)
        self.requests += 1
        return call(*args)

    def _write(self, key: ObjectKey, obj: Mapping, verdict: Verdict, now: float) -> None:
        namespace, name = key
        source = obj
        if has_foreign_conditions(obj):
            source = self._read(key, now)  # the cache left other conditions out; the patch must keep them
        for _ in range(CONFLICT_RETRIES):
            if source is None:
                return
            patch = status_patch(source, verdict, rfc3339(self.wall()))
            if patch is None:
                return
            warn = enters_failure(source, verdict)
            try:
                written = self._request(now, self.client.patch_status, namespace, name, patch)
            except Conflict:
                source = self._read(key, now)
                continue
            except NotFound:
                return
            self.writes += 1
            self._sent[key] = (_resource_version(obj), verdict)
            log.debug("status of %s/%s: Published=%s %s", namespace, name, verdict.published, verdict.reason)
            if warn and self.events is not None:
                self._warn(written, verdict, now)
            return
        raise StatusWriteError(f"still conflicting after {CONFLICT_RETRIES} attempts")

    def _read(self, key: ObjectKey, now: float) -> dict | None:
        try:
            return self._request(now, self.client.get, *key)
        except NotFound:
            return None

    def _warn(self, obj: Mapping, verdict: Verdict, now: float) -> None:
        message = verdict.message
        if verdict.reason == SkipCode.POD_NOT_FOUND.value and self.pods is not None:
            message = self._pod_hint(obj, now) or message
        if obj.get("kind") == "Pod" and not part(obj, "metadata").get("uid"):
            obj = self._pod_as_listed(obj, now)
            if obj is None:
                return
        try:
            self._request(now, self.events.warning, obj, verdict.reason, message)
        except EventError as exc:
            # An Event is a courtesy to people; the status already says it.
            log.warning("event for %s/%s not recorded: %s", *_key(obj), exc)

    def _pod_as_listed(self, pod: Mapping, now: float) -> Mapping | None:
        """The Pod an Event is about, with its uid: the cache keeps none (a Pod's uid is
        ~85 bytes, and 50,000 published Pods need it only for their rare Events), and
        `kubectl describe pod` shows only the Events whose involvedObject names its uid.
        None when the Pod is gone (an Event about it would be about nothing); the cached
        Pod, uid-less, when it cannot be read (the Event is still listed by name)."""
        if self.pods is None:
            return pod
        namespace, name = _key(pod)
        try:
            return self._request(now, self.pods.get, namespace, name)
        except NotFound:
            log.debug("pod %s/%s is gone: no event about it", namespace, name)
            return None
        except StatusWriteError as exc:
            log.debug("pod %s/%s not read for its uid: %s", namespace, name, exc)
            return pod

    def _pod_hint(self, obj: Mapping, now: float) -> str | None:
        """The Event's message when the Pod a Container names exists but lacks the label
        the sync's watch selects (the likeliest mistake with podRef, and one the status
        cannot tell: to the watch such a Pod is not there). None when the Pod is really
        missing, has the label (the watch has not shown it yet), or cannot be read. One
        GET per transition into PodNotFound, inside the writer's rate limit."""
        spec = obj.get("spec")
        ref = spec.get("podRef") if isinstance(spec, dict) else None
        name = ref.get("name") if isinstance(ref, dict) else None
        if not isinstance(name, str) or not name:
            return None
        namespace = _key(obj)[0]
        try:
            pod = self._request(now, self.pods.get, namespace, name)
        except StatusWriteError as exc:  # NotFound included: the Pod is really not there
            log.debug("pod %s/%s not read: %s", namespace, name, exc)
            return None
        labels = part(part(pod, "metadata"), "labels")
        if BACKS_LABEL in labels:
            return None
        return (f"pod {namespace}/{name} exists but has no label {BACKS_LABEL}: the sync watches only "
                f"Pods with that label; add it to the Pod (or its template)")

    # -- the thread ---------------------------------------------------------------------------
    def run(self, stop: threading.Event, idle_poll: float = 1.0) -> None:
        """Write until `stop` is set. Sleeps until an offer comes or a token is due; polls
        `leading` every `idle_poll` seconds while there is work it may not do."""
        while not stop.is_set():
            now = self.clock()
            try:
                self.step(now)
            except Exception:  # noqa: BLE001 - a bug here must not end status reporting for good
                log.exception("status writer failed; retrying")
                self._retry_at = now + self.backoff.next_delay()
            if not self._has_work():
                delay = None
            elif now < self._retry_at:
                delay = self._retry_at - now
            elif not self.leading():
                delay = idle_poll
            else:
                delay = self.bucket.delay(self.clock())
            self._wake.wait(delay)
            self._wake.clear()

    def start(self, stop: threading.Event) -> "StatusWriter":
        threading.Thread(target=lambda: (stop.wait(), self._wake.set()), name="status-stop-waker",
                         daemon=True).start()
        self.thread = threading.Thread(target=self.run, args=(stop,), name="status-writer", daemon=True)
        self.thread.start()
        return self


def build_status_writer(kubeconfig: str | None, qps: float,
                        leading: Callable[[], bool] = lambda: True) -> StatusWriter:
    """A writer with its own API client (its own connections: status writes never queue
    behind the watches)."""
    from sync.sources.kube import load_client

    api_client = load_client(kubeconfig)
    return StatusWriter(ContainerStatusClient(api_client), EventRecorder(EventsClient(api_client)),
                        qps=qps, leading=leading, pods=PodClient(api_client))

"""Leader election over a `coordination.k8s.io/v1` Lease, so several sync replicas can
run and exactly one writes Redis.

It follows client-go's `tools/leaderelection` (tryAcquireOrRenew), because its rules are
what keep two writers apart when clocks skew and processes pause:

- a candidate trusts only what it observed and its own monotonic clock: a Lease held by
  someone else is taken over only after it has not changed for a lease duration since
  this process last saw it change, whatever the holder's renewTime says;
- every update carries the resourceVersion it read; 409 Conflict means someone else
  wrote first, so the next attempt re-reads instead of retrying the same write;
- `leaseTransitions` grows by one on every change of holder, and is the fencing term a
  new leader records in Redis (`store.take_term`) before it writes;
- a leader that has not renewed within the renew deadline (measured from the moment it
  sent its last successful renewal) stops writing, which is before any other candidate
  can see its Lease expire, since the renew deadline is below the lease duration;
- on shutdown a leader releases the Lease (empty holder) so the next one takes over at
  once instead of after a lease duration (client-go's ReleaseOnCancel).

The `kubernetes` package's own leaderelection module is not used: it keeps no
leaseTransitions, never releases, rejects retry periods under a second, uses the
global default client, and writes MicroTime without fractional seconds when they are
zero, which a real API server answers with 400. Lease bodies are serialised here, with
six fractional digits always.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import random
import socket
import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Callable, Protocol

from mountdns.store import Fenced, StoreError
from sync.kube_rest import LEASE, LEASES, KubeRest

log = logging.getLogger("mountdns.sync.leader")

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
JITTER = 1.2  # client-go's JitterFactor: candidates spread their retries over 1x-2.2x


class LeaseError(Exception):
    """The Lease could not be read or written (API unreachable, refused, malformed)."""


class LeaseConflict(LeaseError):
    """Someone else wrote the Lease first (409): re-read before trying again."""


class NotLeading(StoreError):
    """A write was refused because this replica is not (or no longer) the leader."""


# --- time ------------------------------------------------------------------------------


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def now(self) -> datetime.datetime: ...


class SystemClock:
    """Monotonic seconds for every comparison; UTC wall time only for the Lease's stamps."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.timezone.utc)


def format_micro_time(moment: datetime.datetime) -> str:
    """metav1.MicroTime as the API server parses it: always six fractional digits
    (`datetime.isoformat()` drops them when they are zero, and the server answers 400)."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- the Lease -------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaseRecord:
    """The Lease's spec (client-go's LeaderElectionRecord) and the resourceVersion it was read at."""

    holder: str = ""
    lease_duration_seconds: int = 0
    acquire_time: datetime.datetime | None = None
    renew_time: datetime.datetime | None = None
    transitions: int = 0
    resource_version: str | None = None

    def observed(self) -> tuple:
        """What counts as the Lease changing: its spec, not its resourceVersion (as
        client-go compares the raw record), so a label edit is not mistaken for a renewal."""
        return (self.holder, self.lease_duration_seconds, self.acquire_time, self.renew_time, self.transitions)

    def spec(self) -> dict:
        spec = {"holderIdentity": self.holder, "leaseDurationSeconds": self.lease_duration_seconds,
                "leaseTransitions": self.transitions}
        if self.acquire_time is not None:
            spec["acquireTime"] = format_micro_time(self.acquire_time)
        if self.renew_time is not None:
            spec["renewTime"] = format_micro_time(self.renew_time)
        return spec


def record_from_lease(obj: dict) -> LeaseRecord:
    spec = obj.get("spec") or {}
    try:
        return LeaseRecord(holder=spec.get("holderIdentity") or "",
                           lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
                           acquire_time=parse_micro_time(spec.get("acquireTime")),
                           renew_time=parse_micro_time(spec.get("renewTime")),
                           transitions=int(spec.get("leaseTransitions") or 0),
                           resource_version=(obj.get("metadata") or {}).get("resourceVersion"))
    except (TypeError, ValueError) as exc:
        raise LeaseError(f"unreadable Lease spec {spec!r}: {exc}") from exc


class LeaseLock(Protocol):
    """Reads and writes one Lease; client-go's resourcelock.Interface."""

    def describe(self) -> str: ...
    def get(self) -> LeaseRecord | None: ...
    def create(self, record: LeaseRecord) -> LeaseRecord: ...
    def update(self, record: LeaseRecord) -> LeaseRecord: ...


class KubeLeaseLock:
    """A Lease in the Kubernetes API, by path through the client's HTTP layer
    (sync.kube_rest), with bodies we serialise.

    The client's typed `replace_namespaced_lease` would re-serialise MicroTime through
    `isoformat()` (see format_micro_time), so requests go out as JSON built here.
    """

    def __init__(self, api_client, namespace: str, name: str, request_timeout: float = 10.0):
        self.rest = KubeRest(api_client)
        self.namespace = namespace
        self.name = name
        self.request_timeout = request_timeout

    def describe(self) -> str:
        return f"{self.namespace}/{self.name}"

    def get(self) -> LeaseRecord | None:
        status, body = self._request("GET", LEASE)
        if status == 404:
            return None
        return self._answer(status, body, "read")

    def create(self, record: LeaseRecord) -> LeaseRecord:
        status, body = self._request("POST", LEASES, self._body(record))
        return self._answer(status, body, "create")

    def update(self, record: LeaseRecord) -> LeaseRecord:
        status, body = self._request("PUT", LEASE, self._body(record))
        return self._answer(status, body, "update")

    def _body(self, record: LeaseRecord) -> dict:
        meta = {"name": self.name, "namespace": self.namespace}
        if record.resource_version is not None:
            meta["resourceVersion"] = record.resource_version  # the optimistic-concurrency guard
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": record.spec()}

    def _answer(self, status: int, body, action: str) -> LeaseRecord:
        if status == 409:
            raise LeaseConflict(f"Lease {self.describe()}: {action} conflicted: {_message(body)}")
        if status not in (200, 201) or not isinstance(body, dict):
            raise LeaseError(f"Lease {self.describe()}: {action} failed with HTTP {status}: {_message(body)}")
        return record_from_lease(body)

    def _request(self, method: str, path: str, body: dict | None = None):
        try:
            response = self.rest.request(method, path, path_params={"namespace": self.namespace, "name": self.name},
                                         body=body, timeout=self.request_timeout)
            raw = response.data
        except Exception as exc:  # noqa: BLE001 - urllib3 and the client raise many kinds
            status = getattr(exc, "status", None)
            if not status:
                raise LeaseError(f"Lease {self.describe()}: {method} failed: {exc}") from exc
            raw = getattr(exc, "body", None) or b""
            return status, _json(raw)
        return response.status, _json(raw)


def _json(raw):
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw


def _message(body) -> str:
    if isinstance(body, dict):
        return str(body.get("message") or body.get("reason") or body)
    return str(body)[:200]


# --- the elector -----------------------------------------------------------------------


@dataclass(frozen=True)
class ElectionConfig:
    identity: str
    lease_duration: float = 15.0
    """Seconds a candidate waits without seeing the Lease change before taking it over."""
    renew_deadline: float = 10.0
    """Seconds a leader keeps writing without a successful renewal; below lease_duration."""
    retry_period: float = 2.0
    """Seconds between attempts to acquire or renew."""

    def __post_init__(self):
        if not self.identity:
            raise ValueError("identity must not be empty")
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("need 0 < retry period < renew deadline < lease duration")


class LeaderElector:
    """client-go's LeaderElector as a state machine: `step()` makes one attempt to acquire
    or renew and says how long to wait before the next; `run()` loops it on a thread.

    `may_write()` is what the writer asks before every Redis write; it answers from the
    monotonic clock, not from the election thread's last verdict, so a leader whose
    renewal hangs (or whose process was stopped) refuses writes at the renew deadline
    even before the election thread notices.

    `before_leading(term)` runs after the Lease is taken and before the replica counts as
    leader (the sync records its fencing term in Redis there); if it raises, the replica
    does not lead, and on `Fenced` (a newer term is recorded) it gives the Lease back so the
    holder, and with it the term, moves on.
    """

    def __init__(self, lock: LeaseLock, config: ElectionConfig, *, clock: Clock | None = None,
                 before_leading: Callable[[int], None] | None = None, rng: random.Random | None = None):
        self.lock = lock
        self.config = config
        self.clock = clock or SystemClock()
        self.before_leading = before_leading
        self.rng = rng or random.Random()
        self.on_started_leading: list[Callable[[int], None]] = []
        """Called with the term when this replica starts leading (metrics, waking the writer)."""
        self.on_stopped_leading: list[Callable[[str], None]] = []
        """Called with the reason when it stops leading."""
        self.on_new_leader: list[Callable[[str], None]] = []
        """Called with the holder's identity whenever an observed holder differs from the last one."""
        self._mutex = threading.RLock()
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0  # our monotonic time when the Lease last changed, as we saw it
        self._leading = False
        self._term: int | None = None
        self._renewed_at = 0.0  # monotonic time the last successful renewal was sent
        self._last_holder: str | None = None

    # -- what the writer asks -------------------------------------------------------------
    @property
    def identity(self) -> str:
        return self.config.identity

    def is_leader(self) -> bool:
        with self._mutex:
            return self._leading

    @property
    def term(self) -> int | None:
        """The fencing term (leaseTransitions when leadership began), while leading."""
        with self._mutex:
            return self._term if self._leading else None

    def may_write(self) -> bool:
        return self.write_term() is not None

    def write_term(self) -> int | None:
        """The term to write with, or None when this replica must not write now."""
        with self._mutex:
            if not self._leading:
                return None
            if self.clock.monotonic() - self._renewed_at >= self.config.renew_deadline:
                return None
            return self._term

    # -- one attempt ----------------------------------------------------------------------
    def step(self) -> float:
        """Try to acquire or renew once; step down if the renew deadline has passed.
        Returns the seconds to wait before the next step."""
        ok = self._try_acquire_or_renew()
        with self._mutex:
            leading = self._leading
            if leading and not ok and self.clock.monotonic() - self._renewed_at >= self.config.renew_deadline:
                self._stop_leading("failed to renew the Lease within the renew deadline")
                leading = False
        if leading:
            return self.config.retry_period
        return self.config.retry_period * (1 + self.rng.random() * JITTER)  # candidates: jittered

    def _try_acquire_or_renew(self) -> bool:
        cfg = self.config
        started = self.clock.monotonic()  # before the request: a conservative start of the lease
        stamp = self.clock.now()
        desired = LeaseRecord(holder=cfg.identity, lease_duration_seconds=max(1, math.ceil(cfg.lease_duration)),
                              acquire_time=stamp, renew_time=stamp)
        try:
            current = self.lock.get()
        except LeaseError as exc:
            log.warning("cannot read Lease %s: %s", self.lock.describe(), exc)
            return False
        if current is None:
            try:
                created = self.lock.create(desired)
            except LeaseConflict:
                log.info("Lease %s was created by another candidate first", self.lock.describe())
                return False
            except LeaseError as exc:
                log.warning("cannot create Lease %s: %s", self.lock.describe(), exc)
                return False
            self._observe(created, started)
            return self._acquired(created, started)

        with self._mutex:
            if self._observed is None or self._observed.observed() != current.observed():
                self._observe(current, self.clock.monotonic())
            else:
                self._observed = current  # same spec, maybe a newer resourceVersion
            ours = self._observed.holder == cfg.identity
            if self._leading and not ours:
                self._stop_leading(f"the Lease is now held by {current.holder or 'nobody'}")
            if (current.holder and not ours
                    and self._observed_at + cfg.lease_duration > self.clock.monotonic()):
                return False  # held by someone else, and seen changing within a lease duration
        if ours:
            desired = replace(desired, acquire_time=current.acquire_time, transitions=current.transitions)
        else:
            desired = replace(desired, transitions=current.transitions + 1)
        desired = replace(desired, resource_version=current.resource_version)
        try:
            updated = self.lock.update(desired)
        except LeaseConflict:
            # Someone else wrote in between: the next step re-reads; never re-send this write.
            log.info("Lease %s changed under us (409 Conflict); re-reading next time", self.lock.describe())
            return False
        except LeaseError as exc:
            log.warning("cannot update Lease %s: %s", self.lock.describe(), exc)
            return False
        self._observe(updated, started)
        return self._acquired(updated, started)

    def _observe(self, record: LeaseRecord, at: float) -> None:
        with self._mutex:
            self._observed = record
            self._observed_at = at
            holder = record.holder
        if holder != self._last_holder:
            self._last_holder = holder
            if holder:
                log.info("Lease %s is held by %s (transitions %d)", self.lock.describe(), holder, record.transitions)
                for callback in self.on_new_leader:
                    callback(holder)

    def _acquired(self, record: LeaseRecord, sent_at: float) -> bool:
        """We hold the Lease as `record`; renew, or start leading."""
        with self._mutex:
            self._renewed_at = sent_at
            if self._leading:
                return True
        term = record.transitions
        if self.before_leading is not None:
            try:
                self.before_leading(term)
            except Fenced as exc:
                log.error("term %d is fenced off in Redis (%s): giving the Lease back so the term moves on "
                          "(was the Lease deleted and re-created?)", term, exc)
                self.release()
                return False
            except Exception as exc:  # noqa: BLE001 - e.g. Redis unreachable: keep the Lease, retry
                log.warning("holding Lease %s but cannot start leading yet: %s", self.lock.describe(), exc)
                return True
        with self._mutex:
            self._leading = True
            self._term = term
        log.info("started leading as %s (Lease %s, term %d)", self.identity, self.lock.describe(), term)
        for callback in self.on_started_leading:
            callback(term)
        return True

    # -- stepping down --------------------------------------------------------------------
    def step_down(self, reason: str) -> None:
        """Stop writing at once (e.g. the store said a newer term exists); stay a candidate."""
        with self._mutex:
            if not self._leading:
                return
            self._stop_leading(reason)

    def _stop_leading(self, reason: str) -> None:
        self._leading = False
        self._term = None
        log.warning("stopped leading: %s", reason)
        for callback in self.on_stopped_leading:
            callback(reason)

    def release(self, attempts: int = 3) -> bool:
        """Give the Lease back (empty holder) if we hold it, so the next candidate takes it
        at once. Writing stops first. True if released, or if it was not ours to release.

        As client-go's tryRelease: read the Lease, and write only if it names us; a 409
        means it changed since that read, so read again (a bounded number of times).
        """
        self.step_down("releasing the Lease")
        for _ in range(attempts):
            try:
                current = self.lock.get()
            except LeaseError as exc:
                log.warning("could not release Lease %s: %s", self.lock.describe(), exc)
                return False
            if current is None or current.holder != self.identity:
                return True
            stamp = self.clock.now()
            # No holder, a one-second duration (for candidates that read it), transitions kept.
            record = LeaseRecord(holder="", lease_duration_seconds=1, acquire_time=stamp, renew_time=stamp,
                                 transitions=current.transitions, resource_version=current.resource_version)
            try:
                released = self.lock.update(record)
            except LeaseConflict:
                continue
            except LeaseError as exc:
                log.warning("could not release Lease %s: %s", self.lock.describe(), exc)
                return False
            self._observe(released, self.clock.monotonic())
            log.info("released Lease %s", self.lock.describe())
            return True
        log.warning("could not release Lease %s: it kept changing", self.lock.describe())
        return False

    # -- the loop -------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Step until `stop` is set. Does not release: the owner releases after its writer
        has stopped (see release())."""
        while not stop.is_set():
            try:
                delay = self.step()
            except Exception:  # noqa: BLE001 - a bug must not leave a leader writing unchecked
                log.exception("leader election step failed")
                self.step_down("leader election failed")
                delay = self.config.retry_period
            stop.wait(delay)
        self.step_down("shutting down")

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="leader-election", daemon=True)
        thread.start()
        return thread


# --- fencing the store -----------------------------------------------------------------

class FencedStore:
    """The store as the leader sees it: every apply carries the leader's term and is refused
    (NotLeading) unless the elector says this replica may write now; the store's own
    Fenced (a newer term recorded inside Redis) makes the replica step down at once.

    Everything else (reads) goes to the store unchanged, so the reconciler needs no change.
    """

    def __init__(self, store, elector: LeaderElector):
        self._store = store
        self._elector = elector

    def take_term(self, term: int) -> None:
        self._store.take_term(term)

    def apply(self, changes, *args, **kwargs):
        """The store's result (what it refused as another owner's), or NotLeading."""
        term = self._elector.write_term()
        if term is None:
            raise NotLeading("not the leader: nothing written")
        try:
            return self._store.apply(changes, *args, term=term, **kwargs)
        except Fenced as exc:
            self._elector.step_down(f"a newer leader's term is recorded in Redis ({exc})")
            raise NotLeading(f"fenced: {exc}") from exc

    def __getattr__(self, name):
        return getattr(self._store, name)


# --- defaults --------------------------------------------------------------------------


def default_namespace(path: str | None = None) -> str:
    """The pod's namespace from its service-account mount, else `default`."""
    try:
        with open(path or SERVICE_ACCOUNT_NAMESPACE, encoding="utf-8") as f:
            return f.read().strip() or "default"
    except OSError:
        return "default"


def default_identity() -> str:
    """Unique per process: the hostname (the pod's name in a cluster) and a random suffix,
    so two processes on one host never share an identity."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:10]}"

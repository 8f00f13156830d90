"""The sync's Prometheus metrics, in one object built on a registry passed in.

No module-global registry: each `SyncMetrics` registers on the `CollectorRegistry` it is
given (one per process in `mountdns-sync`, one per test), so tests are independent and
nothing is counted twice. The reconciler, the Kubernetes watchers and (later) the leader
election report through the methods here; `sync.status_server` serves the registry.

Labels are bounded on purpose: `reason` is a `SkipCode` (a fixed set), `zone` one of the
configured zones, `kind` parent or child, `resource` containers or nodes.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as CounterMetric

from mountdns.names import containing_zone
from mountdns.records import State
from sync.objects import SkipCode

# Watch event -> Redis EXEC: the coalescing window (50 ms by default) plus rules, diff and
# the write; a 100,000-Container first batch takes seconds.
EVENT_TO_WRITE_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RESOURCES = {"Container": "containers", "Node": "nodes"}
NAME_KINDS = ("parent", "child")


def _earlier(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None or a <= b else b


class SyncMetrics:
    """Every mountdns_sync_* metric, and the little state needed to compute them."""

    def __init__(self, registry: CollectorRegistry, zones: Iterable[str] = (), *,
                 wall_clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic):
        self.registry = registry
        self.wall_clock = wall_clock
        self.monotonic = monotonic
        self.zones = tuple(zones)
        self.leader = Gauge("mountdns_sync_leader", "1 on the sync that writes (the leader), 0 elsewhere",
                            registry=registry)
        self.names = Gauge("mountdns_sync_names", "Names in the desired state, by zone and kind",
                           ["zone", "kind"], registry=registry)
        self.skipped = Gauge("mountdns_sync_skipped_objects", "Containers not published, by reason code",
                             ["reason"], registry=registry)
        self.owned_elsewhere = Gauge("mountdns_sync_names_owned_elsewhere",
                                     "Desired names the store left to another owner (another --owner-id wrote "
                                     "them first)", registry=registry)
        self.unresolved = Gauge("mountdns_sync_unresolved_objects",
                                "Parents published without A/AAAA records for now (NodeNotFound, NodeHasNoAddress)",
                                ["reason"], registry=registry)
        self.writes = CounterMetric("mountdns_sync_writes", "Redis transactions committed (one per batch with changes)",
                              registry=registry)
        self.write_errors = CounterMetric("mountdns_sync_write_errors", "Batches that failed on Redis (read or write)",
                                    registry=registry)
        self.last_write = Gauge("mountdns_sync_last_write_timestamp_seconds",
                                "Unix time of the last committed Redis transaction", registry=registry)
        self.watch_restarts = CounterMetric("mountdns_sync_watch_restarts",
                                      "List/watch restarts after 410 Gone, a dropped stream or an API error",
                                      ["resource"], registry=registry)
        self.store_rewrites = CounterMetric("mountdns_sync_store_rewrites",
                                      "Rewrites of the whole state after Redis lost its data", registry=registry)
        self.event_to_write = Histogram("mountdns_sync_event_to_write_seconds",
                                        "Watch event received -> Redis EXEC done, from the oldest event of a batch",
                                        buckets=EVENT_TO_WRITE_BUCKETS, registry=registry)
        # Every label value shows from the start (as 0), so a dashboard or alert does not
        # have to tell "none" from "never reported".
        self._unresolved_reasons = {SkipCode.NODE_NOT_FOUND.value, SkipCode.NODE_HAS_NO_ADDRESS.value}
        self._skip_reasons = {code.value for code in SkipCode} - self._unresolved_reasons
        for gauge, reasons in ((self.skipped, self._skip_reasons), (self.unresolved, self._unresolved_reasons)):
            for reason in reasons:
                gauge.labels(reason=reason).set(0)
        for resource in RESOURCES.values():
            self.watch_restarts.labels(resource=resource)
        for zone in self.zones:
            for kind in NAME_KINDS:
                self.names.labels(zone=zone, kind=kind).set(0)

        self.is_leader = False
        self.reconciled_once = False  # a batch has completed against the store (written or already equal)
        self.last_error: str | None = None  # the last batch's store error, until one succeeds
        self._pending_event: float | None = None
        self._counted: tuple[dict, dict] | None = None  # the parents/children dicts last counted

    # -- leadership ------------------------------------------------------------------
    def set_leader(self, leader: bool) -> None:
        """Called at start (a sync without leader election is the leader) and by the
        election whenever leadership is won or lost."""
        self.is_leader = bool(leader)
        self.leader.set(1 if leader else 0)

    # -- the rules' result -----------------------------------------------------------
    def plan_computed(self, desired) -> None:
        """Names by zone and kind, skipped and unresolved objects by code, from a `Desired`."""
        self._count_names(desired.state)
        for gauge, items, shown in ((self.skipped, desired.skipped, self._skip_reasons),
                                    (self.unresolved, desired.unresolved, self._unresolved_reasons)):
            counts = Counter(str(item.code) for item in items)
            shown.update(counts)
            for reason in shown:  # every reason seen so far: back to 0 when none is left
                gauge.labels(reason=reason).set(counts.get(reason, 0))

    def _count_names(self, state: State) -> None:
        # A batch in which only Nodes changed keeps the very same parents and children
        # dicts: skip the count then (it is linear in the names, 100,000 of them).
        if self._counted is not None and self._counted[0] is state.parents and self._counted[1] is state.children:
            return
        zones = tuple(state.zones) or self.zones
        counts = {(zone, kind): 0 for zone in zones for kind in NAME_KINDS}
        if len(zones) == 1 and state.zones:
            # The rules publish only names within a configured zone: with one, all of them
            # are in it, and counting them is len(), not a lookup per name each batch.
            counts[(zones[0], "parent")], counts[(zones[0], "child")] = len(state.parents), len(state.children)
        for kind, names in (() if len(zones) == 1 and state.zones else
                            (("parent", state.parents), ("child", state.children))):
            for fqdn in names:
                zone = containing_zone(fqdn, zones)
                if zone is not None:
                    counts[(zone, kind)] += 1
        for (zone, kind), count in counts.items():
            self.names.labels(zone=zone, kind=kind).set(count)
        self._counted = (state.parents, state.children)

    # -- one batch against the store -----------------------------------------------------
    def batch_started(self, oldest_event: float | None) -> None:
        """The batch covers watch events received since `oldest_event` (monotonic); a
        batch that fails keeps it for the next one."""
        self._pending_event = _earlier(self._pending_event, oldest_event)

    def write_committed(self) -> None:
        """The batch's write is done."""
        self.writes.inc()
        self.last_write.set(self.wall_clock())
        if self._pending_event is not None:
            self.event_to_write.observe(max(0.0, self.monotonic() - self._pending_event))
            self._pending_event = None
        self._succeeded()

    def store_rewritten(self) -> None:
        """The full write that restored this sync's data after Redis lost it committed.
        Only the reconciler calls this, once per loss, however the loss was noticed (the
        marker heartbeat, a refused batch, a full read): see `Reconciler.data_lost`."""
        self.store_rewrites.inc()

    def nothing_to_write(self) -> None:
        """The batch found the store already right (or it was a dry run): the events it
        covered led to no write, so they are not timed."""
        self._pending_event = None
        self._succeeded()

    def write_failed(self, error: Exception) -> None:
        self.write_errors.inc()
        self.last_error = f"{type(error).__name__}: {error}"

    def _succeeded(self) -> None:
        self.reconciled_once = True
        self.last_error = None

    # -- sources ------------------------------------------------------------------------
    def watch_restarted(self, kind: str) -> None:
        self.watch_restarts.labels(resource=RESOURCES.get(kind, kind.lower())).inc()

"""One reconciliation: desired state (pure rules) -> diff against the store (pure) ->
one atomic write, which also announces the names it changed (mountdns.announce) so that
every backend purges them from its PowerDNS's caches.

The reconciler remembers what it last wrote, so a batch after a watch event diffs against
memory instead of re-reading every key; a full resync (and any failed write) re-reads
Redis, which is how a Redis restarted empty is rewritten. Full writes carry the store's
data-loss marker and later batches require it, so a batch is never diffed against data
Redis has lost. However a loss is noticed (the daemon's marker heartbeat, a batch refused
for want of the marker, the marker check of a full read), it goes through `data_lost`,
which logs it once and has the next full write counted as one rewrite. A write whose reply never came is not assumed either way: the next batch
re-reads the store and purges the names of the unsure batch too, written or not.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from mountdns.plan import Changes, applied, applied_in_full, diff, without_names
from mountdns.records import State
from mountdns.store import NOTHING_APPLIED, DataLost, StoreError, UnknownOutcome
from sync.sources.cache import CONTAINER, POD, PUBLISHED_POD, Snapshot
from mountdns import announce
from mountdns.purge import purge_waves
from sync.incremental import IncrementalRules
from sync.rules import Desired, RulesConfig, desired_state

log = logging.getLogger("mountdns.sync")

GC_ROUND_SHARE = 4  # a garbage round may be a quarter of the names published (see Reconciler.gc_round)


@dataclass(frozen=True)
class Outcome:
    """What one reconciliation did: the changes it wrote (or planned, in a dry run), and
    how many names the desired state publishes. `more_garbage`: it collected as many
    stale records as one round may and Redis holds more; the next batch reads again and
    goes on."""
    changes: Changes
    published: int
    more_garbage: bool = False


def describe_changes(changes: Changes) -> list[str]:
    """Human-readable lines for --dry-run and the debug log."""
    lines = []
    for name, zone in sorted(changes.zones_put.items()):
        lines.append(f"zone   put    {name} (ns {' '.join(zone.nameservers)}, ttl {zone.ttl})")
    lines += [f"zone   delete {n}" for n in sorted(changes.zones_delete)]
    lines += [f"node   put    {n} -> {' '.join(a)}" for n, a in sorted(changes.nodes_put.items())]
    lines += [f"node   delete {n}" for n in sorted(changes.nodes_delete)]
    lines += [f"parent put    {n} -> node {v}" for n, v in sorted(changes.parents_put.items())]
    lines += [f"parent delete {n}" for n in sorted(changes.parents_delete)]
    lines += [f"child  put    {n} -> CNAME {v}" for n, v in sorted(changes.children_put.items())]
    lines += [f"child  delete {n}" for n in sorted(changes.children_delete)]
    return lines


def _only(state: State, names) -> State:
    """`state` with only the parents and children among `names` (zones and nodes whole)."""
    parents, children = state.parents, state.children
    return State(zones=state.zones, nodes=state.nodes,
                 parents={name: parents[name] for name in names if name in parents},
                 children={name: children[name] for name in names if name in children})


class Reconciler:
    def __init__(self, store, rules: RulesConfig, dry_run: bool = False, printer=print,
                 metrics=None, status=None, incremental: bool = True, gc_round_names: int | None = None):
        self.status = status  # a StatusWriter: told of each batch after its DNS write, in O(1)
        self.store = store  # with leader election, a wrapper adding the leader's term to every apply
        self.metrics = metrics  # sync.metrics.SyncMetrics, or None
        self.marked = False  # the store's data-loss marker was written by a full write of ours
        self.rewrite_due = False  # Redis lost our data: the next full write restores it
        self.owned_elsewhere: frozenset[str] = frozenset()  # desired names another owner holds
        self.zones_elsewhere: frozenset[str] = frozenset()
        self._unsure: list[set[str]] = []  # purge waves of writes whose outcome is unknown
        self.rules = rules
        self.dry_run = dry_run
        self.printer = printer
        self.known: State | None = None  # what the store holds, as far as we know
        self._reported: dict[tuple[str, str], str] = {}
        self._warnings: set[str] = set()
        self.batches = 0
        # The rules, kept between batches; None: desired_state each time (one-shot runs,
        # which would only pay for the bookkeeping).
        self._incremental = IncrementalRules(rules) if incremental else None
        self._seen: int | None = None  # the cache's snapshot the rules saw last
        self._last_plan: Desired | None = None
        self.narrowed_diffs = 0  # batches diffed by the names the rules said changed
        # Stale records a fresh read gathers at most (None: all), or a GC_ROUND_SHARE of the
        # names published when that is more: see gc_round(). A dry run reads everything, to
        # print everything.
        self.gc_round_names = None if dry_run else gc_round_names

    def gc_round(self, published: int) -> int | None:
        """How many stale records one batch reads and deletes at most, `published` names
        desired: `gc_round_names`, or a GC_ROUND_SHARE of the names when that is more. A
        round reads every desired name again (MGET) and diffs them all: rounds of a fixed
        25,000 each took ~34 s at a million: 40 of them to collect a million stale names next to a
        million live ones. A round of a quarter costs at most a quarter of what the desired
        names cost, and a Redis holding as many stale names as live ones is clean in five
        batches at any size."""
        if self.gc_round_names is None:
            return None
        return max(self.gc_round_names, published // GC_ROUND_SHARE)

    def _desired(self, snapshot: Snapshot) -> Desired:
        """The rules' result for the snapshot. Kept up to date from the last batch's
        (sync.incremental): desired_state over every Container costs ~10 us each, a
        second per batch at 100,000, which under steady churn made the batches grow."""
        objects = (snapshot.containers, snapshot.nodes, snapshot.pods, snapshot.published_pods)
        if self._incremental is None:
            return desired_state(*objects[:2], self.rules, *objects[2:])
        changed = None
        if snapshot.changed is not None and snapshot.since is not None and snapshot.since == self._seen:
            changed = tuple(snapshot.changed.get(kind) for kind in (CONTAINER, POD, PUBLISHED_POD))
        self._seen = snapshot.version
        try:
            return self._incremental.update(*objects, changed=changed)
        except Exception:  # noqa: BLE001 - a bug in the bookkeeping must not stop DNS: decide afresh
            log.exception("the incremental rules failed; deciding every object afresh")
            self._incremental = IncrementalRules(self.rules)
            return self._incremental.update(*objects)

    def _narrowed(self, current: State, plan: Desired) -> tuple[State, State]:
        """(current, desired) to diff: when what the store holds is, dict for dict, the
        last plan's records (a complete write, nothing held elsewhere) and the rules say
        which names changed since, only those names; `diff` of the whole would compare
        100,000 names a batch to find the few hundred that changed, with the same result."""
        last, changes = self._last_plan, plan.changes
        if (last is None or changes is None or changes.names is None or last.changes is None
                or changes.base != last.changes.base + 1
                or current.parents is not last.state.parents or current.children is not last.state.children):
            return current, plan.state
        self.narrowed_diffs += 1
        return _only(current, changes.names), _only(plan.state, changes.names)

    def _report_skips(self, plan) -> None:
        """Log each unpublished object once per reason, not on every batch."""
        current = {(s.namespace, s.name): s.reason for s in plan.skipped}
        for key, reason in sorted(current.items()):
            if self._reported.get(key) != reason:
                log.warning("not published: %s/%s: %s", key[0], key[1], reason)
        for key in set(self._reported) - set(current):
            log.info("published again or gone: %s/%s", *key)
        self._reported = current
        for warning in sorted(set(plan.warnings) - self._warnings):
            log.warning("%s", warning)
        self._warnings = set(plan.warnings)

    def _report_owned_elsewhere(self, result) -> None:
        """Log each name another owner holds once, and once when it is ours again."""
        if result is NOTHING_APPLIED:
            return
        for name in sorted(result.owned_elsewhere - self.owned_elsewhere):
            log.warning("not published: %s: held by another owner (first writer keeps it)", name)
        for name in sorted(self.owned_elsewhere - result.owned_elsewhere):
            log.info("no longer held by another owner: %s", name)
        for name in sorted(result.zones_elsewhere - self.zones_elsewhere):
            log.warning("zone %s: defined differently by another owner; its definition stays", name)
        self.owned_elsewhere, self.zones_elsewhere = result.owned_elsewhere, result.zones_elsewhere
        if self.metrics is not None:
            self.metrics.owned_elsewhere.set(len(self.owned_elsewhere))

    def data_lost(self, how: str) -> bool:
        """Redis lost this sync's data, noticed `how`: forget what we believed it holds so
        the next batch re-reads it and writes everything. The one place a loss is noted,
        so a loss noticed several ways (the heartbeat, then the full read) counts once;
        True when this is news (we had marked the store and had not noticed yet)."""
        if not self.marked:
            return False  # nothing of ours written yet, or the loss is already noted
        log.warning("Redis lost this sync's data (%s): rewriting everything now", how)
        self.marked = False
        self.known = None
        self.rewrite_due = True
        return True

    def _check_marker(self) -> None:
        """Before a full read: is our marker still there? Read first, so the state read
        after it reflects a loss it finds."""
        present = getattr(self.store, "marker_present", None)
        if present is None or self.dry_run or not (self.marked or self.rewrite_due):
            return  # a store without a marker (a test double) cannot tell; nothing written yet
        if present():
            if self.rewrite_due:
                # Restored meanwhile: by another replica of this owner that led in between
                # (which counts it), or by a write of ours whose reply never came. Not counted.
                log.info("Redis holds this sync's marker again: its data was rewritten meanwhile")
                self.rewrite_due = False
        else:
            self.data_lost("its marker is gone")

    def reconcile(self, snapshot: Snapshot, full: bool = False) -> Outcome:
        """Make the store match the snapshot. Raises StoreError when the store fails."""
        if self.metrics is None:
            return self._reconcile(snapshot, full)
        self.metrics.batch_started(snapshot.oldest_event)
        try:
            return self._reconcile(snapshot, full)
        except StoreError as exc:
            self.metrics.write_failed(exc)
            raise

    def _reconcile(self, snapshot: Snapshot, full: bool) -> Outcome:
        started = time.monotonic()
        if full:
            # A full batch re-reads the store. What we knew and the last plan (kept only to
            # narrow a diff against memory) are the previous batch's records: let them go
            # before the rules copy theirs for this batch, so that one copy, not two, lives
            # through the read, the diff and the write.
            self.known = None
            self._last_plan = None
        plan = self._desired(snapshot)
        self._report_skips(plan)
        if self.metrics is not None:
            self.metrics.plan_computed(plan)
        fresh = full or self.known is None  # diffed against what the store holds now
        if fresh:
            self._check_marker()
            # What we knew is about to be replaced: let it go before the store's whole state
            # is read next to it (a million names each). A read that fails leaves nothing
            # known, so the next batch reads again, as after a failed write. A diff against
            # a read is never narrowed (_narrowed): the last plan goes too.
            self.known = None
            self._last_plan = None
            # Read in the plan's own objects where Redis agrees with it (the plan's dicts
            # themselves where it holds exactly them): only what differs is read into new
            # strings, not a second copy of every name next to the plan's.
            current = self.store.read_state(like=plan.state, extra_limit=self.gc_round(plan.state.name_count()))
        else:
            current = self.known
        before, desired = self._narrowed(current, plan)
        narrowed = desired is not plan.state  # the store holds the last plan's records
        changes = diff(before, desired, collect_garbage=snapshot.complete)
        self._last_plan = plan
        if self.dry_run:
            for line in describe_changes(changes):
                self.printer(line)
            self.printer(f"dry run: {changes.summary()} (nothing written)")
            self.known = applied(current, changes)
        elif not changes.empty or (fresh and not self.marked) or self._unsure:
            # A complete snapshot's changes leave exactly the desired records: share them.
            after = (applied_in_full(current, changes, plan.state) if snapshot.complete
                     else applied(current, changes))
            # The backends purge what the batch's announcement names; after a write of
            # unknown outcome its names are announced again with the next one, written or not.
            waves = (self._incremental.purge_waves(plan, changes)
                     if narrowed and snapshot.complete and self._incremental is not None else None)
            announcement = announce.from_changes(changes, current, after, plan.state.zones,
                                                 extra_waves=self._unsure, waves=waves)
            try:
                result = self.store.apply(changes, mark=fresh, require_marker=self.marked and not fresh,
                                          announcement=announcement, announce_always=bool(self._unsure))
            except Exception as exc:
                self.known = None  # unsure what was written: re-read next time
                if isinstance(exc, DataLost):
                    self.data_lost("a batch was refused: its marker is gone")
                elif isinstance(exc, UnknownOutcome):
                    # Maybe written: its names are announced with the next write, whatever it finds.
                    self._unsure.extend(purge_waves(changes, current, after))
                raise
            result = result or NOTHING_APPLIED  # a store that reports nothing refused nothing
            self._unsure = []
            self.batches += not changes.empty
            if self.metrics is not None and not changes.empty:
                self.metrics.write_committed()
            if fresh:
                self.marked = True
                if self.rewrite_due and self.metrics is not None:
                    self.metrics.store_rewritten()
                self.rewrite_due = False
            self._report_owned_elsewhere(result)
            # Names another owner holds are not ours: the next batch asks for them again.
            self.known = without_names(after, result.owned_elsewhere)
        else:
            # Nothing to write: the store holds the plan's records. Held as the plan's own
            # dicts (when complete, so equal), the next batch may diff by changed names.
            self.known = (State(zones=current.zones, nodes=current.nodes, parents=plan.state.parents,
                                children=plan.state.children) if snapshot.complete else current)
        # A bounded read left stale records in Redis that `known` does not have: the next
        # batch reads again (and, the snapshot complete, collects the next round).
        more_garbage = fresh and current.more_extra and snapshot.complete and not self.dry_run \
            and bool(changes.nodes_delete or changes.parents_delete or changes.children_delete)
        if fresh and current.more_extra:
            self.known = None
        if self.metrics is not None and (self.dry_run or changes.empty):
            self.metrics.nothing_to_write()
        seconds = time.monotonic() - started
        if self.status is not None:
            told = snapshot.changed.get(CONTAINER) if snapshot.changed is not None else None
            self.status.offer(snapshot.containers, snapshot.nodes, plan, self.owned_elsewhere,
                              pods=snapshot.published_pods,
                              containers_changed=None if told is None else (snapshot.since, snapshot.version, *told),
                              recheck=full)
        if not changes.empty:
            log.info("%s %s in %.1f ms%s%s%s", "planned" if self.dry_run else "wrote", changes.summary(),
                     seconds * 1000, "" if snapshot.complete else " (list incomplete: nothing deleted)",
                     f" ({len(self.owned_elsewhere)} held by another owner, not written)"
                     if self.owned_elsewhere and not self.dry_run else "",
                     "; Redis holds more stale records: the next batch collects them" if more_garbage else "")
        return Outcome(changes, plan.state.name_count(), more_garbage)

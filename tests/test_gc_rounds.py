"""Garbage collected in rounds: a full read gathers at most `extra_limit` records the
desired state does not have (children, then parents, then nodes and zones), so a Redis
holding far more stale names than live ones does not set the sync's memory; the
reconciler, the daemon's loop and `--once` go on round after round until none is left,
and no round leaves a stale record pointing at one already deleted."""

from __future__ import annotations

import gc
import math
import weakref

import pytest

from mountdns.plan import diff
from mountdns.records import State, Zone
from mountdns.store.like import ExtraRoom
from mountdns.store.memory_store import MemoryStore
from mountdns.testing.objects import SEED_CONFIG, seed_objects
from mountdns.testing.seed import SEED_STATE, ZONE
from sync.daemon import SyncDaemon, Wait
from sync.reconciler import Reconciler
from sync.sources.cache import CONTAINER, NODE, ObjectCache
from tests.conftest import load
from tests.test_daemon import COALESCE, CountingStore, FakeSource, records, SEED_RECORDS
from tests.test_metrics import seeded_cache

GONE_ZONE = Zone(name="gone.example", nameservers=("ns1.gone.example",), hostmaster="hostmaster.gone.example",
                 ttl=30)
STALE_CHILDREN = {f"sc{i}.{ZONE}": f"sp{i % 3}.{ZONE}" for i in range(7)}
STALE_PARENTS = {**{f"sp{i}.{ZONE}": "stale-node" for i in range(3)}, "x.gone.example": "stale-node"}
STALE_NODES = {"stale-node": ("192.0.2.50",)}
STALE = len(STALE_CHILDREN) + len(STALE_PARENTS) + len(STALE_NODES)


def with_garbage(state: State) -> State:
    """`state` plus stale children of stale parents on a stale node, one of them in a
    zone nothing desires any more."""
    return State(zones={**state.zones, GONE_ZONE.name: GONE_ZONE}, nodes={**state.nodes, **STALE_NODES},
                 parents={**state.parents, **STALE_PARENTS}, children={**state.children, **STALE_CHILDREN})


def dangling(state: State) -> list[str]:
    """Stale records pointing at a record that is gone, or in a zone that is gone."""
    problems = [f"child {n} -> {t}" for n, t in state.children.items() if t not in state.parents]
    problems += [f"parent {n} -> {v}" for n, v in state.parents.items() if v not in state.nodes]
    problems += [f"parent {n} outside every zone" for n in state.parents
                 if not any(n == z or n.endswith("." + z) for z in state.zones)]
    return problems


@pytest.mark.parametrize("limit", [1, 4, 7, 11, 100])
def test_a_bounded_read_gathers_children_first_and_the_rounds_never_leave_a_record_dangling(any_store, limit):
    load(any_store, with_garbage(SEED_STATE))
    rounds, deleted = 0, []
    for _ in range(STALE + 1):  # a round deletes at least one stale record, or is the last
        current = any_store.read_state(like=SEED_STATE, extra_limit=limit)
        extra = {kind: set(getattr(current, kind)) - set(getattr(SEED_STATE, kind))
                 for kind in ("children", "parents", "nodes")}
        gathered = sum(map(len, extra.values()))
        assert gathered <= limit
        # Children first: no stale parent or node is gathered while a stale child is left unread.
        left_children = set(STALE_CHILDREN) - set(deleted) - extra["children"]
        if left_children:
            assert not extra["parents"] and not extra["nodes"] and GONE_ZONE.name not in current.zones
        # Every desired record is read whatever the bound: what differs is still put right.
        assert {n: current.parents.get(n) for n in SEED_STATE.parents} == SEED_STATE.parents
        changes = diff(current, SEED_STATE)
        any_store.apply(changes)
        deleted += [*changes.children_delete, *changes.parents_delete, *changes.nodes_delete]
        rounds += 1
        assert dangling(any_store.read_state()) == []
        if not current.more_extra:
            break
        assert gathered == limit  # a round stops only when full
    else:
        pytest.fail(f"still more garbage after {rounds} rounds")
    assert records(any_store) == SEED_RECORDS
    assert set(any_store.read_state().zones) == {ZONE}
    assert sorted(deleted) == sorted([*STALE_CHILDREN, *STALE_PARENTS, *STALE_NODES])
    # One round per `limit` records, and at most one more that finds the last ones or none.
    assert math.ceil(STALE / limit) <= rounds <= math.ceil(STALE / limit) + 1


def test_without_a_bound_everything_is_read_at_once(any_store):
    load(any_store, with_garbage(SEED_STATE))
    current = any_store.read_state(like=SEED_STATE)
    assert not current.more_extra
    assert dict(current.children) == {**SEED_STATE.children, **STALE_CHILDREN}
    assert GONE_ZONE.name in current.zones


def test_another_owners_records_take_no_room_and_are_never_read():
    store = MemoryStore()
    theirs = MemoryStore(owner="west", _data=store._data)  # one Redis, two owners
    load(theirs, State(zones={ZONE: SEED_STATE.zones[ZONE]}, nodes={"w": ("192.0.2.9",)},
                       parents={f"west{i}.{ZONE}": "w" for i in range(5)}))
    load(store, with_garbage(SEED_STATE))
    current = store.read_state(like=SEED_STATE, extra_limit=len(STALE_CHILDREN))
    assert set(current.children) - set(SEED_STATE.children) == set(STALE_CHILDREN)
    assert not any(name.startswith("west") for name in current.parents)


def test_a_round_is_the_configured_size_or_a_quarter_of_the_names_published_when_more():
    reconciler = Reconciler(MemoryStore(), SEED_CONFIG, gc_round_names=25_000)
    assert reconciler.gc_round(100_000) == 25_000
    assert reconciler.gc_round(1_000) == 25_000
    assert reconciler.gc_round(1_000_000) == 250_000
    assert Reconciler(MemoryStore(), SEED_CONFIG, gc_round_names=None).gc_round(1_000_000) is None
    assert Reconciler(MemoryStore(), SEED_CONFIG, dry_run=True, gc_round_names=25_000).gc_round(10**6) is None


def test_a_room_of_less_than_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        ExtraRoom(0)


# --- the reconciler and the loop ---------------------------------------------------------
def daemon_over_garbage(limit: int, **options) -> tuple[MemoryStore, CountingStore, SyncDaemon]:
    """A daemon over the seed, its store holding the seed and the garbage: (the store,
    the counting store the reconciler reads through, the daemon)."""
    inner, cache = MemoryStore(), ObjectCache()
    load(inner, with_garbage(SEED_STATE))
    containers, nodes = seed_objects()
    store = CountingStore(inner)
    daemon = SyncDaemon(cache, FakeSource(cache, containers=containers, nodes=nodes),
                        Reconciler(store, SEED_CONFIG, gc_round_names=limit), **options)
    return inner, store, daemon


def test_the_reconciler_collects_a_round_per_batch_and_says_when_more_is_left():
    inner = MemoryStore()
    load(inner, with_garbage(SEED_STATE))
    store, cache = CountingStore(inner), seeded_cache()
    reconciler = Reconciler(store, SEED_CONFIG, gc_round_names=5)

    outcomes = [reconciler.reconcile(cache.snapshot(), full=True)]
    for _ in range(STALE):
        if not outcomes[-1].more_garbage:
            break
        assert reconciler.known is None  # Redis holds more than it read: the next batch reads again
        outcomes.append(reconciler.reconcile(cache.snapshot()))
    else:
        pytest.fail(f"still more garbage after {len(outcomes)} batches")
    # 7 stale children, 4 parents, a node: 5 children; 2 children and 3 parents; the rest.
    assert [o.changes.key_writes() for o in outcomes] == [5, 5, 2]
    assert [o.more_garbage for o in outcomes] == [True, True, False]
    assert outcomes[1].changes.children_delete and not outcomes[1].changes.nodes_delete
    assert store.reads == len(outcomes)
    assert records(inner) == SEED_RECORDS
    assert set(inner.read_state().zones) == {ZONE}
    # Done: the next batch diffs against memory again.
    assert reconciler.known is not None
    reconciler.reconcile(cache.snapshot())
    assert store.reads == len(outcomes)


def test_an_incomplete_snapshot_collects_nothing_and_asks_for_no_further_round():
    inner = MemoryStore()
    load(inner, with_garbage(SEED_STATE))
    cache = ObjectCache()
    containers, nodes = seed_objects()
    cache.replace(CONTAINER, containers, complete=False)
    cache.replace(NODE, nodes)
    outcome = Reconciler(inner, SEED_CONFIG, gc_round_names=5).reconcile(cache.snapshot(), full=True)
    assert not outcome.more_garbage
    assert outcome.changes.key_writes() == 0
    assert set(inner.read_state().children) >= set(STALE_CHILDREN)


def test_a_dry_run_reads_and_prints_every_stale_record_at_once():
    inner, printed = MemoryStore(), []
    load(inner, with_garbage(SEED_STATE))
    outcome = Reconciler(inner, SEED_CONFIG, dry_run=True, printer=printed.append,
                         gc_round_names=5).reconcile(seeded_cache().snapshot(), full=True)
    assert not outcome.more_garbage
    assert outcome.changes.key_writes() == STALE
    assert sum("delete" in line for line in printed) == STALE + 1  # and the stale zone


def test_the_loop_runs_the_next_round_at_once_until_none_is_left():
    inner, store, daemon = daemon_over_garbage(4, coalesce_seconds=COALESCE, resync_interval=300.0)
    daemon.source.start()
    now = 0.0
    for _ in range(40):
        wait = daemon.step(now)
        if wait.on_change:
            break
        now = wait.until
    assert wait == Wait(300.0, on_change=True)  # idle again: every round written
    assert records(inner) == SEED_RECORDS
    assert set(inner.read_state().zones) == {ZONE}
    # Three rounds (4 children; 3 children and a parent; 3 parents and the node), each
    # gathered like any batch and none waiting for anything else.
    assert store.reads == 3
    assert now == 3 * COALESCE


def test_run_once_goes_on_until_every_round_is_collected():
    inner, store, daemon = daemon_over_garbage(4)
    assert daemon.run_once() == STALE
    assert store.reads == math.ceil(STALE / 4)
    assert records(inner) == SEED_RECORDS


def test_run_once_lets_a_rounds_outcome_go_before_the_next_round():
    # A round's outcome holds its changes (every name it deleted): held through the next
    # round, it would sit next to that round's read of Redis.
    inner, store, daemon = daemon_over_garbage(4)
    reconcile, earlier, alive = daemon.reconciler.reconcile, [], []

    def watched(snapshot, full=False):
        gc.collect()
        alive.append([ref() is not None for ref in earlier])
        outcome = reconcile(snapshot, full=full)
        earlier.append(weakref.ref(outcome))
        return outcome

    daemon.reconciler.reconcile = watched
    assert daemon.run_once() == STALE
    assert alive == [[], [False], [False, False]]

"""One reconciliation at a time: the seed written on the first, nothing on the second,
no deletes from an incomplete list, dry runs that only print, a failed write that makes
the next batch re-read the store, and a wiped Redis rewritten only by a full resync."""

from __future__ import annotations

import fakeredis
import pytest

from mountdns.store import StoreError
from mountdns.store.redis_store import RedisStore
from mountdns.store.memory_store import MemoryStore
from mountdns.records import State
from sync.sources.cache import CONTAINER, NODE, ObjectCache, Snapshot
from sync.reconciler import Reconciler
from mountdns.testing.objects import SEED_CONFIG, node, seed_objects
from mountdns.testing.seed import SEED_STATE, SEED_ZONE, ZONE


def seed_snapshot(complete: bool = True, drop: tuple[str, ...] = (), nodes=None) -> Snapshot:
    containers, seed_nodes = seed_objects()
    return Snapshot(containers=tuple(c for c in containers if c["metadata"]["name"] not in drop),
                    nodes=tuple(nodes if nodes is not None else seed_nodes), complete=complete)


def records(store) -> tuple:
    state = store.read_state()
    return state.parents, state.children, state.nodes


SEED_RECORDS = (SEED_STATE.parents, SEED_STATE.children, SEED_STATE.nodes)


class FailingStore:
    """A MemoryStore whose first `failures` applies raise StoreError; counts reads."""

    def __init__(self, failures: int = 1):
        self.inner = MemoryStore()
        self.failures = failures
        self.reads = 0

    def read_state(self, like: State | None = None, extra_limit: int | None = None) -> State:
        self.reads += 1
        return self.inner.read_state(like=like, extra_limit=extra_limit)

    def marker_present(self) -> bool:
        return self.inner.marker_present()

    def apply(self, changes, **options):
        if self.failures:
            self.failures -= 1
            raise StoreError("redis write failed: connection refused")
        return self.inner.apply(changes, **options)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def test_first_reconcile_writes_the_seed(store):
    reconciler = Reconciler(store, SEED_CONFIG)

    outcome = reconciler.reconcile(seed_snapshot())

    assert records(store) == SEED_RECORDS
    assert [z.definition() for z in store.zones()] == [SEED_ZONE]
    assert len(store.batches) == 1
    assert (outcome.published, outcome.changes.key_writes(), reconciler.batches) == (8, 11, 1)


def test_second_reconcile_of_the_same_objects_writes_nothing(store):
    reconciler = Reconciler(store, SEED_CONFIG)
    reconciler.reconcile(seed_snapshot())
    serial = store.zone(ZONE).serial

    outcome = reconciler.reconcile(seed_snapshot())

    assert outcome.changes.empty
    assert len(store.batches) == 1
    assert reconciler.batches == 1
    assert store.zone(ZONE).serial == serial


def test_incomplete_snapshot_deletes_nothing_and_the_complete_one_does(store):
    reconciler = Reconciler(store, SEED_CONFIG)
    reconciler.reconcile(seed_snapshot())

    partial = reconciler.reconcile(seed_snapshot(complete=False, drop=("container-d-0",)))

    assert partial.changes.empty
    assert records(store) == SEED_RECORDS

    complete = reconciler.reconcile(seed_snapshot(drop=("container-d-0",)))

    assert complete.changes.children_delete == {"container_d_0.domain.foo.bar"}
    assert complete.changes.key_writes() == 1
    assert "container_d_0.domain.foo.bar" not in store.read_state().children
    assert len(store.batches) == 2


def test_incomplete_snapshot_still_adds_and_updates(store):
    reconciler = Reconciler(store, SEED_CONFIG)
    reconciler.reconcile(seed_snapshot())
    containers, nodes = seed_objects()
    nodes[0] = node("node-0", "9.9.9.9")

    outcome = reconciler.reconcile(Snapshot(tuple(containers[1:]), tuple(nodes), complete=False))

    assert dict(outcome.changes.nodes_put) == {"node-0": ("9.9.9.9",)}
    assert outcome.changes.parents_delete == frozenset()
    assert store.read_state().nodes["node-0"] == ("9.9.9.9",)


def test_dry_run_prints_the_changes_and_writes_nothing(store):
    printed: list[str] = []
    reconciler = Reconciler(store, SEED_CONFIG, dry_run=True, printer=printed.append)

    reconciler.reconcile(seed_snapshot())

    assert printed == [
        "zone   put    domain.foo.bar (ns ns1.domain.foo.bar, ttl 30)",
        "node   put    node-0 -> 1.2.3.4",
        "node   put    node-1 -> 2.3.4.5",
        "node   put    node-2 -> 3.4.5.6",
        "parent put    container_a_0.domain.foo.bar -> node node-0",
        "parent put    container_a_1.domain.foo.bar -> node node-1",
        "parent put    container_a_2.domain.foo.bar -> node node-2",
        "parent put    container_b_0.domain.foo.bar -> node node-1",
        "child  put    container_c_0.domain.foo.bar -> CNAME container_a_1.domain.foo.bar",
        "child  put    container_c_1.domain.foo.bar -> CNAME container_a_2.domain.foo.bar",
        "child  put    container_d_0.domain.foo.bar -> CNAME container_b_0.domain.foo.bar",
        "child  put    container_e_0.domain.foo.bar -> CNAME container_a_0.domain.foo.bar",
        "dry run: zones +1/-0, nodes +3/-0, parents +4/-0, children +4/-0 (nothing written)",
    ]
    assert store.batches == []
    assert store.read_state() == State()
    assert store.announcements == []


def test_dry_run_prints_only_what_changed_since_the_last_run(store):
    printed: list[str] = []
    reconciler = Reconciler(store, SEED_CONFIG, dry_run=True, printer=printed.append)
    reconciler.reconcile(seed_snapshot())
    printed.clear()

    reconciler.reconcile(seed_snapshot(drop=("container-e-0",)))

    assert printed == ["child  delete container_e_0.domain.foo.bar",
                       "dry run: children +0/-1 (nothing written)"]
    assert store.batches == []


def test_failed_write_leaves_known_unset_so_the_next_reconcile_rereads_the_store():
    store = FailingStore(failures=1)
    reconciler = Reconciler(store, SEED_CONFIG)

    with pytest.raises(StoreError):
        reconciler.reconcile(seed_snapshot())

    assert reconciler.known is None
    assert store.reads == 1
    assert records(store.inner) == ({}, {}, {})

    reconciler.reconcile(seed_snapshot())

    assert store.reads == 2
    assert records(store.inner) == SEED_RECORDS
    assert reconciler.known.parents == SEED_STATE.parents

    reconciler.reconcile(seed_snapshot())
    assert store.reads == 2  # known again: diffed against memory


def test_wiped_redis_is_rewritten_by_a_full_reconcile_but_not_by_a_partial_one():
    client = fakeredis.FakeRedis()
    store = RedisStore(client)
    reconciler = Reconciler(store, SEED_CONFIG)
    reconciler.reconcile(seed_snapshot(), full=True)
    assert records(store) == SEED_RECORDS

    client.flushall()

    incremental = reconciler.reconcile(seed_snapshot())
    assert incremental.changes.empty
    assert store.read_state() == State()

    full = reconciler.reconcile(seed_snapshot(), full=True)
    assert full.changes.key_writes() == 11
    assert records(store) == SEED_RECORDS
    assert [z.definition() for z in store.zones()] == [SEED_ZONE]


def test_a_write_announces_every_affected_name(store):
    reconciler = Reconciler(store, SEED_CONFIG)

    reconciler.reconcile(seed_snapshot())

    assert [(a.names, a.zones) for a in store.announcements] == [
        (set(SEED_STATE.parents) | set(SEED_STATE.children) | {ZONE}, {ZONE})]


def test_a_node_move_announces_its_parents_then_the_children_chained_to_them(store):
    reconciler = Reconciler(store, SEED_CONFIG)
    reconciler.reconcile(seed_snapshot())
    store.announcements.clear()
    _, nodes = seed_objects()
    nodes[1] = node("node-1", "7.7.7.7")

    reconciler.reconcile(seed_snapshot(nodes=nodes))

    [moved] = store.announcements
    assert moved.waves[0] == {"container_a_1.domain.foo.bar", "container_b_0.domain.foo.bar"}
    assert moved.names == {"container_a_1.domain.foo.bar", "container_b_0.domain.foo.bar",
                           "container_c_0.domain.foo.bar", "container_d_0.domain.foo.bar"}
    assert moved.zones == {ZONE}


def test_nothing_is_announced_when_nothing_changed(store):
    reconciler = Reconciler(store, SEED_CONFIG)
    reconciler.reconcile(seed_snapshot())

    reconciler.reconcile(seed_snapshot(), full=True)

    assert len(store.announcements) == 1


class RecordingStatus:
    """Stands in for the StatusWriter: what the reconciler offers it, and when."""

    def __init__(self, store=None):
        self.store = store
        self.offers: list[tuple] = []
        self.owned_elsewhere: list[frozenset] = []  # per offer, the names another owner holds
        self.rechecks: list[bool] = []  # per offer, whether every status is to be compared again
        self.changed: list = []  # per offer, the Containers that changed as the cache told

    def offer(self, containers, nodes, desired, owned_elsewhere=frozenset(), pods=(), containers_changed=None,
              recheck=False) -> None:
        written = records(self.store) if self.store is not None else None
        self.offers.append((containers, nodes, desired, written))
        self.owned_elsewhere.append(owned_elsewhere)
        self.rechecks.append(recheck)
        self.changed.append(containers_changed)


def test_status_is_offered_each_batch_after_its_dns_write_and_not_after_a_failed_one():
    store = FailingStore(failures=1)
    status = RecordingStatus(store.inner)
    reconciler = Reconciler(store, SEED_CONFIG, status=status)
    snapshot = seed_snapshot()

    with pytest.raises(StoreError):
        reconciler.reconcile(snapshot)
    assert status.offers == []  # nothing reported as published that Redis does not hold

    reconciler.reconcile(snapshot)
    reconciler.reconcile(snapshot)  # nothing to write: still offered (status may lag behind)

    assert len(status.offers) == 2
    containers, nodes, desired, written_before_offer = status.offers[0]
    assert containers is snapshot.containers and nodes is snapshot.nodes
    assert desired.state.parents == SEED_STATE.parents
    assert written_before_offer == SEED_RECORDS


def test_a_full_batch_asks_the_status_writer_to_look_at_every_container_and_others_pass_what_changed():
    # A re-list keeps unchanged objects' dicts, so only a full batch (a resync) makes the
    # writer compare every status again; other batches pass on what the cache says changed.
    cache, status = ObjectCache(), RecordingStatus()
    containers, nodes = seed_objects()
    cache.replace(CONTAINER, containers)
    cache.replace(NODE, nodes)
    reconciler = Reconciler(MemoryStore(), SEED_CONFIG, status=status)
    reconciler.reconcile(cache.snapshot(), full=True)
    moved = dict(containers[0], spec=dict(containers[0]["spec"], nodeName="node-2"))
    cache.put(CONTAINER, moved)
    reconciler.reconcile(cache.snapshot())
    cache.replace(CONTAINER, [moved] + containers[1:])  # the resync's re-list: nothing changed
    reconciler.reconcile(cache.snapshot(), full=True)

    assert status.rechecks == [True, False, True]
    since, version, removed, added = status.changed[1]
    assert version == since + 1 and [obj["spec"]["nodeName"] for obj in added] == ["node-2"] and len(removed) == 1
    assert status.changed[2][2:] == ([], [])


def test_names_another_owner_holds_reach_the_status_and_the_metrics():
    from prometheus_client import CollectorRegistry

    from sync.metrics import SyncMetrics

    east = MemoryStore(owner="east")
    Reconciler(east, SEED_CONFIG).reconcile(seed_snapshot())  # east publishes the seed first
    west_status, registry = RecordingStatus(), CollectorRegistry()
    west = Reconciler(east.view("west"), SEED_CONFIG, status=west_status,
                      metrics=SyncMetrics(registry, [ZONE]))

    west.reconcile(seed_snapshot())

    names = set(SEED_STATE.parents) | set(SEED_STATE.children)
    assert west_status.owned_elsewhere == [names] and west.owned_elsewhere == names
    assert registry.get_sample_value("mountdns_sync_names_owned_elsewhere") == len(names)


def test_batches_diffed_by_the_names_the_rules_changed_write_what_a_whole_diff_writes():
    # The same events through two reconcilers: one keeps the rules between batches and diffs
    # only the names they changed, the other decides and diffs everything each time.
    import random

    from mountdns.testing.objects import container

    rng = random.Random(7)
    cache = ObjectCache()
    containers, nodes = seed_objects()
    cache.replace(CONTAINER, containers)
    cache.replace(NODE, nodes)
    fast, slow = Reconciler(MemoryStore(), SEED_CONFIG), Reconciler(MemoryStore(), SEED_CONFIG, incremental=False)
    names = [f"x{i}" for i in range(8)] + [c["metadata"]["name"] for c in containers]
    for step in range(150):
        name = rng.choice(names)
        if rng.random() < 0.2:
            cache.remove(CONTAINER, container(name))
        elif rng.random() < 0.2:
            cache.put(NODE, node(f"node-{rng.randrange(4)}", f"10.0.0.{rng.randrange(1, 9)}"))
        else:
            cache.put(CONTAINER, container(name, node=rng.choice(["node-0", "node-1", None]),
                                           mounted_to=rng.choice([None, *names[:12]]), status="MOUNTED",
                                           fqdn=rng.choice([None, None, f"shared.{ZONE}"])))
        snapshot = cache.snapshot()
        full = step % 50 == 0
        assert fast.reconcile(snapshot, full=full).changes == slow.reconcile(snapshot, full=full).changes
        assert fast.store.read_state() == slow.store.read_state()
        assert fast.store.announcements == slow.store.announcements  # the same names purged, in the same waves
    assert fast.narrowed_diffs > 100  # the narrow way was the one taken

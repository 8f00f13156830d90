"""The sync loop, driven by an in-process source: nothing written before every kind is
listed, a burst of watch events coalesced into one batch, store failures retried on the
backoff's schedule, periodic resyncs that re-list and re-read the store. The decisions are
tested through `step(now)` on a clock the test moves; `run` in a thread only for what the
real loop adds (waking on changes and on stop), waiting on conditions, never timing it."""

from __future__ import annotations

import gc
import threading

import fakeredis
import pytest

from mountdns.store import StoreError
from mountdns.store.redis_store import RedisStore
from mountdns.store.memory_store import MemoryStore
from mountdns.records import State
from mountdns.backoff import DEFAULT_MAXIMUM, Backoff
from sync.sources import heap
from sync.sources.cache import CONTAINER, NODE, ObjectCache
from sync.daemon import RELIST_WAIT, SyncDaemon, Wait
from sync.reconciler import Reconciler
from mountdns.testing.objects import SEED_CONFIG, container, node, seed_objects
from mountdns.testing.seed import SEED_STATE
from mountdns.testing.servers import eventually

BURST = 1000


class FakeSource:
    """Stands in for the Kubernetes watchers: lists the given kinds on start, and again
    on every resync request."""

    def __init__(self, cache: ObjectCache, containers=None, nodes=None):
        self.cache = cache
        self.containers = containers
        self.nodes = nodes
        self.started = 0
        self.listed_once = 0
        self.resyncs = 0
        self.closed = False

    def _list(self) -> None:
        if self.containers is not None:
            self.cache.replace(CONTAINER, self.containers)
        if self.nodes is not None:
            self.cache.replace(NODE, self.nodes)

    def start(self) -> None:
        self._list()
        self.started += 1

    def list_once(self) -> None:
        self.listed_once += 1
        self._list()

    def request_resync(self) -> None:
        self.resyncs += 1
        self._list()

    def close(self) -> None:
        self.closed = True


class CountingStore:
    """Delegates to a store; counts reads and fails the first `failures` applies."""

    def __init__(self, inner, failures: int = 0):
        self.inner = inner
        self.failures = failures
        self.failed = 0
        self.reads = 0
        self.applies = 0

    def read_state(self, like: State | None = None, extra_limit: int | None = None) -> State:
        self.reads += 1
        return self.inner.read_state(like=like, extra_limit=extra_limit)

    def marker_present(self) -> bool:
        return self.inner.marker_present()

    def apply(self, changes, **options):
        if self.failed < self.failures:
            self.failed += 1
            raise StoreError("redis write failed: connection refused")
        self.applies += 1
        return self.inner.apply(changes, **options)


def records(store) -> tuple:
    state = store.read_state()
    return state.parents, state.children, state.nodes


SEED_RECORDS = (SEED_STATE.parents, SEED_STATE.children, SEED_STATE.nodes)


COALESCE = 0.5  # a round number of seconds: every test moves its own clock


def daemon_for(cache, source, store, **kwargs) -> SyncDaemon:
    kwargs.setdefault("coalesce_seconds", COALESCE)
    kwargs.setdefault("resync_interval", 300.0)
    return SyncDaemon(cache, source, Reconciler(store, SEED_CONFIG), **kwargs)


def started(daemon: SyncDaemon, now: float = 0.0) -> Wait:
    """What run() does first: the source lists, then the first step."""
    daemon.source.start()
    return daemon.step(now)


# --- step(now): the loop's decisions, on a clock of the test's own --------------------------
def test_nothing_is_written_before_every_kind_is_listed():
    cache, store = ObjectCache(), MemoryStore()
    containers, nodes = seed_objects()
    daemon = daemon_for(cache, FakeSource(cache, containers=containers), store)  # Nodes not listed yet

    assert started(daemon, 0.0) == Wait(COALESCE, on_change=False)  # gathering the first batch
    assert daemon.step(COALESCE) == Wait(300.0, on_change=True)  # nothing to write: wait for a change
    assert daemon.step(100.0) == Wait(300.0, on_change=True)
    assert store.batches == []

    cache.replace(NODE, nodes)
    assert daemon.step(100.0) == Wait(100.0 + COALESCE, on_change=False)
    daemon.step(100.0 + COALESCE)

    assert len(store.batches) == 1
    assert records(store) == SEED_RECORDS
    assert daemon.batches == 1


def test_a_burst_of_a_thousand_changes_within_the_coalescing_time_is_one_batch():
    cache, store = ObjectCache(), MemoryStore()
    _, nodes = seed_objects()
    daemon = daemon_for(cache, FakeSource(cache, containers=[], nodes=nodes), store)
    started(daemon, 0.0)
    assert daemon.step(COALESCE) == Wait(300.0, on_change=True)
    assert len(store.batches) == 1  # zones and nodes

    now = 10.0
    for i in range(BURST):
        cache.put(CONTAINER, container(f"c-{i}", node="node-0"))
        if i % 100 == 0:  # the loop wakes now and then during the burst, the clock moving on
            assert daemon.step(now + i / 10_000) == Wait(now + COALESCE, on_change=False)

    assert len(store.batches) == 1  # gathering still
    assert daemon.step(now + COALESCE) == Wait(300.0, on_change=True)
    assert len(store.batches) == 2
    assert store.batches[1].parents_put == {f"c-{i}.default.domain.foo.bar": "node-0" for i in range(BURST)}


def test_a_change_made_while_a_batch_is_written_makes_the_next_batch():
    cache = ObjectCache()
    containers, nodes = seed_objects()
    source = FakeSource(cache, containers=containers, nodes=nodes)

    class PutDuringWrite(MemoryStore):
        def apply(self, changes, **options):
            applied = super().apply(changes, **options)
            if len(self.batches) == 1:
                cache.put(CONTAINER, container("late", node="node-0"))
            return applied

    store = PutDuringWrite()
    daemon = daemon_for(cache, source, store)
    started(daemon, 0.0)

    assert daemon.step(COALESCE) == Wait(300.0, on_change=True)
    assert cache.changed.is_set()  # so a waiting loop wakes at once
    daemon.step(1.0)
    daemon.step(1.0 + COALESCE)
    assert [dict(b.parents_put) for b in store.batches[1:]] == [{"late.default.domain.foo.bar": "node-0"}]


def test_a_store_error_is_retried_after_the_backoff_delay_then_the_backoff_resets():
    cache = ObjectCache()
    store = CountingStore(MemoryStore(), failures=2)
    containers, nodes = seed_objects()
    backoff = Backoff(initial=1.0, maximum=4.0, rand=lambda: 0.0)
    daemon = daemon_for(cache, FakeSource(cache, containers=containers, nodes=nodes), store, backoff=backoff)
    started(daemon, 0.0)

    assert daemon.step(0.5) == Wait(1.5, on_change=False)  # failed; retry in 1 s, changes or not
    assert daemon.step(1.0) == Wait(1.5, on_change=False)  # woken early: still backing off
    assert (store.failed, store.applies) == (1, 0)
    assert daemon.step(1.5) == Wait(2.0, on_change=False)  # retrying: gather, then write
    assert daemon.step(2.0) == Wait(4.0, on_change=False)  # failed again; twice the delay
    assert daemon.step(4.0) == Wait(4.5, on_change=False)
    assert daemon.step(4.5) == Wait(300.0, on_change=True)  # written

    assert (store.failed, store.applies, daemon.store_failures) == (2, 1, 2)
    assert records(store.inner) == SEED_RECORDS
    # Each failure forgets what the store holds: the retries re-read it.
    assert store.reads == 3
    assert backoff.next_delay() == 1.0


def test_however_long_redis_is_down_the_next_attempt_is_never_more_than_the_cap_away():
    cache = ObjectCache()
    store = CountingStore(MemoryStore(), failures=30)
    containers, nodes = seed_objects()
    daemon = daemon_for(cache, FakeSource(cache, containers=containers, nodes=nodes), store,
                        backoff=Backoff(initial=0.2, rand=lambda: 0.0))  # no jitter: the longest delays
    now, attempts = 0.0, []
    wait = started(daemon, now)
    for _ in range(200):  # bounded: each attempt takes two steps (gather, write)
        if store.applies:
            break
        failed = store.failed
        now = wait.until
        wait = daemon.step(now)
        if store.failed > failed or store.applies:
            attempts.append(now)

    gaps = [later - earlier for earlier, later in zip(attempts, attempts[1:])]
    assert len(attempts) == 31  # 30 failures, then the write
    assert max(gaps) == pytest.approx(DEFAULT_MAXIMUM + COALESCE)  # the capped delay, then the batch gathers
    assert records(store.inner) == SEED_RECORDS


def seed_written(source_type=FakeSource):
    """A daemon (resync every 60 s) that listed the seed and wrote it to a fake Redis."""
    cache = ObjectCache()
    client = fakeredis.FakeRedis()
    store = CountingStore(RedisStore(client))
    containers, nodes = seed_objects()
    source = source_type(cache, containers=containers, nodes=nodes)
    daemon = daemon_for(cache, source, store, resync_interval=60.0)
    started(daemon, 0.0)
    daemon.step(COALESCE)
    assert store.reads == 1 and records(store.inner) == SEED_RECORDS
    return cache, client, store, source, daemon


def test_periodic_resync_relists_and_rereads_the_store():
    cache, client, store, source, daemon = seed_written()

    client.flushall()  # Redis restarted empty: only a re-read notices
    assert daemon.step(59.0) == Wait(60.0, on_change=True)
    assert (source.resyncs, store.reads) == (0, 1)

    assert daemon.step(60.0) == Wait(60.0 + COALESCE, on_change=False)
    assert source.resyncs == 1
    assert daemon.step(60.0 + COALESCE) == Wait(120.0, on_change=True)
    assert store.reads == 2
    assert records(store.inner) == SEED_RECORDS


def test_request_full_rereads_the_store_without_waiting_for_the_resync():
    cache = ObjectCache()
    client = fakeredis.FakeRedis()
    store = CountingStore(RedisStore(client))
    containers, nodes = seed_objects()
    daemon = daemon_for(cache, FakeSource(cache, containers=containers, nodes=nodes), store)
    started(daemon, 0.0)
    daemon.step(COALESCE)
    client.flushall()
    assert daemon.step(5.0) == Wait(300.0, on_change=True)  # an incremental batch would not notice

    daemon.request_full()

    assert daemon.step(5.0) == Wait(5.0 + COALESCE, on_change=False)
    daemon.step(5.0 + COALESCE)
    assert records(store.inner) == SEED_RECORDS
    assert store.reads == 2


class RelistingSource(FakeSource):
    """A source whose re-list takes a while, as the watchers' does: a resync request
    marks the kinds as being re-listed; `relisted()` brings the lists in."""

    def request_resync(self) -> None:
        self.resyncs += 1
        for kind in (CONTAINER, NODE):
            self.cache.relist_requested(kind)

    def relisted(self) -> None:
        self._list()


def resync_with_stale_names():
    """A daemon that wrote the seed, then Redis given a stale name behind its back, before
    the resync (60 s); its source's re-list takes a while."""
    cache, client, store, source, daemon = seed_written(RelistingSource)
    client.set("mountdns:parent:stale.domain.foo.bar", "default/node-x")
    return cache, client, store, source, daemon


def test_a_resyncs_full_batch_waits_for_the_relist_and_changes_are_written_meanwhile():
    cache, client, store, source, daemon = resync_with_stale_names()
    assert daemon.step(60.0) == Wait(60.0 + COALESCE, on_change=False)
    assert source.resyncs == 1 and cache.relisting()
    daemon.step(60.0 + COALESCE)
    assert store.reads == 1  # incremental: Redis not read while the lists come in
    assert client.exists("mountdns:parent:stale.domain.foo.bar")

    # A node moves while the Containers are still being listed: written at once.
    moved = node("node-1", "10.9.9.9")
    cache.put(NODE, moved)
    assert daemon.step(61.0) == Wait(61.0 + COALESCE, on_change=False)
    daemon.step(61.0 + COALESCE)
    assert store.inner.read_state().nodes["node-1"] == ("10.9.9.9",)
    assert store.reads == 1

    source.nodes = [moved if n["metadata"]["name"] == "node-1" else n for n in source.nodes]
    source.relisted()
    assert not cache.relisting()
    assert daemon.step(70.0) == Wait(70.0 + COALESCE, on_change=False)  # the lists came in: a batch
    daemon.step(70.0 + COALESCE)
    assert store.reads == 2  # the full batch, against the fresh lists
    assert not client.exists("mountdns:parent:stale.domain.foo.bar")
    assert daemon.step(71.0) == Wait(120.0, on_change=True)


def test_a_relist_that_never_comes_in_holds_the_full_batch_back_only_so_long():
    cache, client, store, source, daemon = resync_with_stale_names()
    daemon.step(60.0)
    daemon.step(60.0 + COALESCE)
    deadline = daemon.relist_deadline
    assert 60.0 < deadline <= 60.0 + min(RELIST_WAIT, 30.0)  # at most half the resync interval
    assert daemon.step(61.0) == Wait(deadline, on_change=True)  # woken by the lists, or at the deadline
    assert store.reads == 1 and cache.relisting()

    assert daemon.step(deadline) == Wait(deadline + COALESCE, on_change=False)
    daemon.step(deadline + COALESCE)
    assert store.reads == 2 and not client.exists("mountdns:parent:stale.domain.foo.bar")


def test_a_full_batch_asked_for_by_data_loss_does_not_wait_for_a_relist():
    cache, client, store, source, daemon = resync_with_stale_names()
    daemon.step(60.0)
    daemon.step(60.0 + COALESCE)
    assert cache.relisting() and store.reads == 1

    daemon.request_full()  # Redis lost its data, say: rewrite now

    daemon.step(62.0)
    daemon.step(62.0 + COALESCE)
    assert store.reads == 2 and not client.exists("mountdns:parent:stale.domain.foo.bar")


def test_without_coalescing_a_change_is_written_in_the_same_step():
    cache, store = ObjectCache(), MemoryStore()
    containers, nodes = seed_objects()
    daemon = daemon_for(cache, FakeSource(cache, containers=containers, nodes=nodes), store, coalesce_seconds=0)
    assert started(daemon, 0.0) == Wait(300.0, on_change=True)
    assert records(store) == SEED_RECORDS


# --- run(stop): the same decisions on the real clock, in a thread ---------------------------
class Running:
    """A daemon running in a thread until `stop()`."""

    def __init__(self, daemon: SyncDaemon):
        self.daemon = daemon
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=daemon.run, args=(self.stop_event,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)


@pytest.fixture
def run():
    running: list[Running] = []

    def start(cache, source, store, **kwargs) -> Running:
        kwargs.setdefault("coalesce_seconds", 0.05)
        running.append(Running(SyncDaemon(cache, source, Reconciler(store, SEED_CONFIG), **kwargs)))
        return running[-1]

    yield start
    for r in running:
        r.stop()


def test_the_running_loop_writes_the_listing_then_follows_changes(run):
    cache, store = ObjectCache(), MemoryStore()
    containers, nodes = seed_objects()
    run(cache, FakeSource(cache, containers=containers, nodes=nodes), store)
    assert eventually(lambda: records(store) == SEED_RECORDS, timeout=15)

    for i in range(BURST):
        cache.put(CONTAINER, container(f"c-{i}", node="node-0"))

    expected = {**SEED_STATE.parents, **{f"c-{i}.default.domain.foo.bar": "node-0" for i in range(BURST)}}
    assert eventually(lambda: store.read_state().parents == expected, timeout=15)
    assert sum(len(b.parents_put) for b in store.batches) == len(expected)  # each name written once


def test_stopping_an_idle_loop_wakes_it_and_closes_the_source(run):
    cache, store = ObjectCache(), MemoryStore()
    containers, nodes = seed_objects()
    source = FakeSource(cache, containers=containers, nodes=nodes)
    running = run(cache, source, store, resync_interval=3600.0)
    assert eventually(lambda: len(store.batches) == 1, timeout=15)

    running.stop()  # the loop sleeps until the resync an hour away unless the stop wakes it

    assert not running.thread.is_alive()
    assert source.closed is True


def test_run_once_lists_and_writes_everything():
    cache, store = ObjectCache(), MemoryStore()
    containers, nodes = seed_objects()
    source = FakeSource(cache, containers=containers, nodes=nodes)
    daemon = SyncDaemon(cache, source, Reconciler(store, SEED_CONFIG))

    assert daemon.run_once() == 11
    assert (source.listed_once, source.started) == (1, 0)
    assert records(store) == SEED_RECORDS
    assert daemon.run_once() == 0


class HeapListingSource(FakeSource):
    """Lists as the Kubernetes watchers do: with the cycle collector paused, the objects
    counted (sync.sources.heap freezes a big list's)."""

    def _list(self) -> None:
        with heap.paused(CONTAINER) as listed:
            super()._list()
            listed.add(len(self.containers or ()))


class CollectorWatchingStore(CountingStore):
    """Notes, on each read and write, whether automatic collection was on."""

    def __init__(self, inner):
        super().__init__(inner)
        self.collecting: list[bool] = []

    def read_state(self, like=None, extra_limit=None):
        self.collecting.append(gc.isenabled())
        return super().read_state(like=like, extra_limit=extra_limit)

    def apply(self, changes, **options):
        self.collecting.append(gc.isenabled())
        return super().apply(changes, **options)


@pytest.fixture
def fresh_heap(monkeypatch):
    """The module's pause keeper, fresh, with a list of one object counting as big."""
    monkeypatch.setattr(heap, "_PAUSES", heap._Pauses())
    monkeypatch.setattr(heap, "paused", heap._PAUSES.paused)
    monkeypatch.setattr(heap, "batch", heap._PAUSES.batch)
    monkeypatch.setattr(heap, "FREEZE_AT", 1)
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    gc.unfreeze()
    if not was_enabled:
        gc.disable()


def test_over_a_big_list_batches_run_without_cycle_collection_once_and_in_the_loop(fresh_heap):
    cache, store = ObjectCache(), CollectorWatchingStore(MemoryStore())
    containers, nodes = seed_objects()
    daemon = SyncDaemon(cache, HeapListingSource(cache, containers=containers, nodes=nodes),
                        Reconciler(store, SEED_CONFIG))

    assert daemon.run_once() == 11
    assert store.collecting and not any(store.collecting)  # off through the read and the write
    assert gc.isenabled()  # and on again after

    looping = daemon_for(cache, HeapListingSource(cache, containers=containers, nodes=nodes), store,
                         coalesce_seconds=0)
    store.collecting.clear()
    started(looping)
    cache.put(CONTAINER, container("late", node="node-1"))
    looping.step(1.0)
    assert store.collecting and not any(store.collecting)
    assert gc.isenabled()


def test_the_cache_keeps_only_what_the_rules_and_the_status_writer_read():
    cache = ObjectCache()
    listed = container("big", node="node-0", mounted_to="parent", status="MOUNTED")
    listed["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}] * 50
    listed["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "x" * 5000}
    published = {"type": "Published", "status": "True", "reason": "Published", "message": "m",
                 "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 3}
    listed["metadata"]["generation"] = 3
    listed["status"]["conditions"] = [{"type": "Ready", "status": "True", "message": "x" * 1000}, published]
    listed["status"]["fqdn"] = "big.default.domain.foo.bar"
    big_node = node("node-0", "1.2.3.4")
    big_node["status"]["images"] = [{"names": ["registry/image:tag"], "sizeBytes": 1}] * 100
    cache.replace(CONTAINER, [listed])
    cache.replace(NODE, [big_node])
    (kept,) = cache.snapshot().containers
    assert kept == {"apiVersion": listed["apiVersion"], "kind": "Container",
                    "metadata": {k: listed["metadata"][k] for k in ("name", "namespace", "creationTimestamp",
                                                                     "generation") if k in listed["metadata"]},
                    "spec": listed["spec"],
                    # Other controllers' conditions only as a marker: the writer re-reads before patching.
                    "status": {"deviceStatus": "MOUNTED", "fqdn": "big.default.domain.foo.bar",
                               "conditions": [published], "mountdns.io/foreignConditions": True}}
    (kept_node,) = cache.snapshot().nodes
    assert kept_node["status"] == {"addresses": big_node["status"]["addresses"]}


def test_a_status_only_change_keeps_the_object_the_rules_saw_and_wakes_nobody():
    # The sync's own status writes come back as watch events: they must not make the next
    # batch re-run the rules over every Container (the object is the same for them).
    cache = ObjectCache()
    cache.replace(CONTAINER, [container("c", node="node-0", status="MOUNTED")])
    (before,) = cache.snapshot().containers
    cache.changed.clear()
    written = container("c", node="node-0", status="MOUNTED")
    written["metadata"]["resourceVersion"] = "42"
    written["status"]["conditions"] = [{"type": "Published", "status": "True"}]

    cache.put(CONTAINER, written)

    (after,) = cache.snapshot().containers
    assert after is before and not cache.changed.is_set()
    assert after["metadata"]["resourceVersion"] == "42"
    assert after["status"]["conditions"] == [{"type": "Published", "status": "True"}]


def test_a_device_status_or_spec_change_is_a_new_object_for_the_rules():
    cache = ObjectCache()
    cache.replace(CONTAINER, [container("c", node="node-0", status="MOUNTED")])
    (before,) = cache.snapshot().containers
    for changed in (container("c", node="node-0", status="CONNECTING"), container("c", node="node-1")):
        cache.changed.clear()
        cache.put(CONTAINER, changed)
        (after,) = cache.snapshot().containers
        assert after is not before and cache.changed.is_set()
        before = after


def test_the_cache_says_a_kind_is_relisting_until_its_complete_list_is_in():
    cache = ObjectCache()
    cache.relist_requested(CONTAINER)
    cache.relist_requested(NODE)
    cache.replace(CONTAINER, [container("a", node="node-1")], complete=False)  # a page, not the list
    assert cache.relisting()
    cache.replace(CONTAINER, [container("a", node="node-1")])
    assert cache.relisting()  # the Nodes are not in yet
    cache.replace(NODE, [node("node-1", "10.0.0.1")])
    assert not cache.relisting()

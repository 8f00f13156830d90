"""The sync loop, driven by an in-process source: nothing written before every kind is
listed, a burst of watch events coalesced into a few batches, a prompt stop, store
failures retried with backoff, and periodic resyncs that re-list and re-read the store."""

from __future__ import annotations

import threading
import time

import fakeredis
import pytest

from mountdns.store import StoreError
from mountdns.store.redis_store import RedisStore
from mountdns.store.memory_store import MemoryStore
from mountdns.records import State
from mountdns.backoff import Backoff
from sync.sources.cache import CONTAINER, NODE, ObjectCache
from sync.daemon import SyncDaemon
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

    def read_state(self) -> State:
        self.reads += 1
        return self.inner.read_state()

    def apply(self, changes, pipeline=None, announcement=None) -> None:
        if self.failed < self.failures:
            self.failed += 1
            raise StoreError("redis write failed: connection refused")
        self.applies += 1
        self.inner.apply(changes)


def records(store) -> tuple:
    state = store.read_state()
    return state.parents, state.children, state.nodes


SEED_RECORDS = (SEED_STATE.parents, SEED_STATE.children, SEED_STATE.nodes)


class Running:
    """A daemon running in a thread until `stop()`."""

    def __init__(self, daemon: SyncDaemon):
        self.daemon = daemon
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=daemon.run, args=(self.stop_event,), daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 2.0) -> float:
        started = time.monotonic()
        self.stop_event.set()
        self.thread.join(timeout)
        return time.monotonic() - started


@pytest.fixture
def run():
    running: list[Running] = []

    def start(cache, source, store, backoff: Backoff | None = None, **kwargs) -> Running:
        kwargs.setdefault("coalesce_seconds", 0.05)
        daemon = SyncDaemon(cache, source, Reconciler(store, SEED_CONFIG), **kwargs)
        if backoff is not None:
            daemon.backoff = backoff
        running.append(Running(daemon))
        return running[-1]

    yield start
    for r in running:
        r.stop()


def test_nothing_is_written_before_every_kind_is_listed(run):
    cache, store = ObjectCache(), MemoryStore()
    containers, nodes = seed_objects()
    source = FakeSource(cache, containers=containers)  # Nodes not listed yet

    running = run(cache, source, store)
    assert eventually(lambda: source.started == 1 and not cache.changed.is_set())  # the change was taken
    time.sleep(0.15)  # three coalescing periods in which a write could have happened
    assert store.batches == []

    cache.replace(NODE, nodes)

    assert eventually(lambda: len(store.batches) == 1)
    assert records(store) == SEED_RECORDS
    assert running.daemon.reconciler.batches == 1


def test_a_burst_of_a_thousand_changes_becomes_a_handful_of_batches(run):
    cache, store = ObjectCache(), MemoryStore()
    _, nodes = seed_objects()
    running = run(cache, FakeSource(cache, containers=[], nodes=nodes), store)
    assert eventually(lambda: len(store.batches) == 1)  # zones and nodes

    def burst():
        for i in range(BURST):
            cache.put(CONTAINER, container(f"c-{i}", node="node-0"))

    writer = threading.Thread(target=burst)
    writer.start()
    writer.join(5)

    expected = {f"c-{i}.default.domain.foo.bar": "node-0" for i in range(BURST)}
    assert eventually(lambda: store.read_state().parents == expected)
    burst_batches = len(store.batches) - 1
    assert 1 <= burst_batches <= 10
    assert sum(len(b.parents_put) for b in store.batches) == BURST

    assert running.stop() < 1.0
    assert not running.thread.is_alive()


def test_the_loop_stops_promptly_and_closes_the_source(run):
    cache, store = ObjectCache(), MemoryStore()
    containers, nodes = seed_objects()
    source = FakeSource(cache, containers=containers, nodes=nodes)
    running = run(cache, source, store, resync_interval=300.0)
    assert eventually(lambda: len(store.batches) == 1)

    elapsed = running.stop()

    assert elapsed < 0.5
    assert not running.thread.is_alive()
    assert source.closed is True


def test_a_store_error_is_retried_until_the_write_succeeds(run):
    cache = ObjectCache()
    store = CountingStore(MemoryStore(), failures=2)
    containers, nodes = seed_objects()
    running = run(cache, FakeSource(cache, containers=containers, nodes=nodes), store,
                  backoff=Backoff(initial=0.05, maximum=0.1))

    assert eventually(lambda: store.applies == 1)

    assert store.failed == 2
    assert running.daemon.store_failures == 2
    assert records(store.inner) == SEED_RECORDS
    assert len(store.inner.batches) == 1
    # Each failure forgets what the store holds: the retries re-read it.
    assert store.reads == 3


def test_periodic_resync_relists_and_rereads_the_store(run):
    cache = ObjectCache()
    client = fakeredis.FakeRedis()
    store = CountingStore(RedisStore(client))
    containers, nodes = seed_objects()
    source = FakeSource(cache, containers=containers, nodes=nodes)
    run(cache, source, store, resync_interval=0.2)
    assert eventually(lambda: records(store.inner) == SEED_RECORDS)

    assert eventually(lambda: source.resyncs >= 1 and store.reads >= 2)

    client.flushall()  # Redis restarted empty: only a re-read notices
    assert eventually(lambda: records(store.inner) == SEED_RECORDS)


def test_run_once_lists_and_writes_everything(run):
    cache, store = ObjectCache(), MemoryStore()
    containers, nodes = seed_objects()
    source = FakeSource(cache, containers=containers, nodes=nodes)
    daemon = SyncDaemon(cache, source, Reconciler(store, SEED_CONFIG))

    assert daemon.run_once() == 11
    assert (source.listed_once, source.started) == (1, 0)
    assert records(store) == SEED_RECORDS
    assert daemon.run_once() == 0


def test_the_cache_keeps_only_what_the_rules_read():
    cache = ObjectCache()
    listed = container("big", node="node-0", mounted_to="parent", status="MOUNTED")
    listed["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}] * 50
    listed["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "x" * 5000}
    listed["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    big_node = node("node-0", "1.2.3.4")
    big_node["status"]["images"] = [{"names": ["registry/image:tag"], "sizeBytes": 1}] * 100
    cache.replace(CONTAINER, [listed])
    cache.replace(NODE, [big_node])
    (kept,) = cache.snapshot().containers
    assert kept == {"apiVersion": listed["apiVersion"], "kind": "Container",
                    "metadata": {k: listed["metadata"][k] for k in ("name", "namespace", "creationTimestamp")
                                 if k in listed["metadata"]},
                    "spec": listed["spec"], "status": {"deviceStatus": "MOUNTED"}}
    (kept_node,) = cache.snapshot().nodes
    assert kept_node["status"] == {"addresses": big_node["status"]["addresses"]}

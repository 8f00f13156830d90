"""Redis losing the sync's data (FLUSHALL, a restart without persistence, an empty replica
promoted) is noticed through the marker every full write leaves, on a heartbeat, and
everything is rewritten at once; and a write whose reply never came (Redis frozen with
SIGSTOP mid-write) is neither assumed done nor assumed lost: the next batch re-reads the
store and purges the names of the unsure batch."""

from __future__ import annotations

import os
import shutil
import signal
import threading

import fakeredis
import pytest

from mountdns import announce
from mountdns.plan import Changes, diff
from mountdns.records import State
from mountdns.store import DataLost, UnknownOutcome
from mountdns.store.memory_store import MemoryStore
from mountdns.store.redis_store import RedisStore
from mountdns.testing.objects import SEED_CONFIG, node, seed_objects
from mountdns.testing.seed import SEED_STATE, ZONE
from mountdns.testing.servers import RedisServer, eventually, workdir
from sync.daemon import SyncDaemon
from sync.data_loss import MarkerWatch
from sync.reconciler import Reconciler
from sync.sources.cache import NODE, ObjectCache, Snapshot


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def seed_snapshot(nodes=None) -> Snapshot:
    containers, seed_nodes = seed_objects()
    return Snapshot(containers=tuple(containers), nodes=tuple(nodes or seed_nodes), complete=True)


@pytest.fixture(params=["memory", "fakeredis", "redis"])
def store(request):
    if request.param == "memory":
        return MemoryStore()
    if request.param == "fakeredis":
        return RedisStore(fakeredis.FakeRedis())
    return RedisStore(request.getfixturevalue("redis_client"))


def lose_everything(store) -> None:
    if isinstance(store, MemoryStore):
        store.flush()
    else:
        store.redis.flushall()


# --- the marker --------------------------------------------------------------------------
def test_a_full_write_leaves_the_marker_in_the_same_transaction(store):
    assert not store.marker_present()
    store.apply(diff(State(), SEED_STATE), mark=True)
    assert store.marker_present()
    lose_everything(store)
    assert not store.marker_present()


def test_a_batch_that_requires_the_marker_is_refused_when_it_is_gone(store):
    store.apply(diff(State(), SEED_STATE), mark=True)
    lose_everything(store)

    with pytest.raises(DataLost):
        store.apply(Changes(nodes_put={"node-1": ("12.34.5.6",)}, bump_serials=frozenset({ZONE})),
                    require_marker=True)

    assert store.read_state() == State()


def test_write_marker_alone_marks_an_unchanged_store(store):
    store.write_marker()
    assert store.marker_present()


# --- the heartbeat -------------------------------------------------------------------------
def test_the_heartbeat_checks_only_when_due_and_forgets_what_was_written_when_lost(store):
    clock = Clock()
    reconciler = Reconciler(store, SEED_CONFIG)
    watch = MarkerWatch(reconciler, interval=1.0, clock=clock)
    reconciler.reconcile(seed_snapshot(), full=True)
    assert reconciler.marked and reconciler.known is not None

    lose_everything(store)
    clock.now += 0.5
    assert watch.data_lost() is False  # not due yet: no check
    clock.now += 0.5
    assert watch.data_lost() is True
    assert reconciler.known is None and reconciler.marked is False
    assert watch.losses == 1

    reconciler.reconcile(seed_snapshot(), full=True)  # what the daemon does next
    assert store.read_state().parents == SEED_STATE.parents and store.marker_present()
    clock.now += 1.0
    assert watch.data_lost() is False
    # A loop deciding on a time of its own passes it in.
    lose_everything(store)
    assert watch.seconds_to_next(clock.now + 0.25) == 0.75
    assert watch.data_lost(clock.now + 0.5) is False
    assert watch.data_lost(clock.now + 1.0) is True


def test_the_heartbeat_waits_for_the_first_full_write(store):
    clock = Clock()
    watch = MarkerWatch(Reconciler(store, SEED_CONFIG), interval=1.0, clock=clock)
    clock.now += 5
    assert watch.data_lost() is False  # nothing written yet: nothing to lose


def test_an_incremental_batch_after_a_loss_is_refused_and_the_next_full_one_rewrites(store):
    reconciler = Reconciler(store, SEED_CONFIG)
    reconciler.reconcile(seed_snapshot(), full=True)
    lose_everything(store)
    _, nodes = seed_objects()
    moved = [node("node-1", "12.34.5.6") if n["metadata"]["name"] == "node-1" else n for n in nodes]

    with pytest.raises(DataLost):
        reconciler.reconcile(seed_snapshot(nodes=moved))  # diffed against a memory Redis lost

    reconciler.reconcile(seed_snapshot(nodes=moved), full=True)
    assert store.read_state().parents == SEED_STATE.parents
    assert store.resolve(f"container_b_0.{ZONE}").addresses == ("12.34.5.6",)


class ListedSource:
    def __init__(self, cache):
        self.cache = cache

    def start(self):
        containers, nodes = seed_objects()
        self.cache.replace("Container", containers)
        self.cache.replace(NODE, nodes)

    def request_resync(self):
        pass

    def close(self):
        pass


def test_the_daemon_rewrites_everything_after_a_flushall_long_before_a_resync():
    client = fakeredis.FakeRedis()
    store = RedisStore(client)
    cache = ObjectCache()
    reconciler = Reconciler(store, SEED_CONFIG)
    watch = MarkerWatch(reconciler, interval=0.05)
    daemon = SyncDaemon(cache, ListedSource(cache), reconciler, resync_interval=3600, coalesce_seconds=0.01,
                        marker_watch=watch)
    stop = threading.Event()
    thread = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert eventually(lambda: store.read_state().parents == SEED_STATE.parents, 10)

        client.flushall()

        assert eventually(lambda: watch.losses == 1 and store.read_state().parents == SEED_STATE.parents
                          and store.marker_present(), 10)
        assert store.read_state().children == SEED_STATE.children
    finally:
        stop.set()
        thread.join(5)


# --- a write whose outcome is unknown --------------------------------------------------------
@pytest.fixture
def frozen_redis():
    """A redis-server of the test's own, to SIGSTOP."""
    directory = workdir("mountdns-redis-frozen-")
    server = RedisServer(directory).start()
    yield server
    os.kill(server.proc.pid, signal.SIGCONT)
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


def test_a_write_that_timed_out_is_reread_and_its_names_purged_after_the_redo(frozen_redis):
    import redis

    client = redis.Redis.from_url(frozen_redis.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    store = RedisStore(client)
    reconciler = Reconciler(store, SEED_CONFIG)
    reconciler.reconcile(seed_snapshot(), full=True)

    def announced() -> list:
        """Every announcement on the stream, oldest first (what the backends purge)."""
        return [announce.decode(fields) for _, fields in client.xrange(store.keys.announcements)]

    announced_before = len(announced())
    _, nodes = seed_objects()
    moved = [node("node-1", "12.34.5.6") if n["metadata"]["name"] == "node-1" else n for n in nodes]

    os.kill(frozen_redis.proc.pid, signal.SIGSTOP)  # the write goes out, no reply comes
    try:
        with pytest.raises(UnknownOutcome):
            reconciler.reconcile(seed_snapshot(nodes=moved))
    finally:
        os.kill(frozen_redis.proc.pid, signal.SIGCONT)  # ... and Redis then runs it after all
    assert reconciler.known is None

    outcome = reconciler.reconcile(seed_snapshot(nodes=moved))

    # The store was re-read, not assumed: Redis ran the write once it woke, so there is
    # nothing left to write (had it not, this batch would have redone it); the names whose
    # answers changed are purged either way.
    assert outcome.changes.empty or outcome.changes.nodes_put == {"node-1": ("12.34.5.6",)}
    assert store.resolve(f"container_b_0.{ZONE}").addresses == ("12.34.5.6",)
    # The timed-out write's own announcement came with it when Redis woke; the redo's
    # announces the same names again, written or not.
    after_redo = announced()[announced_before:]
    assert len(after_redo) == 2
    on_node_1 = {n for n, v in SEED_STATE.parents.items() if v == "node-1"}
    assert on_node_1 and on_node_1 <= after_redo[-1].names
    assert f"container_d_0.{ZONE}" in after_redo[-1].names  # a child of a parent on node-1

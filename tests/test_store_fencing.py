"""Fenced writes: a sync that starts leading records its term; a writer with an older term
(a leader paused past its lease that wakes up) has its whole transaction refused inside
Redis, and nothing of it is written. Real redis-server for the races, the in-memory store
for the same rules."""

from __future__ import annotations

import threading

import fakeredis
import pytest

from mountdns.plan import Changes, diff
from mountdns.keyspace import Keys
from mountdns.records import State
from mountdns.store import Fenced
from mountdns.store.memory_store import MemoryStore
from mountdns.store.redis_store import RedisStore
from mountdns.testing.objects import SEED_CONFIG, seed_objects
from mountdns.testing.seed import SEED_STATE, SEED_ZONE, ZONE
from sync.reconciler import Reconciler
from sync.sources.cache import Snapshot

KEYS = Keys()
MOVE = Changes(nodes_put={"node-1": ("12.34.5.6",)}, bump_serials=frozenset({ZONE}))


@pytest.fixture(params=["memory", "fakeredis", "redis"])
def replicas(request):
    """Two replicas of one sync (same owner id), each with its own store object."""
    if request.param == "memory":
        old = MemoryStore()
        return old, old.view("default")
    if request.param == "fakeredis":
        server = fakeredis.FakeServer()
        return RedisStore(fakeredis.FakeRedis(server=server)), RedisStore(fakeredis.FakeRedis(server=server))
    client = request.getfixturevalue("redis_client")
    return RedisStore(client), RedisStore(request.getfixturevalue("redis_server").client())


def test_a_stale_writers_transaction_is_refused_and_nothing_of_it_written(replicas):
    old, new = replicas
    old.take_term(1)
    old.apply(diff(State(), SEED_STATE), term=1)
    new.take_term(2)
    before = new.read_state()
    serial = new.zone(ZONE).serial

    stale = Changes(nodes_put={"node-1": ("6.6.6.6",)}, parents_put={f"new.{ZONE}": "node-1"},
                    parents_delete=frozenset({f"container_a_0.{ZONE}"}), bump_serials=frozenset({ZONE}))
    with pytest.raises(Fenced) as refused:
        old.apply(stale, term=1)

    assert refused.value.recorded == 2
    assert new.read_state() == before
    assert new.zone(ZONE).serial == serial


def test_the_new_leader_writes_with_its_term(replicas):
    old, new = replicas
    old.take_term(1)
    new.take_term(2)
    new.apply(diff(State(), SEED_STATE), term=2)
    new.apply(MOVE, term=2)
    assert new.resolve(f"container_b_0.{ZONE}").addresses == ("12.34.5.6",)


def test_taking_an_older_term_is_refused(replicas):
    old, new = replicas
    new.take_term(5)
    new.take_term(5)  # the same leader again: fine
    with pytest.raises(Fenced) as refused:
        old.take_term(4)
    assert refused.value.recorded == 5


def test_writes_without_a_term_are_not_fenced(replicas):
    """A single sync without leader election writes as before."""
    old, new = replicas
    new.take_term(3)
    old.apply(diff(State(), SEED_STATE))
    assert old.read_state().parents == SEED_STATE.parents


def test_fences_are_per_owner(redis_client):
    east, west = RedisStore(redis_client, owner="east"), RedisStore(redis_client, owner="west")
    east.take_term(10)
    west.take_term(1)
    west.apply(diff(State(), State(zones={ZONE: SEED_ZONE}, nodes={"n": ("1.1.1.1",)})), term=1)
    assert redis_client.get(KEYS.fence("east")) == b"10"
    assert redis_client.get(KEYS.fence("west")) == b"1"


def test_two_writers_racing_the_stale_one_stops_at_the_fence(redis_server, redis_client):
    """The old leader keeps writing in a loop (it has not noticed it lost its lease) while
    the new one takes its term: from the moment the fence holds the new term, every write
    of the old one is refused, so the new leader's write is the last word."""
    old, new = RedisStore(redis_server.client()), RedisStore(redis_server.client())
    old.take_term(7)
    new.apply(diff(State(), SEED_STATE), term=7)
    fenced_at = threading.Event()
    old_writes = []

    def old_leader():
        for i in range(100_000):  # bounded: it stops at the fence long before
            try:
                old.apply(Changes(nodes_put={"node-1": (f"10.0.{i // 250 % 250}.{i % 250}",)}), term=7)
                old_writes.append(i)
            except Fenced:
                fenced_at.set()
                return

    writer = threading.Thread(target=old_leader)
    writer.start()
    while not old_writes and writer.is_alive():
        fenced_at.wait(0.001)
    new.take_term(8)
    new.apply(MOVE, term=8)
    writer.join(30)

    assert fenced_at.is_set() and not writer.is_alive()
    assert old_writes  # the race did happen: the old leader wrote before the fence
    assert redis_client.get(KEYS.node("node-1")) == b"12.34.5.6"
    assert redis_client.get(KEYS.fence("default")) == b"8"


class WithTerm:
    """What leader election wraps the store in: every apply carries the leader's term."""

    def __init__(self, store, term: int):
        self.store = store
        self.term = term

    def apply(self, changes, **options):
        return self.store.apply(changes, term=self.term, **options)

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_a_reconciler_with_a_stale_term_is_fenced_and_writes_nothing(redis_client, redis_server):
    RedisStore(redis_client).take_term(2)
    containers, nodes = seed_objects()
    stale = Reconciler(WithTerm(RedisStore(redis_server.client()), 1), SEED_CONFIG)

    with pytest.raises(Fenced):
        stale.reconcile(Snapshot(containers=tuple(containers), nodes=tuple(nodes), complete=True), full=True)

    assert redis_client.keys(KEYS.prefix + "*") == [KEYS.fence("default").encode()]
    assert stale.known is None and not stale.marked

    leader = Reconciler(WithTerm(RedisStore(redis_server.client()), 2), SEED_CONFIG)
    leader.reconcile(Snapshot(containers=tuple(containers), nodes=tuple(nodes), complete=True), full=True)
    assert RedisStore(redis_client).read_state().parents == SEED_STATE.parents
    assert RedisStore(redis_client).marker_present()

"""Shared fixtures: a real redis-server for the suite, flushed around each test, and the
seed topology loaded through the keyspace module's writer."""

from __future__ import annotations

import shutil

import fakeredis
import pytest

from mountdns.store.redis_store import RedisStore
from mountdns.store.memory_store import MemoryStore
from mountdns.plan import diff
from mountdns.testing.seed import SEED_STATE
from mountdns.testing.kube_double import KubeAPIDouble
from mountdns.testing.servers import RedisServer, workdir


def load(store, state):
    """Make `store` hold exactly `state`, the way the sync does: read, diff, apply."""
    changes = diff(store.read_state(), state)
    store.apply(changes)
    return changes


@pytest.fixture(scope="session")
def redis_server():
    directory = workdir("mountdns-redis-")
    server = RedisServer(directory).start()
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def redis_client(redis_server):
    client = redis_server.client()
    client.flushall()
    yield client
    client.flushall()
    client.close()


@pytest.fixture(params=["memory", "fakeredis", "redis"])
def any_store(request):
    """The same interface three ways: in-memory, fakeredis (unit speed), real Redis."""
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "fakeredis":
        yield RedisStore(fakeredis.FakeRedis())
    else:
        yield RedisStore(request.getfixturevalue("redis_client"))


@pytest.fixture
def seeded_store(any_store):
    load(any_store, SEED_STATE)
    return any_store


@pytest.fixture
def api():
    """A Kubernetes API test double on a free port (bookmarks every 0.5 s)."""
    double = KubeAPIDouble(bookmark_interval=0.5)
    double.start()
    yield double
    double.stop()


@pytest.fixture
def own_redis():
    """A Redis of this test's own, to stop and restart (empty) on the same port."""
    directory = workdir("mountdns-own-redis-")
    server = RedisServer(directory)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)

"""The purge follower against a real redis-server and a stand-in PowerDNS API, stepped by
hand with a fake clock: what it flushes, in what order, when it repeats, how it retries and
counts failures, and when it purges whole zones (start, trimmed stream, stream reset,
lost connection, another replication history)."""

from __future__ import annotations

import shutil
import socket
import threading
from dataclasses import replace

import pytest
import redis

from mountdns import announce
from mountdns.keyspace import Keys
from mountdns.plan import diff
from mountdns.records import State, Zone
from mountdns.store.redis_store import RedisStore
from mountdns.testing.fake_pdns_api import FLUSH, FakePdnsApi
from mountdns.testing.seed import SEED_STATE
from mountdns.testing.servers import RedisServer, eventually, wait_until, workdir
from pdns_backend.purge_follower import PdnsApi, PurgeError, PurgeFollower

ZONE = "domain.foo.bar"
OTHER = "other.org"
KEYS = Keys()
REPEATS = (0.1, 2.5)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def api():
    server = FakePdnsApi()
    yield server
    server.stop()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(redis_client):
    store = RedisStore(redis_client)
    store.apply(diff(State(), SEED_STATE))
    return store


def make_follower(client, api, clock, **kwargs) -> PurgeFollower:
    return PurgeFollower(client, PdnsApi(api.url, "s3cret"), repeat_after=REPEATS, clock=clock,
                         wall_clock=kwargs.pop("wall_clock", lambda: 0.0), **kwargs)


def move(store, before: State, node: str, address: str) -> State:
    after = replace(before, nodes={**before.nodes, node: (address,)})
    changes = diff(before, after)
    store.apply(changes, announcement=announce.from_changes(changes, before, after, after.zones))
    return after


def started(follower: PurgeFollower, api: FakePdnsApi, clock: FakeClock) -> None:
    """Past the start: its whole-zone purge and that purge's repeats are done."""
    follower.read()
    for delay in (0.0, *REPEATS):
        follower.purge_due()
        clock.advance(delay)
    follower.purge_due()
    api.requests.clear()


def flushed(api: FakePdnsApi) -> list[str]:
    return [path[len(FLUSH):] for path in api.paths()]


def test_on_start_every_zone_is_purged_whole_with_the_api_key(redis_client, store, api, clock):
    follower = make_follower(redis_client, api, clock)

    follower.read()
    assert follower.purge_due() == 1

    assert api.requests == [(FLUSH + ZONE + ".", "s3cret", 200)]
    assert follower.metrics.gaps.labels("start")._value.get() == 1


def test_a_node_move_is_flushed_parents_first_then_repeated_after_each_delay(redis_client, store, api, clock):
    follower = make_follower(redis_client, api, clock)
    started(follower, api, clock)

    move(store, SEED_STATE, "node-1", "12.34.5.6")
    assert follower.read() == 1
    follower.purge_due()

    first = ["container_a_1.domain.foo.bar.", "container_b_0.domain.foo.bar.",
             "container_c_0.domain.foo.bar.", "container_d_0.domain.foo.bar."]
    assert flushed(api) == first
    clock.advance(0.09)
    assert follower.purge_due() == 0  # not yet
    clock.advance(0.01)
    assert follower.purge_due() == 4
    clock.advance(2.4)
    assert follower.purge_due() == 4
    assert flushed(api) == first * 3
    assert follower.next_due() is None
    assert follower.metrics.purges_sent._value.get() == 12 + 3  # and the start's three


def test_a_failed_purge_is_counted_and_retried_until_powerdns_takes_it(redis_client, store, api, clock):
    follower = make_follower(redis_client, api, clock, max_backoff=1.0)
    started(follower, api, clock)
    api.status = 500

    move(store, SEED_STATE, "node-0", "9.9.9.9")  # container_a_0 and the child mounted to it
    follower.read()
    follower.purge_due()
    clock.advance(0.1)
    follower.purge_due()
    assert follower.metrics.purges_failed._value.get() == 2
    assert flushed(api) == []  # nothing accepted; each try stopped at the first failure
    assert [p for p, _, s in api.requests] == [FLUSH + "container_a_0.domain.foo.bar."] * 2

    api.status = 200
    clock.advance(1.0)
    follower.purge_due()
    assert flushed(api) == ["container_a_0.domain.foo.bar.", "container_e_0.domain.foo.bar."]
    assert follower.metrics.purges_failed._value.get() == 2


def test_an_unreachable_powerdns_is_a_purge_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(PurgeError, match="unreachable"):
        PdnsApi(f"http://127.0.0.1:{port}", "k", timeout=1.0).flush("a.example.com")


def test_names_are_percent_encoded_and_absolute(api):
    PdnsApi(api.url, "k").flush("a+b c.example.com")
    assert api.paths() == [FLUSH + "a%2Bb%20c.example.com."]


def assert_zone_purged_whole_after(follower, api, gap: str) -> None:
    """The follower reads on after a gap of kind `gap`: the whole zone is purged, once."""
    follower.read()
    follower.purge_due()
    assert flushed(api) == [ZONE + "."]
    assert follower.metrics.gaps.labels(gap)._value.get() == 1

def test_entries_trimmed_before_they_were_read_make_every_zone_purged(redis_client, store, api, clock):
    follower = make_follower(redis_client, api, clock)
    started(follower, api, clock)

    state = move(store, SEED_STATE, "node-1", "1.1.1.1")
    move(store, state, "node-2", "2.2.2.2")
    redis_client.xtrim(KEYS.announcements, maxlen=1, approximate=False)  # the first was never read
    assert_zone_purged_whole_after(follower, api, "trimmed")


def test_a_stream_restarted_empty_makes_every_zone_purged(redis_client, store, api, clock):
    follower = make_follower(redis_client, api, clock)
    move(store, SEED_STATE, "node-1", "1.1.1.1")
    started(follower, api, clock)

    redis_client.flushall()  # as a Redis restarted without persistence
    store.apply(diff(State(), SEED_STATE))  # the sync writes everything again
    assert_zone_purged_whole_after(follower, api, "stream-reset")


def test_zones_announced_later_are_purged_whole_after_a_gap(redis_client, store, api, clock):
    follower = make_follower(redis_client, api, clock)
    started(follower, api, clock)
    other = Zone(OTHER, ("ns1." + OTHER,), "hostmaster." + OTHER)
    before = SEED_STATE
    after = replace(before, zones={**before.zones, OTHER: other}, parents={**before.parents, "x.other.org": "node-1"})
    changes = diff(before, after)
    store.apply(changes, announcement=announce.from_changes(changes, before, after, after.zones))

    follower.read()
    follower.lost_connection(redis.ConnectionError("test"))
    follower.read()
    api.requests.clear()
    follower.purge_due()

    assert sorted(flushed(api)) == [ZONE + ".", OTHER + "."]
    assert follower.metrics.gaps.labels("reconnect")._value.get() == 1


def test_an_unreadable_entry_purges_every_zone(redis_client, store, api, clock):
    follower = make_follower(redis_client, api, clock)
    started(follower, api, clock)
    redis_client.xadd(KEYS.announcements, {"something": "else"})

    follower.read()
    follower.purge_due()

    assert flushed(api) == [ZONE + "."]


def test_the_lag_is_the_read_time_minus_the_entry_id_time(redis_client, store, api, clock):
    follower = make_follower(redis_client, api, clock, wall_clock=lambda: 2_000_000_000.25)
    started(follower, api, clock)
    redis_client.xadd(KEYS.announcements, announce.encode(announce.Announcement(
        (frozenset({"container_a_0." + ZONE}),), frozenset({ZONE}))), id="2000000000000-0")

    follower.read()

    assert follower.metrics.lag._sum.get() == pytest.approx(0.25)


# --- with servers of its own: a lost connection, another replication history -----------------


@pytest.fixture
def own_redis():
    directory = workdir("mountdns-follower-")
    servers = []

    def make(*extra) -> RedisServer:
        # No 5 s wait before a primary sends a replica its data.
        extra = ("--repl-diskless-sync-delay", "0", *extra)
        servers.append(RedisServer(directory, name=f"redis-{len(servers)}", extra_args=extra).start())
        return servers[-1]

    yield make
    for server in servers:
        server.stop()
    shutil.rmtree(directory, ignore_errors=True)


def test_a_follower_that_lost_its_connection_purges_every_zone_once_back(own_redis, api, clock):
    server = own_redis()
    client = server.client()
    RedisStore(client).apply(diff(State(), SEED_STATE))
    follower = make_follower(redis.Redis.from_url(server.url, socket_timeout=2), api, clock)
    started(follower, api, clock)

    server.stop()
    with pytest.raises(redis.ConnectionError):
        follower.read()
    follower.lost_connection(redis.ConnectionError("down"))
    server.start()  # restarted empty: the sync writes again
    RedisStore(server.client()).apply(diff(State(), SEED_STATE))
    follower.read()
    follower.purge_due()

    assert flushed(api) == [ZONE + "."]
    assert follower.metrics.gaps.labels("reconnect")._value.get() == 1


def test_a_replica_resynchronised_from_another_primary_makes_every_zone_purged(own_redis, api, clock):
    first, second = own_redis(), own_redis()
    for primary in (first, second):
        RedisStore(primary.client()).apply(diff(State(), SEED_STATE))
    replica = own_redis("--replicaof", "127.0.0.1", str(first.port))
    wait_until(lambda: replica.client().exists(KEYS.zones), 10, "replica in sync")
    follower = make_follower(replica.client(), api, clock)
    started(follower, api, clock)

    replica.client().replicaof("127.0.0.1", second.port)
    wait_until(lambda: replica.client().info("replication")["master_link_status"] == "up", 10,
               "replica of the second primary")
    follower.read()
    follower.purge_due()

    assert flushed(api) == [ZONE + "."]
    assert follower.metrics.gaps.labels("replication")._value.get() == 1


def test_the_first_purge_waits_until_the_backend_answers(redis_client, store, api):
    # PowerDNS's flush calls the backend: before a worker answers it fails after 2 s.
    follower = PurgeFollower(redis_client, PdnsApi(api.url, "k"), repeat_after=())
    backend_ready = threading.Event()
    polls = []

    def ready() -> bool:
        polls.append(backend_ready.is_set())
        return backend_ready.is_set()

    stop = threading.Event()
    thread = threading.Thread(target=follower.run, args=(stop,), kwargs={"block": 0.05, "ready": ready})
    thread.start()
    try:
        # The follower is running and has asked several times: still not a single flush.
        assert eventually(lambda: len(polls) >= 5, timeout=10)
        assert api.requests == []
        backend_ready.set()
        assert eventually(lambda: flushed(api) == [ZONE + "."], timeout=5)
    finally:
        stop.set()
        thread.join(5)

"""The announcement path end to end, with PowerDNS's shipped caches ON: a write (with its
announcement) on the primary -> redis replica (`replicaof`) -> mountdns-backend reading the
replica, whose purge follower flushes its own pdns_server -> the new answer over DNS.

Deadlines are generous; measured figures are recorded (`record_property`), never asserted.
"""

from __future__ import annotations

import shutil
import signal
import time
import urllib.request
from dataclasses import replace

import pytest
import redis

from mountdns import announce
from mountdns.keyspace import Keys
from mountdns.plan import diff
from mountdns.records import State
from mountdns.store.redis_store import RedisStore
from mountdns.testing.purging_stack import a_records, purging_pair, start_pair
from mountdns.testing.seed import SEED_STATE
from mountdns.testing.sentinel import primary_server, replica_of
from mountdns.testing.servers import free_port, wait_until, workdir

KEYS = Keys()
NODE_1_KEY = KEYS.node("node-1")  # the default owner's node-1

pytestmark = pytest.mark.integration

CHILD = "Container_D_0.domain.foo.bar"  # CNAME to Container_B_0, on node-1
PARENT = "Container_B_0.domain.foo.bar"
READ = "mountdns_backend_announcements_read_total"
PENDING = "mountdns_backend_purges_pending"  # flushes owed, repeats included


def write(primary_client, before: State, after: State) -> None:
    """What the sync does: the changes and their announcement in one script call."""
    changes = diff(before, after)
    RedisStore(primary_client).apply(changes, announcement=announce.from_changes(changes, before, after, after.zones))


def with_node(state: State, node: str, address: str) -> State:
    return replace(state, nodes={**state.nodes, node: (address,)})


@pytest.fixture(scope="module")
def stack():
    directory = workdir("mountdns-follow-")
    primary = primary_server(directory)
    replica = replica_of(primary, directory, "redis-replica")
    # One short repeat (repeats are tested in test_purge_follower.py): tests that fill the
    # cache on purpose wait for it to go out (`seeded`) instead of 2.5 s.
    metrics_port = free_port()
    backend, pdns = purging_pair(directory, replica.url, backend_args=(
        "--purge-repeat-after", "0.05", "--log-level", "info", "--purge-metrics-bind", f"127.0.0.1:{metrics_port}"))
    backend.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    processes = [primary, replica, backend, pdns]
    try:
        primary.start()
        replica.start()
        write(primary.client(), State(), SEED_STATE)
        wait_until(lambda: replica.client().exists(KEYS.zones), 20, "the replica holding the zone")
        start_pair(backend, pdns)
        yield primary, replica, backend, pdns
    finally:
        for process in reversed(processes):
            process.stop()
        shutil.rmtree(directory, ignore_errors=True)


def announced(client) -> int:
    """Entries ever added to the announcement stream."""
    try:
        return int(client.xinfo_stream(KEYS.announcements)["entries-added"])
    except redis.ResponseError:  # no stream yet
        return 0


@pytest.fixture
def seeded(stack):
    """Every test starts from the seed, answered fresh (not from a stale cache), with every
    purge of that write sent, its repeat included: a repeat going out later would flush
    what a test puts in the cache on purpose."""
    primary, replica, backend, pdns = stack
    current = RedisStore(primary.client()).read_state()
    reads = wait_until(lambda: metric(backend, READ) + 1, 10, "the follower's metrics") - 1
    added = announced(primary.client())
    write(primary.client(), current, SEED_STATE)
    added = announced(primary.client()) - added  # 0 when the seed was there already
    wait_until(lambda: a_records(pdns, CHILD) == ("NOERROR", ["2.3.4.5"]), 10, "the seed answered")
    # Once the follower has read the write's announcement, its purges and their repeat are
    # owed (pending) until PowerDNS accepted them.
    wait_until(lambda: metric(backend, READ) >= reads + added and metric(backend, PENDING) == 0, 10,
               "the purges of the seed's write, repeat included, sent")
    return stack


def test_a_node_move_is_answered_through_the_replica_and_the_purged_caches(seeded, record_property):
    primary, replica, backend, pdns = seeded
    assert a_records(pdns, CHILD) == ("NOERROR", ["2.3.4.5"])  # now in the packet cache
    hits = int(pdns.control("show", "packetcache-hit").strip() or 0)
    assert a_records(pdns, CHILD) == ("NOERROR", ["2.3.4.5"])
    assert int(pdns.control("show", "packetcache-hit").strip()) > hits  # answered from the cache

    started = time.monotonic()
    write(primary.client(), SEED_STATE, with_node(SEED_STATE, "node-1", "12.34.5.6"))
    wait_until(lambda: a_records(pdns, CHILD) == ("NOERROR", ["12.34.5.6"]), 10, "the moved child",
               interval=0.002)
    record_property("move_to_answer_ms", round((time.monotonic() - started) * 1000, 1))
    assert a_records(pdns, PARENT) == ("NOERROR", ["12.34.5.6"])
    # One follower for the instance (gunicorn's master), not one per worker (3 here).
    assert backend.log_path.read_text().count("purge follower started") == 1


def test_a_change_behind_the_followers_back_stays_cached_until_announced(seeded):
    primary, replica, backend, pdns = seeded
    assert a_records(pdns, CHILD) == ("NOERROR", ["2.3.4.5"])
    primary.client().set(NODE_1_KEY, "9.9.9.9")  # no announcement
    wait_until(lambda: replica.client().get(NODE_1_KEY) == b"9.9.9.9", 5, "replicated")
    assert a_records(pdns, CHILD) == ("NOERROR", ["2.3.4.5"])  # the cache holds: nobody purged it

    write(primary.client(), with_node(SEED_STATE, "node-1", "9.9.9.9"), with_node(SEED_STATE, "node-1", "7.7.7.7"))
    wait_until(lambda: a_records(pdns, CHILD) == ("NOERROR", ["7.7.7.7"]), 10, "the announced move")


def test_a_follower_that_lost_its_replica_purges_every_zone_when_it_is_back(seeded):
    primary, replica, backend, pdns = seeded
    assert a_records(pdns, CHILD) == ("NOERROR", ["2.3.4.5"])
    replica.stop()
    # Written behind the follower's back: only a whole-zone purge on resuming can show it.
    primary.client().set(NODE_1_KEY, "8.8.8.8")
    assert a_records(pdns, CHILD) == ("NOERROR", ["2.3.4.5"])  # cached while the replica is down
    replica.start()
    wait_until(lambda: replica.client().get(NODE_1_KEY) == b"8.8.8.8", 20, "the replica back")
    wait_until(lambda: a_records(pdns, CHILD) == ("NOERROR", ["8.8.8.8"]), 10, "the zone purged on resume")
    log = backend.log_path.read_text()
    assert "purging zones ['domain.foo.bar'] whole" in log and "(reconnect)" in log


def metric(backend, name: str) -> float:
    """One sample of the follower's metrics, as Prometheus scrapes them."""
    with urllib.request.urlopen(backend.metrics_url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not exposed")


def test_purges_that_failed_while_powerdns_was_down_are_retried_and_counted(seeded):
    primary, replica, backend, pdns = seeded
    failed_before = metric(backend, "mountdns_backend_purges_failed_total")
    sent_before = metric(backend, "mountdns_backend_purges_sent_total")
    pdns.stop()
    write(primary.client(), SEED_STATE, with_node(SEED_STATE, "node-1", "6.6.6.6"))
    wait_until(lambda: metric(backend, "mountdns_backend_purges_failed_total") >= failed_before + 2, 20,
               "the follower failing and retrying")
    pdns.start()
    wait_until(lambda: a_records(pdns, CHILD) == ("NOERROR", ["6.6.6.6"]), 10, "the move answered")
    assert metric(backend, "mountdns_backend_purges_sent_total") > sent_before


def test_the_backend_restarted_purges_so_no_stale_answer_outlives_it(seeded, record_property):
    primary, replica, backend, pdns = seeded
    assert a_records(pdns, CHILD) == ("NOERROR", ["2.3.4.5"])
    backend.stop(signal.SIGTERM)
    primary.client().set(NODE_1_KEY, "5.5.5.5")  # while no follower runs
    backend.start()
    started = time.monotonic()
    last_stale = 0.0

    def fresh() -> bool:
        nonlocal last_stale
        result = a_records(pdns, CHILD)
        if result == ("NOERROR", ["2.3.4.5"]):
            last_stale = time.monotonic() - started
        return result == ("NOERROR", ["5.5.5.5"])

    wait_until(fresh, 10, "fresh after the restart", interval=0.005)
    record_property("restart_to_fresh_answer_ms", round((time.monotonic() - started) * 1000, 1))
    record_property("restart_to_last_stale_answer_ms", round(last_stale * 1000, 1))


def test_every_worker_answers_from_the_start_while_the_follower_waits_for_them(tmp_path):
    """The follower probes the backend before its first purge; a probe made while the
    master was still forking workers once left one worker never answering a client."""
    from mountdns.testing.purging_stack import wait_for_workers
    from mountdns.testing.servers import RedisServer

    redis = RedisServer(tmp_path).start()
    try:
        for start in range(3):
            backend, _ = purging_pair(tmp_path / f"start-{start}", redis.url)
            (tmp_path / f"start-{start}").mkdir()
            backend.start()
            try:
                wait_for_workers(backend)
                for _ in range(3 * backend.workers):  # new connections, spread over the workers
                    url = f"{backend.url}/dnsapi/getAllDomains?includeDisabled=true"
                    with urllib.request.urlopen(url, timeout=10) as response:
                        assert response.status == 200
            finally:
                backend.stop()
    finally:
        redis.stop()

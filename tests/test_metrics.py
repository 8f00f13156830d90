"""The sync's metrics, driven through the reconciler and the cache with fake clocks: every
value read back from the registry the SyncMetrics was built on (one per test)."""

from __future__ import annotations

import json
import threading

import fakeredis
import pytest
from kubernetes.client.rest import ApiException
from prometheus_client import CollectorRegistry

from mountdns.keyspace import Keys, owned
from mountdns.records import Zone
from mountdns.store import DataLost, StoreError
from mountdns.store.memory_store import MemoryStore
from mountdns.store.redis_store import RedisStore
from mountdns.testing.objects import SEED_CONFIG, container, node, seed_objects
from mountdns.testing.seed import ZONE
from sync.data_loss import MarkerWatch
from sync.metrics import SyncMetrics
from sync.objects import SkipCode
from sync.reconciler import Reconciler
from sync.rules import RulesConfig
from sync.sources.cache import CONTAINER, NODE, ObjectCache
from sync.sources.kube import ResourceWatcher, follow
from sync.sources.manifests import ManifestSource
from tests.test_reconciler import FailingStore


class FakeClock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registry():
    return CollectorRegistry()


@pytest.fixture
def wall():
    return FakeClock(1_800_000_000.0)


@pytest.fixture
def mono():
    return FakeClock(500.0)


@pytest.fixture
def metrics(registry, wall, mono):
    return SyncMetrics(registry, [ZONE], wall_clock=wall, monotonic=mono)


def value(registry, name, **labels):
    return registry.get_sample_value(name, labels)


def seeded_cache() -> ObjectCache:
    cache = ObjectCache()
    containers, nodes = seed_objects()
    cache.replace(CONTAINER, containers)
    cache.replace(NODE, nodes)
    return cache


def test_every_metric_is_exposed_from_the_start_with_every_reason_at_zero(registry, metrics):
    assert value(registry, "mountdns_sync_leader") == 0
    assert value(registry, "mountdns_sync_writes_total") == 0
    assert value(registry, "mountdns_sync_write_errors_total") == 0
    assert value(registry, "mountdns_sync_store_rewrites_total") == 0
    assert value(registry, "mountdns_sync_last_write_timestamp_seconds") == 0
    assert value(registry, "mountdns_sync_event_to_write_seconds_count") == 0
    for kind in ("parent", "child"):
        assert value(registry, "mountdns_sync_names", zone=ZONE, kind=kind) == 0
    for resource in ("containers", "nodes"):
        assert value(registry, "mountdns_sync_watch_restarts_total", resource=resource) == 0
    for code in SkipCode:
        unresolved = code in (SkipCode.NODE_NOT_FOUND, SkipCode.NODE_HAS_NO_ADDRESS)
        name = "mountdns_sync_unresolved_objects" if unresolved else "mountdns_sync_skipped_objects"
        assert value(registry, name, reason=code.value) == 0


def test_set_leader_moves_the_leader_gauge(registry, metrics):
    metrics.set_leader(True)
    assert value(registry, "mountdns_sync_leader") == 1
    metrics.set_leader(False)
    assert value(registry, "mountdns_sync_leader") == 0


def test_first_batch_counts_names_by_zone_and_kind_and_one_write_at_the_wall_clock_time(registry, metrics, wall):
    reconciler = Reconciler(MemoryStore(), SEED_CONFIG, metrics=metrics)

    reconciler.reconcile(seeded_cache().snapshot(), full=True)

    assert value(registry, "mountdns_sync_names", zone=ZONE, kind="parent") == 4
    assert value(registry, "mountdns_sync_names", zone=ZONE, kind="child") == 4
    assert value(registry, "mountdns_sync_writes_total") == 1
    assert value(registry, "mountdns_sync_last_write_timestamp_seconds") == wall.now
    assert metrics.reconciled_once and metrics.last_error is None


def test_a_batch_with_nothing_to_change_writes_nothing(registry, metrics, wall):
    reconciler = Reconciler(MemoryStore(), SEED_CONFIG, metrics=metrics)
    cache = seeded_cache()
    reconciler.reconcile(cache.snapshot(), full=True)
    first_write = wall.now
    wall.now += 60

    reconciler.reconcile(cache.snapshot(), full=True)

    assert value(registry, "mountdns_sync_writes_total") == 1
    assert value(registry, "mountdns_sync_last_write_timestamp_seconds") == first_write


def test_names_span_several_zones_and_follow_a_node_only_batch(registry, wall, mono):
    zones = tuple(Zone(name=z, nameservers=("ns1.a.example",), hostmaster=f"hostmaster.{z}")
                  for z in ("a.example", "b.example"))
    metrics = SyncMetrics(registry, ["a.example", "b.example"], wall_clock=wall, monotonic=mono)
    reconciler = Reconciler(MemoryStore(), RulesConfig(zones=zones), metrics=metrics)
    cache = ObjectCache()
    cache.replace(CONTAINER, [container("p1", node="n", fqdn="p1.a.example"),
                              container("p2", node="n", fqdn="p2.b.example"),
                              container("p3", node="n", fqdn="p3.b.example"),
                              container("c1", mounted_to="p1", status="MOUNTED", fqdn="c1.b.example")])
    cache.replace(NODE, [node("n", "10.0.0.1")])
    reconciler.reconcile(cache.snapshot(), full=True)

    cache.put(NODE, node("n", "10.0.0.2"))  # only a Node changed: the Containers' plan is reused
    reconciler.reconcile(cache.snapshot())

    assert value(registry, "mountdns_sync_writes_total") == 2
    assert {(z, k): value(registry, "mountdns_sync_names", zone=z, kind=k)
            for z in ("a.example", "b.example") for k in ("parent", "child")} == {
        ("a.example", "parent"): 1, ("a.example", "child"): 0, ("b.example", "parent"): 2, ("b.example", "child"): 1}


def test_skipped_and_unresolved_objects_are_counted_by_code_and_go_back_to_zero(registry, metrics):
    reconciler = Reconciler(MemoryStore(), SEED_CONFIG, metrics=metrics)
    cache = seeded_cache()
    bad_spec = container("bad")
    bad_spec["spec"] = ["nodeName", "node-0"]
    strays = [bad_spec, container("orphan-1", mounted_to="nothere", status="MOUNTED"),
              container("orphan-2", mounted_to="nothere", status="MOUNTED"), container("lost", node="ghost")]
    for obj in strays:
        cache.put(CONTAINER, obj)
    reconciler.reconcile(cache.snapshot(), full=True)

    assert value(registry, "mountdns_sync_skipped_objects", reason="InvalidSpec") == 1
    assert value(registry, "mountdns_sync_skipped_objects", reason="ParentNotFound") == 2
    assert value(registry, "mountdns_sync_skipped_objects", reason="NotMounted") == 0
    assert value(registry, "mountdns_sync_unresolved_objects", reason="NodeNotFound") == 1
    assert value(registry, "mountdns_sync_names", zone=ZONE, kind="parent") == 5  # 'lost' is published

    for obj in strays:
        cache.remove(CONTAINER, obj)
    reconciler.reconcile(cache.snapshot())

    assert value(registry, "mountdns_sync_skipped_objects", reason="InvalidSpec") == 0
    assert value(registry, "mountdns_sync_skipped_objects", reason="ParentNotFound") == 0
    assert value(registry, "mountdns_sync_unresolved_objects", reason="NodeNotFound") == 0


def test_event_to_write_is_timed_from_the_oldest_event_of_the_batch_to_the_commit(registry, metrics, mono):
    reconciler = Reconciler(MemoryStore(), SEED_CONFIG, metrics=metrics)
    cache = seeded_cache()
    reconciler.reconcile(cache.snapshot(), full=True)  # the first list: no watch event to time

    cache.put(NODE, node("node-1", "9.9.9.9"), received=1000.0)
    cache.put(NODE, node("node-2", "9.9.9.8"), received=1000.2)
    mono.now = 1000.35
    reconciler.reconcile(cache.snapshot())

    assert value(registry, "mountdns_sync_event_to_write_seconds_count") == 1
    assert value(registry, "mountdns_sync_event_to_write_seconds_sum") == pytest.approx(0.35)
    assert value(registry, "mountdns_sync_event_to_write_seconds_bucket", le="0.5") == 1
    assert value(registry, "mountdns_sync_event_to_write_seconds_bucket", le="0.25") == 0


def test_an_event_that_changes_nothing_is_not_timed_and_not_carried_over(registry, metrics, mono):
    reconciler = Reconciler(MemoryStore(), SEED_CONFIG, metrics=metrics)
    cache = seeded_cache()
    reconciler.reconcile(cache.snapshot(), full=True)

    cache.put(NODE, node("node-1", "2.3.4.5"), received=1000.0)  # the same address again
    mono.now = 1000.1
    reconciler.reconcile(cache.snapshot())
    cache.put(NODE, node("node-1", "9.9.9.9"), received=2000.0)
    mono.now = 2000.05
    reconciler.reconcile(cache.snapshot())

    assert value(registry, "mountdns_sync_event_to_write_seconds_count") == 1
    assert value(registry, "mountdns_sync_event_to_write_seconds_sum") == pytest.approx(0.05)


def test_a_failed_write_is_counted_and_its_events_are_timed_when_the_retry_commits(registry, metrics, mono):
    store = FailingStore(failures=0)
    reconciler = Reconciler(store, SEED_CONFIG, metrics=metrics)
    cache = seeded_cache()
    reconciler.reconcile(cache.snapshot(), full=True)
    store.failures = 1

    cache.put(NODE, node("node-1", "9.9.9.9"), received=1000.0)
    mono.now = 1000.1
    with pytest.raises(StoreError):
        reconciler.reconcile(cache.snapshot())
    assert value(registry, "mountdns_sync_write_errors_total") == 1
    assert metrics.last_error == "StoreError: redis write failed: connection refused"

    mono.now = 1002.0
    reconciler.reconcile(cache.snapshot(), full=True)  # the retry: no new event in its snapshot

    assert value(registry, "mountdns_sync_writes_total") == 2
    assert value(registry, "mountdns_sync_event_to_write_seconds_sum") == pytest.approx(2.0)
    assert metrics.last_error is None


def test_a_rewrite_after_redis_lost_its_data_is_counted_once(registry, metrics):
    client = fakeredis.FakeRedis()
    reconciler = Reconciler(RedisStore(client), SEED_CONFIG, metrics=metrics)
    cache = seeded_cache()
    reconciler.reconcile(cache.snapshot(), full=True)  # the first write into an empty Redis is no rewrite
    assert value(registry, "mountdns_sync_store_rewrites_total") == 0

    client.flushall()
    reconciler.reconcile(cache.snapshot(), full=True)
    reconciler.reconcile(cache.snapshot(), full=True)

    assert value(registry, "mountdns_sync_store_rewrites_total") == 1
    assert value(registry, "mountdns_sync_writes_total") == 2
    assert client.get(Keys().node("node-1")) == b"2.3.4.5"


def test_a_loss_noticed_by_the_heartbeat_and_again_by_the_full_read_is_counted_once(registry, metrics):
    clock = FakeClock(100.0)
    client = fakeredis.FakeRedis()
    reconciler = Reconciler(RedisStore(client), SEED_CONFIG, metrics=metrics)
    watch = MarkerWatch(reconciler, interval=1.0, clock=clock)
    cache = seeded_cache()
    reconciler.reconcile(cache.snapshot(), full=True)

    client.flushall()
    clock.now += 1.0
    assert watch.data_lost() is True
    assert value(registry, "mountdns_sync_store_rewrites_total") == 0  # noticed, not yet rewritten
    clock.now += 1.0
    assert watch.data_lost() is False  # the marker is still gone, but the loss is already noted
    reconciler.reconcile(cache.snapshot(), full=True)  # its full read finds the marker gone too
    clock.now += 1.0
    assert watch.data_lost() is False

    assert value(registry, "mountdns_sync_store_rewrites_total") == 1
    assert client.get(Keys().parent("container_a_0.domain.foo.bar")) == owned("default", "node-0").encode()


def test_a_loss_noticed_by_a_refused_batch_is_counted_once_at_the_rewrite(registry, metrics):
    client = fakeredis.FakeRedis()
    reconciler = Reconciler(RedisStore(client), SEED_CONFIG, metrics=metrics)
    cache = seeded_cache()
    reconciler.reconcile(cache.snapshot(), full=True)

    client.flushall()
    cache.put(NODE, node("node-1", "9.8.7.6"))
    with pytest.raises(DataLost):
        reconciler.reconcile(cache.snapshot())  # diffed against what Redis lost: refused
    assert value(registry, "mountdns_sync_store_rewrites_total") == 0
    reconciler.reconcile(cache.snapshot(), full=True)  # its full read finds the marker gone too
    reconciler.reconcile(cache.snapshot(), full=True)

    assert value(registry, "mountdns_sync_store_rewrites_total") == 1
    assert client.get(Keys().node("node-1")) == b"9.8.7.6"


def test_a_loss_another_replica_rewrote_first_is_not_counted_again(registry, metrics):
    client = fakeredis.FakeRedis()
    follower = Reconciler(RedisStore(client), SEED_CONFIG, metrics=metrics)
    cache = seeded_cache()
    follower.reconcile(cache.snapshot(), full=True)  # it led once, so its marker was written
    client.flushall()
    assert MarkerWatch(follower, interval=0.0).data_lost() is True

    leader_registry = CollectorRegistry()
    leader = Reconciler(RedisStore(client), SEED_CONFIG, metrics=SyncMetrics(leader_registry, [ZONE]))
    leader.marked = True  # the replica that led meanwhile had written the marker too
    leader.reconcile(cache.snapshot(), full=True)
    follower.reconcile(cache.snapshot(), full=True)  # leading again later: Redis is whole

    assert value(leader_registry, "mountdns_sync_store_rewrites_total") == 1
    assert value(registry, "mountdns_sync_store_rewrites_total") == 0


def test_metrics_of_two_syncs_in_one_process_are_independent(wall, mono):
    first, second = CollectorRegistry(), CollectorRegistry()
    SyncMetrics(first, [ZONE]).set_leader(True)
    SyncMetrics(second, [ZONE]).set_leader(False)

    assert value(first, "mountdns_sync_leader") == 1
    assert value(second, "mountdns_sync_leader") == 0


# --- the Kubernetes watcher's part -----------------------------------------------------------------

class _Response:
    def __init__(self, body: dict):
        self.data = json.dumps(body).encode()


def test_watch_events_carry_their_receive_time_into_the_cache_snapshot():
    cache = ObjectCache()
    events = [{"type": "MODIFIED", "object": node("node-1", "9.9.9.9")},
              {"type": "ADDED", "object": ["not", "an", "object"]}]  # ignored, not a crash
    assert list(follow(NODE, cache, events, "7")) == ["7", "7"]  # neither carries a resourceVersion

    snapshot = cache.snapshot()
    assert snapshot.oldest_event is not None
    assert [n["metadata"]["name"] for n in snapshot.nodes] == ["node-1"]
    assert cache.snapshot().oldest_event is None  # taken by the first snapshot


def test_watch_restarts_are_counted_by_resource(registry, metrics):
    stop = threading.Event()
    calls = []

    def list_call(**kwargs):
        calls.append(kwargs)
        if not kwargs.get("watch"):
            return _Response({"items": [], "metadata": {"resourceVersion": "5"}})
        if len([c for c in calls if c.get("watch")]) >= 3:
            stop.set()
        raise ApiException(status=500, reason="boom")

    watcher = ResourceWatcher(CONTAINER, list_call, ObjectCache(), stop, metrics=metrics)
    watcher.backoff.initial = watcher.backoff.maximum = 0.001
    watcher.run()

    assert value(registry, "mountdns_sync_watch_restarts_total", resource="containers") == 3
    assert value(registry, "mountdns_sync_watch_restarts_total", resource="nodes") == 0


def test_a_manifest_edit_is_timed_like_a_watch_event_but_the_first_scan_is_not(tmp_path):
    cache = ObjectCache()
    source = ManifestSource(str(tmp_path), cache, threading.Event())
    (tmp_path / "nodes.yaml").write_text("apiVersion: v1\nkind: Node\nmetadata: {name: node-0}\n")

    source.scan()
    assert cache.snapshot().oldest_event is None  # the first scan is the list

    (tmp_path / "more.yaml").write_text("apiVersion: v1\nkind: Node\nmetadata: {name: node-1}\n")
    source.scan()
    snapshot = cache.snapshot()
    assert snapshot.oldest_event is not None
    assert sorted(n["metadata"]["name"] for n in snapshot.nodes) == ["node-0", "node-1"]

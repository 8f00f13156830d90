"""Liveness and readiness: a heartbeat judged with a fake clock (no sleeping), readiness
reasons in order, the main loop beating while idle and not while stuck, and the HTTP
endpoint answering /healthz, /readyz and /metrics with the right status codes."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry

from mountdns.testing.http import get
from mountdns.settings import ConfigError
from mountdns.store import StoreError
from mountdns.store.memory_store import MemoryStore
from mountdns.testing.objects import SEED_CONFIG, seed_objects
from mountdns.testing.seed import ZONE
from mountdns.testing.servers import eventually
from sync.daemon import SyncDaemon
from sync.health import Health
from sync.metrics import SyncMetrics
from sync.reconciler import Reconciler
from sync.sources.cache import CONTAINER, NODE, ObjectCache
from sync.status_server import StatusServer
from tests.test_daemon import FakeSource
from tests.test_reconciler import FailingStore


class FakeClock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def metrics():
    metrics = SyncMetrics(CollectorRegistry(), [ZONE])
    metrics.set_leader(True)
    return metrics


@pytest.fixture
def cache():
    return ObjectCache()


@pytest.fixture
def health(cache, metrics, clock):
    return Health(cache.listed, metrics, clock=clock, stall_after=60)


def list_seed(cache: ObjectCache) -> None:
    containers, nodes = seed_objects()
    cache.replace(CONTAINER, containers)
    cache.replace(NODE, nodes)


# --- liveness --------------------------------------------------------------------------------------

def test_alive_while_the_heartbeat_is_fresh_and_stuck_once_it_is_older_than_the_limit(health, clock):
    assert health.liveness() == (True, "ok")
    clock.now += 60
    assert health.liveness()[0] is True  # at the limit, not past it
    clock.now += 1
    assert health.liveness() == (False, "main loop stuck: no heartbeat for 61s (limit 60s)")
    health.beat()
    assert health.liveness() == (True, "ok")


def test_beat_takes_the_callers_time_when_given(health, clock):
    clock.now = 1000.0
    health.beat(now=990.0)
    assert health.liveness()[0] is True
    clock.now = 1051.0
    assert health.liveness()[0] is False


def test_stall_limit_must_be_positive(cache, metrics):
    with pytest.raises(ValueError):
        Health(cache.listed, metrics, stall_after=0)


# --- readiness ------------------------------------------------------------------------------------

def test_leader_is_ready_once_the_cache_is_synced_and_a_batch_reached_redis(health, cache, metrics):
    assert health.readiness() == (False, "cache not synced")
    list_seed(cache)
    assert health.readiness() == (False, "not written yet")

    Reconciler(MemoryStore(), SEED_CONFIG, metrics=metrics).reconcile(cache.snapshot(), full=True)

    assert health.readiness() == (True, "ok")


def test_leader_whose_last_write_failed_is_not_ready_until_one_succeeds(health, cache, metrics):
    list_seed(cache)
    store = FailingStore(failures=1)
    reconciler = Reconciler(store, SEED_CONFIG, metrics=metrics)
    with pytest.raises(StoreError):
        reconciler.reconcile(cache.snapshot(), full=True)

    assert health.readiness() == (False, "last write failed: StoreError: redis write failed: connection refused")
    reconciler.reconcile(cache.snapshot(), full=True)
    assert health.readiness() == (True, "ok")


def test_a_sync_that_is_not_the_leader_is_ready_once_its_cache_is_synced(health, cache, metrics):
    metrics.set_leader(False)
    assert health.readiness() == (False, "cache not synced")
    list_seed(cache)
    assert health.readiness() == (True, "ok (standby, not the leader)")


# --- the loop beats -------------------------------------------------------------------------------

class BlockingReconciler(Reconciler):
    """Blocks inside reconcile while `gate` is clear: a main loop stuck in a call."""

    def __init__(self, gate: threading.Event, entered: threading.Event):
        super().__init__(MemoryStore(), SEED_CONFIG)
        self.gate = gate
        self.entered = entered

    def reconcile(self, snapshot, full=False):
        self.entered.set()
        self.gate.wait(30)
        return super().reconcile(snapshot, full)


def test_the_loop_beats_when_it_turns_and_not_while_it_is_stuck(cache, clock):
    metrics = SyncMetrics(CollectorRegistry(), [ZONE])
    health = Health(cache.listed, metrics, clock=clock, stall_after=60)
    gate, entered, stop = threading.Event(), threading.Event(), threading.Event()
    containers, nodes = seed_objects()
    daemon = SyncDaemon(cache, FakeSource(cache, containers, nodes), BlockingReconciler(gate, entered),
                        coalesce_seconds=0, health=health)
    thread = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert entered.wait(10), "the loop never reached the store"
        clock.now += 120  # two minutes pass on the loop's clock while it is blocked
        assert health.liveness()[0] is False

        gate.set()  # the call returns; the loop turns and beats again
        assert eventually(lambda: health.liveness()[0], timeout=10), "no heartbeat after the stuck call"
    finally:
        gate.set()
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


# --- the HTTP endpoint ----------------------------------------------------------------------------

@pytest.fixture
def server(metrics, health):
    server = StatusServer(("127.0.0.1", 0), metrics.registry, health).start()
    yield server
    server.stop()


def test_endpoint_answers_probes_with_their_status_codes_and_reasons(server, health, cache, clock, metrics):
    assert get(server.port, "/healthz") == (200, "ok\n")
    assert get(server.port, "/readyz") == (503, "cache not synced\n")

    list_seed(cache)
    Reconciler(MemoryStore(), SEED_CONFIG, metrics=metrics).reconcile(cache.snapshot(), full=True)
    assert get(server.port, "/readyz") == (200, "ok\n")

    clock.now += 3600
    status, body = get(server.port, "/healthz")
    assert status == 500 and body.startswith("main loop stuck: no heartbeat for 3600s")
    assert get(server.port, "/nothing")[0] == 404


def test_endpoint_serves_the_registry_in_the_prometheus_text_format(server, cache, metrics):
    list_seed(cache)
    Reconciler(MemoryStore(), SEED_CONFIG, metrics=metrics).reconcile(cache.snapshot(), full=True)

    status, body = get(server.port, "/metrics")

    assert status == 200
    lines = body.splitlines()
    assert "mountdns_sync_leader 1.0" in lines
    assert f'mountdns_sync_names{{kind="parent",zone="{ZONE}"}} 4.0' in lines
    assert "mountdns_sync_writes_total 1.0" in lines
    assert "# TYPE mountdns_sync_event_to_write_seconds histogram" in lines


def test_a_port_in_use_is_a_configuration_error_naming_the_flag(server, metrics, health):
    with pytest.raises(ConfigError, match="^--metrics-bind: cannot listen on 127.0.0.1:"):
        StatusServer(("127.0.0.1", server.port), metrics.registry, health)

"""The Lease election state machine (sync/leader.py) with a fake clock: no sleeping.

Each elector gets its own FakeClock (so clocks can disagree, as real ones do) and
talks to one in-memory Lease with the API server's optimistic concurrency (a write
carrying a stale resourceVersion is 409). The last tests run the same elector through
KubeLeaseLock against the API double over real HTTP.
"""

from __future__ import annotations

import datetime
import threading

import pytest

from mountdns.plan import diff
from mountdns.records import State, Zone
from mountdns.store.memory_store import MemoryStore
from mountdns.testing.kube_double import KubeAPIDouble
from mountdns.testing.servers import free_port
from sync.daemon import SyncDaemon
from sync.reconciler import Reconciler
from sync.sources.cache import CONTAINER, NODE, ObjectCache
from sync.leader import (ElectionConfig, FencedStore, KubeLeaseLock, LeaderElector, LeaseConflict,
                         LeaseError, LeaseRecord, NotLeading, format_micro_time)

EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
DURATION, DEADLINE, RETRY = 15.0, 10.0, 2.0


class FakeClock:
    """client-go's fake clock: time moves only when the test says so."""

    def __init__(self, offset: float = 0.0):
        self.mono = 1000.0
        self.wall = EPOCH + datetime.timedelta(seconds=offset)

    def monotonic(self) -> float:
        return self.mono

    def now(self) -> datetime.datetime:
        return self.wall

    def step(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += datetime.timedelta(seconds=seconds)


class MemoryLease:
    """One Lease with the API server's rules: create is 409 if it exists, an update with
    a stale resourceVersion is 409, every write bumps the resourceVersion."""

    def __init__(self):
        self.record: LeaseRecord | None = None
        self.rv = 0
        self.fail = False  # simulate the API being unreachable
        self.before_update = None  # runs between a candidate's read and its write
        self.updates = 0

    def describe(self) -> str:
        return "test/lease"

    def get(self):
        if self.fail:
            raise LeaseError("unreachable")
        return self.record

    def _store(self, record):
        self.rv += 1
        self.record = LeaseRecord(record.holder, record.lease_duration_seconds, record.acquire_time,
                                  record.renew_time, record.transitions, str(self.rv))
        return self.record

    def create(self, record):
        if self.fail:
            raise LeaseError("unreachable")
        if self.record is not None:
            raise LeaseConflict("already exists")
        return self._store(record)

    def update(self, record):
        if self.before_update is not None:
            hook, self.before_update = self.before_update, None
            hook()
        self.updates += 1
        if self.fail:
            raise LeaseError("unreachable")
        if record.resource_version != self.record.resource_version:
            raise LeaseConflict("the object has been modified")
        return self._store(record)


def elector(lease, name, clock=None, **kwargs) -> LeaderElector:
    config = ElectionConfig(identity=name, lease_duration=DURATION, renew_deadline=DEADLINE, retry_period=RETRY)
    e = LeaderElector(lease, config, clock=clock or FakeClock(), **kwargs)
    e.events = []
    e.on_started_leading.append(lambda term: e.events.append(("started", term)))
    e.on_stopped_leading.append(lambda reason: e.events.append(("stopped", reason)))
    return e


def held_by(lease, holder, renew=EPOCH, transitions=3):
    lease._store(LeaseRecord(holder, int(DURATION), renew, renew, transitions))


# --- acquiring -------------------------------------------------------------------------


def test_a_missing_lease_is_created_and_led_with_term_zero():
    lease = MemoryLease()
    a = elector(lease, "a")
    a.step()
    assert lease.record.holder == "a" and lease.record.transitions == 0
    assert lease.record.lease_duration_seconds == 15
    assert (a.is_leader(), a.term, a.may_write()) == (True, 0, True)
    assert a.events == [("started", 0)]


def test_a_lease_renewed_recently_by_another_is_not_taken_over():
    lease = MemoryLease()
    b_clock = FakeClock()
    b = elector(lease, "b", b_clock)
    b.step()
    a_clock = FakeClock()
    a = elector(lease, "a", a_clock)
    for _ in range(30):  # 60 s: far past a lease duration, but b keeps renewing
        a.step()
        assert not a.is_leader() and not a.may_write()
        a_clock.step(RETRY)
        b_clock.step(RETRY)
        b.step()
    assert lease.record.holder == "b" and b.is_leader()
    assert a.events == []


@pytest.mark.parametrize("holder_clock_skew", [-3600.0, 0.0, 3600.0],
                         ids=["renewTime an hour in the past", "renewTime now", "renewTime an hour in the future"])
def test_takeover_after_a_lease_duration_without_change_on_our_own_clock(holder_clock_skew):
    lease = MemoryLease()
    renewed = EPOCH + datetime.timedelta(seconds=holder_clock_skew)
    held_by(lease, "b", renew=renewed, transitions=3)
    clock = FakeClock()
    a = elector(lease, "a", clock)
    a.step()  # first sight of the Lease: the lease duration counts from here
    assert not a.is_leader()
    clock.step(DURATION - 0.001)
    a.step()
    assert not a.is_leader() and lease.record.holder == "b"
    clock.step(0.001)
    a.step()
    assert a.is_leader() and lease.record.holder == "a"
    assert lease.record.transitions == 4 and a.term == 4
    assert lease.record.acquire_time == clock.now() and lease.record.renew_time == clock.now()


def test_a_change_seen_restarts_the_wait():
    lease = MemoryLease()
    held_by(lease, "b")
    clock = FakeClock()
    a = elector(lease, "a", clock)
    a.step()
    clock.step(DURATION - 1)
    held_by(lease, "b", renew=EPOCH + datetime.timedelta(seconds=1))  # b renewed
    a.step()
    clock.step(DURATION - 1)
    a.step()
    assert not a.is_leader()
    clock.step(1)
    a.step()
    assert a.is_leader()


def test_a_released_lease_is_taken_at_once_and_counts_a_transition():
    lease = MemoryLease()
    lease._store(LeaseRecord("", 1, EPOCH, EPOCH, 7))
    a = elector(lease, "a")
    a.step()
    assert a.is_leader() and lease.record.transitions == 8


def test_conflict_on_update_rereads_instead_of_retrying_the_write():
    lease = MemoryLease()
    held_by(lease, "b", transitions=1)
    a_clock, c_clock = FakeClock(), FakeClock()
    a, c = elector(lease, "a", a_clock), elector(lease, "c", c_clock)
    a.step(), c.step()
    a_clock.step(DURATION), c_clock.step(DURATION)
    # c takes the Lease between a's read and a's write: a's write carries a stale version.
    lease.before_update = c.step
    a.step()
    assert c.is_leader() and not a.is_leader()
    assert lease.record.holder == "c" and lease.record.transitions == 2
    assert lease.updates == 2  # c's takeover and a's one refused attempt, not a retry loop
    # Next time a re-reads, sees c's fresh Lease, and waits a lease duration again.
    a.step()
    assert lease.updates == 2 and not a.is_leader()


def test_create_race_lost_is_not_leading():
    lease = MemoryLease()
    a, c = elector(lease, "a"), elector(lease, "c")
    real_create = lease.create

    def c_first(record):
        lease.create = real_create
        c.step()
        return real_create(record)

    lease.create = c_first
    a.step()
    assert c.is_leader() and not a.is_leader() and lease.record.holder == "c"


# --- leading ---------------------------------------------------------------------------


def test_renewal_moves_renew_time_and_keeps_acquire_time_and_transitions():
    lease = MemoryLease()
    held_by(lease, "", transitions=2)
    clock = FakeClock()
    a = elector(lease, "a", clock)
    a.step()
    acquired = lease.record.acquire_time
    for _ in range(10):
        clock.step(RETRY)
        a.step()
        assert a.may_write()
    assert lease.record.acquire_time == acquired
    assert lease.record.renew_time == clock.now()
    assert lease.record.transitions == 3 and a.term == 3
    assert a.events == [("started", 3)]


def test_missed_renew_deadline_stops_writing_before_the_lease_can_expire():
    lease = MemoryLease()
    a_clock, b_clock = FakeClock(), FakeClock(offset=-40)  # b's wall clock is 40 s behind
    a = elector(lease, "a", a_clock)
    a.step()
    b = elector(lease, "b", b_clock)
    b.step()
    healthy = lease  # a's renewals fail from now on; b still reaches the API
    a.lock = FailingLock(healthy)
    stopped_at = None
    for tick in range(int(2 * DURATION / 0.5)):
        a_clock.step(0.5), b_clock.step(0.5)
        assert not (a.may_write() and b.may_write()), f"two writers at tick {tick}"
        if tick % 4 == 0:
            a.step(), b.step()
        if stopped_at is None and not a.may_write():
            stopped_at = tick
        assert not (a.may_write() and b.may_write()), f"two writers at tick {tick}"
    assert stopped_at is not None and b.is_leader()
    assert ("stopped", "failed to renew the Lease within the renew deadline") in a.events
    assert lease.record.holder == "b" and lease.record.transitions == 1


class FailingLock:
    def __init__(self, lease):
        self.lease = lease

    def describe(self):
        return "failing"

    def get(self):
        raise LeaseError("API unreachable")

    create = update = lambda self, record: (_ for _ in ()).throw(LeaseError("API unreachable"))


def test_a_stalled_leader_refuses_writes_at_the_deadline_without_another_step():
    # A stopped process (SIGSTOP) or a hung renewal: the writer asks the clock, not the thread.
    lease = MemoryLease()
    clock = FakeClock()
    a = elector(lease, "a", clock)
    a.step()
    clock.step(DEADLINE - 0.001)
    assert a.may_write() and a.write_term() == 0
    clock.step(0.001)
    assert not a.may_write() and a.write_term() is None


def test_seeing_another_holder_while_leading_steps_down_at_once():
    lease = MemoryLease()
    a = elector(lease, "a")
    a.step()
    held_by(lease, "b", transitions=1)
    a.step()
    assert not a.is_leader() and a.events[-1][0] == "stopped"


def test_release_empties_the_holder_and_the_next_candidate_takes_it_at_once():
    lease = MemoryLease()
    a_clock, b_clock = FakeClock(), FakeClock()
    a, b = elector(lease, "a", a_clock), elector(lease, "b", b_clock)
    a.step()
    b.step()
    assert not b.is_leader()
    assert a.release()
    assert not a.may_write() and a.events[-1] == ("stopped", "releasing the Lease")
    assert lease.record.holder == "" and lease.record.lease_duration_seconds == 1
    assert lease.record.transitions == 0
    b.step()  # no time has passed on b's clock
    assert b.is_leader() and lease.record.holder == "b" and b.term == 1


def test_release_when_not_holding_writes_nothing():
    lease = MemoryLease()
    held_by(lease, "b")
    a = elector(lease, "a")
    a.step()
    before = lease.rv
    assert a.release()
    assert lease.rv == before and lease.record.holder == "b"


def test_lease_transitions_count_changes_of_holder_only():
    lease = MemoryLease()
    clocks = {n: FakeClock() for n in "abc"}
    electors = {n: elector(lease, n, clocks[n]) for n in "abc"}
    electors["a"].step()
    for _ in range(5):
        for n in "abc":
            clocks[n].step(RETRY)
            electors[n].step()
    assert lease.record.holder == "a" and lease.record.transitions == 0
    electors["a"].release()
    assert lease.record.transitions == 0
    electors["b"].step()
    assert lease.record.transitions == 1
    for _ in range(5):
        clocks["b"].step(RETRY)
        electors["b"].step()
    assert lease.record.transitions == 1
    # b stops renewing; c takes over after a lease duration of silence on c's clock.
    electors["c"].step()
    clocks["c"].step(DURATION)
    electors["c"].step()
    assert lease.record.holder == "c" and lease.record.transitions == 2 and electors["c"].term == 2


def test_candidates_retry_with_jitter_and_leaders_every_retry_period():
    lease = MemoryLease()
    a, b = elector(lease, "a"), elector(lease, "b")
    assert a.step() == RETRY
    waits = {b.step() for _ in range(20)}
    assert all(RETRY <= w <= RETRY * 2.2 for w in waits) and len(waits) > 1


def test_election_config_requires_retry_below_deadline_below_duration():
    with pytest.raises(ValueError):
        ElectionConfig(identity="a", lease_duration=10, renew_deadline=10, retry_period=2)
    with pytest.raises(ValueError):
        ElectionConfig(identity="a", lease_duration=15, renew_deadline=2, retry_period=2)
    with pytest.raises(ValueError):
        ElectionConfig(identity="", lease_duration=15, renew_deadline=10, retry_period=2)
    ElectionConfig(identity="a", lease_duration=3, renew_deadline=2, retry_period=0.5)


# --- fencing the store -----------------------------------------------------------------


class FencingStore(MemoryStore):
    """The in-memory store (which fences like the Redis one: take_term records the term
    unless a higher one is recorded; apply with an older term is refused with Fenced and
    changes nothing), noting the term of every apply it accepted."""

    def __init__(self):
        super().__init__()
        self.terms = []

    @property
    def recorded(self):
        """The term the store holds, or None."""
        return self._data.fences.get(self.owner)

    def apply(self, changes, **kwargs):
        result = super().apply(changes, **kwargs)
        if not changes.empty:
            self.terms.append(kwargs.get("term"))
        return result


ZONE = Zone(name="domain.foo.bar", nameservers=("ns1.domain.foo.bar",), hostmaster="hostmaster.domain.foo.bar")


def changes_for(store, parent, node):
    return diff(store.read_state(), State(zones={ZONE.name: ZONE}, nodes={node: ("10.0.0.1",)},
                                          parents={parent: node}))


def fenced_elector(lease, store, name, clock=None):
    e = elector(lease, name, clock)
    wrapped = FencedStore(store, e)
    e.before_leading = wrapped.take_term
    return e, wrapped


def test_the_leader_records_its_term_and_writes_with_it():
    lease, store = MemoryLease(), FencingStore()
    held_by(lease, "", transitions=4)
    a, a_store = fenced_elector(lease, store, "a")
    a.step()
    assert store.recorded == 5
    a_store.apply(changes_for(store, "p.domain.foo.bar", "node-1"))
    assert store.terms == [5] and store.read_state().parents == {"p.domain.foo.bar": "node-1"}


def test_a_follower_write_is_refused_and_reaches_nothing():
    lease, store = MemoryLease(), FencingStore()
    held_by(lease, "b")
    a, a_store = fenced_elector(lease, store, "a")
    a.step()
    with pytest.raises(NotLeading):
        a_store.apply(changes_for(store, "p.domain.foo.bar", "node-1"))
    assert store.batches == [] and store.terms == []


def test_a_stale_leader_is_fenced_steps_down_and_its_write_is_lost():
    # a computed a batch, then paused past its Lease; b took over and recorded term 1.
    lease, store = MemoryLease(), FencingStore()
    a_clock, b_clock = FakeClock(), FakeClock()
    a, a_store = fenced_elector(lease, store, "a", a_clock)
    a.step()
    pending = changes_for(store, "p.domain.foo.bar", "node-old")
    b, b_store = fenced_elector(lease, store, "b", b_clock)
    b.step()
    b_clock.step(DURATION)
    b.step()
    assert b.is_leader() and store.recorded == 1
    b_store.apply(changes_for(store, "p.domain.foo.bar", "node-new"))
    # a's own clock has not moved (the worst case: it never noticed the pause), so its
    # gate still opens; the store's fence is what refuses it.
    assert a.may_write()
    with pytest.raises(NotLeading):
        a_store.apply(pending)
    assert not a.is_leader() and a.events[-1][0] == "stopped"
    assert store.read_state().parents == {"p.domain.foo.bar": "node-new"}
    assert store.terms == [1]


def test_fenced_at_take_term_gives_the_lease_back_until_the_term_passes_the_fence():
    # The Lease was deleted and re-created (transitions back to 0) while Redis records 2.
    lease, store = MemoryLease(), FencingStore()
    store.take_term(2)
    a, _ = fenced_elector(lease, store, "a")
    a.step()
    assert not a.is_leader() and lease.record.holder == "" and lease.record.transitions == 0
    a.step()
    assert not a.is_leader() and lease.record.transitions == 1
    a.step()
    assert a.is_leader() and a.term == 2 and lease.record.holder == "a"


def test_store_unreachable_at_take_term_keeps_the_lease_and_retries():
    lease, store = MemoryLease(), FencingStore()
    calls = []

    def take_term(term):
        calls.append(term)
        if len(calls) == 1:
            from mountdns.store import StoreError
            raise StoreError("Redis down")
        store.take_term(term)

    clock = FakeClock()
    a = elector(lease, "a", clock, before_leading=take_term)
    a.step()
    assert not a.is_leader() and lease.record.holder == "a"
    clock.step(RETRY)
    a.step()
    assert a.is_leader() and calls == [0, 0] and store.recorded == 0


def test_the_memory_store_is_gated_by_the_elector_and_fenced_by_a_newer_term():
    lease, store = MemoryLease(), MemoryStore()
    a = elector(lease, "a")
    wrapped = FencedStore(store, a)
    with pytest.raises(NotLeading):
        wrapped.apply(changes_for(store, "p.domain.foo.bar", "node-1"))
    a.step()
    wrapped.apply(changes_for(store, "p.domain.foo.bar", "node-1"))
    assert store.read_state().parents == {"p.domain.foo.bar": "node-1"}

    store.take_term(a.write_term() + 1)  # a newer leader recorded its term
    with pytest.raises(NotLeading):
        wrapped.apply(changes_for(store, "q.domain.foo.bar", "node-1"))
    assert not a.is_leader()
    assert store.read_state().parents == {"p.domain.foo.bar": "node-1"}


# --- through the Kubernetes API (the double, over HTTP) ----------------------------------


@pytest.fixture
def double(tmp_path):
    with KubeAPIDouble(bookmark_interval=None) as api:
        api.kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        yield api


def kube_lock(double, name="mountdns-sync"):
    from kubernetes import config
    return KubeLeaseLock(config.new_client_from_config(config_file=str(double.kubeconfig)), "mountdns", name,
                         request_timeout=5)


def test_microtime_with_zero_microseconds_keeps_six_digits_and_the_server_accepts_it(double):
    clock = FakeClock()  # EPOCH: a whole second, microseconds 0
    a = elector(kube_lock(double), "a", clock)
    a.step()
    stored = double.get("Lease", "mountdns-sync", "mountdns")
    assert stored["spec"]["renewTime"] == "2026-01-01T00:00:00.000000Z"
    assert stored["spec"]["acquireTime"] == "2026-01-01T00:00:00.000000Z"
    assert a.is_leader()
    assert format_micro_time(EPOCH + datetime.timedelta(microseconds=7)) == "2026-01-01T00:00:00.000007Z"


def test_election_through_the_api_takeover_conflict_and_release(double):
    a_clock, b_clock = FakeClock(), FakeClock()
    a, b = elector(kube_lock(double), "a", a_clock), elector(kube_lock(double), "b", b_clock)
    a.step()
    b.step()
    assert a.is_leader() and not b.is_leader()
    b_clock.step(DURATION)
    b.step()  # a did not renew: b takes over on its own clock
    assert b.is_leader()
    spec = double.get("Lease", "mountdns-sync", "mountdns")["spec"]
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("b", 1)
    a_clock.step(RETRY)
    a.step()  # a renews with the version it last saw: 409, then it sees b and steps down
    assert not a.is_leader()
    assert double.get("Lease", "mountdns-sync", "mountdns")["spec"]["holderIdentity"] == "b"
    assert b.release()
    spec = double.get("Lease", "mountdns-sync", "mountdns")["spec"]
    assert (spec["holderIdentity"], spec["leaseTransitions"], spec["leaseDurationSeconds"]) == ("", 1, 1)
    a.step()
    assert a.is_leader() and a.term == 2


def test_kube_lock_answers(double):
    lock = kube_lock(double)
    assert lock.get() is None
    created = lock.create(LeaseRecord("a", 15, EPOCH, EPOCH, 0))
    assert created.resource_version and lock.get() == created
    with pytest.raises(LeaseConflict):
        lock.create(LeaseRecord("b", 15, EPOCH, EPOCH, 0))
    lock.update(LeaseRecord("a", 15, EPOCH, EPOCH, 0, created.resource_version))
    with pytest.raises(LeaseConflict):
        lock.update(LeaseRecord("b", 15, EPOCH, EPOCH, 1, created.resource_version))
    double.set_available(False)
    try:
        with pytest.raises(LeaseError) as error:
            lock.get()
        assert not isinstance(error.value, LeaseConflict)
    finally:
        double.set_available(True)


def test_kube_lock_unreachable_api_is_a_lease_error(tmp_path):
    from kubernetes import client
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{free_port()}"  # bound then closed: nothing listens there
    lock = KubeLeaseLock(client.ApiClient(configuration), "mountdns", "x", request_timeout=2)
    with pytest.raises(LeaseError):
        lock.get()


def test_run_loop_stops_and_steps_down_when_asked():
    lease = MemoryLease()
    a = elector(lease, "a")
    stop = threading.Event()
    started = threading.Event()
    a.on_started_leading.append(lambda term: started.set())
    thread = a.start(stop)
    assert started.wait(5)
    stop.set()
    thread.join(5)
    assert not thread.is_alive() and not a.is_leader() and lease.record.holder == "a"


def test_release_rereads_after_a_conflict_and_never_empties_another_holders_lease():
    lease = MemoryLease()
    a = elector(lease, "a")
    a.step()
    # An outside write (a label edit, say) moves the resourceVersion between a's read and write.
    lease.before_update = lambda: lease._store(lease.record)
    assert a.release()
    assert lease.record.holder == "" and lease.updates == 2
    # Taken over meanwhile by b: a's release leaves b's Lease alone.
    a.step()
    assert a.is_leader()
    held_by(lease, "b", transitions=9)
    before = lease.rv
    assert a.release()
    assert lease.rv == before and lease.record.holder == "b" and not a.is_leader()


# --- the daemon's gate -----------------------------------------------------------------


class ListedSource:
    """Lists the seed into the cache when started, as the watchers would."""

    def __init__(self, cache, containers, nodes):
        self.cache, self.containers, self.nodes = cache, containers, nodes

    def start(self):
        self.cache.replace(CONTAINER, self.containers)
        self.cache.replace(NODE, self.nodes)

    def request_resync(self):
        self.start()

    def close(self):
        pass


def test_the_daemon_follows_without_writing_then_leads_and_writes_only_the_diff(caplog):
    from mountdns.testing.objects import SEED_CONFIG, seed_objects
    from mountdns.testing.seed import SEED_STATE
    from mountdns.testing.servers import eventually

    caplog.set_level("DEBUG", logger="mountdns.sync")
    store = FencingStore()
    # What the previous leader left: the seed, but node-1 at an old address.
    before = State(zones=SEED_STATE.zones, nodes={**SEED_STATE.nodes, "node-1": ("192.0.2.1",)},
                   parents=SEED_STATE.parents, children=SEED_STATE.children)
    store.apply(diff(store.read_state(), before))
    store.terms.clear()
    lease = MemoryLease()
    held_by(lease, "b", transitions=4)
    a, fenced = fenced_elector(lease, store, "a")
    cache = ObjectCache()
    a.on_started_leading.append(lambda term: cache.changed.set())
    daemon = SyncDaemon(cache, ListedSource(cache, *seed_objects()), Reconciler(fenced, SEED_CONFIG),
                        coalesce_seconds=0, leader=a)
    a.step()
    stop = threading.Event()
    thread = threading.Thread(target=daemon.run, args=(stop,))
    thread.start()
    try:
        assert eventually(lambda: "not the leader: cache updated, nothing written" in caplog.text)
        assert store.terms == [] and store.read_state().nodes["node-1"] == ("192.0.2.1",)
        lease._store(LeaseRecord("", 1, EPOCH, EPOCH, 4))  # b released the Lease
        a.step()
        assert a.term == 5
        assert eventually(lambda: store.read_state().nodes["node-1"] == SEED_STATE.nodes["node-1"])
        assert store.terms == [5]
        (written,) = store.batches[-1:]
        assert written.key_writes() == 1 and set(written.nodes_put) == {"node-1"}  # the diff, nothing more
        # A newer leader records its term: the next write is refused in the store and a steps down.
        store.take_term(6)
        cache.put(NODE, seed_objects()[1][0] | {"status": {"addresses": [{"type": "InternalIP",
                                                                          "address": "10.0.0.9"}]}})
        assert eventually(lambda: not a.is_leader())
        assert store.terms == [5] and store.read_state().nodes["node-0"] == SEED_STATE.nodes["node-0"]
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()

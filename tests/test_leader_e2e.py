"""Several real `mountdns-sync --leader-elect` processes against the API double (which
serves Leases with the real server's rules) and a real redis-server.

A candidate takes the Lease over once it has seen it unchanged for its own lease
duration. Only the candidate a test waits for to take over has a short one (3 s); every
other replica's is 15 s or more, so an unexpected takeover (an extra transition) would
need a leader that did not renew for that long, not one slowed by a loaded machine. Every
wait is on a condition with a generous deadline, and what is asserted is the order of
events (who held the Lease, who wrote, the Lease's own timestamps), never a duration.
"""

from __future__ import annotations

import datetime
import signal
import time

import pytest

from mountdns.store.redis_store import RedisStore
from mountdns.testing.objects import node, seed_objects
from mountdns.testing.servers import wait_until
from mountdns.keyspace import Keys
from mountdns.testing.sync_process import SyncProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

NAMESPACE = "mountdns"
LEASE = "mountdns-sync"


def timings(lease: float, renew_deadline: float, retry: float) -> tuple[str, ...]:
    return ("--leader-elect-lease-duration", f"{lease:g}", "--leader-elect-renew-deadline", f"{renew_deadline:g}",
            "--leader-elect-retry-period", f"{retry:g}")


STEADY = timings(15, 10, 2)  # takes over only from a leader that has not renewed for 15 s
FAST = timings(3, 2, 0.5)  # the candidate a test waits for: takes over 3 s after the last renewal
# A leader that FAST is to replace: renews every 0.5 s, stops writing 2 s after its last
# renewal; as a candidate (the other candidates, or itself once replaced) as slow as STEADY.
KEEPER = timings(15, 2, 0.5)
KEYS = Keys()
NODE_1 = KEYS.node("node-1").encode()  # the default owner's node-1
STARTED = "started leading as "
FOLLOWING = "not the leader: cache updated, nothing written"


def election_args(identity: str, election_timings) -> tuple[str, ...]:
    return ("--leader-elect", "--leader-elect-namespace", NAMESPACE, "--leader-elect-identity", identity,
            *election_timings)


@pytest.fixture
def cluster(api):
    containers, nodes = seed_objects()
    api.apply_many(nodes + containers)
    return api


@pytest.fixture
def replicas(tmp_path, cluster, redis_server, redis_client):
    """start(n, timings) -> {identity: SyncProcess}; all stopped (and woken first) at the end."""
    started: list[SyncProcess] = []
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")

    def start(n: int, election_timings) -> dict[str, SyncProcess]:
        procs = {}
        for i in range(n):
            identity = f"sync-{len(started)}"
            proc = SyncProcess(tmp_path, redis_server.url, kubeconfig=kubeconfig, name=identity,
                               extra_args=election_args(identity, election_timings))
            started.append(proc.start())
            procs[identity] = proc
        return procs

    yield start
    for proc in started:
        if proc.running():
            proc.send_signal(signal.SIGCONT)  # a stopped process would not act on SIGTERM
        proc.stop()


def lease_spec(api) -> dict:
    lease = api.get("Lease", LEASE, NAMESPACE)
    return (lease or {}).get("spec") or {}


def holder(api) -> str:
    return lease_spec(api).get("holderIdentity") or ""


def micro(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def wait_for_leader(api, procs, timeout=30.0, other_than=None) -> str:
    def led():
        h = holder(api)
        return h if h in procs and h != other_than and STARTED + h in procs[h].log_text() else None
    try:
        return wait_until(led, timeout, "a replica leading")
    except TimeoutError as exc:
        tails = "\n".join(f"--- {n} ---\n{p.log_tail(15)}" for n, p in procs.items())
        raise TimeoutError(f"{exc}\nLease: {lease_spec(api)}\n{tails}") from None


def leader_then_candidates(api, replicas, *candidates) -> tuple[dict[str, SyncProcess], str]:
    """A KEEPER replica, leading, then one candidate per timings in `candidates` (started
    once it leads, so which replica leads first is known): (every replica, the leader)."""
    procs = replicas(1, KEEPER)
    first = wait_for_leader(api, procs)
    for candidate in candidates:
        procs.update(replicas(1, candidate))
    return procs, first


def move_node_1(api, address: str) -> None:
    api.apply(node("node-1", address))


def wait_for_node_1(redis_client, address: str, timeout=30.0) -> None:
    wait_until(lambda: redis_client.get(NODE_1) == address.encode(), timeout, f"node-1 -> {address} in Redis")


def writers(procs) -> set[str]:
    return {name for name, p in procs.items() if " wrote " in p.log_text()}


def serial(redis_client) -> int:
    return int(redis_client.hget(KEYS.zone("domain.foo.bar"), b"serial") or 0)


# --- one leader ------------------------------------------------------------------------


def test_of_three_replicas_exactly_one_leads_and_only_it_writes(cluster, replicas, redis_client):
    procs = replicas(3, STEADY)
    leader = wait_for_leader(cluster, procs)
    wait_for_node_1(redis_client, "2.3.4.5")
    move_node_1(cluster, "10.1.1.1")
    wait_for_node_1(redis_client, "10.1.1.1")
    assert writers(procs) == {leader}
    assert [n for n, p in procs.items() if STARTED in p.log_text()] == [leader]
    # Followers keep watching (their caches stay warm) without writing.
    for name, p in procs.items():
        if name != leader:
            p.wait_for_log(FOLLOWING, timeout=10)
    assert writers(procs) == {leader} and all(p.running() for p in procs.values())
    assert lease_spec(cluster)["leaseTransitions"] == 0


# --- failover --------------------------------------------------------------------------


def test_leader_killed_another_takes_over_and_answers_the_next_change(cluster, replicas, redis_client):
    # The FAST candidate takes over; the other one could only after 15 s without a renewal.
    procs, first = leader_then_candidates(cluster, replicas, FAST, KEEPER)
    wait_for_node_1(redis_client, "2.3.4.5")
    transitions = lease_spec(cluster)["leaseTransitions"]
    procs[first].kill()
    killed_at = time.monotonic()
    move_node_1(cluster, "10.2.2.2")  # made after the kill: only a new leader can write it
    wait_for_node_1(redis_client, "10.2.2.2", timeout=60)
    answered = time.monotonic() - killed_at
    second = wait_for_leader(cluster, procs, other_than=first)
    assert second != first and procs[second].running()
    assert lease_spec(cluster)["leaseTransitions"] == transitions + 1
    assert writers(procs) <= {first, second} and second in writers(procs)
    # Its cache was warm: from taking the Lease to its first write it did not re-list.
    log = procs[second].log_text()
    since = log[log.index(STARTED + second):]
    assert " wrote " in since and "listed " not in since[:since.index(" wrote ")]
    print(f"SIGKILL of the leader -> next change in Redis: {answered:.2f} s (lease 3 s, retry 0.5 s)")


def test_leader_terminated_releases_and_the_next_takes_over_before_its_lease_could_expire(
        cluster, replicas, redis_client):
    # A lease far longer than the test's timeout: taken over before it expired can only be
    # taken over because it was released.
    procs = replicas(2, timings(600, 10, 0.5))
    first = wait_for_leader(cluster, procs)
    wait_for_node_1(redis_client, "2.3.4.5")
    before = lease_spec(cluster)  # the old leader's last renewal is at or after this one
    assert before["holderIdentity"] == first
    procs[first].stop(signal.SIGTERM)
    assert procs[first].proc.returncode == 0
    assert "released Lease mountdns/mountdns-sync" in procs[first].log_text()
    second = wait_for_leader(cluster, procs, other_than=first)
    after = lease_spec(cluster)
    expiry = micro(before["renewTime"]) + datetime.timedelta(seconds=before["leaseDurationSeconds"])
    assert micro(after["acquireTime"]) < expiry  # taken over at once, not after a lease duration
    assert after["holderIdentity"] == second and after["leaseTransitions"] == before["leaseTransitions"] + 1
    move_node_1(cluster, "10.3.3.3")
    wait_for_node_1(redis_client, "10.3.3.3")
    assert second in writers(procs)


def test_a_leader_stopped_past_its_lease_does_not_write_after_waking(cluster, replicas, redis_client):
    # Stopped for longer than its 2 s renew deadline (the FAST candidate needs 3 s to take
    # over), it must not write on waking; it would take the Lease back only after 15 s.
    procs, first = leader_then_candidates(cluster, replicas, FAST)
    wait_for_node_1(redis_client, "2.3.4.5")
    old = procs[first]
    old.send_signal(signal.SIGSTOP)
    # While it sleeps the cluster changes: on waking its watch delivers these, which it
    # would write if it still believed it led.
    move_node_1(cluster, "10.4.4.4")
    second = wait_for_leader(cluster, procs, other_than=first)
    wait_for_node_1(redis_client, "10.4.4.4")
    move_node_1(cluster, "10.5.5.5")
    wait_for_node_1(redis_client, "10.5.5.5")
    written = serial(redis_client)
    woke_at = len(old.log_text())
    old.send_signal(signal.SIGCONT)
    old.wait_until(lambda: "stopped leading" in old.log_text()[woke_at:], 30, "the woken leader stepping down")
    # The moves queued on its watch while it slept reach its cache, and are not written.
    old.wait_until(lambda: FOLLOWING in old.log_text()[woke_at:], 30, "the woken replica following")
    assert " wrote " not in old.log_text()[woke_at:]
    assert holder(cluster) == second and procs[second].running()
    assert redis_client.get(NODE_1) == b"10.5.5.5" and serial(redis_client) == written


def test_a_write_carrying_the_stopped_leaders_term_is_fenced_off_in_redis(cluster, replicas, redis_client):
    # What the gate cannot stop: a write that passed it just before the pause and reaches
    # Redis after another replica took over. Redis itself must refuse the old term.
    from mountdns.plan import diff
    from mountdns.records import State

    procs, first = leader_then_candidates(cluster, replicas, FAST)
    wait_for_node_1(redis_client, "2.3.4.5")
    old_term = lease_spec(cluster)["leaseTransitions"]
    procs[first].send_signal(signal.SIGSTOP)
    second = wait_for_leader(cluster, procs, other_than=first)
    assert lease_spec(cluster)["leaseTransitions"] == old_term + 1
    move_node_1(cluster, "10.6.6.6")
    wait_for_node_1(redis_client, "10.6.6.6")
    store = RedisStore(redis_client)
    current = store.read_state()
    stale = diff(current, State(zones=current.zones, nodes={**current.nodes, "node-1": ("192.0.2.66",)},
                                parents=current.parents, children=current.children))
    from sync.leader import Fenced
    with pytest.raises(Fenced):
        store.apply(stale, term=old_term)
    assert redis_client.get(NODE_1) == b"10.6.6.6" and holder(cluster) == second

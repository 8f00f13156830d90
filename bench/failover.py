"""Failover: the leading `mountdns-sync` replica dies -> the next change is in Redis.

Three real `mountdns-sync --leader-elect` replicas against the Kubernetes API test double
and redis-server. Each round kills the leader (SIGKILL: it cannot release the Lease, so
a follower waits out a lease duration of silence; SIGTERM: it releases on the way out),
changes node-1's address in the API right after the signal, and polls Redis until the
new address is there. A replacement replica is started after each round, so three run
whenever a leader is killed, each having listed the cluster first. Timer: from just before the signal to the key in Redis.
The "Lease taken" column is the new holder's acquireTime (its wall clock) minus the wall
time of the signal (same machine, same clock).
"""

from __future__ import annotations

import datetime
import shutil
import signal
import statistics
import time

from bench.report import Table
from mountdns.keyspace import Keys
from mountdns.testing.kube_double import KubeAPIDouble
from mountdns.testing.objects import node, seed_objects
from mountdns.testing.servers import RedisServer, wait_until, workdir
from mountdns.testing.sync_process import SyncProcess

NAMESPACE, LEASE = "mountdns", "mountdns-sync"
NODE_1 = Keys().node("node-1").encode()  # the default owner's node-1
DEFAULTS = (15.0, 10.0, 2.0)  # the shipped --leader-elect-lease-duration, -renew-deadline, -retry-period
SHORT = (3.0, 2.0, 0.5)  # what the tests use
REPLICAS = 3


def run(quick: bool) -> list[Table]:
    plans = ([(SHORT, signal.SIGKILL, 1), (SHORT, signal.SIGTERM, 1)] if quick else
             [(DEFAULTS, signal.SIGKILL, 3), (DEFAULTS, signal.SIGTERM, 3),
              (SHORT, signal.SIGKILL, 5), (SHORT, signal.SIGTERM, 5)])
    table = Table(
        f"Failover: leader killed -> next change in Redis ({REPLICAS} replicas)",
        ["lease / renew deadline / retry (s)", "signal", "rounds", "change in Redis: median s", "max s",
         "Lease taken: median s", "new leader re-listed"])
    directory = workdir("mountdns-bench-failover-")
    redis_server = RedisServer(directory).start()
    api = KubeAPIDouble(bookmark_interval=0.5)
    api.start()
    try:
        containers, nodes = seed_objects()
        api.apply_many(nodes + containers)
        for timings, sig, rounds in plans:
            results = _measure(directory, api, redis_server, timings, sig, rounds)
            table.add(" / ".join(f"{t:g}" for t in timings), sig.name, rounds,
                      statistics.median(r[0] for r in results), max(r[0] for r in results),
                      statistics.median(r[1] for r in results), sum(r[2] for r in results))
    finally:
        api.stop()
        redis_server.stop()
        shutil.rmtree(directory, ignore_errors=True)
    table.notes += [
        "Every replica runs `mountdns-sync --leader-elect` with the timings of its row; the API double and "
        "redis-server run on the same machine.",
        "SIGKILL: no release, so a follower takes the Lease once it has not seen it change for a lease "
        "duration (on its own clock), then writes the change from its warm cache.",
        "SIGTERM: the leader stops writing and releases the Lease (empty holder); a follower takes it on "
        "its next retry (retry period with client-go's jitter, 1x-2.2x).",
        "'new leader re-listed': rounds in which the new leader listed the cluster again between taking the "
        "Lease and its first write (0: it wrote from the cache its watch kept warm).",
    ]
    return [table]


def _measure(directory, api, redis_server, timings, sig, rounds) -> list[tuple[float, float, bool]]:
    duration, deadline, retry = timings
    kubeconfig = api.write_kubeconfig(directory / "kubeconfig")
    client = redis_server.client()
    client.flushall()
    _delete_lease(api)
    replicas: dict[str, SyncProcess] = {}
    counter = iter(range(1_000_000))
    results = []

    def start_one():
        identity = f"bench-{int(duration)}-{sig.name.lower()}-{next(counter)}"
        replicas[identity] = SyncProcess(
            directory, redis_server.url, kubeconfig=kubeconfig, name=identity, log_level="info",
            extra_args=("--leader-elect", "--leader-elect-namespace", NAMESPACE, "--leader-elect-identity",
                        identity, "--leader-elect-lease-duration", str(duration),
                        "--leader-elect-renew-deadline", str(deadline),
                        "--leader-elect-retry-period", str(retry))).start()

    try:
        for _ in range(REPLICAS):
            start_one()
        for round_no in range(rounds):
            leader = wait_until(lambda: _holder(api) if _holder(api) in replicas else None,
                                duration * 4 + 30, "a leader")
            # Every replica has listed both kinds (a replacement started last round too):
            # what is measured is a takeover by a warm follower, not a process start.
            for proc in replicas.values():
                proc.wait_until(lambda: proc.log_count("listed ") >= 2, 60, "the replica's first lists")
            address = f"10.9.{round_no}.{int(duration)}"
            api.apply(node("node-1", f"10.8.{round_no}.1"))  # the leader is writing: settle first
            wait_until(lambda: client.get(NODE_1) == f"10.8.{round_no}.1".encode(), 30, "the leader writing")
            old_leader = replicas.pop(leader)
            killed_wall = datetime.datetime.now(datetime.timezone.utc)
            killed = time.monotonic()
            if sig == signal.SIGKILL:
                old_leader.kill()
            else:
                old_leader.send_signal(sig)
            api.apply(node("node-1", address))
            while client.get(NODE_1) != address.encode():
                if time.monotonic() - killed > duration * 4 + 30:
                    raise TimeoutError(f"no replica wrote {address} after the leader was killed")
                time.sleep(0.005)
            answered = time.monotonic() - killed
            spec = api.get("Lease", LEASE, NAMESPACE)["spec"]
            acquired = datetime.datetime.fromisoformat(spec["acquireTime"].replace("Z", "+00:00"))
            new_leader = replicas[spec["holderIdentity"]]
            log = new_leader.log_text()
            since = log[log.index("started leading as "):]
            relisted = "listed " in since[:since.find(" wrote ")]
            results.append((answered, (acquired - killed_wall).total_seconds(), relisted))
            old_leader.stop()
            start_one()
    finally:
        for proc in replicas.values():
            proc.stop()
        client.close()
    return results


def _holder(api) -> str:
    lease = api.get("Lease", LEASE, NAMESPACE) or {}
    return (lease.get("spec") or {}).get("holderIdentity") or ""


def _delete_lease(api) -> None:
    if api.get("Lease", LEASE, NAMESPACE) is not None:
        api.delete("Lease", LEASE, NAMESPACE)


if __name__ == "__main__":
    for t in run(quick=False):
        print(t.render())

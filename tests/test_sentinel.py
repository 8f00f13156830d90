"""Redis Sentinel with real processes on loopback: a primary, a replica and three
sentinels (down-after 500 ms). The primary is killed, Sentinel promotes the replica, and:
the sync (through Sentinel) writes again, DNS never stops answering (the backend reads the
replica, which stays up), and a change made after the failover is answered through
PowerDNS with its shipped caches on. A second test runs the backend itself through
Sentinel. Measured delays are recorded, never asserted."""

from __future__ import annotations

import shutil
import signal
import threading
import time

import pytest
import redis
import yaml

from mountdns.keyspace import Keys
from mountdns.redis_connect import RedisTarget, connect, target_from_args
from mountdns.settings import ConfigError
from mountdns.testing.objects import node, seed_objects
from mountdns.testing.purging_stack import a_records, purging_pair, start_pair, wait_for_workers
from mountdns.testing.sentinel import MASTER, SentinelSetup
from mountdns.testing.servers import BackendServer, CACHES_OFF, PdnsServer, RedisServer, wait_until, workdir
from mountdns.testing.sync_process import SyncProcess
from sync.config import build_parser

KEYS = Keys()
NODE_1_KEY = KEYS.node("node-1")  # the default owner's node-1

pytestmark = pytest.mark.integration

CHILD = "Container_D_0.domain.foo.bar"  # CNAME to Container_B_0, on node-1 (2.3.4.5)


def write_manifests(directory, node1_address: str = "2.3.4.5") -> None:
    containers, nodes = seed_objects()
    nodes = [node("node-1", node1_address) if n["metadata"]["name"] == "node-1" else n for n in nodes]
    (directory / "nodes.yaml").write_text(yaml.safe_dump_all(nodes, sort_keys=False))
    (directory / "containers.yaml").write_text(yaml.safe_dump_all(containers, sort_keys=False))


class Prober:
    """Asks PowerDNS for CHILD over and over on a thread, counting answers by outcome."""

    def __init__(self, pdns: PdnsServer):
        self.pdns = pdns
        self.outcomes: dict[str, int] = {}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop_event.wait(0.02):
            try:
                rcode, addresses = a_records(self.pdns, CHILD, timeout=1.0)
                outcome = rcode if rcode != "NOERROR" or addresses else "NOERROR without address"
                outcome = "answered" if rcode == "NOERROR" and addresses else outcome
            except Exception as exc:  # noqa: BLE001 - a timeout is an outcome too
                outcome = type(exc).__name__
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def __enter__(self) -> "Prober":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.thread.join(5)


@pytest.fixture
def directory():
    path = workdir("mountdns-sentinel-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def cluster(directory):
    setup = SentinelSetup(directory, replicas=1, sentinels=3)
    try:
        yield setup.start()
    finally:
        setup.stop()


@pytest.fixture
def processes():
    started = []
    yield started
    for process in reversed(started):
        process.stop()


def start_sync(cluster, directory, processes) -> SyncProcess:
    """A sync reading the seed's manifests and writing through Sentinel, stopped by `processes`."""
    manifests = directory / "manifests"
    manifests.mkdir()
    write_manifests(manifests)
    sync = SyncProcess(directory, cluster.primary.url, manifests=str(manifests), resync_interval=300.0,
                       extra_args=tuple(cluster.sentinel_args()))
    processes.append(sync.start())
    return sync


def test_failover_the_sync_writes_the_new_primary_and_dns_keeps_answering(cluster, directory, processes,
                                                                          record_property):
    replica = cluster.replicas[0]
    sync = start_sync(cluster, directory, processes)
    manifests = directory / "manifests"
    sync.wait_until(lambda: replica.client().exists(NODE_1_KEY), 20, "the seed on the replica")
    backend, pdns = purging_pair(directory, replica.url)  # the backend reads the replica
    processes += [backend, pdns]
    start_pair(backend, pdns)
    wait_until(lambda: a_records(pdns, CHILD) == ("NOERROR", ["2.3.4.5"]), 10, "the seed answered")

    with Prober(pdns) as prober:
        killed = time.monotonic()
        cluster.primary.stop(signal.SIGKILL)
        # Changed at once: the sync's write fails until Sentinel has promoted the replica.
        write_manifests(manifests, "12.34.5.6")
        sync.wait_for_log("Redis failed", 20)
        wait_until(lambda: cluster.current_primary_port() == replica.port, 30, "the replica promoted")
        promoted = time.monotonic()
        sync.wait_until(lambda: replica.client().get(NODE_1_KEY) == b"12.34.5.6", 30,
                        "the sync writing the new primary")
        written = time.monotonic()
        assert replica.client().info("replication")["role"] == "master"
        wait_until(lambda: a_records(pdns, CHILD) == ("NOERROR", ["12.34.5.6"]), 10,
                   "the change answered through PowerDNS")
        answered = time.monotonic()

    record_property("kill_to_promotion_s", round(promoted - killed, 2))
    record_property("promotion_to_written_s", round(written - promoted, 2))
    record_property("written_to_answered_ms", round((answered - written) * 1000, 1))
    record_property("dns_outcomes", repr(prober.outcomes))
    assert set(prober.outcomes) == {"answered"}, prober.outcomes  # never a failure, never silence
    assert prober.outcomes["answered"] > 10
    assert sync.running()


def test_the_backend_through_sentinel_answers_a_change_made_after_the_failover(cluster, directory, processes):
    replica = cluster.replicas[0]
    primary = cluster.primary.client()
    sync = start_sync(cluster, directory, processes)
    manifests = directory / "manifests"
    sync.wait_until(lambda: primary.exists(NODE_1_KEY), 20, "the seed written")
    backend = BackendServer(directory, cluster.primary.url, workers=1, extra_args=tuple(cluster.sentinel_args()))
    processes.append(backend.start())
    wait_for_workers(backend)
    pdns = PdnsServer(directory, backend.url, settings=CACHES_OFF)
    processes.append(pdns.start())
    wait_until(lambda: a_records(pdns, CHILD) == ("NOERROR", ["2.3.4.5"]), 10, "the seed answered")

    cluster.primary.stop(signal.SIGKILL)
    wait_until(lambda: cluster.current_primary_port() == replica.port, 30, "the replica promoted")
    write_manifests(manifests, "12.34.5.6")
    sync.wait_until(lambda: replica.client().get(NODE_1_KEY) == b"12.34.5.6", 30,
                    "the sync writing the new primary")

    wait_until(lambda: a_records(pdns, CHILD) == ("NOERROR", ["12.34.5.6"]), 20,
               "the backend reading the new primary")


# --- connecting: the password from the URL or the environment ------------------------------


class PasswordRedis(RedisServer):
    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password="s3cret", socket_timeout=2)


def test_the_password_comes_from_the_url_or_the_environment(directory):
    server = PasswordRedis(directory, name="redis-auth", extra_args=("--requirepass", "s3cret")).start()
    try:
        url = f"redis://127.0.0.1:{server.port}/0"
        args = build_parser().parse_args(["--zone", "domain.foo.bar", "--redis-url", url])
        from_env = target_from_args(args, environ={"MOUNTDNS_REDIS_PASSWORD": "s3cret"})
        from_url = RedisTarget(url=f"redis://:s3cret@127.0.0.1:{server.port}/0")
        assert connect(from_env, timeout=2).ping() and connect(from_url, timeout=2).ping()
        with pytest.raises(redis.AuthenticationError):
            connect(target_from_args(args, environ={}), timeout=2).ping()
    finally:
        server.stop()


def test_sentinel_flags_are_validated_naming_the_flag():
    for argv, flag in [
        (["--redis-sentinel", "s1:26379"], "--redis-sentinel-master"),
        (["--redis-sentinel-master", MASTER], "--redis-sentinel"),
        (["--redis-sentinel", "s1:notaport", "--redis-sentinel-master", MASTER], "--redis-sentinel"),
        (["--redis-url", "redis://r/x", "--redis-sentinel", "s1:1", "--redis-sentinel-master", MASTER],
         "--redis-url"),
    ]:
        args = build_parser().parse_args(["--zone", "domain.foo.bar", *argv])
        with pytest.raises(ConfigError) as caught:
            target_from_args(args, environ={})
        assert str(caught.value).startswith(flag + ": "), (argv, caught.value)

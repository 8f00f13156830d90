"""The backend's /metrics: lookups by qtype and result, the latency histogram and Redis
errors, counted per process and merged across gunicorn's workers (and the master's purge
follower) in one scrape of the backend's own port. A scrape is not a lookup.

Unit tests use the Flask app (one process's registry); the integration tests run the real
mountdns-backend with several workers against a real redis-server, and check from /proc
which worker served which connection, so "adds up across workers" is shown, not assumed.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mountdns.store import StoreError
from mountdns.store.memory_store import MemoryStore
from mountdns.testing.seed import SEED_STATE
from mountdns.testing.servers import BackendServer, free_port, wait_until, workdir
from pdns_backend.app import create_app
from pdns_backend.metrics import LATENCY_BUCKETS, LookupTally, qtype_label
from tests.conftest import load


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of an exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def lookups(metrics: dict, qtype: str, result: str) -> float:
    return metrics.get(("mountdns_backend_lookups_total", (("qtype", qtype), ("result", result))), 0.0)


def total_lookups(metrics: dict) -> float:
    return sum(v for (name, _), v in metrics.items() if name == "mountdns_backend_lookups_total")


def latency_count(metrics: dict) -> float:
    return metrics.get(("mountdns_backend_lookup_duration_seconds_count", ()), 0.0)


# --- one process (Flask app) ----------------------------------------------------------------

class FailingStore(MemoryStore):
    def resolve(self, qname):
        raise StoreError("redis lookup failed: connection refused")


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    return samples(response.get_data(as_text=True))


def test_lookups_are_counted_by_qtype_and_result():
    store = MemoryStore()
    load(store, SEED_STATE)
    client = create_app(store=store).test_client()

    client.get("/dnsapi/lookup/container_a_0.domain.foo.bar./A")
    client.get("/dnsapi/lookup/container_a_0.domain.foo.bar./A")
    client.get("/dnsapi/lookup/container_a_0.domain.foo.bar./AAAA")  # a parent with only IPv4: no records
    client.get("/dnsapi/lookup/nobody.domain.foo.bar./ANY")
    client.get("/dnsapi/lookup/container_d_0.domain.foo.bar./type65534")
    client.get("/dnsapi/getAllDomains")  # not a lookup

    metrics = scrape(client)
    assert lookups(metrics, "A", "answered") == 2
    assert lookups(metrics, "AAAA", "empty") == 1
    assert lookups(metrics, "ANY", "empty") == 1
    assert lookups(metrics, "OTHER", "empty") == 1
    assert total_lookups(metrics) == 5
    assert latency_count(metrics) == 5
    assert metrics[("mountdns_backend_lookup_duration_seconds_bucket", (("le", "+Inf"),))] == 5
    assert metrics[("mountdns_backend_redis_errors_total", ())] == 0


def test_redis_errors_are_counted_and_the_lookup_is_a_store_error():
    client = create_app(store=FailingStore()).test_client()

    assert client.get("/dnsapi/lookup/container_a_0.domain.foo.bar./A").status_code == 500

    metrics = scrape(client)
    assert metrics[("mountdns_backend_redis_errors_total", ())] == 1
    assert lookups(metrics, "A", "store_error") == 1


def test_a_malformed_lookup_is_counted_as_a_bad_request():
    client = create_app(store=MemoryStore()).test_client()

    assert client.get("/dnsapi/lookup/a..b./A").status_code == 400

    assert lookups(scrape(client), "A", "bad_request") == 1


def test_scrapes_are_not_lookups():
    client = create_app(store=MemoryStore()).test_client()
    for _ in range(3):
        metrics = scrape(client)
    assert total_lookups(metrics) == 0 and latency_count(metrics) == 0


def test_without_metrics_there_is_no_metrics_path():
    client = create_app({"METRICS": None}, store=MemoryStore()).test_client()
    assert client.get("/metrics").status_code == 404


def test_the_tally_puts_each_latency_in_its_prometheus_bucket():
    tally = LookupTally()
    for seconds in (LATENCY_BUCKETS[0], LATENCY_BUCKETS[0] * 1.01, LATENCY_BUCKETS[-1] * 2):
        tally.lookup("a", "answered", seconds)

    counts, buckets, total, errors, zone_table_answers = tally.take()

    assert counts == {("A", "answered"): 3} and zone_table_answers == 0
    assert buckets[0] == 1 and buckets[1] == 1 and buckets[-1] == 1 and sum(buckets) == 3  # le is inclusive
    assert total == pytest.approx(LATENCY_BUCKETS[0] * 2.01 + LATENCY_BUCKETS[-1] * 2)
    assert errors == 0
    assert tally.take()[0] == {}, "taking starts again from zero"


def test_soa_probes_answered_from_the_zone_table_are_counted_and_are_still_lookups():
    store = MemoryStore()
    load(store, SEED_STATE)
    client = create_app({"ZONE_TABLE_MAX_AGE": 60.0}, store=store).test_client()
    for _ in range(3):
        assert client.get("/dnsapi/lookup/domain%2efoo%2ebar%2e/ANY").status_code == 200
    metrics = scrape(client)
    # The first read the store; the next two came from memory.
    assert metrics[("mountdns_backend_zone_table_answers_total", ())] == 2
    assert lookups(metrics, "ANY", "answered") == 3


def test_unknown_qtypes_share_one_label():
    assert [qtype_label(q) for q in ("a", "AAAA", "TYPE65534", "x" * 100, None)] == ["A", "AAAA", "OTHER",
                                                                                        "OTHER", "OTHER"]


# --- real gunicorn workers ------------------------------------------------------------------

def _socket_inode_of_port(local_port: int, remote_port: int) -> str | None:
    """The inode of the server side of a loopback TCP connection (from /proc/net/tcp*)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if int(local.rsplit(":", 1)[1], 16) == local_port and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                return inode
    return None


def _serving_pid(pids: list[int], inode: str) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
        except OSError:
            continue
    return None


def _worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(p) for p in children]


def _scrape(port: int) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type").startswith("text/plain; version=0.0.4")
        return samples(response.read().decode())
    finally:
        connection.close()


@pytest.fixture
def running_backend(redis_server, redis_client):
    from mountdns.store.redis_store import RedisStore
    load(RedisStore(redis_client), SEED_STATE)
    directory = workdir("mountdns-test-backend-metrics-")
    dead_api = f"http://127.0.0.1:{free_port()}"  # nothing listens: every purge fails
    metrics_port = free_port()
    backend = BackendServer(directory, redis_server.url, workers=3,
                            extra_args=("--pdns-api-url", dead_api, "--pdns-api-key", "k",
                                        "--metrics-bind", f"127.0.0.1:{metrics_port}")).start()
    backend.metrics_port = metrics_port
    wait_until(lambda: len(_worker_pids(backend.proc.pid)) == 3, 20, "three workers")
    yield backend
    backend.stop()
    shutil.rmtree(directory, ignore_errors=True)


def _accepted_connections(backend, workers: list[int], count: int) -> dict:
    """`count` connections, each once a worker has accepted it: {connection: worker pid}."""
    connections = [http.client.HTTPConnection("127.0.0.1", backend.port, timeout=5) for _ in range(count)]
    for c in connections:
        c.connect()

    def pid(c):
        return _serving_pid(workers, _socket_inode_of_port(backend.port, c.sock.getsockname()[1]) or "")
    wait_until(lambda: all(pid(c) for c in connections), 10, "each connection accepted by a worker")
    return {c: pid(c) for c in connections}


@pytest.mark.integration
def test_lookups_on_several_workers_add_up_in_one_scrape(running_backend):
    backend = running_backend
    master = backend.proc.pid
    workers = _worker_pids(master)
    first = _accepted_connections(backend, workers, 12)
    if len(set(first.values())) == 1:
        # One worker took them all (it accepts in batches): stopped, it leaves the next to the others.
        (busy,) = set(first.values())
        os.kill(busy, signal.SIGSTOP)
        try:
            second = _accepted_connections(backend, [w for w in workers if w != busy], 12)
        finally:
            os.kill(busy, signal.SIGCONT)
    else:
        second = _accepted_connections(backend, workers, 12)
    served_by = {**first, **second}
    connections = list(served_by)
    assert len(set(served_by.values())) >= 2, f"every connection went to one worker: {served_by}"

    per_connection = 25
    for c in connections:
        for i in range(per_connection):
            name, qtype = ("container_a_0.domain.foo.bar.", "A") if i % 5 else ("nobody.domain.foo.bar.", "AAAA")
            c.request("GET", f"/dnsapi/lookup/{name}/{qtype}")
            response = c.getresponse()
            response.read()
            assert response.status == 200
    for c in connections:
        c.close()
    expected = len(connections) * per_connection

    # Each worker adds its tallies once a second; any worker's scrape merges them all.
    wait_until(lambda: total_lookups(_scrape(backend.port)) == expected, 20, f"{expected} lookups counted")
    metrics = _scrape(backend.port)
    assert lookups(metrics, "A", "answered") == expected * 4 / 5
    assert lookups(metrics, "AAAA", "empty") == expected / 5
    assert latency_count(metrics) == expected
    for _ in range(5):
        assert total_lookups(_scrape(backend.port)) == expected, "scrapes are not lookups"
    # The master's --metrics-bind (for a Prometheus that cannot reach the lookup port) merges the same files.
    master_view = _scrape(backend.metrics_port)
    assert lookups(master_view, "A", "answered") == expected * 4 / 5 and latency_count(master_view) == expected

    # The master's purge follower is in the same scrape: its PowerDNS does not answer.
    wait_until(lambda: _scrape(backend.port).get(("mountdns_backend_purges_failed_total", ()), 0) >= 1, 20,
               "the follower's failed purge counted")
    assert ("mountdns_backend_purges_pending", ()) in _scrape(backend.port)
    assert _scrape(backend.metrics_port)[("mountdns_backend_purges_failed_total", ())] >= 1


@pytest.mark.integration
def test_a_worker_that_dies_keeps_its_counts(running_backend):
    backend = running_backend
    connection = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=5)
    for _ in range(10):
        connection.request("GET", "/dnsapi/lookup/container_b_0.domain.foo.bar./ANY")
        connection.getresponse().read()
    pid = _serving_pid(_worker_pids(backend.proc.pid),
                       _socket_inode_of_port(backend.port, connection.sock.getsockname()[1]))
    wait_until(lambda: lookups(_scrape(backend.port), "ANY", "answered") == 10, 20, "10 lookups counted")
    connection.close()

    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: pid not in _worker_pids(backend.proc.pid) and len(_worker_pids(backend.proc.pid)) == 3,
               20, "the worker replaced")

    assert lookups(_scrape(backend.port), "ANY", "answered") == 10


def test_a_bad_metrics_bind_exits_2_naming_the_flag(capsys):
    from pdns_backend.cli import main
    assert main(["--metrics-bind", "no-port-here"]) == 2
    assert "--metrics-bind" in capsys.readouterr().err


def test_metric_directories_of_gone_instances_are_removed_and_live_ones_kept(tmp_path):
    from pdns_backend.metrics import DIRECTORY_PREFIX, make_directory
    gone = _dead_pid()
    (tmp_path / f"{DIRECTORY_PREFIX}{gone}-abc").mkdir()
    (tmp_path / f"{DIRECTORY_PREFIX}{os.getpid()}-old").mkdir()  # this pid in an earlier container
    (tmp_path / f"{DIRECTORY_PREFIX}{os.getppid()}-live").mkdir()  # a running instance
    (tmp_path / "something-else").mkdir()

    made = make_directory(str(tmp_path))

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [Path(made).name, f"{DIRECTORY_PREFIX}{os.getppid()}-live", "something-else"])
    assert Path(made).name.startswith(f"{DIRECTORY_PREFIX}{os.getpid()}-")


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid

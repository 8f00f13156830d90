"""The backend never lets one client hurt another: misbehaving HTTP clients against the
real mountdns-backend (gunicorn + EventLoopWorker, one worker, a small connection limit,
a 1 s request timeout) while real PowerDNS queries run alongside with caches off, so
every query needs the backend. Each test checks: zero SERVFAIL or lost queries, the same
worker process throughout (no restart), bounded worker memory.

Load is bounded: a few hundred connections at most, a few seconds each."""

from __future__ import annotations

import inspect
import math
import shutil
import socket
import threading
import time

import pytest

from mountdns.store.redis_store import RedisStore
from mountdns.testing.hostile import QueryLoad, RawClient, TunedBackendServer, child_pids, rest_lookup_path, rss_kib
from mountdns.testing.seed import SEED_STATE
from mountdns.testing.servers import CACHES_OFF, PdnsServer, RedisServer, eventually, workdir
from pdns_backend.loglimit import LogLimiter
from tests.conftest import load

pytestmark = pytest.mark.integration

MAX_CONNECTIONS = 64
REQUEST_TIMEOUT = 1.0
NAMES = [("Container_A_0.domain.foo.bar", "A"), ("Container_D_0.domain.foo.bar", "A"),
         ("nothere.domain.foo.bar", "A"), ("domain.foo.bar", "SOA")]
SECRET = b"s3cret-client-bytes"
# Growth allowed in the worker's resident memory over one test (the attacks below send
# megabytes; what is kept must not be).
MEMORY_SLACK_KIB = 16 * 1024


@pytest.fixture(scope="module")
def stack():
    directory = workdir("mountdns-abuse-")
    redis_server = RedisServer(directory).start()
    load(RedisStore(redis_server.client()), SEED_STATE)
    backend = TunedBackendServer(directory, redis_server.url, workers=1, max_connections=MAX_CONNECTIONS,
                                 env={"MOUNTDNS_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT)}).start()
    pdns = PdnsServer(directory, backend.url, "", CACHES_OFF).start()
    [worker] = child_pids(backend.proc.pid)
    yield redis_server, backend, pdns, worker
    for process in (pdns, backend, redis_server):
        process.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def guard(stack):
    """Runs PowerDNS queries during the test, then checks nobody was hurt."""
    _, backend, pdns, worker = stack
    rss_before = rss_kib(worker)
    with QueryLoad(pdns.port, NAMES) as queries:
        yield queries
        # Always some queries during the attack, however slow the machine.
        assert eventually(lambda: queries.total >= 20, timeout=30)
    assert set(queries.rcodes) <= {"NOERROR", "NXDOMAIN"}, dict(queries.rcodes)
    assert child_pids(backend.proc.pid) == [worker], backend.log_tail()
    assert rss_kib(worker) - rss_before < MEMORY_SLACK_KIB
    log = backend.log_tail(500)
    assert "Traceback" not in log and "WORKER TIMEOUT" not in log
    assert SECRET.decode() not in log


def drip(port: int, deadline: float, closed: list, who: int):
    """Send a request one byte every 0.2 s (never its last byte) until the server closes
    the connection (then `who` goes into `closed`) or `deadline` passes."""
    request = b"GET " + rest_lookup_path("container_a_0.domain.foo.bar.").encode() + b" HTTP/1.1\r\n\r\n"
    client = RawClient(port)
    try:
        unsent = list(request[:-1])
        while time.monotonic() < deadline:
            if client.closed_by_peer():
                closed.append(who)
                return
            if unsent:
                client.send(bytes([unsent.pop(0)]))
            time.sleep(0.2)
    except OSError:  # a send after the server closed its side
        closed.append(who)
    finally:
        client.close()


def test_slow_drip_clients_do_not_stall_the_worker(stack, guard):
    _, backend, _, _ = stack
    closed: list = []
    # Far longer than the 1 s whole-request deadline they must be cut off by; the request
    # itself needs ~12 s, and is never complete.
    deadline = time.monotonic() + 30.0
    drippers = [threading.Thread(target=drip, args=(backend.port, deadline, closed, i)) for i in range(6)]
    for thread in drippers:
        thread.start()
    for thread in drippers:
        thread.join(60)
    assert sorted(closed) == list(range(6))


def test_an_idle_flood_does_not_shut_out_a_fresh_powerdns(stack, guard):
    _, backend, _, _ = stack
    directory = workdir("mountdns-abuse-pdns-")
    flood = []
    try:
        for _ in range(4 * MAX_CONNECTIONS):
            flood.append(socket.create_connection(("127.0.0.1", backend.port), timeout=5))
        # A PowerDNS started in the middle of the flood opens all its connections now.
        fresh = PdnsServer(directory, backend.url, "", CACHES_OFF).start()
        try:
            queries = QueryLoad(fresh.port, NAMES, limit=100)
            queries.run()
            queries_done = queries.rcodes
        finally:
            fresh.stop()
    finally:
        for sock in flood:
            sock.close()
        shutil.rmtree(directory, ignore_errors=True)
    assert sum(queries_done.values()) == 100 and set(queries_done) <= {"NOERROR", "NXDOMAIN"}, dict(queries_done)


def test_idle_connections_that_never_send_are_closed_by_the_request_deadline(stack, guard):
    _, backend, _, _ = stack
    clients = [RawClient(backend.port) for _ in range(MAX_CONNECTIONS // 2)]
    try:
        assert eventually(lambda: all(c.closed_by_peer() for c in clients), timeout=15)
    finally:
        for client in clients:
            client.close()


@pytest.mark.parametrize("request_bytes, status", [
    (b"POST /dnsapi HTTP/1.1\r\nContent-Type: text/javascript\r\nContent-Length: 52428800\r\n\r\n"
     + SECRET * 1000, 413),
    (b"POST /dnsapi HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
     + b"".join(b"%x\r\n%s\r\n" % (len(SECRET) * 500, SECRET * 500) for _ in range(200)), 413),
    (b"GET /dnsapi/lookup/" + SECRET * 1000 + b"/A HTTP/1.1\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, SECRET * 100) for i in range(100)) + b"\r\n", 431),
])
def test_oversized_requests_are_refused_without_echo(stack, guard, request_bytes, status):
    _, backend, _, _ = stack
    client = RawClient(backend.port)
    try:
        try:
            client.send(request_bytes)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before it was all sent
        got, headers, body = client.read_response()
        assert got == status and SECRET not in body and len(body) < 100
        assert headers.get("connection") == "close"
    finally:
        client.close()


@pytest.mark.parametrize("request_bytes", [
    b"POST /dnsapi HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nnot-hex\r\n" + SECRET + b"\r\n0\r\n\r\n",
    b"POST /dnsapi HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n" + SECRET,
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + SECRET + b"\r\n\r\n",
    b"GET /dnsapi/lookup/a%zz/A HTTP/1.1\r\nHost: " + SECRET + b"\r\n\r\n",
    b"POST /dnsapi HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(b'{"method": "' + SECRET + b'\x00\xff')
    + b'{"method": "' + SECRET + b'\x00\xff',
])
def test_malformed_requests_get_400_never_500(stack, guard, request_bytes):
    _, backend, _, _ = stack
    client = RawClient(backend.port)
    try:
        client.send(request_bytes)
        status, _, body = client.read_response()
        assert status == 400 and SECRET not in body
    finally:
        client.close()


def test_pipelined_requests_are_answered_in_order(stack, guard):
    _, backend, _, _ = stack
    names = ["container_a_0.domain.foo.bar.", "container_d_0.domain.foo.bar.", "nothere.domain.foo.bar."]
    requests = [f"GET {rest_lookup_path(n)} HTTP/1.1\r\n\r\n".encode() for n in names] * 100
    client = RawClient(backend.port)
    try:
        client.send(b"".join(requests))
        contents = [client.read_response()[2] for _ in requests]
    finally:
        client.close()
    assert all(b"1.2.3.4" in c for c in contents[0::3])
    assert all(b"container_b_0" in c for c in contents[1::3])
    assert all(c == b'{"result":false}' for c in contents[2::3])


def test_a_pipelining_client_that_reads_late_gets_every_answer(stack, guard):
    _, backend, _, _ = stack
    request = f"GET {rest_lookup_path('container_a_0.domain.foo.bar.')} HTTP/1.1\r\n\r\n".encode()
    client = RawClient(backend.port, timeout=10)
    try:
        client.send(request * 3000)
        time.sleep(1.5)  # PowerDNS's queries (the guard) go on meanwhile
        statuses = [client.read_response()[0] for _ in range(3000)]
    finally:
        client.close()
    assert statuses == [200] * 3000


def test_a_redis_outage_is_one_log_line_per_interval_and_bodies_do_not_say_where_redis_is(stack):
    redis_server, backend, pdns, worker = stack
    path = rest_lookup_path("container_a_0.domain.foo.bar.")

    def first_lines() -> int:
        """Log lines that open an interval (not the counts reported when one is over)."""
        return sum(1 for line in backend.log_tail(10_000).splitlines()
                   if "store unavailable" in line and "more like this in the last" not in line)

    before = first_lines()
    redis_server.stop()
    outage = time.monotonic()
    client = RawClient(backend.port)
    try:
        answers = [client.get(path) for _ in range(300)]
    finally:
        client.close()
        redis_server.start()
        load(RedisStore(redis_server.client()), SEED_STATE)
    assert {(status, body) for status, _, body in answers} == {(500, b'{"result":false,"log":["mountdns: store unavailable"]}')}
    logged = first_lines() - before
    span = time.monotonic() - outage
    # The backend's interval is not a setting: at most one line opens each interval the
    # outage spanned (however slow the machine), so far fewer lines than failed requests.
    interval = inspect.signature(LogLimiter).parameters["interval"].default
    assert 1 <= logged <= min(math.ceil(span / interval) + 1, len(answers) // 10), (logged, span)
    assert child_pids(backend.proc.pid) == [worker]
    assert eventually(lambda: pdns.query("Container_A_0.domain.foo.bar", "A").rcode() == 0, timeout=10)

"""PowerDNS's unix-socket connector (pdns_backend.lines): JSON lines in and out, the same
answers as the HTTP connector, failures PowerDNS turns into SERVFAIL, and the limits,
first with plain bytes on a clock the test moves, then through the event loop."""

import logging
import os
import socket

import orjson
import pytest

from mountdns.store.memory_store import MemoryStore
from mountdns.testing.seed import SEED_STATE
from pdns_backend.lines import MAX_LINE, LineConnection
from pdns_backend.loglimit import LogLimiter
from pdns_backend.service import Backend
from pdns_backend.worker import EventLoop
from tests.conftest import load

LOOKUP = orjson.dumps({"method": "lookup", "parameters": {
    "qname": "Container_A_0.domain.foo.bar.", "qtype": "ANY", "remote": "127.0.0.1", "local": "127.0.0.1",
    "real-remote": "127.0.0.1/32", "zone-id": -1}}) + b"\n"


@pytest.fixture
def backend():
    store = MemoryStore()
    load(store, SEED_STATE)
    return Backend(store, zone_table_max_age=0.25)


def answer(conn: LineConnection, backend: Backend) -> list[dict]:
    conn.answered(backend.respond_many(conn.requests), now=1.0)
    lines = bytes(conn.out).split(b"\n")
    assert lines[-1] == b""
    return [orjson.loads(line) for line in lines[:-1]]


def test_a_lookup_line_gets_the_records_the_http_connector_gets(backend):
    conn = LineConnection("/dnsapi", now=0.0)
    conn.received(LOOKUP, now=0.0)
    [reply] = answer(conn, backend)
    status, body = backend.respond("GET", "/dnsapi/lookup/Container%5fA%5f0%2edomain%2efoo%2ebar%2e/ANY")
    assert status == 200 and reply == orjson.loads(body)
    assert reply["result"][0]["content"] == "1.2.3.4"


def test_lines_split_anywhere_are_answered_once_each_in_order(backend):
    conn = LineConnection("/dnsapi", now=0.0)
    init = b'{"method":"initialize","parameters":{"path":"/run/x.sock","timeout":"2000"}}\n'
    stream = init + LOOKUP + b'{"method":"getAllDomainMetadata","parameters":{"name":"domain.foo.bar."}}\n'
    for i in range(0, len(stream), 7):
        conn.received(stream[i:i + 7], now=0.0)
    assert [r[2] for r in conn.requests] == [init.strip(), LOOKUP.strip(), stream.splitlines()[2]]
    assert [r.get("result") for r in answer(conn, backend)][::2] == [True, {}]


def test_a_failed_call_has_no_result_so_powerdns_answers_servfail(backend):
    conn = LineConnection("/dnsapi", now=0.0)
    conn.received(b'{"method":"lookup","parameters":{"qname":"","qtype":"ANY"}}\nnot json\n', now=0.0)
    replies = answer(conn, backend)
    assert all("result" not in r and r["log"][0].startswith("mountdns: ") for r in replies)
    assert not conn.closing  # a bad call costs the call, not the connection


def test_a_line_over_the_limit_closes_the_connection_without_echoing_it(backend):
    conn = LineConnection("/dnsapi", now=0.0)
    conn.received(b'{"method":"lookup","parameters":{"qname":"' + b"x" * MAX_LINE, now=0.0)
    assert conn.closing and not conn.requests
    assert b"xxx" not in conn.out and b"request over" in conn.out


def test_deadlines_run_from_the_first_byte_and_idle_connections_stay_open():
    conn = LineConnection("/dnsapi", now=0.0)
    assert conn.expired(4.9, request_timeout=5.0, idle_timeout=300.0) is None
    assert conn.expired(5.1, request_timeout=5.0, idle_timeout=300.0)  # never said anything
    conn = LineConnection("/dnsapi", now=0.0)
    conn.received(LOOKUP, now=1.0)
    conn.answered([(200, b'{"result":false}')], now=1.0)
    conn.sent(len(conn.out), now=1.0)
    # PowerDNS cannot see a closed unix connection before it writes: never closed for idling.
    assert conn.expired(10_000.0, request_timeout=5.0, idle_timeout=300.0) is None
    conn.received(LOOKUP[:10], now=10_000.0)
    for t in (10_001.0, 10_002.0, 10_003.0, 10_004.0):
        conn.received(b" ", now=t)  # dripping does not extend the deadline
    assert conn.expired(10_005.5, request_timeout=5.0, idle_timeout=300.0)


def test_the_event_loop_serves_the_unix_socket_with_json_lines(backend, tmp_path):
    path = str(tmp_path / "backend.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    listener.setblocking(False)
    loop = EventLoop(backend.respond, LogLimiter(logging.getLogger("test.lines")), [listener], 8, 5.0, 300.0,
                     respond_many=backend.respond_many, url_prefix=backend.url_prefix)
    loop.listen(True)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(path)
        client.settimeout(5)
        client.sendall(LOOKUP + LOOKUP)
        client.setblocking(False)
        data = b""
        for _ in range(200):
            if data.count(b"\n") >= 2:
                break
            loop.step(0.05)
            try:
                data += client.recv(65536)
            except BlockingIOError:
                pass
        replies = [orjson.loads(line) for line in data.splitlines()]
        assert [r["result"][0]["content"] for r in replies] == ["1.2.3.4", "1.2.3.4"]
    finally:
        client.close()
        for sock in list(loop.connections):
            loop.close(sock)
        loop.selector.close()
        listener.close()
        os.unlink(path)

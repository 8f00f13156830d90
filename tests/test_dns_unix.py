"""PowerDNS's unix-socket connector through the real thing: redis-server,
mountdns-backend under gunicorn with --pdns-socket, pdns_server 4.7 with
`remote-connection-string=unix:path=...` and its caches off, and dnspython."""

from __future__ import annotations

import shutil
import signal

import dns.rcode
import dns.rdatatype
import pytest

from mountdns.keyspace import Keys
from mountdns.plan import Changes
from mountdns.store.redis_store import RedisStore
from mountdns.testing.seed import SEED_STATE, ZONE
from mountdns.testing.servers import CACHES_OFF, BackendServer, PdnsServer, RedisServer, wait_until, workdir
from tests.conftest import load

pytestmark = pytest.mark.integration


@pytest.fixture
def stack():
    directory = workdir("mountdns-unix-")
    socket_path = directory / "backend.sock"
    started = []
    try:
        redis_server = RedisServer(directory).start()
        started.append(redis_server)
        load(RedisStore(redis_server.client()), SEED_STATE)
        backend = BackendServer(directory, redis_server.url, extra_args=("--pdns-socket", str(socket_path))).start()
        started.append(backend)
        wait_until(socket_path.exists, 10, "the backend's unix socket")
        pdns = PdnsServer(directory, backend.url, settings={
            **CACHES_OFF, "remote-connection-string": f"unix:path={socket_path},timeout=2000"}).start()
        started.append(pdns)
        yield redis_server, backend, pdns
    finally:
        for server in reversed(started):
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def answer(pdns, name: str, rdtype: str = "A") -> tuple[str, list[str]]:
    response = pdns.query(name, rdtype)
    return dns.rcode.to_text(response.rcode()), sorted(
        f"{dns.rdatatype.to_text(rrset.rdtype)} {rr.to_text().lower()}" for rrset in response.answer for rr in rrset)


def test_parents_children_missing_names_and_the_apex_answer_as_over_http(stack):
    _, _, pdns = stack
    assert answer(pdns, "Container_A_0.domain.foo.bar") == ("NOERROR", ["A 1.2.3.4"])
    assert answer(pdns, "Container_D_0.domain.foo.bar") == (
        "NOERROR", ["A 2.3.4.5", "CNAME container_b_0.domain.foo.bar."])
    assert answer(pdns, "nothere.domain.foo.bar") == ("NXDOMAIN", [])
    assert answer(pdns, "container_a_0.domain.foo.bar", "AAAA") == ("NOERROR", [])
    rcode, records = answer(pdns, ZONE, "SOA")
    assert rcode == "NOERROR" and records[0].startswith("SOA ns1.domain.foo.bar. hostmaster.domain.foo.bar.")


def test_a_change_in_redis_is_answered_at_once_and_the_new_serial_within_the_bound(stack):
    redis_server, _, pdns = stack
    store = RedisStore(redis_server.client())
    store.apply(Changes(parents_put={f"new.{ZONE}": "node-2"}, bump_serials=frozenset({ZONE})))
    assert answer(pdns, f"new.{ZONE}") == ("NOERROR", ["A 3.4.5.6"])
    serial = int(redis_server.client().hget(Keys().zone(ZONE), "serial"))
    wait_until(lambda: answer(pdns, ZONE, "SOA")[1][0].split()[3] == str(serial), 10, "the new serial")


def test_redis_unreachable_is_servfail_not_nxdomain(stack):
    redis_server, _, pdns = stack
    redis_server.stop()
    assert answer(pdns, "Container_A_0.domain.foo.bar")[0] == "SERVFAIL"
    assert answer(pdns, "nothere.domain.foo.bar")[0] == "SERVFAIL"


def test_a_restarted_backend_is_used_again_after_one_failed_call_per_connection(stack):
    _, backend, pdns = stack
    for i in range(40):  # open some of PowerDNS's connections
        answer(pdns, f"container_a_{i % 3}.domain.foo.bar")
    backend.stop(signal.SIGTERM)
    backend.start()
    results = [answer(pdns, "Container_A_0.domain.foo.bar")[0] for _ in range(80)]
    # PowerDNS learns that a unix connection is gone only when a call on it fails: at most
    # one SERVFAIL per distributor thread (32 shipped), then it reconnects.
    assert results.count("SERVFAIL") <= 32
    assert results[-1] == "NOERROR"
    assert set(results) <= {"NOERROR", "SERVFAIL"}

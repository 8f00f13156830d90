"""The zone table through the real thing: redis-server, mountdns-backend under gunicorn,
pdns_server 4.7 with its caches off and dnspython. PowerDNS's SOA probes are answered
from each worker's memory; zones added, changed and removed in Redis, a Redis restarted
empty and a trimmed announcement stream are all answered as Redis holds them within the
table's bound (--zone-table-max-age), and a table that is not fresh reads Redis."""

from __future__ import annotations

import shutil
from dataclasses import replace

import dns.rcode
import dns.rdatatype
import pytest

from mountdns.keyspace import Keys
from mountdns.plan import Changes
from mountdns.records import Zone
from mountdns.store.redis_store import RedisStore
from mountdns.testing.seed import SEED_STATE, SEED_ZONE, ZONE
from mountdns.testing.servers import CACHES_OFF, BackendServer, PdnsServer, RedisServer, wait_until, workdir
from tests.conftest import load

pytestmark = pytest.mark.integration

KEYS = Keys()
OTHER = Zone(name="other.example", nameservers=("ns1.other.example",), hostmaster="hostmaster.other.example")
DEADLINE = 10.0  # generous: the bound is --zone-table-max-age (0.25 s by default)


@pytest.fixture
def stack():
    """Redis of its own (restartable), a default backend (3 workers, max age 0.25 s), a
    one-worker backend with a 60 s max age (so what it answers from memory is visible),
    and a PowerDNS on each, caches off."""
    directory = workdir("mountdns-zone-table-")
    started = []
    try:
        redis_server = RedisServer(directory).start()
        started.append(redis_server)
        store = RedisStore(redis_server.client())
        load(store, SEED_STATE)
        fresh = BackendServer(directory, redis_server.url, name="backend-default").start()
        started.append(fresh)
        slow = BackendServer(directory, redis_server.url, workers=1, name="backend-long",
                             extra_args=("--zone-table-max-age", "60")).start()
        started.append(slow)
        pdns = PdnsServer(directory, fresh.url, settings=CACHES_OFF).start()
        started.append(pdns)
        (directory / "long").mkdir()  # a control socket of its own
        pdns_long = PdnsServer(directory / "long", slow.url, settings=CACHES_OFF).start()
        started.append(pdns_long)
        yield redis_server, store, pdns, pdns_long
    finally:
        for server in reversed(started):
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def soa(pdns, zone: str = ZONE) -> tuple[str, int | None]:
    """(rcode, SOA serial) of the zone's apex as PowerDNS answers it."""
    response = pdns.query(zone, "SOA")
    serial = next((rr.serial for rrset in response.answer if rrset.rdtype == dns.rdatatype.SOA for rr in rrset),
                  None)
    return dns.rcode.to_text(response.rcode()), serial


def nameservers(pdns, zone: str = ZONE) -> list[str]:
    """The apex's NS names. (PowerDNS also looks up their addresses for the additional
    section: names in the zone, read from Redis.)"""
    response = pdns.query(zone, "NS")
    return sorted(rr.target.to_text() for rrset in response.answer if rrset.rdtype == dns.rdatatype.NS
                  for rr in rrset)


def a_record(pdns, name: str) -> tuple[str, list[str]]:
    response = pdns.query(name, "A")
    return dns.rcode.to_text(response.rcode()), sorted(
        rr.to_text() for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for rr in rrset)


def serial_in_redis(client, zone: str = ZONE) -> int:
    return int(client.hget(KEYS.zone(zone), "serial"))


def write_in_zone(store, name: str, zone: str = ZONE):
    store.apply(Changes(parents_put={f"{name}.{zone}": "node-0"}, bump_serials=frozenset({zone})))


def evalsha_calls(client) -> int:
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def test_soa_probes_come_from_memory_and_any_lookup_in_the_zone_renews_them(stack):
    redis_server, store, _, pdns_long = stack
    client = redis_server.client()
    _, before = soa(pdns_long)
    assert before == serial_in_redis(client)
    write_in_zone(store, "new-1")
    assert serial_in_redis(client) == before + 1
    calls = evalsha_calls(client)
    # Every lookup of a SOA query is an apex lookup: all from memory, none to Redis.
    assert soa(pdns_long)[1] == before
    assert evalsha_calls(client) == calls
    # A name in the zone is read from Redis, and its reply carries the zone as it is now.
    assert a_record(pdns_long, f"new-1.{ZONE}") == ("NOERROR", ["1.2.3.4"])
    assert evalsha_calls(client) > calls
    assert soa(pdns_long)[1] == before + 1


def test_a_changed_serial_and_nameservers_are_answered_within_the_bound(stack):
    redis_server, store, pdns, _ = stack
    client = redis_server.client()
    _, before = soa(pdns)
    assert nameservers(pdns) == ["ns1.domain.foo.bar."]
    write_in_zone(store, "new-2")
    wait_until(lambda: soa(pdns)[1] == serial_in_redis(client) == before + 1, DEADLINE, "the new serial")
    changed = replace(SEED_ZONE, nameservers=("ns1.domain.foo.bar", "ns2.domain.foo.bar"))
    store.apply(Changes(zones_put={ZONE: changed}, bump_serials=frozenset({ZONE})))
    wait_until(lambda: nameservers(pdns) == ["ns1.domain.foo.bar.", "ns2.domain.foo.bar."], DEADLINE,
               "the new nameservers")
    # Another worker may still answer from its older read, within the same bound.
    wait_until(lambda: soa(pdns)[1] == serial_in_redis(client), DEADLINE, "the changed zone's serial")


def test_a_zone_added_then_removed_is_served_then_refused(stack):
    redis_server, store, pdns, pdns_long = stack
    store.apply(Changes(zones_put={OTHER.name: OTHER}, parents_put={f"web.{OTHER.name}": "node-1"},
                        nodes_put={"node-1": ("2.3.4.5",)}))
    for server in (pdns, pdns_long):
        server.control("rediscover")  # PowerDNS learns of new zones as it always has
    for server in (pdns, pdns_long):
        wait_until(lambda: a_record(server, f"web.{OTHER.name}") == ("NOERROR", ["2.3.4.5"]), DEADLINE,
                   "the added zone answered")
        assert soa(server, OTHER.name)[0] == "NOERROR"
    store.apply(Changes(zones_delete=frozenset({OTHER.name}), parents_delete=frozenset({f"web.{OTHER.name}"})))
    # The default bound: refused (as PowerDNS answers for a zone its backend no longer has)
    # once every worker's entry is older than 0.25 s.
    wait_until(lambda: soa(pdns, OTHER.name)[0] == "REFUSED" and a_record(pdns, f"web.{OTHER.name}")[0] == "REFUSED",
               DEADLINE, "the removed zone refused")
    # The long bound: the first name lookup's reply ("in no zone") drops the zone at once.
    assert a_record(pdns_long, f"web.{OTHER.name}")[1] == []
    assert soa(pdns_long, OTHER.name)[0] == "REFUSED"
    # The other zone is untouched.
    assert a_record(pdns, f"container_a_0.{ZONE}") == ("NOERROR", ["1.2.3.4"])


def test_redis_restarted_empty_is_answered_as_empty_then_the_rewrite_as_written(stack):
    redis_server, store, pdns, pdns_long = stack
    assert a_record(pdns, f"container_a_0.{ZONE}") == ("NOERROR", ["1.2.3.4"])
    assert a_record(pdns_long, f"container_a_0.{ZONE}") == ("NOERROR", ["1.2.3.4"])
    redis_server.stop()
    redis_server.start()  # empty, same port
    wait_until(lambda: soa(pdns)[0] == "REFUSED", DEADLINE, "the emptied zone refused")
    # A name lookup tells the long-lived table that the zone is gone.
    assert a_record(pdns_long, f"container_a_0.{ZONE}")[1] == []
    assert soa(pdns_long)[0] == "REFUSED"
    load(RedisStore(redis_server.client()), SEED_STATE)  # the sync rewrites everything
    for server in (pdns, pdns_long):
        wait_until(lambda: a_record(server, f"container_a_0.{ZONE}") == ("NOERROR", ["1.2.3.4"]), DEADLINE,
                   "answers again after the rewrite")
        wait_until(lambda: soa(server)[0] == "NOERROR", DEADLINE, "the apex answered again")


def test_a_trimmed_or_deleted_announcement_stream_changes_nothing(stack):
    redis_server, store, pdns, _ = stack
    client = redis_server.client()
    write_in_zone(store, "new-3")
    client.xtrim(KEYS.announcements, maxlen=0)
    write_in_zone(store, "new-4")
    client.delete(KEYS.announcements)
    write_in_zone(store, "new-5")
    wait_until(lambda: soa(pdns)[1] == serial_in_redis(client), DEADLINE, "the newest serial")
    assert a_record(pdns, f"new-5.{ZONE}") == ("NOERROR", ["1.2.3.4"])

"""Apex lookups (PowerDNS's SOA probes) from each worker's zone table: what a Redis reply
teaches, how long an entry answers, and the Backend using it, on a clock the test moves."""

from dataclasses import replace

import pytest

from mountdns.plan import Changes
from mountdns.records import OUTSIDE, Resolution, Zone
from mountdns.store.memory_store import MemoryStore
from mountdns.testing.seed import SEED_STATE, SEED_ZONE, ZONE
from pdns_backend.service import Backend
from pdns_backend.zone_table import ZoneTable, suffixes
from tests.conftest import load

SUB = Zone(name="sub." + ZONE, nameservers=("ns1.sub." + ZONE,), hostmaster="hostmaster.sub." + ZONE)
APEX = "/dnsapi/lookup/domain%2efoo%2ebar%2e/ANY"


class Clock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """A MemoryStore that counts the names it resolves."""

    def __init__(self, store):
        self.store = store
        self.resolved: list[str] = []

    def resolve(self, qname):
        self.resolved.append(qname)
        return self.store.resolve(qname)

    def __getattr__(self, name):
        return getattr(self.store, name)


def soa_serial(status_body) -> int:
    import orjson
    status, body = status_body
    assert status == 200
    soa = [r for r in orjson.loads(body)["result"] if r["qtype"] == "SOA"]
    return int(soa[0]["content"].split()[2])


def write_in_zone(store, name: str):
    """A batch writing one parent in the zone, which moves the zone's serial."""
    store.apply(Changes(parents_put={f"{name}.{ZONE}": "node-0"}, bump_serials=frozenset({ZONE})))


def test_suffixes_run_from_the_name_to_its_last_label():
    assert list(suffixes("a.b.c")) == ["a.b.c", "b.c", "c"]
    assert list(suffixes("c")) == ["c"]


def test_a_zone_read_from_redis_answers_its_apex_until_max_age_has_passed():
    clock = Clock()
    table = ZoneTable(0.25, clock)
    table.learn("x." + ZONE, Resolution("parent", SEED_ZONE, addresses=("1.2.3.4",)), read_at=clock.now)
    assert table.apex(ZONE) == Resolution("apex", SEED_ZONE)
    clock.now += 0.25
    assert table.apex(ZONE) == Resolution("apex", SEED_ZONE)
    clock.now += 0.001
    assert table.apex(ZONE) is None
    assert table.apex("x." + ZONE) is None  # only zones' apexes, never a name's records


def test_every_reply_renews_its_zone_with_the_definition_it_carries():
    clock = Clock()
    table = ZoneTable(0.25, clock)
    table.learn("a." + ZONE, Resolution("none", SEED_ZONE), read_at=clock.now)
    clock.now += 0.2
    changed = replace(SEED_ZONE, serial=SEED_ZONE.serial + 7, nameservers=("ns2.domain.foo.bar",))
    table.learn("b." + ZONE, Resolution("child", changed, target="a." + ZONE), read_at=clock.now)
    clock.now += 0.2  # 0.4 s after the first read, 0.2 s after the second
    assert table.apex(ZONE) == Resolution("apex", changed)


def test_an_older_read_never_replaces_a_newer_one():
    table = ZoneTable(1.0, Clock(10.0))
    newer = replace(SEED_ZONE, serial=9)
    table.learn("a." + ZONE, Resolution("none", newer), read_at=10.0)
    table.learn("b." + ZONE, Resolution("none", SEED_ZONE), read_at=9.5)
    assert table.apex(ZONE) == Resolution("apex", newer)


def test_outside_means_no_suffix_of_the_name_is_a_zone_any_more():
    clock = Clock()
    table = ZoneTable(10.0, clock)
    table.learn("a." + ZONE, Resolution("none", SEED_ZONE), read_at=clock.now)
    table.learn("a.sub." + ZONE, Resolution("none", SUB), read_at=clock.now)
    table.learn("x.sub." + ZONE, OUTSIDE, read_at=clock.now)  # Redis emptied, say
    assert table.apex(ZONE) is None and table.apex(SUB.name) is None


def test_a_reply_naming_the_parent_zone_drops_the_zone_redis_walked_past():
    clock = Clock()
    table = ZoneTable(10.0, clock)
    table.learn("a.sub." + ZONE, Resolution("none", SUB), read_at=clock.now)
    table.learn("b.sub." + ZONE, Resolution("none", SEED_ZONE), read_at=clock.now)  # sub was removed
    assert table.apex(SUB.name) is None
    assert table.apex(ZONE) == Resolution("apex", SEED_ZONE)


def test_max_age_zero_keeps_nothing():
    table = ZoneTable(0.0, Clock())
    table.learn("a." + ZONE, Resolution("none", SEED_ZONE), read_at=100.0)
    assert not table.enabled and len(table) == 0 and table.apex(ZONE) is None


def test_a_negative_max_age_is_refused():
    with pytest.raises(ValueError):
        ZoneTable(-1.0)


@pytest.fixture
def seeded():
    store = MemoryStore()
    load(store, SEED_STATE)
    return store


def test_the_backend_answers_soa_probes_from_memory_while_fresh_and_from_the_store_after(seeded):
    clock = Clock()
    store = CountingStore(seeded)
    backend = Backend(store, zone_table_max_age=0.25, clock=clock)
    first = soa_serial(backend.respond("GET", APEX))
    assert store.resolved == [ZONE]  # nothing known yet: read from the store
    assert soa_serial(backend.respond("GET", APEX)) == first
    assert store.resolved == [ZONE]  # the probe again: from memory
    # The zone changes in the store (a batch bumps its serial): still the read of 0.25 s ago...
    write_in_zone(seeded, "new-1")
    clock.now += 0.25
    assert soa_serial(backend.respond("GET", APEX)) == first
    # ... and past max_age the store's current serial.
    clock.now += 0.01
    assert soa_serial(backend.respond("GET", APEX)) == first + 1
    assert store.resolved == [ZONE, ZONE]


def test_a_name_lookup_renews_the_zone_so_the_next_probe_sees_the_change(seeded):
    clock = Clock()
    store = CountingStore(seeded)
    backend = Backend(store, zone_table_max_age=60.0, clock=clock)
    first = soa_serial(backend.respond("GET", APEX))
    write_in_zone(seeded, "new-1")
    assert soa_serial(backend.respond("GET", APEX)) == first  # long max_age, nothing read since
    status, _ = backend.respond("GET", "/dnsapi/lookup/container%5fa%5f0%2edomain%2efoo%2ebar%2e/ANY")
    assert status == 200
    assert soa_serial(backend.respond("GET", APEX)) == first + 1
    assert store.resolved == [ZONE, "container_a_0." + ZONE]


def test_a_removed_zone_stops_answering_once_a_reply_says_so(seeded):
    clock = Clock()
    backend = Backend(seeded, zone_table_max_age=60.0, clock=clock)
    soa_serial(backend.respond("GET", APEX))
    seeded.apply(Changes(zones_delete=frozenset({ZONE})))
    backend.respond("GET", "/dnsapi/lookup/anything%2edomain%2efoo%2ebar%2e/ANY")  # outside now
    status, body = backend.respond("GET", APEX)
    assert (status, body) == (200, b'{"result":false}')


def test_without_a_zone_table_every_probe_reads_the_store(seeded):
    store = CountingStore(seeded)
    backend = Backend(store, zone_table_max_age=0.0)
    for _ in range(3):
        soa_serial(backend.respond("GET", APEX))
    assert store.resolved == [ZONE] * 3

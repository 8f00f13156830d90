"""Through the real thing: redis-server, mountdns-backend under gunicorn, pdns_server 4.7
with the shipped pdns/pdns.conf (caches off, so every query reaches the backend), and a
real DNS client (dnspython). The seed's example (FIG. 1-7) is loaded through the keyspace
module's writer."""

from __future__ import annotations

import shutil

import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from mountdns.keyspace import Keys
from mountdns.store.redis_store import RedisStore
from mountdns.records import State
from tests.conftest import load
from mountdns.testing.seed import NODES, SEED_STATE, ZONE
from mountdns.testing.servers import CACHES_OFF, BackendServer, PdnsServer, RedisServer, wait_until, workdir

pytestmark = pytest.mark.integration

KEYS = Keys()
CONNECTOR_OPTIONS = {"rest": "", "post": ",post=1", "post_json": ",post=1,post_json=1"}
NODE_1 = next(n for n, a in NODES.items() if a == ("2.3.4.5",))


@pytest.fixture(scope="module")
def backend(redis_server):
    directory = workdir("mountdns-backend-")
    # Every test here seeds the store anew (a new SOA serial) and asks at once: the zone
    # table, which may answer SOA probes from a read up to 0.25 s old, is off here; its
    # bound is tested in test_zone_table_dns.py.
    server = BackendServer(directory, redis_server.url, extra_args=("--zone-table-max-age=0",)).start()
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module", params=list(CONNECTOR_OPTIONS))
def pdns(request, backend, redis_server):
    # pdns needs its zone list at start: load the seed before it comes up.
    load(RedisStore(redis_server.client()), SEED_STATE)
    directory = workdir("mountdns-pdns-")
    server = PdnsServer(directory, backend.url, CONNECTOR_OPTIONS[request.param], CACHES_OFF).start()
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def store(redis_client, pdns):
    store = RedisStore(redis_client)
    load(store, SEED_STATE)
    return store


def addresses(response, rdtype="A"):
    return sorted(rr.to_text() for rrset in response.answer if rrset.rdtype == dns.rdatatype.from_text(rdtype)
                  for rr in rrset)


def cnames(response):
    # Compression may reuse the question's letter case for the target: compare lowercased.
    return [(rrset.name.to_text().lower(), rr.target.to_text().lower()) for rrset in response.answer
            if rrset.rdtype == dns.rdatatype.CNAME for rr in rrset]


def test_parents_resolve_to_their_nodes_address(pdns, store):
    expected = {"Container_A_0": "1.2.3.4", "Container_A_1": "2.3.4.5", "Container_B_0": "2.3.4.5",
                "Container_A_2": "3.4.5.6"}
    for name, address in expected.items():
        response = pdns.query(f"{name}.domain.foo.bar", "A")
        assert response.rcode() == dns.rcode.NOERROR
        assert addresses(response) == [address]
        assert response.flags & dns.flags.AA


@pytest.mark.parametrize("qname", ["Container_D_0.domain.foo.bar", "container_d_0.DOMAIN.foo.bar",
                                   "CONTAINER_D_0.domain.foo.bar."])
def test_child_resolves_through_cname_in_any_letter_case(pdns, store, qname):
    response = pdns.query(qname, "A")
    assert response.rcode() == dns.rcode.NOERROR
    assert [target for _, target in cnames(response)] == ["container_b_0.domain.foo.bar."]
    assert addresses(response) == ["2.3.4.5"]


def test_every_seed_child_follows_its_parent(pdns, store):
    for child, parent in SEED_STATE.children.items():
        response = pdns.query(child, "A")
        assert addresses(response) == list(NODES[SEED_STATE.parents[parent]]), child


def test_unknown_name_is_nxdomain_with_the_soa(pdns, store):
    response = pdns.query("nothere.domain.foo.bar", "A")
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert [rrset.rdtype for rrset in response.authority] == [dns.rdatatype.SOA]


def test_aaaa_on_an_ipv4_only_parent_is_nodata(pdns, store):
    response = pdns.query("container_a_0.domain.foo.bar", "AAAA")
    assert response.rcode() == dns.rcode.NOERROR
    assert response.answer == []
    assert [rrset.rdtype for rrset in response.authority] == [dns.rdatatype.SOA]


def test_apex_answers_soa_and_ns(pdns, store):
    soa = pdns.query(ZONE, "SOA")
    (rrset,) = soa.answer
    assert rrset[0].serial == store.zone(ZONE).serial and rrset[0].mname.to_text() == "ns1.domain.foo.bar."
    ns = pdns.query(ZONE, "NS")
    assert [rr.target.to_text() for rrset in ns.answer for rr in rrset] == ["ns1.domain.foo.bar."]


SEED_ZONE_BODY = """\
domain.foo.bar. 30 IN NS ns1.domain.foo.bar.
container_a_0.domain.foo.bar. 30 IN A 1.2.3.4
container_a_1.domain.foo.bar. 30 IN A 2.3.4.5
container_a_2.domain.foo.bar. 30 IN A 3.4.5.6
container_b_0.domain.foo.bar. 30 IN A 2.3.4.5
container_c_0.domain.foo.bar. 30 IN CNAME container_a_1.domain.foo.bar.
container_c_1.domain.foo.bar. 30 IN CNAME container_a_2.domain.foo.bar.
container_d_0.domain.foo.bar. 30 IN CNAME container_b_0.domain.foo.bar.
container_e_0.domain.foo.bar. 30 IN CNAME container_a_0.domain.foo.bar.
"""


def test_axfr_transfers_exactly_the_seed_zone_between_two_soas(pdns, store):
    records = [f"{rrset.name} {rrset.ttl} IN {dns.rdatatype.to_text(rrset.rdtype)} {rr.to_text()}"
               for message in dns.query.xfr("127.0.0.1", ZONE, port=pdns.port, timeout=5, relativize=False)
               for rrset in message.answer for rr in rrset]
    soa = (f"domain.foo.bar. 30 IN SOA ns1.domain.foo.bar. hostmaster.domain.foo.bar. "
           f"{store.zone(ZONE).serial} 3600 600 604800 30")
    assert records[0] == records[-1] == soa
    assert sorted(records[1:-1]) == sorted(SEED_ZONE_BODY.splitlines())


def raw_keys(client, pattern):
    return {key: client.get(key) for key in client.scan_iter(match=pattern)}


def test_node_moves_with_one_write_and_children_follow(pdns, store, redis_client):
    assert addresses(pdns.query("Container_D_0.domain.foo.bar", "A")) == ["2.3.4.5"]
    children_before = raw_keys(redis_client, KEYS.pattern("child"))
    parents_before = raw_keys(redis_client, KEYS.pattern("parent"))

    moved = State(zones=SEED_STATE.zones, nodes={**NODES, NODE_1: ("12.34.5.6",)},
                  parents=SEED_STATE.parents, children=SEED_STATE.children)
    changes = load(store, moved)

    assert changes.key_writes() == 1 and dict(changes.nodes_put) == {NODE_1: ("12.34.5.6",)}
    assert redis_client.get(KEYS.node(NODE_1)) == b"12.34.5.6"
    assert raw_keys(redis_client, KEYS.pattern("child")) == children_before
    assert raw_keys(redis_client, KEYS.pattern("parent")) == parents_before
    for name in ("Container_D_0", "Container_B_0", "Container_A_1", "Container_C_0"):
        assert addresses(pdns.query(f"{name}.domain.foo.bar", "A")) == ["12.34.5.6"], name
    assert addresses(pdns.query("Container_E_0.domain.foo.bar", "A")) == ["1.2.3.4"]


def test_tcp_queries_answer_like_udp(pdns, store):
    response = pdns.query("container_c_0.domain.foo.bar", "A", tcp=True)
    assert addresses(response) == ["2.3.4.5"]


@pytest.fixture
def own_stack():
    """A stack with its own Redis, so the test can stop and restart it."""
    directory = workdir("mountdns-outage-")
    redis_server = RedisServer(directory).start()
    load(RedisStore(redis_server.client()), SEED_STATE)
    backend = BackendServer(directory, redis_server.url, workers=1).start()
    pdns = PdnsServer(directory, backend.url, "", CACHES_OFF).start()
    yield redis_server, backend, pdns
    for process in (pdns, backend, redis_server):
        process.stop()
    shutil.rmtree(directory, ignore_errors=True)


def test_redis_outage_is_servfail_not_nxdomain_and_answers_return(own_stack):
    redis_server, backend, pdns = own_stack
    assert addresses(pdns.query("Container_D_0.domain.foo.bar", "A")) == ["2.3.4.5"]

    redis_server.stop()
    for name in ("Container_D_0.domain.foo.bar", "container_a_0.domain.foo.bar", "nothere.domain.foo.bar"):
        assert pdns.query(name, "A", timeout=5).rcode() == dns.rcode.SERVFAIL, name

    # Redis comes back empty (no persistence here): the data is written again, as the
    # sync's resync would, and answers return without restarting pdns or the backend.
    redis_server.start()
    load(RedisStore(redis_server.client()), SEED_STATE)
    wait_until(lambda: addresses(pdns.query("Container_D_0.domain.foo.bar", "A")) == ["2.3.4.5"],
               10, "answers after redis returned")
    assert pdns.query("nothere.domain.foo.bar", "A").rcode() == dns.rcode.NXDOMAIN
    assert "store unavailable" in backend.log_tail(200)

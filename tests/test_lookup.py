"""The pure lookup against every store implementation: what each kind of name answers."""

import pytest

from mountdns.plan import diff
from pdns_backend.lookup import all_domains, list_zone, lookup
from mountdns.testing.seed import NODES, SEED_STATE, SEED_ZONE, ZONE


def contents(records):
    return sorted((r["qtype"], r["qname"], r["content"], r["ttl"]) for r in records)


def test_parent_answers_its_nodes_address(seeded_store):
    assert contents(lookup(seeded_store, "container_a_0.domain.foo.bar", "ANY")) == [
        ("A", "container_a_0.domain.foo.bar.", "1.2.3.4", 30)]


def test_child_answers_cname_to_its_parent(seeded_store):
    assert contents(lookup(seeded_store, "container_d_0.domain.foo.bar", "ANY")) == [
        ("CNAME", "container_d_0.domain.foo.bar.", "container_b_0.domain.foo.bar.", 30)]


def test_owner_keeps_the_letter_case_it_was_asked_in(seeded_store):
    records = lookup(seeded_store, "container_d_0.domain.foo.bar", "ANY", owner="Container_D_0.DOMAIN.foo.bar.")
    assert records[0]["qname"] == "Container_D_0.DOMAIN.foo.bar."


def test_apex_answers_soa_and_ns_with_serial_from_the_store(seeded_store):
    records = lookup(seeded_store, ZONE, "ANY")
    serial = seeded_store.zone(ZONE).serial
    assert serial > 0
    assert contents(records) == [
        ("NS", "domain.foo.bar.", "ns1.domain.foo.bar.", 30),
        ("SOA", "domain.foo.bar.",
         f"ns1.domain.foo.bar. hostmaster.domain.foo.bar. {serial} 3600 600 604800 30", 30),
    ]


@pytest.mark.parametrize("qtype, expected", [
    ("A", [("A", "container_a_1.domain.foo.bar.", "2.3.4.5", 30)]),
    ("a", [("A", "container_a_1.domain.foo.bar.", "2.3.4.5", 30)]),
    ("AAAA", []),
    ("CNAME", []),
    ("MX", []),
])
def test_specific_qtype_returns_only_records_of_that_type(seeded_store, qtype, expected):
    assert contents(lookup(seeded_store, "container_a_1.domain.foo.bar", qtype)) == expected


def test_unknown_name_in_zone_has_no_records(seeded_store):
    assert lookup(seeded_store, "nothere.domain.foo.bar", "ANY") == []


def test_name_outside_every_zone_has_no_records(seeded_store):
    assert lookup(seeded_store, "container_a_0.example.org", "ANY") == []
    assert lookup(seeded_store, "bar", "ANY") == []


def test_records_carry_the_zone_id_as_domain_id(seeded_store):
    (record,) = lookup(seeded_store, "container_e_0.domain.foo.bar", "ANY")
    assert record["domain_id"] == SEED_ZONE.id


def test_dual_stack_parent_answers_a_and_aaaa(any_store):
    node = next(iter(NODES))
    state = SEED_STATE.__class__(zones=SEED_STATE.zones, nodes={**NODES, node: ("1.2.3.4", "2001:db8::1")},
                                 parents=SEED_STATE.parents, children=SEED_STATE.children)
    any_store.apply(diff(any_store.read_state(), state))
    name = next(p for p, n in state.parents.items() if n == node)
    assert contents(lookup(any_store, name, "ANY")) == [
        ("A", name + ".", "1.2.3.4", 30), ("AAAA", name + ".", "2001:db8::1", 30)]
    assert contents(lookup(any_store, name, "AAAA")) == [("AAAA", name + ".", "2001:db8::1", 30)]


def test_node_move_is_seen_by_the_children_without_touching_them(seeded_store):
    node = next(n for n, a in NODES.items() if a == ("2.3.4.5",))
    moved = SEED_STATE.__class__(zones=SEED_STATE.zones, nodes={**NODES, node: ("12.34.5.6",)},
                                 parents=SEED_STATE.parents, children=SEED_STATE.children)
    before = seeded_store.read_state()
    changes = diff(before, moved)
    assert changes.key_writes() == 1 and dict(changes.nodes_put) == {node: ("12.34.5.6",)}
    seeded_store.apply(changes)
    after = seeded_store.read_state()
    assert after.children == before.children and after.parents == before.parents
    assert contents(lookup(seeded_store, "container_b_0.domain.foo.bar", "A")) == [
        ("A", "container_b_0.domain.foo.bar.", "12.34.5.6", 30)]
    assert after.zones[ZONE].serial == before.zones[ZONE].serial + 1


def test_get_all_domains_lists_the_zone_with_its_serial(seeded_store):
    (domain,) = all_domains(seeded_store)
    assert domain["zone"] == "domain.foo.bar." and domain["id"] == SEED_ZONE.id
    assert domain["kind"] == "native" and domain["serial"] == seeded_store.zone(ZONE).serial


def test_list_returns_soa_ns_and_every_record_of_the_zone(seeded_store):
    records = list_zone(seeded_store, ZONE)
    types = [r["qtype"] for r in records]
    assert types[:2] == ["SOA", "NS"]
    assert types.count("A") == 4 and types.count("CNAME") == 4
    assert ("CNAME", "container_c_1.domain.foo.bar.", "container_a_2.domain.foo.bar.", 30) in contents(records)


def test_list_of_an_unknown_zone_is_false(seeded_store):
    assert list_zone(seeded_store, "example.org") is False

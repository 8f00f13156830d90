"""What a store holds after a full write: the desired records themselves (shared, not
copied), the same as applying the changes one by one gives."""

from __future__ import annotations

from mountdns.plan import applied, applied_in_full, diff
from mountdns.records import State, Zone
from mountdns.testing.seed import SEED_STATE, ZONE

MOVED = State(zones=SEED_STATE.zones, nodes={**SEED_STATE.nodes, "node-9": ("9.9.9.9",)},
              parents={**{k: "node-9" for k in SEED_STATE.parents}, f"new.{ZONE}": "node-0"},
              children={k: v for k, v in list(SEED_STATE.children.items())[1:]})


def test_a_full_write_holds_what_applying_the_changes_gives():
    for before, desired in ((State(), SEED_STATE), (SEED_STATE, MOVED), (MOVED, State(zones=MOVED.zones))):
        changes = diff(before, desired)
        assert applied_in_full(before, changes, desired) == applied(before, changes)


def test_a_full_write_shares_the_desired_records():
    after = applied_in_full(SEED_STATE, diff(SEED_STATE, MOVED), MOVED)

    assert after.parents is MOVED.parents and after.children is MOVED.children and after.nodes is MOVED.nodes


# --- the zone of many names at once ------------------------------------------------------
def test_zone_finder_answers_as_containing_zone_for_every_kind_of_name():
    from mountdns.names import containing_zone, zone_finder

    zones = {"foo.bar", "domain.foo.bar", "deep.domain.foo.bar", "other.org"}
    names = ["foo.bar", "domain.foo.bar", "a.domain.foo.bar", "b.domain.foo.bar", "x.deep.domain.foo.bar",
             "deep.domain.foo.bar", "a.b.c.foo.bar", "nothing.example", "other.org.evil", "bar", "x.other.org",
             "notdomain.foo.bar", "a.notdomain.foo.bar"]
    find = zone_finder(zones)
    for _ in range(2):  # asked again: from what it remembered
        assert [find(name) for name in names] == [containing_zone(name, zones) for name in names]


def test_a_first_write_puts_every_record_and_bumps_the_zone_once():
    zone = Zone(name="domain.foo.bar", nameservers=("ns1.domain.foo.bar",), hostmaster="h.domain.foo.bar")
    desired = State(zones={zone.name: zone}, nodes={"n1": ("10.0.0.1",)},
                    parents={f"p{i}.domain.foo.bar": "n1" for i in range(5)},
                    children={f"c{i}.domain.foo.bar": f"p{i}.domain.foo.bar" for i in range(5)})

    changes = diff(State(), desired)

    assert changes.parents_put == desired.parents and changes.children_put == desired.children
    assert changes.nodes_put == desired.nodes and changes.bump_serials == {zone.name}
    assert not (changes.parents_delete or changes.children_delete or changes.nodes_delete)


def test_a_first_write_puts_the_desired_mappings_themselves():
    changes = diff(State(), MOVED)
    assert changes.parents_put is MOVED.parents and changes.children_put is MOVED.children
    assert changes.nodes_put is MOVED.nodes and changes == diff(State(zones={}), dict_copy(MOVED))


def dict_copy(state: State) -> State:
    return State(zones=dict(state.zones), nodes=dict(state.nodes), parents=dict(state.parents),
                 children=dict(state.children))

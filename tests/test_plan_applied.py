"""What a store holds after a full write: the desired records themselves (shared, not
copied), the same as applying the changes one by one gives."""

from __future__ import annotations

from mountdns.plan import applied, applied_in_full, diff
from mountdns.records import State
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

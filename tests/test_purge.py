"""Purging PowerDNS caches: which names a batch affects and in what order (pure, named
scenarios with exact sets). The follower that sends the purges is tested in
test_purge_follower.py."""

from __future__ import annotations

from dataclasses import replace

from mountdns.plan import diff
from mountdns.records import State, Zone
from mountdns.purge import MAX_NAMES_PER_PURGE, merge_waves, purge_targets, purge_waves

ZONE = "example.com"
OTHER = "other.org"

BEFORE = State(
    zones={ZONE: Zone(ZONE, ("ns1.example.com",), "hostmaster.example.com"),
           OTHER: Zone(OTHER, ("ns1.example.com",), "hostmaster.other.org")},
    nodes={"node-1": ("10.0.0.1",), "node-2": ("10.0.0.2",)},
    parents={"p1.example.com": "node-1", "p2.other.org": "node-1", "p3.example.com": "node-2"},
    children={
        "c1.example.com": "p1.example.com",
        "c2.example.com": "c1.example.com",  # nested: a child of a child
        "c3.other.org": "c2.example.com",  # nested further, across zones
        "c4.example.com": "p3.example.com",
    },
)


def after(**changed) -> State:
    return replace(BEFORE, **{k: {**getattr(BEFORE, k), **v} for k, v in changed.items()})


def affected(new: State) -> set[str]:
    return set().union(*purge_waves(diff(BEFORE, new), BEFORE, new))


# --- every name whose answer may differ -----------------------------------------------------------------------


def test_node_move_purges_its_parents_and_every_chained_child_but_not_the_apex():
    moved = after(nodes={"node-1": ("10.9.9.9",)})
    # The serial of every zone moves, but purging an apex would flush its whole zone.
    assert diff(BEFORE, moved).bump_serials == {ZONE, OTHER}
    assert affected(moved) == {
        "p1.example.com", "p2.other.org",  # the parents on the node
        "c1.example.com", "c2.example.com", "c3.other.org",  # every child chained to them
    }


def test_node_move_leaves_names_on_other_nodes_alone():
    moved = after(nodes={"node-2": ("10.9.9.9",)})
    assert affected(moved) == {"p3.example.com", "c4.example.com"}


def test_new_child_purges_its_own_name_only():
    added = after(children={"c5.other.org": "p3.example.com"})
    assert affected(added) == {"c5.other.org"}


def test_parent_moving_to_another_node_purges_it_and_its_descendants():
    moved = after(parents={"p1.example.com": "node-2"})
    # other.org's own records did not change (c3 still names c2): only example.com's serial moves.
    assert affected(moved) == {"p1.example.com", "c1.example.com", "c2.example.com", "c3.other.org"}


def test_deleted_child_purges_the_children_that_were_chained_through_it():
    children = {k: v for k, v in BEFORE.children.items() if k != "c1.example.com"}
    removed = replace(BEFORE, children=children)
    assert affected(removed) == {"c1.example.com", "c2.example.com", "c3.other.org"}


def test_no_changes_affect_no_names():
    assert affected(BEFORE) == set()


# --- purge_targets ------------------------------------------------------------------------


def test_up_to_the_limit_each_name_is_purged():
    names = {f"h{i}.example.com" for i in range(MAX_NAMES_PER_PURGE)}
    assert purge_targets([names], [ZONE]) == sorted(names)


def test_above_the_limit_whole_zones_are_purged_and_stray_names_kept():
    names = {f"h{i}.example.com" for i in range(150)} | {f"h{i}.sub.other.org" for i in range(60)}
    names.add("stray.net")
    assert purge_targets([names], [ZONE, OTHER]) == [ZONE, OTHER, "stray.net"]


def test_parents_are_purged_before_the_children_chained_to_them():
    moved = after(nodes={"node-1": ("10.9.9.9",)})
    waves = purge_waves(diff(BEFORE, moved), BEFORE, moved)
    assert waves == [{"p1.example.com", "p2.other.org"}, {"c1.example.com"}, {"c2.example.com"},
                     {"c3.other.org"}]
    assert purge_targets(waves, [ZONE, OTHER]) == [
        "p1.example.com", "p2.other.org", "c1.example.com", "c2.example.com", "c3.other.org"]


def test_changed_zone_definition_purges_the_whole_zone():
    retimed = replace(BEFORE, zones={**BEFORE.zones, ZONE: replace(BEFORE.zones[ZONE], ttl=60)})
    assert affected(retimed) == {ZONE}


def test_queued_waves_merge_level_by_level_and_a_name_keeps_its_earliest_wave():
    assert merge_waves([{"p1"}, {"c1"}], [{"c1", "p2"}, {"c2"}, {"c3"}]) == [{"p1", "c1", "p2"}, {"c2"}, {"c3"}]
    assert merge_waves([], [{"p1"}]) == [{"p1"}]

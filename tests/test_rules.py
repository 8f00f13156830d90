"""Scenarios for the sync's rules: Kubernetes objects in, exact mappings and changes out.

Each scenario starts from the seed topology (tests/k8s_objects.py), edits the objects
the way the cluster would, and asserts the exact plan and the exact `Changes` that
`mountdns.plan.diff` computes against the previous sync.
"""

import random

import pytest

from mountdns.plan import Changes, diff
from mountdns.records import State, Zone
from sync.rules import CODES, Desired, RulesConfig, Skip, SkipCode, desired_state, publication
from mountdns.testing.objects import SEED_CONFIG, container, node, seed_fqdn, seed_objects
from mountdns.testing.seed import CHILDREN, NODES, PARENTS, SEED_STATE, SEED_ZONE, ZONE

BUMP = frozenset({ZONE})  # every change inside the seed zone moves its serial
A_0, B_0, D_0, E_0 = (seed_fqdn(label).lower() for label in ("Container_A_0", "Container_B_0", "Container_D_0",
                                                                  "Container_E_0"))


def sync(containers, nodes, config=SEED_CONFIG) -> Desired:
    return desired_state(containers, nodes, config)


def seed_changes(edit, config=SEED_CONFIG) -> tuple[Desired, Changes]:
    """Sync the seed, let `edit(containers, nodes)` change the objects in place, sync
    again: the second plan and the changes from the first sync's state."""
    containers, nodes = seed_objects()
    before = sync(containers, nodes).state
    edit(containers, nodes)
    after = sync(containers, nodes, config)
    return after, diff(before, after.state)


def named(objects, name) -> dict:
    (found,) = [obj for obj in objects if obj["metadata"]["name"] == name]
    return found


def remove(objects, name) -> None:
    objects.remove(named(objects, name))


# --- the seed ------------------------------------------------------------------------


def test_first_sync_of_the_seed_topology_gives_the_seed_state():
    plan = sync(*seed_objects())

    assert plan.state == SEED_STATE and plan.skipped == () and plan.warnings == ()
    # Each published Container's fqdn, target (node of a parent, parent fqdn of a child)
    # and the node its name resolves to, for its status.
    a_0, a_1, a_2, b_0 = (seed_fqdn(f"Container_{x}").lower() for x in ("A_0", "A_1", "A_2", "B_0"))
    assert {key: publication(plan.published, key) for key in plan.published} == {
        ("default", "container-a-0"): (a_0, "node-0", "node-0"),
        ("default", "container-a-1"): (a_1, "node-1", "node-1"),
        ("default", "container-b-0"): (b_0, "node-1", "node-1"),
        ("default", "container-a-2"): (a_2, "node-2", "node-2"),
        ("default", "container-c-0"): (seed_fqdn("Container_C_0").lower(), a_1, "node-1"),
        ("default", "container-c-1"): (seed_fqdn("Container_C_1").lower(), a_2, "node-2"),
        ("default", "container-d-0"): (D_0, b_0, "node-1"),
        ("default", "container-e-0"): (E_0, a_0, "node-0"),
    }
    assert diff(State(), plan.state) == Changes(
        zones_put={ZONE: SEED_ZONE}, nodes_put=NODES, parents_put=PARENTS, children_put=CHILDREN,
        bump_serials=BUMP)


def test_second_sync_of_unchanged_objects_changes_nothing():
    plan, changes = seed_changes(lambda containers, nodes: None)

    assert changes == Changes()
    assert changes.empty


def test_node_moved_changes_only_the_node_key():
    def move_node_1(containers, nodes):
        named(nodes, "node-1")["status"]["addresses"][0]["address"] = "12.34.5.6"

    plan, changes = seed_changes(move_node_1)

    assert changes == Changes(nodes_put={"node-1": ("12.34.5.6",)}, bump_serials=BUMP)


def test_container_moved_to_another_node_changes_only_its_parent_key():
    def move_b_0(containers, nodes):
        named(containers, "container-b-0")["spec"]["nodeName"] = "node-2"

    plan, changes = seed_changes(move_b_0)

    assert changes == Changes(parents_put={B_0: "node-2"}, bump_serials=BUMP)


def test_child_mounted_turns_its_parent_record_into_a_cname():
    containers, nodes = seed_objects()
    containers.append(container("container-f-0", node="node-1", fqdn="Container_F_0.domain.foo.bar",
                                mounted_to="container-b-0", status="PENDING", type="upf"))
    before = sync(containers, nodes).state
    assert before.parents["container_f_0.domain.foo.bar"] == "node-1"

    named(containers, "container-f-0")["status"]["deviceStatus"] = "MOUNTED"
    after = sync(containers, nodes)

    assert after.skipped == ()
    assert diff(before, after.state) == Changes(
        parents_delete=frozenset({"container_f_0.domain.foo.bar"}),
        children_put={"container_f_0.domain.foo.bar": B_0}, bump_serials=BUMP)


def test_child_unmounted_with_a_node_becomes_a_parent_on_it():
    def unmount_d_0(containers, nodes):
        named(containers, "container-d-0")["status"]["deviceStatus"] = "UNMOUNTED"

    plan, changes = seed_changes(unmount_d_0)

    assert plan.skipped == ()
    assert changes == Changes(parents_put={D_0: "node-1"}, children_delete=frozenset({D_0}), bump_serials=BUMP)


def test_child_unmounted_without_a_node_is_removed():
    def unmount_d_0_without_node(containers, nodes):
        d_0 = named(containers, "container-d-0")
        d_0["status"]["deviceStatus"] = "UNMOUNTED"
        del d_0["spec"]["nodeName"]

    plan, changes = seed_changes(unmount_d_0_without_node)

    assert plan.skipped == (Skip("default", "container-d-0", "no spec.nodeName and not mounted "
                                 "(status.deviceStatus is 'UNMOUNTED', not 'MOUNTED')", SkipCode.NOT_MOUNTED),)
    assert changes == Changes(children_delete=frozenset({D_0}), bump_serials=BUMP)


def test_container_without_node_or_mount_is_skipped():
    plan = sync([container("idle")], [])

    assert plan.state.parents == {} and plan.state.children == {}
    assert plan.skipped == (Skip("default", "idle", "no spec.nodeName and not mounted", SkipCode.NOT_MOUNTED),)


def test_parent_deleted_drops_its_children_too():
    plan, changes = seed_changes(lambda containers, nodes: remove(containers, "container-b-0"))

    assert plan.skipped == (Skip("default", "container-d-0", "parent default/container-b-0 not found", SkipCode.PARENT_NOT_FOUND),)
    assert changes == Changes(parents_delete=frozenset({B_0}), children_delete=frozenset({D_0}), bump_serials=BUMP)


# --- nested mounts and cycles -------------------------------------------------------------


def test_nested_mount_points_at_its_direct_parent():
    def mount_g_0_to_d_0(containers, nodes):
        containers.append(container("container-g-0", mounted_to="container-d-0", status="MOUNTED",
                                    fqdn="Container_G_0.domain.foo.bar"))

    plan, changes = seed_changes(mount_g_0_to_d_0)

    assert plan.skipped == ()
    assert changes == Changes(children_put={"container_g_0.domain.foo.bar": D_0}, bump_serials=BUMP)


def mount_chain(length: int, parent="container-a-0") -> list[dict]:
    """level-1 mounted to `parent`, level-2 to level-1, and so on."""
    chain = []
    for level in range(1, length + 1):
        chain.append(container(f"level-{level}", mounted_to=parent, status="MOUNTED"))
        parent = f"level-{level}"
    return chain


def test_mounts_nested_deeper_than_eight_levels_are_not_published():
    containers, nodes = seed_objects()
    plan = sync(containers + mount_chain(10), nodes)

    level_fqdn = "level-{}.default.domain.foo.bar".format
    assert plan.state.children == {**CHILDREN, level_fqdn(1): A_0,
                                   **{level_fqdn(n): level_fqdn(n - 1) for n in range(2, 9)}}
    assert plan.skipped == (
        Skip("default", "level-10", "mount depth 10 exceeds max_mount_depth 8", SkipCode.MOUNT_TOO_DEEP),
        Skip("default", "level-9", "mount depth 9 exceeds max_mount_depth 8", SkipCode.MOUNT_TOO_DEEP),
    )


def test_max_mount_depth_is_configurable():
    containers, nodes = seed_objects()
    config = RulesConfig(zones=(SEED_ZONE,), max_mount_depth=1)
    plan = sync(containers + mount_chain(2), nodes, config)

    assert plan.state.children == {**CHILDREN, "level-1.default.domain.foo.bar": A_0}
    assert plan.skipped == (Skip("default", "level-2", "mount depth 2 exceeds max_mount_depth 1", SkipCode.MOUNT_TOO_DEEP),)


def test_mount_cycle_publishes_none_of_its_members_nor_what_hangs_off_it():
    cycle = [
        container("y", node="node-0", mounted_to="z", status="MOUNTED"),
        container("x", node="node-0", mounted_to="y", status="MOUNTED"),
        container("z", node="node-0", mounted_to="x", status="MOUNTED"),
        container("w", node="node-0", mounted_to="x", status="MOUNTED"),
    ]
    containers, nodes = seed_objects()
    plan = sync(containers + cycle, nodes)

    assert plan.state == SEED_STATE
    assert plan.skipped == (
        Skip("default", "w", "parent default/x not published", SkipCode.PARENT_NOT_PUBLISHED),
        Skip("default", "x", "mount cycle: x -> y -> z -> x", SkipCode.MOUNT_CYCLE),
        Skip("default", "y", "mount cycle: x -> y -> z -> x", SkipCode.MOUNT_CYCLE),
        Skip("default", "z", "mount cycle: x -> y -> z -> x", SkipCode.MOUNT_CYCLE),
    )


def test_container_mounted_to_itself_is_a_cycle():
    plan = sync([container("loop", node="node-0", mounted_to="loop", status="MOUNTED")], [node("node-0", "1.2.3.4")])

    assert plan.state.parents == {} and plan.state.children == {}
    assert plan.skipped == (Skip("default", "loop", "mount cycle: loop -> loop", SkipCode.MOUNT_CYCLE),)


# --- conflicts and missing parents -------------------------------------------------------


def test_fqdn_conflict_is_won_by_the_older_container():
    def add_younger_and_older_claimants(containers, nodes):
        # The seed's Container_A_0 was created 2024-01-01; one newer and one older
        # Container claim the same name.
        containers.insert(0, container("impostor", node="node-2", fqdn="container_a_0.domain.foo.bar",
                                       created="2024-06-01T00:00:00Z"))
        containers.append(container("original", node="node-2", fqdn="CONTAINER_A_0.domain.foo.bar.",
                                    created="2023-12-31T23:59:59Z"))

    plan, changes = seed_changes(add_younger_and_older_claimants)

    assert plan.skipped == (
        Skip("default", "container-a-0", f"fqdn {A_0} is taken by default/original (older)", SkipCode.NAME_CONFLICT),
        # mountedTo names the object container-a-0, not the fqdn it lost.
        Skip("default", "container-e-0", "parent default/container-a-0 not published", SkipCode.PARENT_NOT_PUBLISHED),
        Skip("default", "impostor", f"fqdn {A_0} is taken by default/original (older)", SkipCode.NAME_CONFLICT),
    )
    assert changes == Changes(parents_put={A_0: "node-2"}, children_delete=frozenset({E_0}), bump_serials=BUMP)


def test_fqdn_conflict_between_containers_of_the_same_age_is_won_by_namespace_then_name():
    claimants = [
        container("b", namespace="beta", node="node-1", fqdn="shared.domain.foo.bar"),
        container("a", namespace="beta", node="node-2", fqdn="shared.domain.foo.bar"),
        container("z", namespace="alpha", node="node-0", fqdn="shared.domain.foo.bar"),
    ]
    plan = sync(claimants, [])

    assert plan.state.parents == {"shared.domain.foo.bar": "node-0"}
    reason = "fqdn shared.domain.foo.bar is taken by alpha/z (as old and first by namespace/name)"
    assert plan.skipped == (Skip("beta", "a", reason, SkipCode.NAME_CONFLICT), Skip("beta", "b", reason, SkipCode.NAME_CONFLICT))


def test_container_without_creation_time_loses_to_a_dated_one():
    plan = sync([container("undated", node="node-0", fqdn="n.domain.foo.bar", created=None),
                 container("dated", node="node-1", fqdn="n.domain.foo.bar", created="2030-01-01T00:00:00+02:00")], [])

    assert plan.state.parents == {"n.domain.foo.bar": "node-1"}
    assert plan.skipped == (Skip("default", "undated", "fqdn n.domain.foo.bar is taken by default/dated (older)", SkipCode.NAME_CONFLICT),)


def test_child_of_a_conflict_loser_is_not_published():
    containers = [
        container("winner", node="node-0", fqdn="p.domain.foo.bar", created="2024-01-01T00:00:00Z"),
        container("loser", node="node-1", fqdn="p.domain.foo.bar", created="2024-02-01T00:00:00Z"),
        container("child", mounted_to="loser", status="MOUNTED"),
    ]
    plan = sync(containers, [])

    assert plan.state.children == {}
    assert plan.skipped == (
        Skip("default", "child", "parent default/loser not published", SkipCode.PARENT_NOT_PUBLISHED),
        Skip("default", "loser", "fqdn p.domain.foo.bar is taken by default/winner (older)", SkipCode.NAME_CONFLICT),
    )


def test_child_of_a_missing_parent_is_skipped():
    containers, nodes = seed_objects()
    plan = sync(containers + [container("orphan", mounted_to="nothere", status="MOUNTED")], nodes)

    assert plan.state == SEED_STATE
    assert plan.skipped == (Skip("default", "orphan", "parent default/nothere not found", SkipCode.PARENT_NOT_FOUND),)


def test_mounted_to_names_a_container_of_the_same_namespace_only():
    containers, nodes = seed_objects()
    stray = container("stray", namespace="other", mounted_to="container-a-0", status="MOUNTED")
    plan = sync(containers + [stray], nodes)

    assert plan.state == SEED_STATE
    assert plan.skipped == (Skip("other", "stray", "parent other/container-a-0 not found", SkipCode.PARENT_NOT_FOUND),)


def test_child_of_a_parent_with_an_invalid_fqdn_is_not_published():
    plan = sync([container("bad", node="node-0", fqdn="a..domain.foo.bar"),
                 container("child", mounted_to="bad", status="MOUNTED")], [])

    assert plan.skipped == (
        Skip("default", "bad", "invalid fqdn 'a..domain.foo.bar': empty label in 'a..domain.foo.bar'", SkipCode.INVALID_NAME),
        Skip("default", "child", "parent default/bad not published", SkipCode.PARENT_NOT_PUBLISHED),
    )


# --- names and zones -------------------------------------------------------------------------


def test_fqdn_outside_every_zone_is_skipped():
    plan = sync([container("web", node="node-0", fqdn="web.example.org")], [])

    assert plan.state.parents == {}
    assert plan.skipped == (
        Skip("default", "web", "fqdn web.example.org is outside the configured zones (domain.foo.bar)", SkipCode.OUT_OF_ZONE),)


def test_zone_apex_fqdn_is_rejected():
    plan = sync([container("apex", node="node-0", fqdn="Domain.Foo.Bar.")], [])

    assert plan.state.parents == {}
    assert plan.skipped == (
        Skip("default", "apex", "fqdn domain.foo.bar is the apex of zone domain.foo.bar, not a name below it", SkipCode.OUT_OF_ZONE),)


def test_too_long_label_is_skipped():
    label = "x" * 64
    plan = sync([container("long", node="node-0", fqdn=f"{label}.domain.foo.bar")], [])

    assert plan.skipped == (
        Skip("default", "long", f"invalid fqdn '{label}.domain.foo.bar': label longer than 63 octets in "
                                f"'{label}.domain.foo.bar'", SkipCode.INVALID_NAME),)


def test_default_fqdn_is_name_dot_namespace_dot_default_zone():
    other = Zone(name="other.zone", nameservers=("ns1.other.zone",), hostmaster="hostmaster.other.zone")
    config = RulesConfig(zones=(SEED_ZONE, other))
    plan = sync([container("Web", namespace="prod", node="node-0"),
                 container("api", node="node-0", fqdn="api.other.zone")], [], config)

    assert plan.state.zones == {ZONE: SEED_ZONE, "other.zone": other}
    assert plan.state.parents == {"web.prod.domain.foo.bar": "node-0", "api.other.zone": "node-0"}


def test_name_in_a_delegated_subzone_belongs_to_the_subzone():
    sub = Zone(name="sub.domain.foo.bar", nameservers=("ns1.sub.domain.foo.bar",), hostmaster="h.sub.domain.foo.bar")
    config = RulesConfig(zones=(SEED_ZONE, sub))
    plan = sync([container("apex-of-sub", node="node-0", fqdn="sub.domain.foo.bar"),
                 container("in-sub", node="node-0", fqdn="x.sub.domain.foo.bar")], [], config)

    assert plan.state.parents == {"x.sub.domain.foo.bar": "node-0"}
    assert plan.skipped == (Skip("default", "apex-of-sub", "fqdn sub.domain.foo.bar is the apex of zone "
                                                          "sub.domain.foo.bar, not a name below it", SkipCode.OUT_OF_ZONE),)


def test_mount_types_filter_keeps_other_types_as_parents():
    config = RulesConfig(zones=(SEED_ZONE,), mount_types=frozenset({"netconf"}))

    plan, changes = seed_changes(lambda containers, nodes: None, config)

    # Container_D_0 is a "upf": with only netconf mountable it stays on its node.
    assert plan.skipped == ()
    assert changes == Changes(parents_put={D_0: "node-1"}, children_delete=frozenset({D_0}), bump_serials=BUMP)


def test_mount_types_filter_says_why_a_container_without_node_is_skipped():
    config = RulesConfig(zones=(SEED_ZONE,), mount_types=frozenset({"netconf"}))
    plan = sync([container("p", node="node-0"), container("c", mounted_to="p", status="MOUNTED", type="upf")], [],
                config)

    assert plan.skipped == (
        Skip("default", "c", "no spec.nodeName and not mounted (spec.type 'upf' cannot be mounted)", SkipCode.NOT_MOUNTED),)


def test_custom_mounted_status_is_honoured():
    config = RulesConfig(zones=(SEED_ZONE,), mounted_status="Attached")
    plan = sync([container("p", node="node-0"), container("c", mounted_to="p", status="Attached")], [], config)

    assert plan.state.children == {"c.default.domain.foo.bar": "p.default.domain.foo.bar"}


# --- nodes ----------------------------------------------------------------------------------------


def test_dual_stack_node_gives_both_addresses_ipv4_first():
    def make_node_1_dual_stack(containers, nodes):
        nodes[nodes.index(named(nodes, "node-1"))] = node("node-1", "2001:DB8:0::1", "2.3.4.5", "2.3.4.5")

    plan, changes = seed_changes(make_node_1_dual_stack)

    assert changes == Changes(nodes_put={"node-1": ("2.3.4.5", "2001:db8::1")}, bump_serials=BUMP)


def test_only_configured_address_types_are_published():
    multi = node("node-0", "10.0.0.1", ("ExternalIP", "203.0.113.7"))

    assert sync([], [multi]).state.nodes == {"node-0": ("10.0.0.1",)}
    both = RulesConfig(zones=(SEED_ZONE,), node_address_types=("InternalIP", "ExternalIP"))
    assert sync([], [multi], both).state.nodes == {"node-0": ("10.0.0.1", "203.0.113.7")}


def test_invalid_node_address_is_ignored_with_a_warning():
    def garble_node_1(containers, nodes):
        nodes[nodes.index(named(nodes, "node-1"))] = node("node-1", "2.3.4.5", "not-an-ip", "fe80::1%eth0")

    plan, changes = seed_changes(garble_node_1)

    assert changes == Changes()
    assert plan.warnings == ("node node-1: ignored invalid address 'not-an-ip', 'fe80::1%eth0'",)


def test_parent_on_a_node_without_address_is_published_with_a_warning():
    def drop_node_1(containers, nodes):
        remove(nodes, "node-1")

    plan, changes = seed_changes(drop_node_1)

    assert plan.state.parents == PARENTS
    assert plan.warnings == (
        "node node-1 has no known address: its 2 parent(s) get no A/AAAA records until it has one",)
    assert changes == Changes(nodes_delete=frozenset({"node-1"}), bump_serials=BUMP)


def test_nodes_without_parents_are_published_too():
    plan = sync([], [node("spare", "10.9.8.7"), node("bare")])

    assert plan.state.nodes == {"spare": ("10.9.8.7",)}
    assert plan.warnings == ()


def test_node_names_are_lowercased():
    plan = sync([container("p", node="Node_0")], [node("Node_0", "1.2.3.4")])

    assert plan.state.nodes == {"node_0": ("1.2.3.4",)}
    assert plan.state.parents == {"p.default.domain.foo.bar": "node_0"}


# --- properties of the function ----------------------------------------------------------------------


def test_output_is_the_same_for_any_input_order():
    containers, nodes = seed_objects()
    containers += mount_chain(10) + [
        container("x", mounted_to="y", status="MOUNTED"), container("y", mounted_to="x", status="MOUNTED"),
        container("late", node="node-0", fqdn="Container_A_1.domain.foo.bar", created="2025-01-01T00:00:00Z"),
        container("early", node="node-0", fqdn="Container_A_2.domain.foo.bar", created="2020-01-01T00:00:00Z"),
    ]
    expected = sync(containers, nodes)
    shuffler = random.Random(42)
    for _ in range(20):
        shuffler.shuffle(containers)
        shuffler.shuffle(nodes)
        assert sync(containers, nodes) == expected


def test_object_listed_twice_is_published_once():
    twin = container("twin", node="node-0")
    plan = sync([twin, dict(twin)], [])

    assert plan.state.parents == {"twin.default.domain.foo.bar": "node-0"}
    assert plan.skipped == (Skip("default", "twin", "listed twice; one copy is used", SkipCode.NAME_CONFLICT),)


def test_rules_config_needs_a_normalized_zone():
    with pytest.raises(ValueError, match="at least one zone"):
        RulesConfig(zones=())
    with pytest.raises(ValueError, match="normalized"):
        RulesConfig(zones=(Zone(name="Domain.Foo.Bar.", nameservers=("ns1",), hostmaster="h"),))


def test_a_grandchild_resolves_to_the_node_of_the_parent_at_the_top_of_its_chain():
    plan = sync([container("top", node="node-7"), container("mid", mounted_to="top", status="MOUNTED"),
                 container("leaf", node="node-0", mounted_to="mid", status="MOUNTED")], [])

    assert publication(plan.published, ("default", "leaf")) == (
        f"leaf.default.{ZONE}", f"mid.default.{ZONE}", "node-7")


def test_objects_that_cannot_be_read_are_skipped_as_invalid_spec():
    plan = sync([container("typed", node=5), "not an object"], [])

    assert {(skip.name, skip.code) for skip in plan.skipped} == {("typed", "InvalidSpec"), ("", "InvalidSpec")}
    assert {skip.code for skip in plan.skipped} <= set(CODES)

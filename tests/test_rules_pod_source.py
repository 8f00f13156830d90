"""Scenarios for the pod source: Pods labelled mountdns.io/publish=true published from their
annotations by the same rules as Containers (Ready, mounts, nesting, cycles, conflicts)."""

from mountdns.plan import diff
from sync.rules import Skip, SkipCode, desired_state
from sync.sources.cache import PUBLISHED_POD, slim
from mountdns.testing.objects import (MOUNTED, SEED_CONFIG, container, pod, published_pod, seed_fqdn, seed_objects,
                                      seed_pods)
from mountdns.testing.seed import SEED_STATE, ZONE

B_0, D_0 = (seed_fqdn(label).lower() for label in ("Container_B_0", "Container_D_0"))


def sync(pods, containers=(), nodes=None, config=SEED_CONFIG):
    nodes = seed_objects()[1] if nodes is None else nodes
    return desired_state(containers, nodes, config, published_pods=pods)


def skip_of(plan, name):
    (found,) = [s for s in plan.skipped if s.name == name]
    return found


def test_the_seed_as_pods_gives_the_seed_state():
    plan = sync(seed_pods())

    assert plan.state == SEED_STATE and plan.skipped == ()
    assert ("default", "pod/container-b-0") in plan.published


def test_the_seed_as_pods_survives_slimming():
    assert sync([slim(PUBLISHED_POD, p) for p in seed_pods()]).state == SEED_STATE


def test_a_pod_without_the_publish_label_is_not_read():
    unlabelled = pod("plain", node="node-0", labels={"mountdns.io/publish": "false"},
                     annotations={"mountdns.io/fqdn": f"plain.{ZONE}"})

    assert sync([unlabelled]).state.parents == {}


def test_a_pod_without_an_fqdn_gets_its_default_name():
    assert sync([published_pod("web-0", node="node-2")]).state.parents == {f"web-0.default.{ZONE}": "node-2"}


def test_a_pod_rescheduled_moves_its_name_in_one_write_and_its_child_follows():
    before = sync(seed_pods()).state
    pods = [p if p["metadata"]["name"] != "container-b-0" else
            published_pod("container-b-0", node="node-2", fqdn=seed_fqdn("Container_B_0"), type="odl")
            for p in seed_pods()]
    changes = diff(before, sync(pods).state)

    assert changes.parents_put == {B_0: "node-2"} and changes.key_writes() == 1


def test_a_pod_not_ready_unscheduled_or_terminating_withdraws_its_name_and_child():
    for edit, code in ((dict(ready=False), SkipCode.POD_NOT_READY), (dict(node=None), SkipCode.POD_NOT_SCHEDULED),
                       (dict(deleting="2024-02-01T00:00:00Z"), SkipCode.POD_NOT_READY)):
        pods = [p if p["metadata"]["name"] != "container-b-0" else
                published_pod("container-b-0", fqdn=seed_fqdn("Container_B_0"), **{"node": "node-1", **edit})
                for p in seed_pods()]
        plan = sync(pods)
        assert skip_of(plan, "pod/container-b-0").code == code
        assert skip_of(plan, "pod/container-d-0").code == SkipCode.PARENT_NOT_PUBLISHED
        assert B_0 not in plan.state.parents and D_0 not in plan.state.children


def test_a_pod_mounted_to_a_container_and_a_container_mounted_to_a_pod():
    plan = sync([published_pod("vnf", mounted_to="ctl", device_status=MOUNTED),
                 published_pod("ctl-pod", node="node-2")],
                containers=[container("ctl", node="node-0"),
                            container("leaf", mounted_to="ctl-pod", status=MOUNTED)])

    assert plan.state.children == {f"vnf.default.{ZONE}": f"ctl.default.{ZONE}",
                                   f"leaf.default.{ZONE}": f"ctl-pod.default.{ZONE}"}


def test_a_mount_names_its_own_kind_first():
    # A Container and a Pod both named "ctl": the Pod mounted to "ctl" follows the Pod.
    plan = sync([published_pod("ctl", node="node-2", fqdn=f"ctl-pod.{ZONE}"),
                 published_pod("vnf", mounted_to="ctl", device_status=MOUNTED)],
                containers=[container("ctl", node="node-0")])

    assert plan.state.children == {f"vnf.default.{ZONE}": f"ctl-pod.{ZONE}"}


def test_a_mount_cycle_across_kinds_publishes_none_of_it():
    plan = sync([published_pod("a", mounted_to="b", device_status=MOUNTED)],
                containers=[container("b", mounted_to="a", status=MOUNTED)])

    assert plan.state.children == {}
    assert {(s.name, s.code) for s in plan.skipped} == {("pod/a", SkipCode.MOUNT_CYCLE), ("b", SkipCode.MOUNT_CYCLE)}


def test_a_name_claimed_by_a_container_and_a_pod_goes_to_the_older():
    older_pod = published_pod("x", node="node-2", fqdn=f"shared.{ZONE}", created="2023-01-01T00:00:00Z")
    newer_container = container("x", node="node-0", fqdn=f"shared.{ZONE}", created="2024-01-01T00:00:00Z")
    plan = sync([older_pod], containers=[newer_container])

    assert plan.state.parents == {f"shared.{ZONE}": "node-2"}
    assert plan.skipped == (Skip("default", "x", f"fqdn shared.{ZONE} is taken by default/pod/x (older)",
                                 SkipCode.NAME_CONFLICT),)
    flipped = sync([published_pod("x", node="node-2", fqdn=f"shared.{ZONE}", created="2025-01-01T00:00:00Z")],
                   containers=[newer_container])
    assert flipped.state.parents == {f"shared.{ZONE}": "node-0"}
    assert [(s.name, s.code) for s in flipped.skipped] == [("pod/x", SkipCode.NAME_CONFLICT)]


def test_a_pod_whose_type_cannot_be_mounted_is_a_parent_on_its_own_node():
    config = SEED_CONFIG.__class__(zones=SEED_CONFIG.zones, mount_types=frozenset({"netconf"}))
    plan = sync([published_pod("upf", node="node-2", mounted_to="ctl", type="upf", device_status=MOUNTED)],
                containers=[container("ctl", node="node-0")], config=config)

    assert plan.state.parents[f"upf.default.{ZONE}"] == "node-2"


def test_a_pod_with_an_invalid_annotation_is_skipped_alone():
    bad = published_pod("bad", fqdn="not a name!")
    plan = sync([bad, published_pod("good", node="node-0")])

    assert [(s.name, s.code) for s in plan.skipped] == [("pod/bad", SkipCode.INVALID_NAME)]
    assert plan.state.parents == {f"good.default.{ZONE}": "node-0"}

"""Scenarios for Containers backed by a Pod (spec.podRef): the seed's topology with
Container_B_0 following its Pod, every state the Pod can be in, and exact changes."""

import pytest

from mountdns.plan import diff
from sync.objects import RulesConfig
from sync.reconciler import Reconciler
from sync.rules import Skip, SkipCode, desired_state
from sync.sources.cache import POD, ObjectCache, slim
from mountdns.store.memory_store import MemoryStore
from mountdns.testing.objects import MOUNTED, SEED_CONFIG, container, pod, seed_fqdn, seed_objects
from mountdns.testing.seed import SEED_STATE, SEED_ZONE, ZONE

B_0, D_0 = (seed_fqdn(label).lower() for label in ("Container_B_0", "Container_D_0"))
BACKED = ("default", "container-b-0")
UNREADY = RulesConfig(zones=(SEED_ZONE,), publish_unready_pods=True)


def pod_backed_seed(**pod_fields):
    """The seed, with container-b-0 backed by the Pod `controller-b` rather than naming
    node-1: (containers, nodes, pods). `pod_fields` shape the Pod (node, ready, deleting)."""
    containers, nodes = seed_objects()
    backed = next(c for c in containers if c["metadata"]["name"] == "container-b-0")
    del backed["spec"]["nodeName"]
    backed["spec"]["podRef"] = {"name": "controller-b"}
    pods = [pod("controller-b", **{"node": "node-1", **pod_fields})]
    return containers, nodes, pods


def skip_of(plan, name):
    (found,) = [s for s in plan.skipped if s.name == name]
    return found


def test_a_ready_scheduled_pod_publishes_the_seed_state_unchanged():
    plan = desired_state(*pod_backed_seed()[:2], SEED_CONFIG, pod_backed_seed()[2])

    assert plan.state == SEED_STATE and plan.skipped == ()
    assert plan.published[BACKED].node == "node-1"


def test_a_pod_rescheduled_to_another_node_moves_the_name_in_one_write_and_the_child_follows():
    containers, nodes, pods = pod_backed_seed()
    before = desired_state(containers, nodes, SEED_CONFIG, pods).state
    moved = [pod("controller-b", node="node-2")]
    after = desired_state(containers, nodes, SEED_CONFIG, moved)

    changes = diff(before, after.state)
    assert changes.parents_put == {B_0: "node-2"} and changes.key_writes() == 1
    assert not changes.children_put and not changes.children_delete and not changes.parents_delete
    assert after.state.children[D_0] == B_0  # the child still a CNAME to the parent, which moved


@pytest.mark.parametrize(("pods", "code", "reason"), [
    ([], SkipCode.POD_NOT_FOUND, "pod default/controller-b not found"),
    ([pod("controller-b", node=None)], SkipCode.POD_NOT_SCHEDULED,
     "pod default/controller-b is not scheduled to a node"),
    ([pod("controller-b", node="node-1", ready=False)], SkipCode.POD_NOT_READY,
     "pod default/controller-b on node node-1 is not Ready"),
    ([pod("controller-b", node="node-1", deleting="2024-02-01T00:00:00Z")], SkipCode.POD_NOT_READY,
     "pod default/controller-b is terminating"),
    ([pod("controller-b", node="node-1", namespace="other")], SkipCode.POD_NOT_FOUND,
     "pod default/controller-b not found"),
], ids=["gone", "not-scheduled", "not-ready", "terminating", "other-namespace"])
def test_a_pod_that_cannot_carry_the_name_withdraws_it_and_its_child(pods, code, reason):
    containers, nodes, _ = pod_backed_seed()
    plan = desired_state(containers, nodes, SEED_CONFIG, pods)

    assert skip_of(plan, "container-b-0") == Skip("default", "container-b-0", reason, code)
    assert skip_of(plan, "container-d-0").code == SkipCode.PARENT_NOT_PUBLISHED
    assert B_0 not in plan.state.parents and D_0 not in plan.state.children
    changes = diff(desired_state(*pod_backed_seed()[:2], SEED_CONFIG, pod_backed_seed()[2]).state, plan.state)
    assert changes.parents_delete == {B_0} and changes.children_delete == {D_0}


def test_publish_unready_pods_publishes_a_scheduled_pod_that_is_not_ready():
    containers, nodes, _ = pod_backed_seed()
    plan = desired_state(containers, nodes, UNREADY, [pod("controller-b", node="node-1", ready=False)])

    assert plan.state == SEED_STATE


def test_publish_unready_pods_still_withdraws_a_terminating_or_unscheduled_pod():
    containers, nodes, _ = pod_backed_seed()
    terminating = desired_state(containers, nodes, UNREADY,
                                [pod("controller-b", node="node-1", deleting="2024-02-01T00:00:00Z")])
    unscheduled = desired_state(containers, nodes, UNREADY, [pod("controller-b")])

    assert skip_of(terminating, "container-b-0").code == SkipCode.POD_NOT_READY
    assert skip_of(unscheduled, "container-b-0").code == SkipCode.POD_NOT_SCHEDULED


def test_node_name_and_pod_ref_together_are_an_invalid_spec():
    plan = desired_state([container("both", node="node-1", pod="p")], [], SEED_CONFIG,
                         [pod("p", node="node-1")])

    assert plan.skipped == (Skip("default", "both", "spec.nodeName and spec.podRef are both set; exactly one may be",
                                 SkipCode.INVALID_SPEC),)


@pytest.mark.parametrize("ref", ["controller-b", {}, {"name": 5}, ["x"]])
def test_a_pod_ref_of_the_wrong_shape_is_an_invalid_spec(ref):
    broken = container("broken")
    broken["spec"]["podRef"] = ref
    plan = desired_state([broken], [], SEED_CONFIG, [pod("controller-b", node="node-1")])

    assert [(s.name, s.code) for s in plan.skipped] == [("broken", SkipCode.INVALID_SPEC)]


def test_a_mounted_pod_backed_container_is_a_child_whatever_its_pod():
    plan = desired_state([container("top", node="node-0"),
                          container("vnf", pod="gone", mounted_to="top", status=MOUNTED)], [], SEED_CONFIG, [])

    assert plan.state.children == {f"vnf.default.{ZONE}": f"top.default.{ZONE}"}


def test_an_unmounted_pod_backed_container_falls_back_to_its_pod():
    plan = desired_state([container("top", node="node-0"),
                          container("vnf", pod="vnf-pod", mounted_to="top", status="CONNECTING")], [],
                         SEED_CONFIG, [pod("vnf-pod", node="node-2")])

    assert plan.state.parents[f"vnf.default.{ZONE}"] == "node-2"


def test_a_pod_on_a_node_without_address_is_published_unresolved():
    plan = desired_state([container("app", pod="app-0")], [], SEED_CONFIG, [pod("app-0", node="node-9")])

    assert plan.state.parents == {f"app.default.{ZONE}": "node-9"}
    assert [(u.name, u.code) for u in plan.unresolved] == [("app", SkipCode.NODE_NOT_FOUND)]


def test_a_slimmed_pod_keeps_only_what_the_rules_read():
    full = pod("controller-b", node="Node-1", deleting="2024-02-01T00:00:00Z")
    full["metadata"]["resourceVersion"] = "42"
    full["metadata"]["managedFields"] = [{"manager": "kubelet"}]

    assert slim(POD, full) == {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "controller-b", "namespace": "default", "creationTimestamp": "2024-01-01T00:00:00Z",
                     "deletionTimestamp": "2024-02-01T00:00:00Z"},
        "spec": {"nodeName": "Node-1"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def test_a_pod_event_alone_reruns_the_container_rules():
    # The reconciler reuses the Container part of its last plan when only Nodes changed;
    # a Pod event must not be mistaken for that.
    containers, nodes, pods = pod_backed_seed()
    cache, store = ObjectCache(), MemoryStore()
    for kind, objects in (("Container", containers), ("Node", nodes), (POD, pods)):
        cache.replace(kind, objects)
    reconciler = Reconciler(store, SEED_CONFIG)
    reconciler.reconcile(cache.snapshot(), full=True)
    cache.put(POD, pod("controller-b", node="node-2"))

    outcome = reconciler.reconcile(cache.snapshot())

    assert outcome.changes.parents_put == {B_0: "node-2"} and outcome.changes.key_writes() == 1
    assert store.read_state().parents[B_0] == "node-2"

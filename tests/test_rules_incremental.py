"""The incremental rules against the reference: random sequences of changes (Containers
added, removed and edited, mounts, cycles, conflicts, Pods behind podRef, Pods of the pod
source, Nodes, whole re-lists) and, after each, the incremental result compared with
desired_state over the whole snapshot. Fixed seeds, bounded steps."""

import random

import pytest

from mountdns.records import Zone
from mountdns.testing.objects import MOUNTED, container, node, pod, published_pod
from sync.incremental import IncrementalRules
from sync.objects import RulesConfig
from sync.rules import desired_state
from sync.sources.cache import CONTAINER, NODE, POD, PUBLISHED_POD, ObjectCache, slim
from sync.status import _node_name, verdict_of, verdicts

ZONE = Zone("zone.test", ("ns1.zone.test",), "hostmaster.zone.test")
OTHER = Zone("other.test", ("ns1.other.test",), "hostmaster.other.test")
CONFIGS = {
    "plain": RulesConfig(zones=(ZONE, OTHER), max_mount_depth=1),
    "typed": RulesConfig(zones=(ZONE,), mount_types=frozenset({"netconf"}), max_mount_depth=3,
                         publish_unready_pods=True),
}
NAMESPACES = ("default", "team")
NAMES = [f"c{i}" for i in range(10)]
PODS = [f"p{i}" for i in range(5)]
SOURCE_PODS = [f"q{i}" for i in range(4)] + ["c1", "c2"]  # Pods named like Containers too
NODES = [f"n{i}" for i in range(4)]
TIMES = ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z", None]
FQDNS = [None] * 8 + ["a.zone.test", "b.zone.test", "a.other.test", "zone.test", "x.elsewhere",
         "bad..name.zone.test"]


def _maybe(rng, values, none=0.5):
    return None if rng.random() < none else rng.choice(values)


def random_container(rng, namespace, name):
    if rng.random() < 0.03:
        return {"apiVersion": "mountdns.io/v1alpha1", "kind": "Container",
                "metadata": {"name": name, "namespace": namespace}, "spec": ["not", "an", "object"]}
    backed = rng.random() < 0.25
    return container(name, namespace=namespace, created=rng.choice(TIMES), fqdn=rng.choice(FQDNS),
                     node=None if backed else _maybe(rng, NODES, 0.3),
                     pod=rng.choice(PODS) if backed else None,
                     mounted_to=_maybe(rng, NAMES + SOURCE_PODS, 0.25),
                     status=rng.choice([MOUNTED, MOUNTED, MOUNTED, "UNMOUNTED", None]),
                     type=rng.choice(["netconf", "netconf", "odl", None]))


def random_pod(rng, namespace, name):
    return pod(name, namespace=namespace, node=_maybe(rng, NODES + ["N3"], 0.2), ready=rng.random() < 0.8,
               deleting="2024-02-01T00:00:00Z" if rng.random() < 0.1 else None)


def random_source_pod(rng, namespace, name):
    made = published_pod(name, namespace=namespace, node=_maybe(rng, NODES, 0.2), fqdn=rng.choice(FQDNS),
                         mounted_to=_maybe(rng, NAMES + SOURCE_PODS, 0.5),
                         device_status=rng.choice([MOUNTED, MOUNTED, None]), type=rng.choice(["netconf", None]),
                         ready=rng.random() < 0.85, created=rng.choice(TIMES))
    if rng.random() < 0.1:
        made["metadata"]["labels"]["mountdns.io/publish"] = "false"  # not published after all
    return made


def random_node(rng, name):
    return node(name, *rng.choice([["10.0.0.1"], ["10.0.0.2", "fd00::1"], [], ["not-an-ip"],
                                   [f"10.0.1.{rng.randrange(1, 250)}"]]))


class World:
    """The cache's view: one dict per object, replaced (never edited) on every change.
    With `cache`, the objects also go through an ObjectCache, whose snapshots say what
    changed since the last one."""

    def __init__(self, rng, cache: ObjectCache | None = None):
        self.rng = rng
        self.cache = cache
        self.objects = {CONTAINER: {}, NODE: {}, POD: {}, PUBLISHED_POD: {}}
        for name in NODES[:3]:
            self.put(NODE, ("", name), random_node(rng, name))

    def put(self, kind, key, obj):
        self.objects[kind][key] = slim(kind, obj)
        if self.cache is not None:
            self.cache.put(kind, obj)

    def pop(self, kind, key):
        gone = self.objects[kind].pop(key, None)
        if gone is not None and self.cache is not None:
            self.cache.remove(kind, gone)

    def step(self):
        rng = self.rng
        roll = rng.random()
        namespace = rng.choice(NAMESPACES)
        # (up to this roll, kind, names, how often a change deletes, builder(rng, namespace, name))
        for below, kind, names, deleting, build in (
                (0.45, CONTAINER, NAMES, 0.2, random_container),
                (0.6, POD, PODS, 0.2, random_pod),
                (0.75, PUBLISHED_POD, SOURCE_PODS, 0.2, random_source_pod),
                (0.9, NODE, NODES, 0.15, lambda rng, _, name: random_node(rng, name))):
            if roll < below:
                name = rng.choice(names)
                key = ("" if kind == NODE else namespace, name)
                if rng.random() < deleting:
                    self.pop(kind, key)
                else:
                    self.put(kind, key, build(rng, namespace, name))
                return
        if roll < 0.95:
            kind = rng.choice([CONTAINER, POD, PUBLISHED_POD, NODE])  # a re-list: new dicts, same content
            self.objects[kind] = {key: dict(obj) for key, obj in self.objects[kind].items()}
            if self.cache is not None:
                self.cache.replace(kind, list(self.objects[kind].values()), slimmed=True)
        # else: a batch in which nothing changed

    def snapshot(self):
        if self.cache is not None:
            snap = self.cache.snapshot()
            return (snap.containers, snap.nodes, snap.pods, snap.published_pods,
                    tuple(snap.changed[kind] for kind in (CONTAINER, POD, PUBLISHED_POD)))
        listed = {}
        for kind, objects in self.objects.items():
            values = list(objects.values())
            self.rng.shuffle(values)  # the rules answer the same for any order
            listed[kind] = tuple(values)
        return listed[CONTAINER], listed[NODE], listed[POD], listed[PUBLISHED_POD], None


def assert_same(got, want):
    assert got.state == want.state
    assert list(got.state.nodes) == list(want.state.nodes)
    assert got.skipped == want.skipped
    assert got.warnings == want.warnings
    assert got.unresolved == want.unresolved
    assert got.published == want.published
    assert ({node: set(keys) for node, keys in got.parents_by_node.items()}
            == {node: set(keys) for node, keys in want.parents_by_node.items()})


@pytest.mark.parametrize("via_cache", [False, True], ids=["compared", "told"])
@pytest.mark.parametrize("config_name", sorted(CONFIGS))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_rules_match_desired_state_after_every_change(seed, config_name, via_cache):
    # "compared": the rules find what changed by comparing objects; "told": the cache's
    # snapshots say what changed since the last one.
    config = CONFIGS[config_name]
    rng = random.Random(seed)
    world = World(rng, ObjectCache() if via_cache else None)
    rules = IncrementalRules(config)
    for name in PODS[:3]:  # the first batch already holds Pods and the Containers naming them
        world.put(POD, ("default", name), random_pod(rng, "default", name))
        world.put(CONTAINER, ("default", "c" + name), container("c" + name, pod=name))
    for _ in range(40):
        world.step()
    previous = None
    paths = {"rebuilt": 0, "incremental": 0}
    for _ in range(400):
        for _ in range(rng.choice([1, 1, 1, 2, 5])):
            world.step()
        containers, nodes, pods, source, changed = world.snapshot()
        held = previous and (dict(previous.state.parents), dict(previous.state.children), dict(previous.published))
        got = rules.update(containers, nodes, pods, source, changed=changed)
        if previous is not None:  # a result handed out is never edited by the next batch
            assert (previous.state.parents, previous.state.children, previous.published) == held
        want = desired_state(containers, nodes, config, pods, source)
        assert_same(got, want)
        paths["rebuilt" if got.changes.keys is None else "incremental"] += 1
        if previous is not None and got.changes.keys is not None:
            # Every Container whose status verdict changed is among the keys said to change
            # (unless the set of nodes changed, which the status writer handles on its own).
            assert got.changes.base == previous.changes.base + 1
            before, after = verdicts(previous, nodes), verdicts(got, nodes)
            moved = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
            if set(previous.state.nodes) == set(got.state.nodes):
                assert moved <= got.changes.keys
            # Every name whose record differs is among the names said to change.
            for records in ("parents", "children"):
                before_records, after_records = getattr(previous.state, records), getattr(got.state, records)
                assert {name for name in before_records.keys() | after_records.keys()
                        if before_records.get(name) != after_records.get(name)} <= got.changes.names
            # The verdict of one key, as the status writer asks for the changed ones, is that of all.
            listed = {_node_name(n) for n in nodes}
            assert {key: verdict_of(got, key, listed) for key in after} == after
        previous = got
    # Both ways of deciding were taken: at once (first batch, re-lists) and key by key. (The
    # cache keeps the dict of an object a re-list finds unchanged: no re-list changes all.)
    assert paths["rebuilt"] >= (1 if via_cache else 2) and paths["incremental"] > 300
    if via_cache:  # what the cache told was used: no object was compared with its predecessor
        assert rules._containers.scans == rules._pod_objects.scans == rules._published_pods.scans == 0


def test_the_first_result_says_every_key_may_have_changed_and_the_next_says_which():
    config = CONFIGS["plain"]
    rules = IncrementalRules(config)
    parent = slim(CONTAINER, container("c0", node="n0"))
    child = slim(CONTAINER, container("c1", mounted_to="c0", status=MOUNTED))
    nodes = (slim(NODE, node("n0", "10.0.0.1")),)
    first = rules.update((parent, child), nodes)
    assert first.changes.keys is None

    moved = slim(CONTAINER, container("c0", node="n1"))
    second = rules.update((moved, child), nodes)

    # The parent moved; the child below it is looked at again, as its name resolves through it.
    assert second.changes.base == first.changes.base + 1
    assert second.changes.keys == {("default", "c0"), ("default", "c1")}
    assert second.state.parents == {"c0.default.zone.test": "n1"}
    assert second.state.children == {"c1.default.zone.test": "c0.default.zone.test"}


def test_nodes_listed_twice_under_one_name_give_their_addresses_together_as_desired_state_does():
    config = CONFIGS["plain"]
    parent = slim(CONTAINER, container("c0", node="n0"))
    nodes = (node("n0", "10.0.0.2"), node("N0", "10.0.0.1", "fd00::1"), node("n1"), node("n1", "not-an-ip"))
    rules = IncrementalRules(config)
    rules.update((parent,), nodes[:1])

    got = rules.update((parent,), nodes)  # only the Nodes changed: read one by one

    assert_same(got, desired_state((parent,), nodes, config))
    assert got.state.nodes == {"n0": ("10.0.0.1", "10.0.0.2", "fd00::1")}

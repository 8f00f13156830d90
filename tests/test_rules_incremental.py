"""The incremental rules against the reference: random sequences of changes (Containers
added, removed and edited, mounts, cycles, conflicts, Pods behind podRef, Pods of the pod
source, Nodes, whole re-lists) and, after each, the incremental result compared with
desired_state over the whole snapshot. Fixed seeds, bounded steps."""

import random
from dataclasses import replace

import pytest

from mountdns.plan import diff
from mountdns.purge import purge_waves
from mountdns.records import Zone
from mountdns.testing.objects import MOUNTED, container, node, pod, published_pod
from sync.incremental import IncrementalRules, _pod_named
from sync.objects import RulesConfig, SkipCode, pod_placement
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
        if roll < 0.93:
            kind = rng.choice([CONTAINER, POD, PUBLISHED_POD, NODE])  # a re-list: new dicts, same content
            self.objects[kind] = {key: dict(obj) for key, obj in self.objects[kind].items()}
            if self.cache is not None:
                self.cache.replace(kind, list(self.objects[kind].values()), slimmed=True)
        elif roll < 0.95:  # most Containers edited at once (a batch after a long outage)
            for key in list(self.objects[CONTAINER]):
                if rng.random() < 0.8:
                    self.put(CONTAINER, key, random_container(rng, *key))
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


def _flat(value):
    return list(value) if type(value) in (list, set) else [value]


def _index(pairs):
    index = {}
    for key, value in pairs:
        index.setdefault(key, set()).add(value)
    return index


def assert_indexes_hold_what_is_listed(rules, containers, pods, source):
    """The indexes say exactly what the objects held say: nothing an object left behind
    (a leak would grow the sync's memory batch after batch), and a set or list only where
    a key has two members or more."""
    for index in (rules._claims, rules._unreadable, rules._ignored, rules._pods, rules._fqdns,
                  rules._dependents, *rules._children.values()):
        assert all(len(value) >= 2 for value in index.values() if type(value) in (list, set))
    claims = [entry for value in rules._claims.values() for entry in _flat(value)]
    unread = [held for index in (rules._unreadable, rules._ignored) for value in index.values()
              for held in _flat(value)]
    assert all(entry.key == key for key, value in rules._claims.items() for entry in _flat(value))
    held = claims + unread
    assert {id(h.obj) for h in held if not h.from_pod} == {id(obj) for obj in containers}
    assert {id(h.obj) for h in held if h.from_pod} == {id(obj) for obj in source}
    assert {id(obj) for value in rules._pods.values() for obj in _flat(value)} == {id(obj) for obj in pods}
    assert rules._counts == [len(containers), len(pods), len(source)]
    assert rules._placed == sum(pod_placement(obj) is not None for obj in pods)
    assert {fqdn: set(_flat(keys)) for fqdn, keys in rules._fqdns.items()} == _index(
        (entry.fqdn, entry.key) for entry in claims)
    assert {(namespace, target): set(_flat(keys)) for namespace, children in rules._children.items()
            for target, keys in children.items()} == _index(
        ((entry.key[0], entry.raw_target), entry.key) for entry in claims if entry.raw_target is not None)
    assert {pod: set(_flat(keys)) for pod, keys in rules._dependents.items()} == _index(
        (_pod_named(h.obj), h.key) for h in claims + unread if not h.from_pod and _pod_named(h.obj))
    assert rules._rejected.keys() <= rules._claims.keys() and rules._too_deep.keys() <= rules._claims.keys()


def assert_same(got, want):
    assert got.state == want.state
    assert list(got.state.nodes) == list(want.state.nodes)
    assert got.skipped == want.skipped
    assert got.warnings == want.warnings
    assert got.unresolved == want.unresolved
    assert got.published == want.published
    assert got.listed_nodes == want.listed_nodes
    assert ({node: set(keys) for node, keys in got.parents_by_node.items()}
            == {node: set(keys) for node, keys in want.parents_by_node.items()})


@pytest.mark.parametrize("fold", ["at-size", "every-batch"])
@pytest.mark.parametrize("via_cache", [False, True], ids=["compared", "told"])
@pytest.mark.parametrize("config_name", sorted(CONFIGS))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_rules_match_desired_state_after_every_change(seed, config_name, via_cache, fold, monkeypatch):
    # "compared": the rules find what changed by comparing objects; "told": the cache's
    # snapshots say what changed since the last one. "every-batch": the published records'
    # edits are folded into a new base at every result (sync.layered), where this small
    # world would otherwise keep them on top; and a rebuild forgets its children's depths
    # before every mount chain, where this small world would keep them all.
    if fold == "every-batch":
        monkeypatch.setattr("sync.layered._top_limit", lambda base_size: 0)
        monkeypatch.setattr("sync.incremental._SETTLED_CHILDREN", -1)
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
        assert_indexes_hold_what_is_listed(rules, containers, pods, source)
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
            # The purge waves from the indexes are those from the records before and after.
            changes = diff(previous.state, got.state)
            assert rules.purge_waves(got, changes) == purge_waves(changes, previous.state, got.state)
        previous = got
    # Both ways of deciding were taken: at once (first batch, most Containers edited) and
    # key by key. (A re-list changes no claim: the cache keeps the dict of an object it
    # finds unchanged, and the rules keep the entry of one that reads the same.)
    assert paths["rebuilt"] >= 2 and paths["incremental"] > 300
    if via_cache:  # what the cache told was used: no object was compared with its predecessor
        assert rules.scans == 0


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


# --- the indexes' edge cases, key by key ----------------------------------------------------


# Containers that no batch below touches: a batch that touches most keys is decided at
# once, and these keep the batches below key by key.
BYSTANDERS = [container(f"b{i}", node="n0", namespace="team") for i in range(8)]


def told_batch(rules, cache):
    """One batch as the reconciler runs it: the cache's snapshot says what changed."""
    snap = cache.snapshot()
    got = rules.update(snap.containers, snap.nodes, snap.pods, snap.published_pods,
                       changed=tuple(snap.changed[kind] for kind in (CONTAINER, POD, PUBLISHED_POD)))
    assert_same(got, desired_state(snap.containers, snap.nodes, rules.config, snap.pods, snap.published_pods))
    assert_indexes_hold_what_is_listed(rules, snap.containers, snap.pods, snap.published_pods)
    return got


def test_a_name_gaining_a_second_claimant_and_losing_it_goes_back_to_one_member_not_a_set():
    config = CONFIGS["plain"]
    cache, rules = ObjectCache(), IncrementalRules(config)
    cache.replace(NODE, [node("n0", "10.0.0.1")])
    cache.replace(CONTAINER, [container("c0", node="n0", fqdn="a.zone.test", created=TIMES[0]), *BYSTANDERS])
    told_batch(rules, cache)
    assert rules._fqdns["a.zone.test"] == ("default", "c0")

    cache.put(CONTAINER, container("c1", node="n1", fqdn="a.zone.test", created=TIMES[1]))
    got = told_batch(rules, cache)
    assert rules._fqdns["a.zone.test"] == {("default", "c0"), ("default", "c1")}
    assert [(s.name, s.code) for s in got.skipped] == [("c1", SkipCode.NAME_CONFLICT)]

    cache.remove(CONTAINER, container("c1"))
    got = told_batch(rules, cache)
    assert rules._fqdns["a.zone.test"] == ("default", "c0")  # the member itself again
    assert got.skipped == () and got.state.parents["a.zone.test"] == "n0"

    # The older one goes and the younger comes back in one batch: it keeps the name.
    cache.remove(CONTAINER, container("c0"))
    cache.put(CONTAINER, container("c1", node="n1", fqdn="a.zone.test", created=TIMES[1]))
    got = told_batch(rules, cache)
    assert rules._fqdns["a.zone.test"] == ("default", "c1")
    assert got.state.parents["a.zone.test"] == "n1" and got.changes.keys == {("default", "c0"), ("default", "c1")}
    assert rules.scans == 0


def test_a_key_listed_twice_with_equal_copies_loses_the_copy_removed_not_an_equal_one():
    # Two equal dicts for one key (a malformed list): removing one by identity must leave
    # the other, even though the two are equal as dicts and their claims as claims.
    config = CONFIGS["plain"]
    first, second = container("c0", node="n0"), container("c0", node="n0")
    rules = IncrementalRules(config)
    rules.update((first,), ())
    nothing = ([], [])  # no Pods of either kind changed
    got = rules.update((first, second), (), changed=(([], [second]), nothing, nothing))
    assert [id(entry.obj) for entry in rules._claims[("default", "c0")]] == [id(first), id(second)]
    assert [s.reason for s in got.skipped] == ["listed twice; one copy is used"]

    got = rules.update((first,), (), changed=(([second], []), nothing, nothing))  # the later copy goes

    assert rules._claims[("default", "c0")].obj is first  # one entry again, not a list of one
    assert_same(got, desired_state((first,), (), config))
    assert rules.scans == 3  # the first batch's, one per kind: what the others were told added up


def test_a_target_keeps_its_children_index_until_its_last_child_goes():
    config = CONFIGS["plain"]
    cache, rules = ObjectCache(), IncrementalRules(config)
    cache.replace(NODE, [node("n0", "10.0.0.1"), node("n1", "10.0.0.2")])
    cache.replace(CONTAINER, [container("c0", node="n0"), container("c1", mounted_to="c0", status=MOUNTED),
                              container("c2", mounted_to="c0", status=MOUNTED), *BYSTANDERS])
    told_batch(rules, cache)
    assert rules._children == {"default": {"c0": {("default", "c1"), ("default", "c2")}}}

    cache.remove(CONTAINER, container("c1"))
    told_batch(rules, cache)
    assert rules._children == {"default": {"c0": ("default", "c2")}}

    # The parent moves: the child left below it is looked at again, the one gone is not.
    cache.put(CONTAINER, container("c0", node="n1"))
    got = told_batch(rules, cache)
    assert got.changes.keys == {("default", "c0"), ("default", "c2")}

    cache.remove(CONTAINER, container("c2"))
    told_batch(rules, cache)
    assert rules._children == {}  # no empty index left behind per namespace


def test_a_chain_one_level_too_deep_is_found_from_the_depths_walked_up_the_published_parents():
    config = CONFIGS["typed"]  # max_mount_depth 3, only netconf mounts
    cache, rules = ObjectCache(), IncrementalRules(config)
    cache.replace(NODE, [node("n0", "10.0.0.1")])
    chain = [container("c0", node="n0")] + [container(f"c{i}", mounted_to=f"c{i - 1}", status=MOUNTED,
                                                      type="netconf") for i in range(1, 4)]
    cache.replace(CONTAINER, chain + BYSTANDERS)
    got = told_batch(rules, cache)
    assert len(got.state.children) == 3

    cache.put(CONTAINER, container("c4", mounted_to="c3", status=MOUNTED, type="netconf"))
    got = told_batch(rules, cache)  # c3's depth comes from its published parents, not a stored number
    assert got.changes.keys == {("default", "c4")}
    assert [(s.name, s.code) for s in got.skipped] == [("c4", SkipCode.MOUNT_TOO_DEEP)]

    cache.put(CONTAINER, container("c1", mounted_to="c0", status="UNMOUNTED", type="netconf"))
    got = told_batch(rules, cache)  # c1 has no node of its own now: nothing below it is published
    assert got.state.children == {} and got.changes.keys == {("default", f"c{i}") for i in range(1, 5)}


def test_the_claims_handed_out_are_the_rules_own_entries_and_equal_plain_claims():
    config = CONFIGS["plain"]
    rules = IncrementalRules(config)
    objects = (container("c0", node="n0"), container("c1", mounted_to="c0", status=MOUNTED))
    got = rules.update(objects, ())
    want = desired_state(objects, (), config)
    for key, claim in got.published.items():
        assert claim is rules._claims[key]  # one object per Container, not a claim and an entry
        assert claim == want.published[key] and want.published[key] == claim
    moved = replace(want.published[("default", "c0")], node="n1")
    assert got.published[("default", "c0")] != moved and moved != got.published[("default", "c0")]
    assert got.published[("default", "c0")] != ("default", "c0")


def test_a_batch_of_a_few_changes_reads_and_decides_around_them_not_every_container(monkeypatch):
    # 300 parents with a child each; a batch moves one parent, unmounts one child and
    # deletes one parent. It reads the two objects that changed, and decides the keys
    # they touch and those mounted below: no pass over the 600 (the bookkeeping derives
    # winners and depths when asked, and must not ask of every key).
    import sync.incremental

    reads = []

    class CountingReader(sync.incremental.ContainerReader):
        def read(self, obj):
            reads.append(obj["metadata"]["name"])
            return super().read(obj)

    monkeypatch.setattr(sync.incremental, "ContainerReader", CountingReader)
    config = CONFIGS["plain"]
    cache, rules = ObjectCache(), IncrementalRules(config)
    cache.replace(NODE, [node(name, "10.0.0.1") for name in NODES])
    cache.replace(CONTAINER, [container(f"p{i}", node=NODES[i % 3]) for i in range(300)]
                  + [container(f"k{i}", mounted_to=f"p{i}", status=MOUNTED) for i in range(300)])
    told_batch(rules, cache)
    asked = []
    winner = rules._winner
    rules._winner = lambda key: asked.append(key) or winner(key)
    del reads[:]

    cache.put(CONTAINER, container("p0", node="n3"))
    cache.put(CONTAINER, container("k1", mounted_to="p1", status="UNMOUNTED", node="n1"))
    cache.remove(CONTAINER, container("p2"))
    got = told_batch(rules, cache)

    assert sorted(reads) == ["k1", "p0"]
    assert got.changes.keys == {("default", name) for name in ("p0", "k0", "k1", "p2", "k2")}
    assert set(asked) <= got.changes.keys | {("default", "p1")} and len(asked) < 60


def test_a_node_move_reads_the_moved_nodes_alone_and_keeps_the_listed_names_object(monkeypatch):
    # 40 nodes, two of them moved in one batch: the rules parse those two (not all 40),
    # answer as desired_state does, and hand out the same set of listed names as before
    # (the status writer then need not read every Node's name).
    import sync.incremental

    parsed = []
    real = sync.incremental._read_nodes
    monkeypatch.setattr(sync.incremental, "_read_nodes",
                        lambda nodes, config: parsed.extend(n["metadata"]["name"] for n in nodes) or real(nodes, config))
    config = CONFIGS["plain"]
    cache, rules = ObjectCache(), IncrementalRules(config)
    names = [f"n{i}" for i in range(40)]
    cache.replace(NODE, [node(name, f"10.0.0.{i + 1}") for i, name in enumerate(names)])
    cache.replace(CONTAINER, [container(f"p{i}", node=names[i % 40]) for i in range(80)])
    first = told_batch(rules, cache)
    del parsed[:]

    cache.put(NODE, node("n3", "10.0.9.3"))
    cache.put(NODE, node("n7", "10.0.9.7", "fd00::7"))
    shortcut = []
    moved_nodes = rules._moved_nodes
    monkeypatch.setattr(rules, "_moved_nodes", lambda nodes: shortcut.append(moved_nodes(nodes)) or shortcut[-1])
    got = told_batch(rules, cache)

    assert sorted(parsed) == ["n3", "n7"]
    # Found by position and identity against the last batch's Nodes, no pass over all 40:
    # the cache hands the Nodes out in the order it held them, moved ones in their place.
    assert len(shortcut) == 1 and shortcut[0] is not None
    assert got.state.nodes["n3"] == ("10.0.9.3",) and got.state.nodes["n7"] == ("10.0.9.7", "fd00::7")
    assert got.listed_nodes is first.listed_nodes
    snap = cache.snapshot()
    assert_same(got, desired_state(snap.containers, snap.nodes, config))
    assert first.state.nodes["n3"] == ("10.0.0.4",)  # the result handed out before is left as it was


@pytest.mark.parametrize("moved", [
    node("n3"),  # no address any more
    node("n3", "not-an-ip"),  # a warning
    node("N1", "10.0.9.3"),  # another name, shared with n1 once lowercased
])
def test_a_node_that_loses_its_address_warns_or_changes_name_is_decided_as_desired_state_does(moved):
    config = CONFIGS["plain"]
    cache, rules = ObjectCache(), IncrementalRules(config)
    cache.replace(NODE, [node(f"n{i}", f"10.0.0.{i + 1}") for i in range(6)])
    cache.replace(CONTAINER, [container(f"p{i}", node=f"n{i % 6}") for i in range(12)])
    told_batch(rules, cache)
    if moved["metadata"]["name"] != "n3":
        cache.remove(NODE, node("n3"))
    cache.put(NODE, moved)
    got = told_batch(rules, cache)
    snap = cache.snapshot()
    assert_same(got, desired_state(snap.containers, snap.nodes, config))
    cache.put(NODE, node("n3", "10.0.7.7"))  # and back to a plain node
    got = told_batch(rules, cache)
    snap = cache.snapshot()
    assert_same(got, desired_state(snap.containers, snap.nodes, config))


def test_an_object_that_reads_to_the_same_claim_keeps_its_entry_and_lets_the_old_object_go():
    config = CONFIGS["plain"]
    cache, rules = ObjectCache(), IncrementalRules(config)
    cache.replace(NODE, [node("n0", "10.0.0.1")])
    cache.replace(CONTAINER, [container("c0", node="n0", type="odl"), *BYSTANDERS])
    first = told_batch(rules, cache)
    entry = first.published[("default", "c0")]
    old = entry.obj

    cache.put(CONTAINER, container("c0", node="n0", type="upf"))  # a field a parent's claim does not hold
    got = told_batch(rules, cache)

    assert got.changes.keys == frozenset() and got.changes.names == frozenset()
    assert got.published[("default", "c0")] is entry and rules._claims[("default", "c0")] is entry
    assert entry.obj is not old and entry.obj["spec"]["type"] == "upf"


def test_a_claim_that_changes_shares_its_key_and_fqdn_with_the_one_it_replaces():
    # The records and indexes that still hold the old key tuple and fqdn string (a child's
    # record points at its parent's fqdn) then hold no second copy of them.
    config = CONFIGS["plain"]
    cache, rules = ObjectCache(), IncrementalRules(config)
    cache.replace(NODE, [node("n0", "10.0.0.1"), node("n1", "10.0.0.2")])
    cache.replace(CONTAINER, [container("c0", node="n0"), container("c1", mounted_to="c0", status=MOUNTED),
                              *BYSTANDERS])
    first = told_batch(rules, cache)
    before = first.published[("default", "c0")]

    cache.put(CONTAINER, container("c0", node="n1"))
    got = told_batch(rules, cache)

    after = got.published[("default", "c0")]
    assert after is not before and after.node == "n1"
    assert after.key is before.key and after.fqdn is before.fqdn
    assert got.state.children["c1.default.zone.test"] is after.fqdn


def test_a_batch_that_changes_no_record_hands_out_the_same_records_without_copying_them():
    config = CONFIGS["plain"]
    cache, rules = ObjectCache(), IncrementalRules(config)
    cache.replace(NODE, [node("n0", "10.0.0.1")])
    cache.replace(CONTAINER, [container("c0", node="n0"), container("c1", mounted_to="c0", status=MOUNTED),
                              *BYSTANDERS])
    first = told_batch(rules, cache)

    cache.put(NODE, node("n0", "10.0.0.9"))  # a node move: one key in Redis, no record of ours
    moved = told_batch(rules, cache)
    assert moved.state.nodes == {"n0": ("10.0.0.9",)}
    assert (moved.state.parents, moved.state.children, moved.published) == (
        first.state.parents, first.state.children, first.published)
    assert moved.state.parents is first.state.parents and moved.published is first.published

    cache.put(CONTAINER, container("c0", node="n1"))  # a record changes: copied, the last result untouched
    got = told_batch(rules, cache)
    assert got.state.parents is not first.state.parents and first.state.parents["c0.default.zone.test"] == "n0"


def test_a_parent_changed_on_its_own_node_keeps_its_place_in_the_nodes_parents():
    config = CONFIGS["plain"]
    cache, rules = ObjectCache(), IncrementalRules(config)
    cache.replace(NODE, [node("n0", "10.0.0.1"), node("n1", "10.0.0.2")])
    cache.replace(CONTAINER, [container("c0", node="n0"), container("c1", node="n0"),
                              container("c2", node="n1"), *BYSTANDERS])
    first = told_batch(rules, cache)
    on_n0 = first.parents_by_node["n0"]

    # c0's claim changes (its name), not its node: n0 holds the same parents, in the same
    # order, in the same tuple; a parent that moves node, comes or goes changes its nodes'.
    cache.put(CONTAINER, container("c0", node="n0", fqdn="a.zone.test"))
    changed = told_batch(rules, cache)
    assert changed.published[("default", "c0")].fqdn == "a.zone.test"
    assert changed.parents_by_node["n0"] is on_n0

    cache.put(CONTAINER, container("c3", node="n0"))
    cache.remove(CONTAINER, container("c3", node="n0"))  # put and gone in one batch: as before it
    cache.put(CONTAINER, container("c0", node="n0", fqdn="b.zone.test"))
    again = told_batch(rules, cache)
    assert again.parents_by_node["n0"] is on_n0

    cache.put(CONTAINER, container("c1", node="n1"))
    moved = told_batch(rules, cache)
    bystanders = {("team", f"b{i}") for i in range(8)}
    assert set(moved.parents_by_node["n0"]) == {("default", "c0")} | bystanders
    assert set(moved.parents_by_node["n1"]) == {("default", "c1"), ("default", "c2")}

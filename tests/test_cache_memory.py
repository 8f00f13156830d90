"""What keeps the sync's memory per Container down: repeated values held once, and a
list's objects slimmed once."""

from __future__ import annotations

import functools
import gc
import json
import random
import sys
import tracemalloc

import pytest

from mountdns.testing.objects import MOUNTED, container, node
from sync.flat_object import FlatObject
from sync.sources.cache import CONTAINER, NODE, POD, ObjectCache, object_key, slim
from sync.status import Verdict, status_patch


def listed(obj: dict) -> dict:
    """The object as a list page decodes it: every string a new object."""
    return json.loads(json.dumps(obj))


def test_values_many_containers_share_are_held_once():
    a = slim(CONTAINER, listed(container("a", node="node-1", type="odl", status=MOUNTED)))
    b = slim(CONTAINER, listed(container("b", node="node-1", type="odl", status=MOUNTED)))

    assert a["spec"]["nodeName"] is b["spec"]["nodeName"]
    assert a["spec"]["type"] is b["spec"]["type"]
    assert a["status"]["deviceStatus"] is b["status"]["deviceStatus"]
    assert a["metadata"]["namespace"] is b["metadata"]["namespace"]
    assert a["apiVersion"] is b["apiVersion"] and a["kind"] is b["kind"]


def test_slimmed_objects_are_cached_as_they_are():
    cache = ObjectCache()
    obj = slim(CONTAINER, listed(container("a", node="node-1")))

    cache.replace(CONTAINER, [obj], slimmed=True)

    assert cache.snapshot().containers == (obj,)
    assert cache.snapshot().containers[0] is obj


def _published(obj: dict, target: str, cname: bool) -> dict:
    """`obj` carrying the status the sync writes (its own status_patch), as listed."""
    verdict = Verdict.published_as(obj["spec"]["fqdn"], target, cname)
    patch = status_patch({**obj, "metadata": {**obj["metadata"], "generation": 1}}, verdict, "2026-01-01T00:00:00Z")
    return listed({**obj, "status": {**(obj.get("status") or {}), **patch["status"]}})


def _parent_and_child():
    parent = _published(container("p", node="node-1", fqdn="p.zone.test"), "node-1", cname=False)
    child = _published(container("c", node="node-1", fqdn="c.zone.test", mounted_to="p", status=MOUNTED),
                       "p.zone.test", cname=True)
    return parent, child


def _condition(obj):
    (condition,) = obj["status"]["conditions"]
    return condition


def test_a_child_holds_its_parents_name_and_fqdn_strings_not_copies():
    parent, child = _parent_and_child()
    cache = ObjectCache()
    cache.replace(CONTAINER, [child, parent])  # a list gives children first as often as not
    held = {obj["metadata"]["name"]: obj for obj in cache.snapshot().containers}
    p, c = held["p"], held["c"]

    assert c["spec"]["mountedTo"] is p["metadata"]["name"]
    assert c["status"]["target"] is p["spec"]["fqdn"]
    assert _condition(c)._target is p["spec"]["fqdn"]  # the message is made of it
    # The same content as listed: nothing a reader sees changed.
    assert c == slim(CONTAINER, child) and p == slim(CONTAINER, parent)
    assert _condition(c)["message"] == "c.zone.test is a CNAME to p.zone.test"


def test_a_child_from_a_watch_event_shares_too_and_keeps_sharing_after_a_status_event():
    parent, child = _parent_and_child()
    cache = ObjectCache()
    cache.replace(CONTAINER, [parent])
    cache.put(CONTAINER, child)
    (c,) = [obj for obj in cache.snapshot().containers if obj["metadata"]["name"] == "c"]
    p_fqdn = cache.snapshot().containers[0]["spec"]["fqdn"]
    assert c["status"]["target"] is p_fqdn and c["spec"]["mountedTo"] is cache.snapshot().containers[0]["metadata"]["name"]

    # The sync's own status write coming back: the same spec, a new resourceVersion.
    event = listed({**child, "metadata": {**child["metadata"], "resourceVersion": "7"}})
    cache.put(CONTAINER, event)
    (after,) = [obj for obj in cache.snapshot().containers if obj["metadata"]["name"] == "c"]
    assert after is c  # adopted in place, as before
    assert after["metadata"]["resourceVersion"] == "7"
    assert after["status"]["target"] is p_fqdn and _condition(after)._target is p_fqdn


def test_a_child_whose_target_is_not_its_parents_fqdn_keeps_its_own():
    parent, child = _parent_and_child()
    child = listed({**child, "status": {**child["status"], "target": "elsewhere.zone.test"}})
    cache = ObjectCache()
    cache.replace(CONTAINER, [parent, child])
    (c,) = [obj for obj in cache.snapshot().containers if obj["metadata"]["name"] == "c"]
    assert c["status"]["target"] == "elsewhere.zone.test"
    assert c == slim(CONTAINER, child)


def test_a_childs_status_target_is_not_interned():
    # A parent's target is its node (few distinct: interned); a child's is its parent's
    # fqdn, one per child: interning would cost a table entry each and share nothing.
    _, child = _parent_and_child()
    target = slim(CONTAINER, child)["status"]["target"]
    assert target is not sys.intern(listed(target))


def test_a_snapshot_keeps_the_objects_it_was_taken_with():
    cache = ObjectCache()
    a, b = (slim(CONTAINER, listed(container(name, node="node-1"))) for name in "ab")
    cache.replace(CONTAINER, [a, b], slimmed=True)
    first = cache.snapshot().containers
    c = listed(container("c", node="node-1"))
    cache.put(CONTAINER, c)
    cache.remove(CONTAINER, listed(container("a", node="node-1")))
    second = cache.snapshot().containers
    assert [obj["metadata"]["name"] for obj in first] == ["a", "b"] and first[0] is a
    assert sorted(obj["metadata"]["name"] for obj in second) == ["b", "c"] and len(second) == 2
    assert cache.snapshot().containers == second  # nothing changed since


def test_a_relist_that_finds_most_objects_as_held_changes_only_what_it_must():
    cache = ObjectCache()
    cache.replace(CONTAINER, [listed(container(f"c{i}", node="node-1")) for i in range(10)])
    before = cache.snapshot()
    held = {obj["metadata"]["name"]: obj for obj in before.containers}
    # The re-list: c3 moved node, c7 is gone, c10 is new; the rest as they were.
    relisted = [listed(container(f"c{i}", node="node-2" if i == 3 else "node-1")) for i in range(11) if i != 7]
    cache.replace(CONTAINER, relisted)
    after = cache.snapshot()

    names = sorted(obj["metadata"]["name"] for obj in after.containers)
    assert names == sorted(f"c{i}" for i in range(11) if i != 7) and len(after.containers) == 10
    now = {obj["metadata"]["name"]: obj for obj in after.containers}
    assert all(now[name] is held[name] for name in held if name not in ("c3", "c7"))  # the dicts the rules saw
    assert now["c3"]["spec"]["nodeName"] == "node-2"
    gone, added = after.changed[CONTAINER]
    assert sorted(o["metadata"]["name"] for o in gone) == ["c3", "c7"]
    assert sorted(o["metadata"]["name"] for o in added) == ["c10", "c3"]
    # The snapshot from before the re-list still holds what it held.
    assert sorted(obj["metadata"]["name"] for obj in before.containers) == sorted(f"c{i}" for i in range(10))
    assert {obj["metadata"]["name"]: obj for obj in before.containers}["c3"]["spec"]["nodeName"] == "node-1"


def _published_at(name: str, when: str, target: str = "node-1", **fields) -> dict:
    obj = container(name, node="node-1", fqdn=f"{name}.zone.test", **fields)
    verdict = Verdict.published_as(obj["spec"]["fqdn"], target, cname="mounted_to" in fields)
    patch = status_patch({**obj, "metadata": {**obj["metadata"], "generation": 1}}, verdict, when)
    return listed({**obj, "status": {**(obj.get("status") or {}), **patch["status"]}})


def test_containers_whose_status_was_written_in_the_same_second_hold_one_condition():
    same = [slim(CONTAINER, _published_at(name, "2026-01-01T00:00:00Z")) for name in ("a", "b")]
    later = slim(CONTAINER, _published_at("c", "2026-01-01T00:00:01Z"))
    held = [obj.held_at("status", "conditions") for obj in (*same, later)]

    assert held[0] is held[1] and held[2] is not held[0]
    # Read back, each is its own condition again, message and all, equal to the listed one.
    for obj in (*same, later):
        name = obj["metadata"]["name"]
        assert _condition(obj)["message"] == f"{name}.zone.test has the addresses of node node-1"
        assert _condition(obj) == _published_at(name, obj.get_in("status", "conditions")[0]["lastTransitionTime"]
                                                )["status"]["conditions"][0]
        assert obj.part("status")["conditions"] == obj["status"]["conditions"] == obj.get_in("status", "conditions")
    assert same[0] == slim(CONTAINER, _published_at("a", "2026-01-01T00:00:00Z")) and same[0] != same[1]


def test_a_condition_whose_message_is_not_made_of_its_own_status_is_held_whole():
    # A condition read with one fqdn and target, then put in a status that says others
    # (slimmed twice by hand): held without them, its message would change.
    kept = slim(CONTAINER, _published_at("a", "2026-01-01T00:00:00Z"))["status"]["conditions"][0]
    moved = slim(CONTAINER, {**container("b", node="node-2", fqdn="b.zone.test"),
                             "status": {"fqdn": "b.zone.test", "target": "node-2", "conditions": [kept]}})

    assert _condition(moved)["message"] == "a.zone.test has the addresses of node node-1"
    assert _condition(moved) == kept and moved.held_at("status", "conditions") is kept


def test_a_condition_with_a_field_of_an_unhashable_type_is_held_and_read_back():
    # Malformed (the schema bypassed): not shared, but held and read back as listed.
    obj = _published_at("a", "2026-01-01T00:00:00Z")
    obj["status"]["conditions"][0]["observedGeneration"] = [1]
    held = slim(CONTAINER, listed(obj))
    assert _condition(held) == obj["status"]["conditions"][0]
    assert held == slim(CONTAINER, listed(obj))


def test_conditions_held_before_the_table_of_held_ones_starts_again_stay_as_they_were(monkeypatch):
    import sync.status
    monkeypatch.setattr(sync.status, "_HELD", {})  # not the conditions earlier tests left
    monkeypatch.setattr(sync.status, "_MAX_HELD", 2)
    held = [slim(CONTAINER, _published_at(f"c{n}", f"2026-01-01T00:00:0{n}Z")) for n in range(5)]
    assert len(sync.status._HELD) <= 2
    for n, obj in enumerate(held):
        assert _condition(obj)["lastTransitionTime"] == f"2026-01-01T00:00:0{n}Z"
        assert _condition(obj)["message"] == f"c{n}.zone.test has the addresses of node node-1"


def test_a_held_condition_reads_back_as_listed_whatever_its_status_says():
    import random
    from sync.flat_object import FlatObject
    from sync.status import slim_status

    rng = random.Random(7)
    names = ("p.zone.test", "q.zone.test", "node-1", "node-2")
    messages = ("{fqdn} is a CNAME to {target}", "{fqdn} has the addresses of node {target}", "{fqdn} moved")
    for _ in range(600):
        fqdn, target = rng.choice(names + (None,)), rng.choice(names + (None,))
        said_fqdn, said_target = (fqdn, target) if rng.random() < 0.7 else (rng.choice(names), rng.choice(names))
        condition = {"type": "Published", "status": rng.choice(("True", "False")), "reason": "Published",
                     "message": rng.choice(messages).format(fqdn=said_fqdn, target=said_target),
                     "lastTransitionTime": f"2026-01-01T00:00:0{rng.randrange(3)}Z",
                     "observedGeneration": rng.choice((1, 2, [1]))}
        for field in ("message", "observedGeneration", "lastTransitionTime"):
            if rng.random() < 0.1:
                del condition[field]
        status = {"deviceStatus": MOUNTED, "conditions": [dict(condition)]}
        status.update({k: v for k, v in (("fqdn", fqdn), ("target", target)) if v is not None})
        kept = slim_status(listed(status), fqdn=fqdn, mounted=rng.random() < 0.5)
        held = FlatObject({"status": kept})

        assert held["status"] == kept and held == {"status": kept}
        assert held.get_in("status", "conditions") == held.part("status")["conditions"] == [condition]
        assert dict(held["status"]["conditions"][0]) == condition


# -- a re-list -------------------------------------------------------------------------
# The API server lists in etcd's key order ("namespace/name" as bytes); a re-list in that
# order whose objects are mostly as held is applied to the held dict without a dict of
# the listed keys. Whatever the order, the result must be what that dict gave.

def _etcd_order(objs: list[dict]) -> list[dict]:
    return sorted(objs, key=lambda o: f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}")


def _family(count: int, namespaces=("default",)) -> list[dict]:
    """`count` Containers, parents and children mounted to them, as listed (key order)."""
    objs = []
    for i in range(count // (2 * len(namespaces))):
        for namespace in namespaces:
            objs.append(container(f"p{i:06d}", node="node-1", fqdn=f"p{i:06d}.zone.test", namespace=namespace))
            objs.append(container(f"c{i:06d}", node="node-1", fqdn=f"c{i:06d}.zone.test", mounted_to=f"p{i:06d}",
                                  status=MOUNTED, namespace=namespace))
    return _etcd_order([listed(obj) for obj in objs])


def _names(objs) -> list[str]:
    return [obj["metadata"]["name"] for obj in objs]


def _relist(cache: ObjectCache, objs: list[dict], **options) -> None:
    """As the watcher re-lists: each object decoded anew, slimmed, kept as held if equal."""
    cache.replace(CONTAINER, [cache.kept(CONTAINER, slim(CONTAINER, listed(obj))) for obj in objs],
                  slimmed=True, **options)


def test_a_relist_of_objects_as_held_changes_nothing_and_keeps_every_object():
    objs = _family(20)
    cache = ObjectCache()
    cache.replace(CONTAINER, objs)
    held = list(cache.snapshot().containers)

    _relist(cache, objs)
    after = cache.snapshot()
    # Equal objects that did not go through kept() are found as held too.
    cache.replace(CONTAINER, [slim(CONTAINER, listed(obj)) for obj in objs], slimmed=True)
    again = cache.snapshot()

    for snapshot in (after, again):
        assert len(snapshot.containers) == len(held)
        assert all(now is before for now, before in zip(snapshot.containers, held))
        assert all(gone == [] and now == [] for gone, now in snapshot.changed.values())


def test_a_relist_in_key_order_with_some_changed_replaces_only_those():
    objs = _family(20)
    cache = ObjectCache()
    cache.replace(CONTAINER, objs)
    held = {obj["metadata"]["name"]: obj for obj in cache.snapshot().containers}
    moved = ("c000003", "p000007")
    relisted = [listed(container(o["metadata"]["name"], node="node-2", fqdn=o["spec"]["fqdn"],
                                 mounted_to=o["spec"].get("mountedTo"), status=o.get("status", {}).get("deviceStatus")))
                if o["metadata"]["name"] in moved else o for o in objs]

    _relist(cache, relisted)
    after = cache.snapshot()

    now = {obj["metadata"]["name"]: obj for obj in after.containers}
    assert _names(after.containers) == _names(objs)
    assert all(now[name] is held[name] for name in held if name not in moved)
    assert all(now[name]["spec"]["nodeName"] == "node-2" for name in moved)
    gone, added = after.changed[CONTAINER]
    assert sorted(_names(gone)) == sorted(_names(added)) == sorted(moved)
    assert all(old is held[old["metadata"]["name"]] for old in gone)
    # The child moved with its parent unchanged: it holds its parent's strings again.
    assert now["c000003"]["spec"]["mountedTo"] is now["p000003"]["metadata"]["name"]


def test_a_relist_in_key_order_with_some_gone_removes_them():
    objs = _family(20)
    cache = ObjectCache()
    cache.replace(CONTAINER, objs)
    held = {obj["metadata"]["name"]: obj for obj in cache.snapshot().containers}
    dropped = ("c000002", "c000009")

    _relist(cache, [o for o in objs if o["metadata"]["name"] not in dropped])
    after = cache.snapshot()

    assert _names(after.containers) == [name for name in _names(objs) if name not in dropped]
    assert all(obj is held[obj["metadata"]["name"]] for obj in after.containers)
    gone, added = after.changed[CONTAINER]
    assert _names(gone) == list(dropped) and added == []
    assert all(old is held[old["metadata"]["name"]] for old in gone)


@pytest.mark.parametrize("order, node", [
    (("a", "b-moved", "b", "c"), "node-1"),  # in key order but for the repeat: the last one wins
    (("a", "b", "b-moved", "c"), "node-2"),
    (("b-moved", "c", "a", "b"), "node-1"),  # in no order
    (("b", "c", "a", "b-moved"), "node-2"),
])
def test_a_key_listed_twice_holds_the_last_object_listed(order, node):
    objs = {name: listed(container(name, node="node-1")) for name in "abc"}
    objs["b-moved"] = listed(container("b", node="node-2"))
    cache = ObjectCache()
    cache.replace(CONTAINER, [objs[name] for name in "abc"])
    held = {obj["metadata"]["name"]: obj for obj in cache.snapshot().containers}

    _relist(cache, [objs[name] for name in order])
    after = cache.snapshot()

    now = {obj["metadata"]["name"]: obj for obj in after.containers}
    assert sorted(now) == ["a", "b", "c"] and len(after.containers) == 3
    assert now["a"] is held["a"] and now["c"] is held["c"]
    assert now["b"]["spec"]["nodeName"] == node
    assert (now["b"] is held["b"]) == (node == "node-1")
    gone, added = after.changed[CONTAINER]
    assert (_names(gone), _names(added)) == ((["b"], ["b"]) if node == "node-2" else ([], []))


def test_an_incomplete_list_in_key_order_adds_and_updates_and_removes_nothing():
    objs = _family(20)
    cache = ObjectCache()
    cache.replace(CONTAINER, objs)
    cache.replace(NODE, [])
    held = {obj["metadata"]["name"]: obj for obj in cache.snapshot().containers}
    new = listed(container("c000000a", node="node-1"))
    moved = listed(container("p000001", node="node-2", fqdn="p000001.zone.test"))

    _relist(cache, [objs[0], new, moved], complete=False)
    after = cache.snapshot()

    now = {obj["metadata"]["name"]: obj for obj in after.containers}
    assert sorted(now) == sorted([*held, "c000000a"])
    assert all(now[name] is held[name] for name in held if name != "p000001")
    assert now["p000001"]["spec"]["nodeName"] == "node-2"
    assert not after.complete
    gone, added = after.changed[CONTAINER]
    assert _names(gone) == ["p000001"] and sorted(_names(added)) == ["c000000a", "p000001"]

    _relist(cache, _etcd_order([*objs, new]))  # complete again: nothing gone, p000001 as listed
    assert cache.snapshot().complete


class _Reference(ObjectCache):
    """The cache with every list applied by a dict of every listed key (`_replace`, the way
    all lists went before re-lists in key order were applied without one): what replace()
    must still do, object for object."""

    def _relisted(self, kind: str, objects) -> bool:
        return False


_NAMESPACES = ("a", "a-b", "b")  # "a-b/..." lists before "a/...", and sorts after it as pairs
_POOL = {CONTAINER: [(ns, f"{role}{i}") for ns in _NAMESPACES for i in (1, 2, 10) for role in "cp"],
         NODE: [("", f"node-{i}") for i in (1, 2, 10)]}


@functools.lru_cache(maxsize=None)
def _raw(kind: str, key: tuple[str, str], version: int) -> str:
    """An object as listed, as JSON: a version is what changes between lists."""
    namespace, name = key
    if kind == NODE:
        return json.dumps(node(name, f"10.0.0.{version}"))
    # Version 3 of a parent has another fqdn: its children's targets no longer name it.
    fqdn = f"{name}-{version // 3}.{namespace}.test"
    if name.startswith("c"):
        parent = f"p{name[1:]}"
        obj = container(name, node=f"node-{version}", fqdn=fqdn, mounted_to=parent, status=MOUNTED,
                        namespace=namespace)
        return json.dumps(_published(obj, f"{parent}-0.{namespace}.test", cname=True))
    return json.dumps(_published(container(name, node=f"node-{version}", fqdn=fqdn, namespace=namespace),
                                 f"node-{version}", cname=False))


def _ordered(rng: random.Random, listed_keys: list, mode: str) -> list:
    if mode == "shuffled":
        rng.shuffle(listed_keys)
    else:
        listed_keys.sort(key=(lambda k: k[0][0] + "/" + k[0][1]) if mode != "pairs" else (lambda k: k[0]))
    if mode.startswith("twice") and listed_keys:
        at = rng.randrange(len(listed_keys))
        again = (listed_keys[at][0], rng.choice((listed_keys[at][1], rng.randint(1, 3))))
        listed_keys.insert(at + 1 if mode == "twice-after" else rng.randrange(len(listed_keys) + 1), again)
    return listed_keys


class _World:
    """A cache and the objects given to it, each named by where it was made (step,
    place in the list), so that two caches given the same lists can be compared object
    for object."""

    def __init__(self, cache: ObjectCache):
        self.cache, self.named, self.alive = cache, {}, []

    def objects(self, kind, items, step, slimmed, kept):
        made = []
        for place, (key, version) in enumerate(items):
            obj = json.loads(_raw(kind, key, version))
            if slimmed:
                obj = slim(kind, obj)
                self.named[id(obj)] = (step, place)
                self.alive.append(obj)  # its id names it only while it lives
                if kept:
                    obj = self.cache.kept(kind, obj)
            made.append(obj)
        return made

    def name(self, obj):
        # Objects the cache slimmed itself are told apart by content.
        return self.named.get(id(obj), ("slimmed by the cache", obj))

    def seen(self) -> dict:
        snapshot = self.cache.snapshot()
        seen = {"complete": snapshot.complete, "relisting": self.cache.relisting()}
        for kind, objs in ((CONTAINER, snapshot.containers), (NODE, snapshot.nodes)):
            seen[kind] = [self.name(obj) for obj in objs]
            gone, now = snapshot.changed[kind]
            seen[kind, "changed"] = ([self.name(obj) for obj in gone], [self.name(obj) for obj in now])
        by_key = {object_key(obj): obj for obj in snapshot.containers}
        seen["shared"] = [_shares(obj, by_key) for obj in snapshot.containers]
        return seen


def _shares(child, by_key):
    """Whether the child holds its parent's name and fqdn strings themselves."""
    if type(child) is not FlatObject or type(child.held_at("spec", "mountedTo")) is not str:
        return None
    parent = by_key.get((object_key(child)[0], child.held_at("spec", "mountedTo")))
    if type(parent) is not FlatObject:
        return None
    return (child.held_at("spec", "mountedTo") is object_key(parent)[1],
            child.held_at("status", "target") is parent.held_at("spec", "fqdn"))


def test_replace_holds_and_reports_what_a_dict_of_the_listed_keys_gave(monkeypatch):
    in_place = []
    relisted = ObjectCache._relisted
    monkeypatch.setattr(ObjectCache, "_relisted",
                        lambda self, *args: in_place.append(relisted(self, *args)) or in_place[-1])
    modes = ("etcd", "etcd", "etcd", "pairs", "shuffled", "twice-after", "twice-anywhere")
    for seed in range(150):
        rng = random.Random(seed)
        worlds = [_World(_Reference()), _World(ObjectCache())]
        for world in worlds:
            world.cache.replace(POD, [])
        state = {kind: {} for kind in _POOL}
        for step in range(12):
            kind = rng.choice((CONTAINER, CONTAINER, NODE))
            versions = state[kind]
            if rng.random() < 0.15:  # most of it changes (a first list, a cluster rebuilt)
                versions.clear()
            for key in _POOL[kind]:
                roll = rng.random()
                if key not in versions:
                    if roll < 0.1 or not step:
                        versions[key] = rng.randint(1, 3)
                elif roll < 0.05:
                    del versions[key]
                elif roll < 0.12:
                    versions[key] = rng.randint(1, 3)
            items = _ordered(rng, list(versions.items()), rng.choice(modes))
            complete, slimmed, kept = rng.random() < 0.85, rng.random() < 0.7, rng.random() < 0.7
            relist = rng.random() < 0.2
            event = (rng.choice(items)[0], rng.randint(1, 3)) if items and rng.random() < 0.2 else None
            for world in worlds:
                if relist:
                    world.cache.relist_requested(kind)
                world.cache.replace(kind, world.objects(kind, items, step, slimmed, kept),
                                    complete=complete, slimmed=slimmed)
                if event is not None:
                    world.cache.put(kind, json.loads(_raw(kind, *event)))
            if rng.random() < 0.5 or step == 11:
                reference, seen = (world.seen() for world in worlds)
                assert seen == reference, (seed, step)
    # Both ways were taken, the one without a dict at about a quarter of the lists.
    assert in_place.count(True) > 200 and in_place.count(False) > 200


@pytest.mark.parametrize("namespaces", [("default",), ("team", "team-b")])  # "team-b/..." lists first
def test_a_relist_of_objects_as_held_in_key_order_builds_nothing_per_object(namespaces):
    count = 20_000
    objects = [slim(CONTAINER, obj) for obj in _family(count, namespaces)]
    cache = ObjectCache()
    cache.replace(CONTAINER, objects, slimmed=True)
    cache.snapshot()
    gc.collect()

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache.replace(CONTAINER, objects, slimmed=True)  # what kept() makes of an unchanged list
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()

    assert peak < sys.getsizeof(dict.fromkeys(range(count))) / 4
    snapshot = cache.snapshot()
    assert len(snapshot.containers) == count and snapshot.changed[CONTAINER] == ([], [])

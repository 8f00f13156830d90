"""A FlatObject is the dict it was made from, held as one tuple: equal to it, key order
and malformed values included; read-only parts; adopt() swaps the whole content at once."""

from __future__ import annotations

import json
import random
import sys

import pytest

from mountdns.testing.objects import MOUNTED, container
from sync.flat_object import OBJECT_TYPES, FlatObject, flat
from sync.sources.cache import CONTAINER, ObjectCache, slim


def listed(obj: dict) -> dict:
    return json.loads(json.dumps(obj))


def random_object(rng: random.Random, depth: int = 0):
    """A JSON value as a list page may hold one, malformed parts included."""
    choice = rng.randrange(7 if depth < 3 else 4)
    if choice == 0:
        return rng.choice(["", "a", "MOUNTED", "x" * rng.randrange(300)])
    if choice == 1:
        return rng.choice([0, 1, -5, 2 ** 40, 1.5])
    if choice == 2:
        return rng.choice([None, True, False])
    if choice == 3:
        return "s%d" % rng.randrange(10)
    if choice in (4, 5):
        return {f"k{rng.randrange(6)}": random_object(rng, depth + 1) for _ in range(rng.randrange(5))}
    return [random_object(rng, depth + 1) for _ in range(rng.randrange(4))]


def test_any_object_comes_back_equal_with_its_key_order():
    rng = random.Random(5)
    for _ in range(2000):
        obj = {f"top{rng.randrange(8)}": random_object(rng) for _ in range(rng.randrange(7))}
        held = FlatObject(obj)
        assert held == obj and obj == held
        assert held.to_dict() == obj
        assert list(held) == list(obj) and len(held) == len(obj)
        for key, value in obj.items():
            assert held[key] == value and held.get(key) == value and key in held
            if isinstance(value, dict):
                assert list(held[key]) == list(value)
        assert held.get("absent") is None and held.get("absent", 7) == 7 and "absent" not in held
        with pytest.raises(KeyError):
            held["absent"]


def test_a_part_read_is_a_new_dict_so_editing_it_changes_nothing_held():
    held = FlatObject(listed(container("a", node="node-1")))
    spec = held["spec"]
    spec["nodeName"] = "elsewhere"
    assert held["spec"]["nodeName"] == "node-1"


def test_objects_differing_anywhere_are_not_equal():
    base = listed(container("a", node="node-1", status=MOUNTED))
    other = listed(container("a", node="node-2", status=MOUNTED))
    reordered = {key: base[key] for key in reversed(list(base))}
    assert FlatObject(base) != FlatObject(other)
    assert FlatObject(base) != other
    assert FlatObject(base) == FlatObject(reordered)  # as dicts compare: order does not count
    assert FlatObject(base) != ["not", "a", "mapping"]


def test_objects_of_one_shape_share_their_layout():
    a = FlatObject(listed(container("a", node="node-1")))
    b = FlatObject(listed(container("b", node="node-2")))
    assert a._flat[0] is b._flat[0]


def test_adopt_swaps_the_content_and_a_copy_keeps_the_old_one():
    held = FlatObject(listed(container("a", node="node-1")))
    before = held.copy()
    held.adopt(FlatObject(listed(container("a", node="node-1", status=MOUNTED))))
    assert held["status"] == {"deviceStatus": MOUNTED}
    assert "status" not in before or before["status"] != {"deviceStatus": MOUNTED}
    assert before == listed(container("a", node="node-1"))


def test_only_dicts_are_flattened_and_both_count_as_objects():
    assert flat("text") == "text" and flat(None) is None
    held = flat({"metadata": {"name": "a"}})
    assert type(held) is FlatObject and isinstance(held, OBJECT_TYPES)
    with pytest.raises(TypeError):
        hash(held)


def _unique_bytes(obj: FlatObject, shared: set[int]) -> int:
    """What one held object costs on its own: the object, its tuple and the values no
    other object shares (interned ones excluded)."""
    flat_tuple = obj._flat
    total = sys.getsizeof(obj) + sys.getsizeof(flat_tuple)
    for value in flat_tuple[1:]:
        if id(value) not in shared:
            total += sys.getsizeof(value)
    return total


def test_a_slimmed_container_is_held_in_under_500_bytes():
    # Four dicts (the object, metadata, spec, status) held the same content in ~1,200.
    a, b = (slim(CONTAINER, listed(container(f"c-{i:07d}", node="node-00001", fqdn=f"c-{i:07d}.domain.foo.bar",
                                             type="netconf", mounted_to=f"p-{i:07d}", status=MOUNTED)))
            for i in (1, 2))
    shared = {id(x) for x in set(a._flat[1:]) & set(b._flat[1:]) if not isinstance(x, (dict, list))}
    shared |= {id(v) for v in a._flat[1:] if v is not None and any(v is w for w in b._flat[1:])}
    assert type(a) is FlatObject
    assert _unique_bytes(a, shared) < 500


def test_the_cache_holds_listed_containers_flat_and_hands_them_out_as_mappings():
    cache = ObjectCache()
    cache.replace(CONTAINER, [listed(container("a", node="node-1"))])
    held, = cache.snapshot().containers
    assert type(held) is FlatObject
    assert held["metadata"]["name"] == "a" and held["spec"]["nodeName"] == "node-1"


def test_an_object_replaced_by_a_watch_event_keeps_the_key_tuple_the_cache_holds():
    cache = ObjectCache()
    cache.replace(CONTAINER, [listed(container("a", node="node-1"))])
    held, = cache.snapshot().containers
    cache.put(CONTAINER, listed(container("a", node="node-2")))
    new, = cache.snapshot().containers
    assert new is not held and new["spec"]["nodeName"] == "node-2"
    assert new.key is held.key and next(iter(cache._objects[CONTAINER])) is held.key


def test_a_one_item_list_is_held_as_its_item_and_read_as_a_new_list():
    condition = {"type": "Published", "status": "True"}
    obj = listed({"metadata": {"name": "a"}, "status": {"conditions": [condition], "both": [1, 2], "none": []}})
    held = FlatObject(obj)
    assert held == obj and held["status"]["conditions"] == [condition]
    assert not any(type(value) is list and len(value) == 1 for value in held._flat[1:])  # no list object held
    read = held["status"]["conditions"]
    read.append("edited")
    assert held["status"]["conditions"] == [condition] and held["status"]["conditions"] is not read
    assert FlatObject(listed(obj)) == held  # one layout, values compared
    other = listed(obj)
    other["status"]["conditions"] = condition  # the item itself, not in a list: another object
    assert FlatObject(other) != held and held != other


def _same_for_rules_as_dicts(old: dict, new: dict) -> bool:
    """The cache's comparison of two Containers as written over plain dicts."""
    old_meta, new_meta = old.get("metadata"), new.get("metadata")
    old_status, new_status = old.get("status"), new.get("status")
    if not all(isinstance(part, dict) for part in (old_meta, new_meta, old_status, new_status)):
        return False
    return (old.get("spec") == new.get("spec") and old.get("apiVersion") == new.get("apiVersion")
            and old_status.get("deviceStatus") == new_status.get("deviceStatus")
            and all(old_meta.get(k) == new_meta.get(k) for k in ("name", "namespace", "creationTimestamp")))


def _variants() -> list[dict]:
    base = container("c1", node="n0", mounted_to="p1", status=MOUNTED, fqdn="c1.example.org", type="netconf")
    base["metadata"].update(resourceVersion="5", generation=1)
    made = [base]
    for edit in (
            lambda o: o["metadata"].update(resourceVersion="6"),  # only what the rules do not read
            lambda o: o["status"].update(conditions=[{"type": "Published", "status": "True"}], fqdn="c1.x"),
            lambda o: o["spec"].update(mountedTo="p2"),
            lambda o: o["spec"].update(extra=["one"]),  # a one-item list, held as its item
            lambda o: o["spec"].update(extra=["two"]),
            lambda o: o.update(apiVersion="mountdns.io/v2"),
            lambda o: o["status"].update(deviceStatus="UNMOUNTED"),
            lambda o: o["status"].pop("deviceStatus"),
            lambda o: o["metadata"].update(name="c2"),
            lambda o: o["metadata"].update(namespace="other"),
            lambda o: o["metadata"].update(creationTimestamp="2025-01-01T00:00:00Z"),
            lambda o: o["metadata"].pop("creationTimestamp"),
            lambda o: o.update(status="broken"),  # malformed: never the same for the rules
            lambda o: o.pop("status"),
            lambda o: o.update(spec="broken")):
        obj = json.loads(json.dumps(base))
        edit(obj)
        made.append(obj)
    return made


def test_the_cache_compares_flat_containers_in_their_tuples_as_it_compares_their_dicts():
    from sync.sources.cache import _same_for_rules

    variants = _variants()
    compared_flat = 0
    for old in variants:
        for new in variants:
            flat_old, flat_new = FlatObject(old), FlatObject(new)
            if flat_old.same_at(flat_new, (("spec", None),)) is not None:
                compared_flat += 1  # one layout: decided from the tuples
            assert _same_for_rules(flat_old, flat_new) == _same_for_rules_as_dicts(old, new), (old, new)
    assert compared_flat > len(variants) * 4  # most pairs share a layout


def test_same_at_reads_a_whole_part_or_one_value_of_it_and_refuses_two_layouts():
    one = FlatObject({"spec": {"a": 1, "b": [2]}, "kind": "K"})
    two = FlatObject({"spec": {"a": 1, "b": [3]}, "kind": "K"})
    assert one.same_at(two, (("spec", "a"), ("kind", None))) is True
    assert one.same_at(two, (("spec", None),)) is False
    assert one.same_at(two, (("spec", "b"),)) is False
    assert one.same_at(two, (("missing", None), ("spec", "missing"))) is True
    assert one.same_at(FlatObject({"kind": "K", "spec": {"a": 1, "b": [2]}}), (("kind", None),)) is None
    assert one.is_dict("spec") and not one.is_dict("kind") and not one.is_dict("missing")


def random_held(seed: int, count: int):
    """`count` random objects of up to four top-level keys k0-k3, each with its FlatObject."""
    rng = random.Random(seed)
    for _ in range(count):
        obj = {f"k{rng.randrange(4)}": random_object(rng) for _ in range(rng.randrange(5))}
        yield obj, FlatObject(obj)


def test_get_in_reads_one_value_of_a_part_as_the_mapping_would():
    for obj, held in random_held(7, 500):
        for key in ("k0", "k1", "k2", "k3"):
            for subkey in ("k0", "k1", "k2", "k5"):
                part = obj.get(key)
                want = part.get(subkey, "absent") if isinstance(part, dict) else "absent"
                assert held.get_in(key, subkey, "absent") == want, (obj, key, subkey)


def test_the_keys_read_in_place_are_those_read_from_the_dicts():
    from sync.incremental import _pod_named
    from sync.sources.cache import _key_of
    from sync.status_writer import _key

    rng = random.Random(11)
    shapes = [container("c1", node="n0"), container("c2", pod="p2", namespace="other"),
              container("c3", pod="p3", namespace=""), {"metadata": "broken", "spec": {"podRef": {"name": "p"}}},
              {"metadata": {"name": ["listed"], "namespace": 5}, "spec": {"podRef": "p"}},
              {"metadata": {"name": "c4"}, "spec": {"podRef": {"name": ["p4"]}}}, {"spec": "broken"}]
    for _ in range(200):
        obj = listed(rng.choice(shapes))
        if rng.random() < 0.3:
            obj["metadata"] = random_object(rng)
        held = FlatObject(obj)
        for read in (_pod_named, _key_of, _key):
            if read is _key_of and not isinstance(obj.get("metadata"), dict):
                continue  # a key made of the object's repr: a FlatObject's differs, and slim() keeps such a dict
            assert read(held) == read(obj), (read.__name__, obj)


def test_share_holds_the_given_equal_value_and_leaves_the_rest():
    name, fqdn = "p", "p.zone.test"
    obj = FlatObject({"metadata": {"name": "c"}, "spec": {"mountedTo": "".join(["p"]), "fqdn": "c.zone.test"},
                      "status": {"target": "".join(["p.zone", ".test"]), "conditions": [{"type": "X"}]}})
    before = obj.to_dict()
    obj.share((("spec", "mountedTo", name), ("status", "target", fqdn), ("spec", "fqdn", "other.zone.test"),
               ("status", "missing", "x"), ("nope", "x", "y")))
    assert obj.to_dict() == before
    assert obj.get_in("spec", "mountedTo") is name and obj.get_in("status", "target") is fqdn
    assert obj.get_in("spec", "fqdn") == "c.zone.test"  # not equal: kept
    # A one-item list is held as its item: an equal item can be shared as well.
    item = {"type": "X"}
    obj.share((("status", "conditions", item),))
    assert obj.get_in("status", "conditions")[0] is item and obj.to_dict() == before


def test_a_part_read_in_place_equals_the_dict_built_and_is_none_for_anything_else():
    for obj, held in random_held(13, 1000):
        for key in ("k0", "k1", "k2", "k3"):
            part = held.part(key)
            if not isinstance(obj.get(key), dict):
                assert part is None, (obj, key)  # absent, or not a dict
                continue
            want = obj[key]
            assert part == want and dict(part) == want and list(part) == list(want) and len(part) == len(want)
            for subkey in ("k0", "k1", "k2", "k5"):
                assert part.get(subkey, "absent") == want.get(subkey, "absent")
                assert (subkey in part) == (subkey in want)
                if subkey in want:
                    assert part[subkey] == want[subkey]
                else:
                    with pytest.raises(KeyError):
                        part[subkey]


def test_a_part_reads_the_version_it_was_taken_from_and_gives_new_one_item_lists():
    held = FlatObject(listed(container("c", node="n0", mounted_to="p", status=MOUNTED)))
    spec, status = held.part("spec"), held.part("status")
    held.adopt(FlatObject(listed(container("c", node="n1", mounted_to="p", status="UNMOUNTED"))))
    assert spec.get("nodeName") == "n0" and held.part("spec").get("nodeName") == "n1"
    assert status.get("deviceStatus") == MOUNTED
    one = FlatObject({"status": {"conditions": [{"type": "Ready"}]}}).part("status")
    first, second = one.get("conditions"), one["conditions"]
    assert first == second == [{"type": "Ready"}] and first is not second
    first.append("edited")
    assert one.get("conditions") == [{"type": "Ready"}]


def test_the_rules_read_a_held_container_as_they_read_its_dict():
    from mountdns.records import Zone
    from sync.objects import ContainerReader, NotPublishable, RulesConfig

    config = RulesConfig(zones=(Zone("zone.test", ("ns1.zone.test",), "hostmaster.zone.test"),))
    rng = random.Random(17)

    def outcome(obj):
        try:
            return ContainerReader(config).read(obj)
        except NotPublishable as exc:
            return ("not publishable", str(exc))

    for _ in range(600):
        obj = listed(container(rng.choice(["c1", "c2"]), node=rng.choice([None, "n0", "N1"]),
                               mounted_to=rng.choice([None, "c1", "p"]), status=rng.choice([None, MOUNTED, "X"]),
                               fqdn=rng.choice([None, "a.zone.test", "bad..zone.test", "a.elsewhere"]),
                               type=rng.choice([None, "netconf"]), pod=rng.choice([None, None, "p1"])))
        for part in ("metadata", "spec", "status"):
            if rng.random() < 0.15:
                obj[part] = random_object(rng)  # malformed, or absent
            elif rng.random() < 0.2 and isinstance(obj.get(part), dict):
                obj[part][rng.choice(["name", "nodeName", "mountedTo", "deviceStatus", "fqdn"])] = random_object(rng)
        held = FlatObject(obj)
        assert held.part("spec") is not None or not isinstance(obj.get("spec"), dict)
        assert outcome(held) == outcome(obj), obj


# metadata.resourceVersion: a canonical decimal string is held as its int and read back as
# the same string; anything else is held as it is.

def _position(held: FlatObject, key: str, subkey: str) -> int:
    return held._flat[0].parts[key][subkey][0]


def _every_read(held: FlatObject, key: str, subkey: str) -> list:
    """`held[key][subkey]` by every way a reader has of reading it."""
    part = held.part(key)
    return [held[key][subkey], held.get(key)[subkey], held.to_dict()[key][subkey], dict(held.items())[key][subkey],
            held.get_in(key, subkey), held.held_at(key, subkey), part.get(subkey), part[subkey],
            dict(part)[subkey], dict(part.items())[subkey], held.copy()[key][subkey]]


def test_a_decimal_resource_version_is_held_as_an_int_and_read_back_as_the_same_str():
    for version in ("1234567", "0", "5", "999999999999999999", "2" * 10):
        obj = listed({"apiVersion": "v1", "kind": "Container",
                      "metadata": {"name": "c", "resourceVersion": version, "generation": 1},
                      "spec": {"nodeName": "n0"}})
        held = FlatObject(obj)
        assert held._flat[_position(held, "metadata", "resourceVersion")] == int(version)
        assert type(held._flat[_position(held, "metadata", "resourceVersion")]) is int
        assert held == obj and obj == held and held.to_dict() == obj and not held != obj
        assert list(held["metadata"]) == list(obj["metadata"]) and list(held.part("metadata")) == list(obj["metadata"])
        for read in _every_read(held, "metadata", "resourceVersion"):
            assert type(read) is str and read == version, read
        assert held.get_in("metadata", "generation") == 1 and held.held_at("metadata", "name") == "c"
        assert json.loads(json.dumps(held.to_dict())) == obj
        assert repr(held) == f"FlatObject({obj!r})"


def test_a_slimmed_container_holds_its_resource_version_as_an_int():
    obj = listed(container("c", node="n0", status=MOUNTED))
    obj["metadata"]["resourceVersion"] = "7654321"
    held = slim(CONTAINER, listed(obj))
    assert type(held) is FlatObject
    at = _position(held, "metadata", "resourceVersion")
    assert held._flat[at] == 7654321 and not any(type(v) is str and v == "7654321" for v in held._flat[1:])
    assert sys.getsizeof(held._flat[at]) < sys.getsizeof("7654321")  # 28 bytes against 56
    assert held["metadata"]["resourceVersion"] == "7654321"
    assert held == slim(CONTAINER, listed(obj)) and held.to_dict() == slim(CONTAINER, listed(obj)).to_dict()
    # The whole object, against the same one with a version of as many characters held as a str.
    kept = listed(obj)
    kept["metadata"]["resourceVersion"] = "0654321"
    as_str = slim(CONTAINER, kept)
    assert type(as_str._flat[at]) is str and as_str._flat[0] is not held._flat[0]
    assert _unique_bytes(held, set()) <= _unique_bytes(as_str, set()) - 24


def test_a_resource_version_that_would_not_come_back_exactly_is_held_as_it_is():
    values = ["007", "00", "12a", "", " 1", "1 ", "+1", "-1", "1_000", "1.0", "1e3", "0x1f", "1" * 19, "9" * 40,
              "\u0661\u0662",  # Arabic-Indic digits: isdecimal(), and int() reads them, but not ASCII
              "\u00b2", "\uff11", "nine", 5, 0, -1, 2 ** 40, 1.5, True, None, ["1"], {"v": "1"}]
    for value in values:
        obj = {"metadata": {"name": "c", "resourceVersion": value}, "spec": {"a": 1}}
        held = FlatObject(obj)
        at = _position(held, "metadata", "resourceVersion")
        assert held._flat[at] is value or type(value) is list, value  # a one-item list is held as its item
        assert held == obj and held.to_dict() == obj
        assert held._flat[0].numbers == ((), ())
        for read in _every_read(held, "metadata", "resourceVersion"):
            if type(value) is list:
                assert read == value or read == value[0], (value, read)  # held_at: the item
            else:
                assert read == value and type(read) is type(value), (value, read)


def test_only_what_int_and_str_give_back_exactly_is_held_as_a_number():
    from sync.flat_object import _MAX_DIGITS

    rng = random.Random(19)
    alphabet = "0123456789" * 4 + "a +-_.\u0661\u00b2"
    samples = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(22))) for _ in range(20000)]
    for value in samples + ["0", "00", "1" * _MAX_DIGITS, "1" * (_MAX_DIGITS + 1)]:
        canonical = (value.isascii() and value.isdecimal() and len(value) <= _MAX_DIGITS
                     and str(int(value)) == value)
        obj = {"metadata": {"name": "c", "resourceVersion": value}}
        held = FlatObject(obj)
        number = held._flat[_position(held, "metadata", "resourceVersion")]
        assert (type(number) is int) == canonical, value
        assert number == (int(value) if canonical else value) and held == obj
        assert held["metadata"]["resourceVersion"] == value and type(held.get_in("metadata", "resourceVersion")) is str


def test_resource_version_only_in_metadata_is_held_as_a_number():
    obj = {"spec": {"resourceVersion": "5"}, "status": {"resourceVersion": "5"}, "resourceVersion": "5",
           "metadata": {"generation": "5", "name": "5"}}
    held = FlatObject(obj)
    assert all(value == "5" for value in held._flat[1:]) and held == obj


def test_a_number_held_and_the_same_int_given_are_not_equal_and_layouts_tell_them_apart():
    as_str = FlatObject({"metadata": {"name": "c", "resourceVersion": "5"}})
    as_int = FlatObject({"metadata": {"name": "c", "resourceVersion": 5}})
    assert as_str._flat[1:] == as_int._flat[1:]  # the same values held...
    assert as_str._flat[0] != as_int._flat[0] and hash(as_str._flat[0]) != hash(as_int._flat[0])  # ...not read alike
    assert as_str != as_int and as_int != as_str
    assert as_str == {"metadata": {"name": "c", "resourceVersion": "5"}} != as_int
    assert as_str.same_at(as_int, (("metadata", None),)) is None  # two layouts: compared as mappings


def test_objects_holding_a_number_compare_across_layouts_and_share_theirs():
    from sync.flat_object import Layout

    obj = listed(container("c", node="n0", status=MOUNTED))
    obj["metadata"]["resourceVersion"] = "42"
    reordered = {key: obj[key] for key in reversed(list(obj))}
    reordered["metadata"] = {key: obj["metadata"][key] for key in reversed(list(obj["metadata"]))}
    held, other = FlatObject(obj), FlatObject(reordered)
    assert held._flat[0] != other._flat[0]
    assert held == other and other == held and held == reordered and other == obj
    newer = listed(obj)
    newer["metadata"]["resourceVersion"] = "43"
    assert held != FlatObject(newer) and FlatObject(newer) != held
    # One shape, whatever the number: one layout; a version held as it is makes another.
    assert FlatObject(newer)._flat[0] is held._flat[0]
    odd = listed(obj)
    odd["metadata"]["resourceVersion"] = "043"
    assert FlatObject(odd)._flat[0] is not held._flat[0] and FlatObject(odd) != held
    # A copy past the shared layouts (an equal layout, not the same object) is still equal.
    clone = FlatObject.__new__(FlatObject)
    layout = held._flat[0]
    clone._flat, clone.key = (Layout(layout.keys, layout.nested, layout.lists, layout.numbers), *held._flat[1:]), None
    assert clone == held and clone == obj and clone["metadata"]["resourceVersion"] == "42"


def test_same_at_compares_numbers_held():
    def made(version):
        return FlatObject({"metadata": {"name": "c", "resourceVersion": version}, "spec": {"a": 1}})

    assert made("5").same_at(made("5"), (("metadata", None), ("metadata", "resourceVersion"))) is True
    assert made("5").same_at(made("6"), (("metadata", None),)) is False
    assert made("5").same_at(made("6"), (("metadata", "resourceVersion"),)) is False
    assert made("5").same_at(made("6"), (("metadata", "name"), ("spec", None))) is True


def test_share_and_adopt_keep_a_number_held_and_read_as_its_str():
    from sync.sources.cache import _same_for_rules

    obj = FlatObject({"metadata": {"name": "c", "resourceVersion": "77"},
                      "spec": {"mountedTo": "".join(["p"])}, "status": {"target": "".join(["p.z"])}})
    before = obj.to_dict()
    name = "p"
    obj.share((("spec", "mountedTo", name), ("metadata", "resourceVersion", "77"),
               ("metadata", "resourceVersion", 77)))
    assert obj.to_dict() == before and obj.get_in("spec", "mountedTo") is name
    assert obj["metadata"]["resourceVersion"] == "77" and obj.held_at("metadata", "resourceVersion") == "77"
    assert type(obj._flat[_position(obj, "metadata", "resourceVersion")]) is int
    newer = FlatObject({"metadata": {"name": "c", "resourceVersion": "78"},
                        "spec": {"mountedTo": "p"}, "status": {"target": "p.z"}})
    assert _same_for_rules(obj, newer)  # only the version moved on
    copy = obj.copy()
    obj.adopt(newer)
    assert obj["metadata"]["resourceVersion"] == "78" and copy["metadata"]["resourceVersion"] == "77"


def test_a_held_item_joined_with_its_dict_reads_the_version_as_the_str():
    from sync.flat_object import Detachable, Held

    class Stamp(Held):
        __slots__ = ()

        def attach(self, part):
            return ("stamp", part.get("resourceVersion"), type(part.get("resourceVersion")).__name__)

    class Stamped(Detachable):
        __slots__ = ()

        def detach(self, part):
            return Stamp()

    held = FlatObject({"metadata": {"resourceVersion": "9", "stamps": [Stamped()]}})
    want = [("stamp", "9", "str")]
    assert held["metadata"]["stamps"] == want and held.get_in("metadata", "stamps") == want
    assert held.part("metadata")["stamps"] == want


def test_the_status_patch_and_the_writer_read_the_version_as_the_str():
    from sync.status import Verdict, status_patch
    from sync.status_writer import _resource_version

    obj = listed(container("c", node="n0", status=MOUNTED))
    obj["metadata"]["resourceVersion"] = "31337"
    held = slim(CONTAINER, listed(obj))
    assert _resource_version(held) == "31337" and type(_resource_version(held)) is str
    verdict = Verdict(False, "InvalidSpec", "no fqdn")
    patch = status_patch(held, verdict, "2025-01-01T00:00:00Z")
    assert patch["metadata"] == {"resourceVersion": "31337"} and type(patch["metadata"]["resourceVersion"]) is str
    assert json.dumps(patch) == json.dumps(status_patch(held.to_dict(), verdict, "2025-01-01T00:00:00Z"))

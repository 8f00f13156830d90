"""A FlatObject is the dict it was made from, held as one tuple: equal to it, key order
and malformed values included; read-only parts; adopt() swaps the whole content at once."""

from __future__ import annotations

import json
import random
import sys

import pytest

from mountdns.testing.objects import MOUNTED, container
from sync.flat_object import _MAX_HELD_LAYOUTS, OBJECT_TYPES, FlatObject, flat
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
    # Most pairs share a layout; those of another apiVersion, namespace or deviceStatus do not
    # (values held in the layout): compared as dicts, above.
    assert compared_flat > len(variants) * 2


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
    clone._flat, clone.key = (Layout(layout.keys, layout.nested, layout.lists, layout.numbers, layout.held),
                              *held._flat[1:]), None
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


# The values a cluster shares a handful of (top-level apiVersion and kind, metadata.namespace,
# spec.type, status.deviceStatus) are held in the layout, not in the tuple, when a short str.

_HELD_FIELDS = (("apiVersion", None), ("kind", None), ("metadata", "namespace"), ("spec", "type"),
                ("status", "deviceStatus"))


def _held_value(rng: random.Random):
    """A value for a field held in the layout when a short str: such strs mostly, of a few
    distinct values, and what stays in the tuple (long, not a str, a list, a dict)."""
    return rng.choice(["v1", "mountdns.io/v1alpha1", "Container", "default", "ns-1", "netconf", "MOUNTED", "",
                       "x" * 253, "y" * 254, "5", 5, 5.0, True, None, ["a"], ["a", "b"], [], {"a": 1}, {},
                       random_object(rng)])


def _random_container(rng: random.Random) -> dict:
    """A Container-like object: its parts in any order, each field that may be held in the
    layout present or not, with a value held or not."""
    parts = {"apiVersion": lambda: _held_value(rng), "kind": lambda: _held_value(rng),
             "metadata": lambda: {"name": f"c{rng.randrange(3)}", "namespace": _held_value(rng),
                                  "resourceVersion": rng.choice(["5", "05", 5]), "generation": 1},
             "spec": lambda: {"fqdn": "c.zone.test", "type": _held_value(rng), "nodeName": "n0",
                              "extra": [rng.choice(["one", "two"])]},
             "status": lambda: {"deviceStatus": _held_value(rng), "target": "p.zone.test",
                                "conditions": [{"type": "Published"}]},
             "other": lambda: rng.choice([1, "s", {"k": 1}, {"type": "t"}])}
    obj = {}
    for top in rng.sample(list(parts), rng.randrange(len(parts) + 1)):
        value = parts[top]() if rng.random() < 0.97 else random_object(rng)
        if isinstance(value, dict) and value and rng.random() < 0.5:
            keys = rng.sample(list(value), rng.randrange(len(value) + 1))  # some absent, in any order
            value = {key: value[key] for key in keys}
        obj[top] = value
    return json.loads(json.dumps(obj)) if rng.random() < 0.5 else obj


def _reads_equal(held: FlatObject, obj: dict) -> None:
    assert held == obj and obj == held and not held != obj and held.to_dict() == obj
    assert list(held) == list(obj) and len(held) == len(obj) and dict(held.items()) == obj
    assert held.copy() == obj and held.copy()._flat is held._flat
    for key, value in obj.items():
        assert held[key] == value and held.get(key) == value and type(held[key]) is type(value)
        if not isinstance(value, dict):
            assert held.part(key) is None and not held.is_dict(key)
            continue
        assert list(held[key]) == list(value) and held.is_dict(key)
        part = held.part(key)
        assert part == value and list(part) == list(value) and len(part) == len(value) and dict(part) == value
        for subkey, item in value.items():
            for read in (held.get_in(key, subkey), part.get(subkey), part[subkey], held[key][subkey]):
                assert read == item and type(read) is type(item), (key, subkey, read, item)
            at = held.held_at(key, subkey)
            assert at == item or (type(item) is list and [at] == item), (key, subkey, at, item)
        assert held.get_in(key, "absent", 7) == 7 and part.get("absent") is None and "absent" not in part


def _in_tuple(held: FlatObject, value) -> bool:
    return any(type(v) is type(value) and v == value for v in held._flat[1:])


@pytest.fixture(autouse=True)
def own_layouts():
    """_LAYOUTS emptied for each test and given back after: random objects make many, and
    tests that ran before (of the rules, of the cache) may have filled it past the cap on
    layouts that hold values (_MAX_HELD_LAYOUTS), where objects hold none in theirs."""
    from sync import flat_object

    saved = dict(flat_object._LAYOUTS)
    flat_object._LAYOUTS.clear()
    try:
        yield flat_object._LAYOUTS
    finally:
        flat_object._LAYOUTS.clear()
        flat_object._LAYOUTS.update(saved)


def _renamed(obj: dict) -> dict:
    """`obj` with another metadata.name where it has one: the same layout."""
    other = dict(obj)
    if isinstance(obj.get("metadata"), dict) and "name" in obj["metadata"]:
        other["metadata"] = {**obj["metadata"], "name": obj["metadata"]["name"] + "-2"}
    return other


def test_values_held_in_the_layout_come_back_by_every_read_whatever_they_are(own_layouts):
    rng = random.Random(23)
    seen_held, seen_kept = set(), set()
    for _ in range(10):
        own_layouts.clear()  # each round's objects, of so many layouts, all hold what they may
        _check_random_containers(rng, seen_held, seen_kept)
    assert seen_held == seen_kept == set(_HELD_FIELDS)  # each field both held and not


def _check_random_containers(rng: random.Random, seen_held: set, seen_kept: set) -> None:
    from sync.flat_object import _LAYOUTS

    made = []
    for _ in range(300):
        obj = _random_container(rng)
        held = FlatObject(obj)
        _reads_equal(held, obj)
        in_layout = dict(held._flat[0].held)
        assert set(in_layout) <= set(_HELD_FIELDS)
        for key, subkey in _HELD_FIELDS:
            part = obj if subkey is None else obj.get(key)
            name = key if subkey is None else subkey
            if not isinstance(part, dict) or name not in part or (subkey is None and isinstance(part[name], dict)):
                assert (key, subkey) not in in_layout  # absent, or a dict at the top: flattened as any
                continue
            value = part[name]
            holdable = type(value) is str and len(value) <= 253
            assert ((key, subkey) in in_layout) == holdable, (key, subkey, value)
            (seen_held if holdable else seen_kept).add((key, subkey))
            if holdable:
                assert in_layout[key, subkey] == value
        # The tuple holds every value of the object but those: its leaves less the layout's.
        leaves = sum(len(value) if isinstance(value, dict) else 1 for value in obj.values())
        assert len(held._flat) == 1 + leaves - len(in_layout)
        made.append((obj, held))
    assert len(_LAYOUTS) < _MAX_HELD_LAYOUTS  # all made holding what they may (see the cap's test)
    fields = _HELD_FIELDS + (("metadata", None), ("spec", None), ("status", None))
    compared = 0
    for (obj_a, a), (obj_b, b) in zip(made, made[1:] + made[:1]):
        # Two objects compare as their dicts do, of one layout or not...
        assert (a == b) == (obj_a == obj_b) and (b == a) == (obj_a == obj_b)
        assert (a == FlatObject(_renamed(obj_a))) == (obj_a == _renamed(obj_a))
        # ...and same_at as their values do; a field held in the layout is the same in both.
        renamed_obj = _renamed(obj_a)
        renamed = FlatObject(renamed_obj)
        assert renamed._flat[0] is a._flat[0]
        for other_obj, other in ((renamed_obj, renamed), (obj_b, b)):
            same = a.same_at(other, fields)
            if other._flat[0] is not a._flat[0]:
                assert same is None
                continue
            compared += 1
            assert same == all(obj_a.get(key) == other_obj.get(key)
                               for key in ("apiVersion", "kind", "metadata", "spec", "status")), (obj_a, other_obj)
            assert all(a.get_in(key, subkey, "-") == other.get_in(key, subkey, "-") for key, subkey in _HELD_FIELDS)
    assert compared >= len(made)
    for obj, held in made:
        again = FlatObject(obj)
        assert again._flat[0] is held._flat[0] and again._flat == held._flat and again == held


def test_a_container_tuple_holds_none_of_the_values_its_layout_holds():
    from bench.scale import topology, with_published_status

    parent, child = (slim(CONTAINER, {**obj, "metadata": {**obj["metadata"], "resourceVersion": "1234567"}})
                     for obj in listed(with_published_status(topology(2, 1)))[1:])
    assert parent.get_in("status", "conditions") and child.get_in("status", "conditions")  # published
    for held, values in ((parent, ("mountdns.io/v1alpha1", "Container", "default", "odl")),
                         (child, ("mountdns.io/v1alpha1", "Container", "default", "netconf", MOUNTED))):
        obj = held.to_dict()
        assert obj["apiVersion"] == "mountdns.io/v1alpha1" and obj["kind"] == "Container"
        assert obj["metadata"]["namespace"] == "default" and held["spec"]["type"] == values[3]
        assert tuple(value for _, value in held._flat[0].held) == values
        assert not any(_in_tuple(held, value) for value in values), held._flat
        # Every other value is in the tuple: the object's leaves less those in the layout.
        leaves = sum(len(value) if isinstance(value, dict) else 1 for value in obj.values())
        assert len(held._flat) == 1 + leaves - len(values)
    assert child["status"]["deviceStatus"] == MOUNTED and child.get_in("status", "deviceStatus") == MOUNTED
    # The layout, then: metadata name, creationTimestamp, resourceVersion; spec fqdn, nodeName
    # (and a child's mountedTo); status fqdn, target, conditions. 12 and 14 with the five.
    assert len(parent._flat) == 1 + 8 and len(child._flat) == 1 + 9
    # Another namespace or type: another layout, shared by the objects of that one.
    other = [slim(CONTAINER, listed(container(f"c-{i}", node="n", type="netconf", namespace="west"))) for i in (1, 2)]
    assert other[0]._flat[0] is other[1]._flat[0] and other[0]._flat[0] is not child._flat[0]
    assert other[0]["metadata"]["namespace"] == "west" and not _in_tuple(other[0], "west")


def test_a_value_not_held_in_the_layout_stays_in_the_tuple():
    for value in (5, None, True, 1.5, ["default"], ["a", "b"], [], {"a": 1}, "n" * 254):
        obj = {"apiVersion": value, "kind": "Container", "metadata": {"name": "c", "namespace": value},
               "spec": {"type": value}, "status": {"deviceStatus": value}}
        held = FlatObject(obj)
        _reads_equal(held, obj)
        assert dict(held._flat[0].held) == {("kind", None): "Container"}, value
        # apiVersion (a dict at the top: its values), name, namespace, type, deviceStatus.
        assert len(held._flat) == 1 + (len(value) if isinstance(value, dict) else 1) + 4
    odd = {"spec": {None: "x", "type": ["t"]}, "other": {None: 1}, "kind": "K"}  # a key None; a one-item list
    _reads_equal(FlatObject(odd), odd)
    assert dict(FlatObject(odd)._flat[0].held) == {("kind", None): "K"}
    boundary = {"metadata": {"namespace": "n" * 253}}
    assert dict(FlatObject(boundary)._flat[0].held) == {("metadata", "namespace"): "n" * 253}
    assert len(FlatObject(boundary)._flat) == 1


def test_past_the_layouts_cap_objects_are_built_holding_no_value_in_shared_layouts(own_layouts):
    from sync import flat_object

    layouts = own_layouts  # empty
    known = FlatObject(listed(container("a", node="n", type="netconf", namespace="known")))
    assert dict(known._flat[0].held)[("metadata", "namespace")] == "known"
    filler = 0
    while len(layouts) < flat_object._MAX_HELD_LAYOUTS:
        layouts[("filler", filler)] = None
        filler += 1
    # A layout holding values is made no more: these objects hold theirs in the tuple,
    # in the value-free layout of their shape, one for all of them.
    made = [FlatObject(listed(container(f"c{i}", node="n", type=f"type-{i}", namespace=f"ns-{i}")))
            for i in range(50)]
    assert len(layouts) == flat_object._MAX_HELD_LAYOUTS
    assert all(obj._flat[0] is made[0]._flat[0] and obj._flat[0].held == () for obj in made)
    assert made[0]._flat[0] is layouts[next(key for key in layouts if len(key) == 4 and key[0] == made[0]._flat[0].keys)]
    for i, obj in enumerate(made):
        _reads_equal(obj, listed(container(f"c{i}", node="n", type=f"type-{i}", namespace=f"ns-{i}")))
        assert _in_tuple(obj, f"ns-{i}") and _in_tuple(obj, "Container")
    assert made[1].same_at(made[2], (("metadata", "namespace"),)) is False
    assert made[1].same_at(made[1].copy(), (("metadata", None), ("kind", None))) is True
    # A layout made before still holds its values for the objects that have them.
    again = FlatObject(listed(container("b", node="n", type="netconf", namespace="known")))
    assert again._flat[0] is known._flat[0] and not _in_tuple(again, "known")
    # Full: a shape seen before is still shared, value-free.
    while len(layouts) < flat_object._MAX_LAYOUTS:
        layouts[("filler", filler)] = None
        filler += 1
    late = [FlatObject(listed(container(f"d{i}", node="n", type="x", namespace=f"late-{i}"))) for i in range(3)]
    assert late[0]._flat[0] is late[1]._flat[0] is late[2]._flat[0] is made[0]._flat[0]
    assert len(layouts) == flat_object._MAX_LAYOUTS
    assert late[2] == listed(container("d2", node="n", type="x", namespace="late-2"))


def test_share_adopt_and_same_at_with_values_held_in_the_layout():
    from sync.sources.cache import _same_for_rules

    def made(namespace="default", status=MOUNTED, node="n0", version="5"):
        obj = listed(container("c", node=node, type="netconf", mounted_to="p", status=status, namespace=namespace))
        obj["metadata"]["resourceVersion"] = version
        return slim(CONTAINER, obj)

    one, two = made(), made(version="6")
    assert one._flat[0] is two._flat[0]
    assert one.same_at(two, (("apiVersion", None), ("kind", None), ("metadata", "namespace"),
                             ("status", "deviceStatus"), ("spec", "type"))) is True
    assert one.same_at(two, (("metadata", None),)) is False and one.same_at(two, (("spec", None),)) is True
    assert _same_for_rules(one, two) and not _same_for_rules(one, made(status="UNMOUNTED"))
    assert one.same_at(made(namespace="west"), (("spec", None),)) is None  # another layout
    assert not _same_for_rules(one, made(namespace="west")) and not _same_for_rules(one, made(node="n1"))
    # share() leaves a field held in the layout alone: it holds one value already.
    flat_before = one._flat
    one.share((("metadata", "namespace", "".join(["def", "ault"])), ("status", "deviceStatus", MOUNTED),
               ("spec", "type", "netconf")))
    assert one._flat is flat_before and one.get_in("metadata", "namespace") == "default"
    name = "".join(["p"])
    one.share((("metadata", "namespace", "default"), ("spec", "mountedTo", name)))
    assert one.held_at("spec", "mountedTo") is name and one._flat[0] is flat_before[0]
    assert one == two.to_dict() | {"metadata": one["metadata"]}
    # adopt() takes the other object's layout with its values; a copy keeps the old.
    copy = one.copy()
    one.adopt(made(namespace="west", status="UNMOUNTED"))
    assert one["metadata"]["namespace"] == "west" and one.get_in("status", "deviceStatus") == "UNMOUNTED"
    assert one.part("status")["deviceStatus"] == "UNMOUNTED" and one.held_at("metadata", "namespace") == "west"
    assert copy["metadata"]["namespace"] == "default" and copy.part("status").get("deviceStatus") == MOUNTED
    assert one == made(namespace="west", status="UNMOUNTED") and one != copy


def test_a_held_item_joined_with_its_dict_reads_the_values_held_in_the_layout():
    from sync.flat_object import Detachable, Held

    class Stamp(Held):
        __slots__ = ()

        def attach(self, part):
            return ("stamp", part.get("deviceStatus"), part["target"], list(part))

    class Stamped(Detachable):
        __slots__ = ()

        def detach(self, part):
            assert part["deviceStatus"] == MOUNTED  # the dict given, whole
            return Stamp()

    obj = {"kind": "Container", "status": {"deviceStatus": MOUNTED, "stamps": [Stamped()], "target": "t"}}
    held = FlatObject(obj)
    assert dict(held._flat[0].held) == {("kind", None): "Container", ("status", "deviceStatus"): MOUNTED}
    want = [("stamp", MOUNTED, "t", ["deviceStatus", "stamps", "target"])]
    assert held["status"]["stamps"] == want and held.get_in("status", "stamps") == want
    assert held.part("status")["stamps"] == want and held.to_dict()["status"]["stamps"] == want
    assert list(held["status"]) == ["deviceStatus", "stamps", "target"]


def test_the_cache_reads_a_namespace_held_in_the_layout_for_its_keys():
    cache = ObjectCache()
    cache.replace(CONTAINER, [listed(container("a", node="n", namespace="west")),
                              listed(container("a", node="n", namespace="east"))])
    held = cache.snapshot().containers
    assert sorted(obj.key for obj in held) == [("east", "a"), ("west", "a")]
    assert {obj["metadata"]["namespace"] for obj in held} == {"east", "west"}

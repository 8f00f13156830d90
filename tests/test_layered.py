"""sync.layered: a LayeredDict behaves as a dict under any sequence of edits, and a
snapshot is frozen: later edits, folds included, never show through it."""

import random

import pytest

from sync.layered import LayeredDict, LayeredView, Values, _top_limit


def _check(layered: LayeredDict, reference: dict) -> None:
    assert len(layered) == len(reference)
    assert dict(layered.items()) == reference
    assert set(layered) == set(reference)
    assert sorted(layered.values()) == sorted(reference.values())
    assert layered == reference and reference == layered


@pytest.mark.parametrize("seed", range(6))
def test_random_edits_match_a_dict_and_snapshots_stay_as_taken(seed):
    rng = random.Random(seed)
    keys = [f"k{i}" for i in range(60)]
    start = {key: rng.randrange(100) for key in rng.sample(keys, 30)}
    layered, reference = LayeredDict(dict(start)), dict(start)
    taken: list[tuple[object, dict]] = []
    handed_out = set(start)
    for step in range(3_000):
        key = rng.choice(keys)
        action = rng.random()
        if action < 0.45:
            layered[key] = reference[key] = rng.randrange(100)
        elif action < 0.7:
            if key in reference:
                del layered[key]
                del reference[key]
            else:
                with pytest.raises(KeyError):
                    del layered[key]
        elif action < 0.85:
            assert layered.pop(key, "none") == reference.pop(key, "none")
        elif action < 0.97:
            view = layered.snapshot()
            assert view == reference
            taken.append((view, dict(reference)))
            handed_out.update(layered._base)  # the keys of a base a view holds
        else:
            for view, then in taken[-20:]:
                assert view == then  # nothing edited since changed a snapshot
        assert layered.get(key, "none") == reference.get(key, "none")
        assert (key in layered) == (key in reference)
        if step % 250 == 0:
            _check(layered, reference)
    _check(layered, reference)
    # Order: a dict's, but for a key of a base handed out, removed and set again (it keeps
    # its place). Until a snapshot hands the base out, edits go into it, as into a dict.
    assert len(handed_out) < len(keys)
    assert [key for key in layered if key not in handed_out] == [key for key in reference if key not in handed_out]
    for view, then in taken:
        assert dict(view.items()) == then and len(view) == len(then)


def test_snapshot_is_the_same_object_until_an_edit():
    layered = LayeredDict({"a": 1})
    first = layered.snapshot()
    assert layered.snapshot() is first
    layered["b"] = 2
    second = layered.snapshot()
    assert second is not first and layered.snapshot() is second
    assert first == {"a": 1} and second == {"a": 1, "b": 2}


def test_a_snapshot_without_edits_on_top_is_the_base_dict_and_is_never_edited():
    base = {"a": 1, "b": 2}
    layered = LayeredDict(base)
    view = layered.snapshot()
    assert view is base
    layered["a"] = 10
    del layered["b"]
    layered["c"] = 3
    assert base == {"a": 1, "b": 2}
    assert layered == {"a": 10, "c": 3}


def test_a_view_is_read_only():
    layered = LayeredDict({"a": 1})
    assert layered.snapshot() == {"a": 1}  # the base, handed out: edits go on top from now on
    layered["b"] = 2
    view = layered.snapshot()
    assert isinstance(view, LayeredView) and not isinstance(view, LayeredDict)
    with pytest.raises(TypeError):
        view["c"] = 3  # noqa: the point is that it fails
    with pytest.raises(KeyError):
        view["missing"]
    assert view.get("missing", "default") == "default"


def test_the_top_is_folded_into_a_new_base_once_it_outgrows_its_limit():
    size = 10_000
    base = {i: i for i in range(size)}
    layered = LayeredDict(base)
    limit = _top_limit(size)
    held = layered.snapshot()
    for i in range(limit):
        layered[i] = -i
    before_fold = layered.snapshot()
    assert layered.top_size == limit  # at the limit: not folded yet
    layered[limit] = -limit
    after_fold = layered.snapshot()
    assert layered.top_size == 0 and after_fold is not base and type(after_fold) is dict
    assert base == {i: i for i in range(size)}  # the old base, held by views, untouched
    assert held is base
    assert before_fold[0] == 0 and before_fold[limit] == limit and after_fold[limit] == -limit
    assert after_fold == {i: (-i if i <= limit else i) for i in range(size)}


def test_removed_then_set_again_counts_once():
    layered = LayeredDict({"a": 1})
    del layered["a"]
    assert len(layered) == 0 and "a" not in layered and list(layered) == []
    layered["a"] = 2
    assert len(layered) == 1 and layered["a"] == 2 and list(layered.items()) == [("a", 2)]
    layered.snapshot()
    layered["a"] = 3  # on a top handed out: copied first
    assert len(layered) == 1 and layered["a"] == 3


def test_iteration_keeps_a_dicts_order_so_readers_can_match_by_position():
    layered = LayeredDict({"a": 1, "b": 2, "c": 3})
    layered["b"] = 20
    layered["d"] = 4
    del layered["c"]
    layered["e"] = 5
    reference = {"a": 1, "b": 20, "d": 4, "e": 5}
    assert list(layered) == list(reference) and list(layered.items()) == list(reference.items())
    assert list(layered.values()) == list(reference.values()) == list(layered.iter_values())
    view = layered.snapshot()
    assert list(view) == list(reference) and list(Values(view)) == list(reference.values())


def test_values_read_like_a_tuple_of_the_snapshot():
    layered = LayeredDict({"a": 1, "b": 2})
    plain = Values(layered.snapshot())  # the base dict: nothing on top
    layered["c"] = 3
    del layered["a"]
    stacked = Values(layered.snapshot())
    assert plain == (1, 2) and list(plain) == [1, 2] and len(plain) == 2 and plain[1] == 2
    assert stacked == (2, 3) and len(stacked) == 2 and stacked[-1] == 3 and stacked == [2, 3]
    assert stacked != (3, 2) and stacked != (2,)
    (first, second) = stacked
    assert (first, second) == (2, 3)
    assert Values({}) == () and not list(Values({}))


def test_edits_go_into_the_base_until_a_snapshot_hands_it_out():
    layered = LayeredDict()
    for i in range(1_000):
        layered[i] = i
    del layered[5]
    assert layered.top_size == 0 and len(layered) == 999
    base = layered.snapshot()
    assert type(base) is dict and base == {i: i for i in range(1_000) if i != 5}
    layered[1] = -1  # the base is a reader's now: on top
    layered[5] = 5
    assert layered.top_size == 2 and base[1] == 1 and 5 not in base
    assert dict(layered.items()) == {**{i: i for i in range(1_000)}, 1: -1}


def test_a_top_over_an_empty_base_becomes_the_base_without_a_copy():
    layered = LayeredDict()
    assert layered.snapshot() == {}  # an empty base, handed out
    for i in range(2_000):
        layered[i] = i
    view = layered.snapshot()  # the top outgrew its limit: folded
    top = layered._base
    assert layered.top_size == 0 and view is top and len(top) == 2_000
    layered[0] = "edited"  # the view holds the folded dict: edits go on top
    layered.fold()
    assert view == {i: i for i in range(2_000)} and layered[0] == "edited"
    assert layered._base is not top

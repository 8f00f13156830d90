"""sync.sources.heap: no cycle collection while a list is read, and a big list's objects
frozen out of later collections, with the garbage made meanwhile collected first."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

from sync.sources import heap


class Node:
    """Something that can be in a cycle and be watched with a weak reference."""

    def __init__(self):
        self.other = None


@pytest.fixture
def pauses():
    """A fresh pause keeper (the module's own remembers which kinds it froze)."""
    return heap._Pauses()


@pytest.fixture(autouse=True)
def collector_restored():
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    gc.unfreeze()  # the test process' objects go back to normal collection
    if was_enabled:
        gc.enable()
    else:
        gc.disable()


def cyclic_garbage() -> weakref.ref:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_collection_is_off_while_a_list_is_read_and_on_again_after(pauses):
    with pauses.paused("Node"):
        assert not gc.isenabled()
    assert gc.isenabled()


def collecting_after_the_second_ends(first, second) -> bool:
    """Hold `first()` (a context) open in one thread while `second()` opens and closes in
    another; whether automatic collection was on right after the second closed."""
    first_in, second_done, release = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def hold():
        with first():
            first_in.set()
            release.wait(10)

    def other():
        first_in.wait(10)
        with second():
            pass
        seen["on"] = gc.isenabled()
        second_done.set()

    threads = [threading.Thread(target=hold), threading.Thread(target=other)]
    for thread in threads:
        thread.start()
    second_done.wait(10)
    release.set()
    for thread in threads:
        thread.join(10)
    return seen["on"]


def test_collection_comes_back_only_when_the_last_of_parallel_lists_ends(pauses):
    assert collecting_after_the_second_ends(lambda: pauses.paused("Container"), lambda: pauses.paused("Node")) \
        is False
    assert gc.isenabled()


def test_collection_stays_off_when_it_was_off_before(pauses):
    gc.disable()
    with pauses.paused("Node"):
        pass
    assert not gc.isenabled()


def test_a_big_list_leaves_what_is_alive_frozen(pauses, monkeypatch):
    monkeypatch.setattr(heap, "FREEZE_AT", 10)
    gc.unfreeze()
    with pauses.paused("Container") as listed:
        kept = [Node() for _ in range(10)]
        listed.add(len(kept))

    assert gc.get_freeze_count() >= len(kept)


def test_a_small_list_freezes_nothing(pauses):
    gc.unfreeze()
    with pauses.paused("Node") as listed:
        listed.add(heap.FREEZE_AT - 1)
    assert gc.get_freeze_count() == 0


def test_cyclic_garbage_frozen_with_a_list_is_collected_before_the_kind_is_listed_again(pauses, monkeypatch):
    monkeypatch.setattr(heap, "FREEZE_AT", 1)
    with pauses.paused("Container") as listed:
        garbage = cyclic_garbage()  # made while the list is read: nothing collects it
        listed.add(1)
    gc.collect()
    assert garbage() is not None  # frozen with the list, out of every collection's reach

    with pauses.paused("Container") as listed:
        assert garbage() is None  # the re-list thawed and collected first
        listed.add(1)
    assert gc.get_freeze_count() > 0


def test_a_list_of_another_kind_right_after_a_big_one_leaves_the_freeze_alone(pauses, monkeypatch):
    monkeypatch.setattr(heap, "FREEZE_AT", 1)
    with pauses.paused("Container") as listed:
        garbage = cyclic_garbage()
        listed.add(1)

    with pauses.paused("Pod"):  # --once lists the Pods right after the Containers
        pass

    assert garbage() is not None and gc.get_freeze_count() > 0


def test_a_small_re_list_of_a_frozen_kind_freezes_again_after_collecting(pauses, monkeypatch):
    monkeypatch.setattr(heap, "FREEZE_AT", 5)
    a, b = Node(), Node()
    a.other, b.other = b, a
    watched = weakref.ref(a)
    with pauses.paused("Node") as listed:
        listed.add(5)
    del a, b  # frozen, then garbage: no collection looks at it ...
    gc.collect()
    assert watched() is not None

    with pauses.paused("Node") as listed:  # ... until the kind is listed again
        listed.add(1)
    assert watched() is None
    assert gc.get_freeze_count() > 0  # what is alive is frozen again, small list or not


def test_a_batch_over_a_heap_a_list_froze_runs_without_collection_and_leaves_its_objects_frozen(pauses, monkeypatch):
    monkeypatch.setattr(heap, "FREEZE_AT", 1)
    with pauses.paused("Container") as listed:
        listed.add(1)
    frozen = gc.get_freeze_count()
    with pauses.batch():
        assert not gc.isenabled()
        made = [Node() for _ in range(50)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen + len(made)


def test_a_batch_over_an_unfrozen_heap_leaves_the_collector_alone(pauses):
    gc.unfreeze()
    with pauses.batch():
        assert gc.isenabled()
        kept = [Node() for _ in range(10)]
    assert gc.get_freeze_count() == 0 and kept


def test_cyclic_garbage_a_batch_leaves_is_collected_when_a_frozen_kind_is_listed_again(pauses, monkeypatch):
    monkeypatch.setattr(heap, "FREEZE_AT", 1)
    with pauses.paused("Container") as listed:
        listed.add(1)
    with pauses.batch():
        garbage = cyclic_garbage()
    gc.collect()
    assert garbage() is not None  # frozen after the batch

    with pauses.paused("Container") as listed:  # the periodic resync's re-list
        assert garbage() is None
        listed.add(1)


def test_a_batch_and_a_re_list_in_parallel_turn_collection_back_on_once_both_end(pauses, monkeypatch):
    monkeypatch.setattr(heap, "FREEZE_AT", 1)
    with pauses.paused("Node") as listed:
        listed.add(1)

    assert collecting_after_the_second_ends(pauses.batch, lambda: pauses.paused("Node")) is False  # the batch ran on
    assert gc.isenabled() and gc.get_freeze_count() > 0

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


def test_collection_is_off_while_a_list_is_read_and_on_again_after():
    with heap.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_collection_comes_back_only_when_the_last_of_parallel_lists_ends():
    first_in, second_done, release = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with heap.paused():
            first_in.set()
            release.wait(10)

    def second():
        first_in.wait(10)
        with heap.paused():
            pass
        seen["after the second"] = gc.isenabled()
        second_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    second_done.wait(10)
    release.set()
    for thread in threads:
        thread.join(10)

    assert seen == {"after the second": False}
    assert gc.isenabled()


def test_collection_stays_off_when_it_was_off_before():
    gc.disable()
    with heap.paused():
        pass
    assert not gc.isenabled()


def test_a_big_list_freezes_what_is_alive_after_collecting_the_garbage_made_meanwhile(monkeypatch):
    monkeypatch.setattr(heap, "FREEZE_AT", 10)
    kept = [Node() for _ in range(10)]
    with heap.paused() as listed:
        garbage = cyclic_garbage()
        listed.add(len(kept))
        assert garbage() is not None  # nothing collects it while paused

    assert garbage() is None
    assert gc.get_freeze_count() > 0


def test_the_next_big_list_collects_cycles_that_became_garbage_while_frozen(monkeypatch):
    monkeypatch.setattr(heap, "FREEZE_AT", 1)
    a, b = Node(), Node()
    a.other, b.other = b, a
    watched = weakref.ref(a)
    with heap.paused() as listed:
        listed.add(1)
    del a, b  # frozen, then garbage: no collection looks at it ...
    gc.collect()
    assert watched() is not None

    with heap.paused() as listed:  # ... until the next big list unfreezes and collects
        listed.add(1)
    assert watched() is None


def test_a_small_list_freezes_nothing():
    gc.unfreeze()
    with heap.paused() as listed:
        listed.add(heap.FREEZE_AT - 1)
    assert gc.get_freeze_count() == 0

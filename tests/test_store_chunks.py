"""Big batches written in chunks: several script calls of bounded size, in an order that
keeps every record a lookup can reach complete between two calls (nodes, then parents,
then children put; the reverse deleted). Pure splitting first, then a real redis-server
with a lookup of every name issued between each two calls."""

from __future__ import annotations

import pytest
import redis

from mountdns.announce import Announcement
from mountdns.plan import Changes, diff
from mountdns.records import State
from mountdns.store import Fenced, StoreError, UnknownOutcome
from mountdns.store.chunks import count, pieces, split
from mountdns.store.redis_store import RedisStore
from mountdns.testing.seed import SEED_ZONE, ZONE


def topology(parents: int, nodes: int, node_address: str = "10.0.0.{}") -> State:
    """`parents` parents over `nodes` nodes, each with one child mounted to it."""
    return State(
        zones={ZONE: SEED_ZONE},
        nodes={f"n{n}": (node_address.format(n),) for n in range(nodes)},
        parents={f"p{i}.{ZONE}": f"n{i % nodes}" for i in range(parents)},
        children={f"c{i}.{ZONE}": f"p{i}.{ZONE}" for i in range(parents)},
    )


def _sections(chunk: Changes) -> list[str]:
    return [f for f in ("nodes_put", "parents_put", "children_put", "children_delete", "parents_delete",
                        "nodes_delete") if getattr(chunk, f)]


def test_a_batch_within_the_bound_is_one_chunk_unchanged():
    changes = diff(State(), topology(3, 2))
    assert split(changes, 8) == [changes]


def test_puts_go_nodes_then_parents_then_children_in_bounded_chunks():
    changes = diff(State(), topology(5, 3))  # 3 nodes + 5 parents + 5 children = 13 keys

    chunks = split(changes, 4)

    assert [c.key_writes() for c in chunks] == [4, 4, 4, 1]
    assert [_sections(c) for c in chunks] == [
        ["nodes_put", "parents_put"], ["parents_put"], ["children_put"], ["children_put"]]
    assert dict(chunks[0].nodes_put) == dict(changes.nodes_put)
    merged_parents = {**chunks[0].parents_put, **chunks[1].parents_put}
    assert merged_parents == dict(changes.parents_put)
    assert {**chunks[2].children_put, **chunks[3].children_put} == dict(changes.children_put)


def test_zones_come_first_and_go_last_and_serials_move_with_the_last_chunk():
    put = split(diff(State(), topology(5, 3)), 4)
    assert put[0].zones_put == {ZONE: SEED_ZONE} and not any(c.zones_put for c in put[1:])
    assert put[-1].bump_serials == {ZONE} and not any(c.bump_serials for c in put[:-1])

    gone = split(diff(topology(5, 3), State()), 4)
    assert gone[-1].zones_delete == {ZONE} and not any(c.zones_delete for c in gone[:-1])


def test_deletes_go_children_then_parents_then_nodes():
    chunks = split(diff(topology(5, 3), State()), 4)

    assert [_sections(c) for c in chunks] == [
        ["children_delete"], ["children_delete", "parents_delete"], ["parents_delete", "nodes_delete"],
        ["nodes_delete"]]
    assert set().union(*(c.nodes_delete for c in chunks)) == {"n0", "n1", "n2"}


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 13, 14, 100])
def test_the_count_is_the_number_of_chunks_and_they_come_one_at_a_time(size):
    for changes in (diff(State(), topology(5, 3)), diff(topology(5, 3), State()),
                    diff(topology(5, 3), topology(4, 2, "10.1.0.{}"))):
        chunks = split(changes, size)
        assert count(changes, size) == len(chunks)
        made = pieces(changes, size)
        assert next(made) == chunks[0]  # made on demand: the rest not yet
        assert [chunks[0], *made] == chunks


def test_a_chunk_size_below_one_is_refused():
    with pytest.raises(ValueError):
        split(Changes(), 0)


# -- a real redis-server ------------------------------------------------------------------

class Interleaving:
    """Runs a lookup of every name after each script call of a store's apply: what a
    backend reading between two chunks would see."""

    def __init__(self, store: RedisStore, names: list[str]):
        self.store, self.names, self.calls, self.broken = store, names, 0, []
        self._script = store._apply
        store._apply = self

    def __call__(self, *args, **kwargs):
        reply = self._script(*args, **kwargs)
        self.calls += 1
        for name in self.names:
            found = self.store.resolve(name)
            if found.kind == "parent" and not found.addresses:
                self.broken.append((self.calls, name, "parent without its node"))
            if found.kind == "child":
                target = self.store.resolve(found.target)
                if target.kind != "parent" or not target.addresses:
                    self.broken.append((self.calls, name, f"child whose parent is {target.kind}"))
        return reply


def _records(state: State) -> tuple:
    return state.nodes, state.parents, state.children  # the serial moves: zones aside


def _names(state: State) -> list[str]:
    return sorted([*state.parents, *state.children])


def test_a_lookup_between_chunks_of_an_initial_write_never_sees_a_name_whose_target_is_missing(redis_client):
    store = RedisStore(redis_client, chunk_keys=7)
    wanted = topology(20, 4)
    watcher = Interleaving(store, _names(wanted))

    store.apply(diff(State(), wanted))

    assert watcher.calls == 7  # 4 + 20 + 20 keys, 7 a call
    assert watcher.broken == []
    assert _records(store.read_state()) == _records(wanted)


def test_a_lookup_between_chunks_of_a_rewrite_never_sees_a_name_whose_target_is_missing(redis_client):
    before = topology(20, 4)
    RedisStore(redis_client).apply(diff(State(), before))
    store = RedisStore(redis_client, chunk_keys=5)
    # Every parent moves to a new node, every child to another parent, old nodes go.
    after = State(
        zones=before.zones,
        nodes={f"m{n}": (f"10.1.0.{n}",) for n in range(4)},
        parents={name: f"m{(i + 1) % 4}" for i, name in enumerate(sorted(before.parents))},
        children={f"c{i}.{ZONE}": f"p{(i + 1) % 20}.{ZONE}" for i in range(20)},
    )
    watcher = Interleaving(store, _names(before))

    store.apply(diff(before, after))

    assert watcher.calls > 1
    assert watcher.broken == []
    assert _records(store.read_state()) == _records(after)


def test_a_lookup_between_chunks_of_a_garbage_collection_never_sees_a_name_whose_target_is_missing(redis_client):
    before = topology(20, 4)
    RedisStore(redis_client).apply(diff(State(), before))
    store = RedisStore(redis_client, chunk_keys=6)
    watcher = Interleaving(store, _names(before))

    store.apply(diff(before, State(zones=before.zones)))

    assert watcher.calls == 8  # 44 keys, 6 a call
    assert watcher.broken == []
    assert _records(store.read_state()) == ({}, {}, {})


def test_a_fenced_writer_is_refused_at_the_first_chunk_and_writes_nothing(redis_client):
    RedisStore(redis_client).take_term(2)
    store = RedisStore(redis_client, chunk_keys=5)
    watcher = Interleaving(store, [])

    with pytest.raises(Fenced):
        store.apply(diff(State(), topology(20, 4)), term=1)

    assert watcher.calls == 1  # the first call was refused: no second one was made
    assert redis_client.dbsize() == 1  # the fence key alone


def test_a_chunked_batch_moves_the_serial_once_and_announces_once(redis_client):
    store = RedisStore(redis_client, chunk_keys=5)
    store.apply(diff(State(), State(zones={ZONE: SEED_ZONE})))
    serial = store.zone(ZONE).serial
    wanted = topology(20, 4)
    announcement = Announcement((frozenset(wanted.parents), frozenset(wanted.children)), frozenset({ZONE}))

    store.apply(diff(State(zones={ZONE: SEED_ZONE}), wanted), announcement=announcement, mark=True)

    assert store.zone(ZONE).serial == serial + 1
    assert redis_client.xlen(store.keys.announcements) == 1
    assert store.marker_present()


def test_the_last_chunk_announces_even_when_only_earlier_ones_wrote(redis_client):
    before = topology(20, 4)
    RedisStore(redis_client).apply(diff(State(), before))
    store = RedisStore(redis_client, chunk_keys=4)
    # The last chunk's deletes are of names already gone: only earlier chunks write.
    changes = Changes(nodes_put={"n9": ("10.9.9.9",)}, parents_put={f"p0.{ZONE}": "n9"},
                      parents_delete=frozenset(f"gone{i}.{ZONE}" for i in range(6)),
                      bump_serials=frozenset({ZONE}))
    serial = store.zone(ZONE).serial

    store.apply(changes, announcement=Announcement((frozenset({f"p0.{ZONE}"}),), frozenset({ZONE})))

    assert store.zone(ZONE).serial == serial + 1
    assert redis_client.xlen(store.keys.announcements) == 1


def test_names_another_owner_holds_are_reported_from_every_chunk(redis_client):
    other = RedisStore(redis_client, owner="other")
    other.apply(Changes(nodes_put={"x": ("9.9.9.9",)},
                        parents_put={f"p1.{ZONE}": "x", f"p18.{ZONE}": "x"}, zones_put={ZONE: SEED_ZONE}))
    store = RedisStore(redis_client, chunk_keys=5)

    applied = store.apply(diff(State(), topology(20, 4)))

    assert applied.owned_elsewhere == {f"p1.{ZONE}", f"p18.{ZONE}"}


def test_a_failure_after_the_first_chunk_leaves_the_outcome_unknown(redis_client):
    store = RedisStore(redis_client, chunk_keys=10)
    script, calls = store._apply, []

    def failing_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise redis.ResponseError("ERR something broke inside Redis")
        return script(*args, **kwargs)

    store._apply = failing_second

    with pytest.raises(UnknownOutcome):
        store.apply(diff(State(), topology(20, 4)))
    assert redis_client.exists(store.keys.node("n0"))  # the first call was written


def test_a_failure_at_the_first_chunk_is_a_plain_store_error(redis_client):
    store = RedisStore(redis_client, chunk_keys=10)

    def failing(*args, **kwargs):
        raise redis.ResponseError("ERR something broke inside Redis")

    store._apply = failing

    with pytest.raises(StoreError) as raised:
        store.apply(diff(State(), topology(20, 4)))
    assert not isinstance(raised.value, UnknownOutcome)


def test_the_state_of_more_names_than_a_scan_page_reads_back_whole(redis_client):
    wanted = topology(3000, 7)  # 6,007 keys: several SCAN pages
    store = RedisStore(redis_client)
    store.apply(diff(State(), wanted))

    assert _records(store.read_state()) == _records(wanted)

"""Announcements: what a batch announces (pure), how an entry reads back, and that the
Redis store writes it in the same script call as the records (seen with MONITOR)."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from mountdns import announce
from mountdns.announce import Announcement, AnnouncementError
from mountdns.keyspace import Keys
from mountdns.plan import Changes, diff
from mountdns.purge import MAX_NAMES_PER_PURGE
from mountdns.records import State, Zone
from mountdns.store.redis_store import RedisStore
from mountdns.testing.seed import SEED_STATE

ZONE = "domain.foo.bar"
KEYS = Keys()


def moved(state: State, node: str, address: str) -> State:
    return replace(state, nodes={**state.nodes, node: (address,)})


def test_a_node_move_announces_its_parents_then_their_children():
    after = moved(SEED_STATE, "node-1", "12.34.5.6")
    item = announce.from_changes(diff(SEED_STATE, after), SEED_STATE, after, [ZONE])
    assert item.waves == (frozenset({"container_a_1.domain.foo.bar", "container_b_0.domain.foo.bar"}),
                          frozenset({"container_c_0.domain.foo.bar", "container_d_0.domain.foo.bar"}))
    assert item.zones == {ZONE}


def test_a_serial_bump_alone_announces_nothing():
    changes = Changes(bump_serials={ZONE})
    assert announce.from_changes(changes, SEED_STATE, SEED_STATE, [ZONE]) is None


def test_past_the_name_limit_the_zone_itself_is_announced():
    parents = {f"p{i}.{ZONE}": "node-1" for i in range(MAX_NAMES_PER_PURGE + 1)}
    after = replace(SEED_STATE, parents={**SEED_STATE.parents, **parents})
    item = announce.from_changes(diff(SEED_STATE, after), SEED_STATE, after, [ZONE])
    assert item.waves == (frozenset({ZONE}),)
    assert item.zones == {ZONE}


def test_an_entry_reads_back_as_the_same_announcement():
    item = Announcement((frozenset({"b.example.com", "a.example.com"}), frozenset({"c.example.com"})),
                        frozenset({"example.com"}))
    fields = {k.encode(): v.encode() for k, v in announce.encode(item).items()}  # as redis-py returns them
    assert announce.decode(fields) == item


@pytest.mark.parametrize("fields", [
    {}, {b"waves": b"[[\"a\"]]"}, {b"waves": b"not json", b"zones": b"[]"},
    {b"waves": b"[\"a\"]", b"zones": b"[]"}, {b"waves": b"[]", b"zones": b"{}"},
], ids=["empty", "no zones", "not json", "waves not nested", "zones not a list"])
def test_an_unreadable_entry_raises_announcement_error(fields):
    with pytest.raises(AnnouncementError):
        announce.decode(fields)


def test_stream_ids_order_by_time_then_sequence():
    assert announce.parse_id(b"1700000000000-2") == (1700000000000, 2)
    assert announce.parse_id("5-0") < announce.parse_id("5-1") < announce.parse_id("6-0")
    with pytest.raises(AnnouncementError):
        announce.parse_id("latest")


def test_the_store_writes_the_announcement_with_the_records_in_one_transaction(redis_client):
    store = RedisStore(redis_client)
    zone_only = State(zones={ZONE: Zone(ZONE, ("ns1." + ZONE,), "hostmaster." + ZONE)})
    store.apply(diff(State(), zone_only))
    after = moved(SEED_STATE, "node-1", "12.34.5.6")
    changes = diff(zone_only, after)
    item = announce.from_changes(changes, zone_only, after, [ZONE])

    seen: list[tuple[str, str]] = []  # (client type, command) as MONITOR shows them
    ready, done = threading.Event(), threading.Event()

    def watch():
        with redis_client.monitor() as monitor:
            ready.set()
            for command in monitor.listen():
                seen.append((command.get("client_type", ""), command["command"].split()[0].upper()))
                if seen[-1] == ("lua", "XADD"):
                    done.set()
                    return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    assert ready.wait(5)
    store.apply(changes, announcement=item)
    assert done.wait(5)

    # One script call from the client, and inside it the records first, the announcement
    # last: Redis runs a script as a whole, so no reader sees one without the other.
    calls = [name for kind, name in seen if kind != "lua"]
    inside = [name for kind, name in seen if kind == "lua"]
    assert calls[-1] in ("EVALSHA", "EVAL") and calls.count("MULTI") == 0
    assert "SET" in inside and inside[-1] == "XADD"
    [(entry_id, fields)] = redis_client.xrange(KEYS.announcements)
    assert announce.decode(fields) == item
    written = store.read_state()
    assert (written.nodes, written.parents, written.children) == (after.nodes, after.parents, after.children)


def test_the_stream_is_trimmed_to_about_maxlen(redis_client):
    store = RedisStore(redis_client)
    item = Announcement((frozenset({"a." + ZONE}),), frozenset({ZONE}))
    for _ in range(announce.MAXLEN * 3):  # through the write script, as the sync appends them
        store.apply(Changes(), announcement=item, announce_always=True)
    # Approximate trimming removes whole stream nodes (100 entries by default).
    assert announce.MAXLEN <= redis_client.xlen(KEYS.announcements) < announce.MAXLEN + 200


def reference_purge_waves(changes: Changes, before: State, after: State) -> list[set[str]]:
    """purge_waves as first written: every wave a set of its own, `seen` a union of them."""
    names = set(changes.parents_put) | set(changes.parents_delete)
    names |= set(changes.children_put) | set(changes.children_delete)
    moved_nodes = set(changes.nodes_put) | set(changes.nodes_delete)
    for state in (before, after):
        names.update(p for p, node in state.parents.items() if node in moved_nodes)
    names |= set(changes.zones_put)
    waves = [names] if names else []
    seen, frontier = set(names), set(names)
    while frontier:
        frontier = {child for state in (before, after) for child, target in state.children.items()
                    if target in frontier and child not in seen}
        if frontier:
            waves.append(frontier)
            seen |= frontier
    return waves


def reference_announcement(changes, before, after, zones, extra_waves=()) -> Announcement | None:
    """from_changes as first written: the union of every wave, then zones past the limit."""
    from mountdns.names import zone_finder
    waves = reference_purge_waves(changes, before, after) + [set(w) for w in extra_waves if w]
    if not waves:
        return None
    zone_of = zone_finder(zones)
    names = set().union(*waves)
    if len(names) > MAX_NAMES_PER_PURGE:
        waves = [{zone_of(n) or n for n in names}]
    touched = frozenset(z for z in map(zone_of, names) if z)
    return Announcement(tuple(frozenset(w) for w in waves), touched)


def random_records(rng, size: int) -> State:
    """Parents over a few nodes and children chained to parents or to other children, in
    two zones and outside them."""
    where = [ZONE, "other.example", "outside.test"]
    names = [f"n{rng.randrange(3 * size + 1)}.{rng.choice(where)}" for _ in range(size)]
    parents, children = {}, {}
    for name in names:
        if rng.random() < 0.5:
            parents[name] = f"node-{rng.randrange(4)}"
        elif parents or children:
            children[name] = rng.choice(list(parents) + list(children))
    zones = {z: Zone(name=z, nameservers=(f"ns.{z}",), hostmaster=f"h.{z}") for z in where[:2]
             if rng.random() < 0.8}
    return State(zones=zones, nodes={f"node-{n}": (f"10.0.0.{rng.randrange(3)}",) for n in range(4)},
                 parents=parents, children={k: v for k, v in children.items() if k not in parents})


@pytest.mark.parametrize("seed", range(200))
def test_the_announcement_is_the_union_of_the_waves_or_their_zones_past_the_limit(seed):
    import random
    rng = random.Random(seed)
    size = rng.choice([4, 20, 60, 150])
    before, after = random_records(rng, size), random_records(rng, size)
    changes = diff(before, after, collect_garbage=rng.random() < 0.8)
    pool = list(before.parents) + list(after.children) + ["loose.example"]
    extra = [set(rng.sample(pool, min(len(pool), rng.choice([0, 3, 40])))) for _ in range(rng.randrange(3))]
    zones = list(after.zones)
    assert (announce.from_changes(changes, before, after, zones, extra_waves=extra)
            == reference_announcement(changes, before, after, zones, extra))
    assert [set(w) for w in announce.purge_waves(changes, before, after)] == reference_purge_waves(
        changes, before, after)

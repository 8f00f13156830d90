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

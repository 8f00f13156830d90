"""Several syncs (owners) sharing one Redis and one key prefix: a name stays with the owner
that wrote it first, the other is told and writes nothing (however often it tries), one
owner's garbage collection never deletes another's keys, and equal node names from two
clusters resolve each to its own addresses, still in one round trip per lookup. Run against
the in-memory store, fakeredis and a real redis-server."""

from __future__ import annotations

import logging

import fakeredis
import pytest

from mountdns.plan import Changes, diff
from mountdns.keyspace import Keys, owned
from mountdns.records import State
from mountdns.store import Applied
from mountdns.store.memory_store import MemoryStore
from mountdns.store.redis_store import RedisStore
from mountdns.testing.objects import SEED_CONFIG, container, node
from mountdns.testing.seed import SEED_ZONE, ZONE
from sync.reconciler import Reconciler
from sync.sources.cache import Snapshot

EAST, WEST = "east", "west"
KEYS = Keys()
SHARED = f"shared.{ZONE}"


@pytest.fixture(params=["memory", "fakeredis", "redis"])
def owners(request):
    """Two stores on the same data, one per owner."""
    if request.param == "memory":
        east = MemoryStore(owner=EAST)
        return east, east.view(WEST)
    if request.param == "fakeredis":
        server = fakeredis.FakeServer()
        return (RedisStore(fakeredis.FakeRedis(server=server), owner=EAST),
                RedisStore(fakeredis.FakeRedis(server=server), owner=WEST))
    client = request.getfixturevalue("redis_client")
    server = request.getfixturevalue("redis_server")
    return RedisStore(client, owner=EAST), RedisStore(server.client(), owner=WEST)


def publish(store, parents=None, children=None, nodes=None, zones=None) -> Applied:
    """What a sync does: read this owner's state, diff against the desired one, apply."""
    desired = State(zones={SEED_ZONE.name: SEED_ZONE} if zones is None else zones, nodes=nodes or {},
                    parents=parents or {}, children=children or {})
    return store.apply(diff(store.read_state(), desired))


def test_a_name_claimed_by_two_owners_stays_with_the_first_writer(owners):
    east, west = owners
    assert publish(east, parents={SHARED: "node-1"}, nodes={"node-1": ("10.0.0.1",)}) == Applied()

    result = publish(west, parents={SHARED: "node-1"}, nodes={"node-1": ("10.9.9.9",)})

    assert result.owned_elsewhere == {SHARED}
    assert east.resolve(SHARED).addresses == ("10.0.0.1",)
    assert SHARED in east.read_state().parents
    assert SHARED not in west.read_state().parents


def test_the_second_owner_never_overwrites_the_name_however_often_it_tries(owners):
    east, west = owners
    publish(east, children={SHARED: f"parent.{ZONE}"}, parents={f"parent.{ZONE}": "node-1"},
            nodes={"node-1": ("10.0.0.1",)})
    assert publish(west, parents={SHARED: "node-2"}, nodes={"node-2": ("10.0.0.2",)}).owned_elsewhere == {SHARED}
    serial = east.zone(ZONE).serial  # west wrote its node key: from now on it has nothing to write

    for _ in range(5):
        result = publish(west, parents={SHARED: "node-2"}, nodes={"node-2": ("10.0.0.2",)})
        assert result.owned_elsewhere == {SHARED}
        # The name is not ours, so the next read still lacks it and the next sync asks again.
        assert west.read_state().parents == {}

    resolution = west.resolve(SHARED)
    assert (resolution.kind, resolution.target) == ("child", f"parent.{ZONE}")
    assert east.zone(ZONE).serial == serial  # nothing written, not even the serial


def test_garbage_collection_of_one_owner_never_deletes_the_others_keys(owners):
    east, west = owners
    publish(east, parents={f"e.{ZONE}": "node-1"}, nodes={"node-1": ("10.0.0.1",)})
    publish(west, parents={f"w.{ZONE}": "node-1"}, children={f"wc.{ZONE}": f"w.{ZONE}"},
            nodes={"node-1": ("10.0.0.2",)})

    changes = diff(east.read_state(), State(zones={}))  # east publishes nothing any more
    assert set(changes.parents_delete) == {f"e.{ZONE}"} and set(changes.nodes_delete) == {"node-1"}
    east.apply(changes)

    assert east.resolve(f"e.{ZONE}").kind == "none"
    assert west.resolve(f"w.{ZONE}").addresses == ("10.0.0.2",)
    assert west.resolve(f"wc.{ZONE}").target == f"w.{ZONE}"
    assert [z.name for z in west.zones()] == [ZONE]  # west still publishes in it: it stays
    assert west.read_state().parents == {f"w.{ZONE}": "node-1"}

    west.apply(diff(west.read_state(), State()))
    assert west.zones() == [] and west.resolve(f"w.{ZONE}").kind == "outside"


def test_a_stale_delete_of_a_name_taken_over_by_another_owner_leaves_it(owners):
    east, west = owners
    publish(east, parents={SHARED: "node-1"}, nodes={"node-1": ("10.0.0.1",)})
    before = east.read_state()
    publish(east, parents={}, nodes={})  # east gives the name up ...
    publish(west, parents={SHARED: "node-2"}, nodes={"node-2": ("10.0.0.2",)})  # ... west takes it

    east.apply(diff(before, State(zones=before.zones)))  # east deletes from an old belief

    assert west.resolve(SHARED).addresses == ("10.0.0.2",)


def test_equal_node_names_from_two_owners_resolve_to_their_own_addresses(owners):
    east, west = owners
    publish(east, parents={f"e.{ZONE}": "node-1"}, nodes={"node-1": ("10.0.0.1", "2001:db8::1")})
    publish(west, parents={f"w.{ZONE}": "node-1"}, nodes={"node-1": ("10.0.0.2",)})

    assert east.resolve(f"e.{ZONE}").addresses == ("10.0.0.1", "2001:db8::1")
    assert east.resolve(f"w.{ZONE}").addresses == ("10.0.0.2",)
    assert east.read_state().nodes == {"node-1": ("10.0.0.1", "2001:db8::1")}
    assert west.read_state().nodes == {"node-1": ("10.0.0.2",)}

    # The node moves in the west cluster: one key, and only the west name follows.
    west.apply(diff(west.read_state(), State(zones={ZONE: SEED_ZONE}, nodes={"node-1": ("10.0.0.3",)},
                                              parents={f"w.{ZONE}": "node-1"})))
    assert west.resolve(f"w.{ZONE}").addresses == ("10.0.0.3",)
    assert west.resolve(f"e.{ZONE}").addresses == ("10.0.0.1", "2001:db8::1")


def test_a_released_name_goes_to_the_owner_that_asks_next(owners):
    east, west = owners
    publish(east, parents={SHARED: "node-1"}, nodes={"node-1": ("10.0.0.1",)})
    assert publish(west, parents={SHARED: "node-1"}, nodes={"node-1": ("10.0.0.2",)}).owned_elsewhere == {SHARED}

    publish(east, parents={}, nodes={})
    assert publish(west, parents={SHARED: "node-1"}, nodes={"node-1": ("10.0.0.2",)}) == Applied()

    assert west.resolve(SHARED).addresses == ("10.0.0.2",)
    assert publish(east, parents={SHARED: "node-1"}, nodes={"node-1": ("10.0.0.1",)}).owned_elsewhere == {SHARED}


def test_a_zone_keeps_the_definition_of_the_owner_that_wrote_it_first(owners):
    east, west = owners
    publish(east, parents={f"e.{ZONE}": "node-1"}, nodes={"node-1": ("10.0.0.1",)})
    other = SEED_ZONE.__class__(name=ZONE, nameservers=("ns9.example.org",), hostmaster="h.example.org", ttl=99)

    result = publish(west, parents={f"w.{ZONE}": "node-1"}, nodes={"node-1": ("10.0.0.2",)}, zones={ZONE: other})

    assert result.zones_elsewhere == {ZONE} and result.owned_elsewhere == frozenset()
    assert east.zone(ZONE).definition() == SEED_ZONE.definition()
    assert west.resolve(f"w.{ZONE}").addresses == ("10.0.0.2",)  # its names are published all the same
    # Same definition: no conflict to report.
    assert publish(west, parents={f"w.{ZONE}": "node-1"}, nodes={"node-1": ("10.0.0.2",)}).zones_elsewhere == set()


def test_a_value_written_before_owners_existed_is_taken_over(redis_client):
    redis_client.set(KEYS.parent(SHARED), "node-1")  # written before owners existed
    store = RedisStore(redis_client, owner=EAST)

    assert publish(store, parents={SHARED: "node-7"}, nodes={"node-7": ("10.0.0.7",)}) == Applied()

    assert redis_client.get(KEYS.parent(SHARED)) == owned(EAST, "node-7").encode()
    assert store.resolve(SHARED).addresses == ("10.0.0.7",)


def test_the_keys_carry_their_owner(redis_client):
    store = RedisStore(redis_client, owner=EAST)
    publish(store, parents={f"p.{ZONE}": "node-1"}, children={f"c.{ZONE}": f"p.{ZONE}"},
            nodes={"node-1": ("10.0.0.1",)})

    assert redis_client.get(KEYS.parent(f"p.{ZONE}")) == owned(EAST, "node-1").encode()
    assert redis_client.get(KEYS.child(f"c.{ZONE}")) == owned(EAST, f"p.{ZONE}").encode()
    assert redis_client.get(KEYS.node("node-1", EAST)) == b"10.0.0.1"
    assert redis_client.smembers(KEYS.zone_owners(ZONE)) == {b"east"}
    assert redis_client.hget(KEYS.zone(ZONE), "owner") == b"east"


def test_a_lookup_is_still_one_round_trip_with_owners(redis_client, redis_server):
    east = RedisStore(redis_client, owner=EAST)
    publish(east, parents={f"p.{ZONE}": "node-1"}, children={f"c.{ZONE}": f"p.{ZONE}"},
            nodes={"node-1": ("10.0.0.1",)})
    reader = RedisStore(redis_server.client(), owner=WEST)  # the backend: owner does not matter
    reader.resolve(f"c.{ZONE}")  # the script loaded
    redis_client.config_resetstat()

    for name in (f"p.{ZONE}", f"c.{ZONE}", f"missing.{ZONE}", "outside.example.org"):
        reader.resolve(name)

    stats = redis_client.info("commandstats")
    from_clients = {k for k in stats if k not in ("cmdstat_get", "cmdstat_sismember", "cmdstat_hmget",
                                                  "cmdstat_info", "cmdstat_config|resetstat")}
    assert stats["cmdstat_evalsha"]["calls"] == 4
    assert from_clients == {"cmdstat_evalsha"}


def snapshot(*containers, nodes) -> Snapshot:
    return Snapshot(containers=tuple(containers), nodes=tuple(nodes), complete=True)


def test_the_reconciler_reports_a_name_held_elsewhere_once(caplog):
    east = MemoryStore(owner=EAST)
    west = east.view(WEST)
    shared_fqdn = f"shared.{ZONE}"
    Reconciler(east, SEED_CONFIG).reconcile(snapshot(container("a", node="node-1", fqdn=shared_fqdn),
                                                     nodes=[node("node-1", "10.0.0.1")]), full=True)
    reconciler = Reconciler(west, SEED_CONFIG)
    west_objects = snapshot(container("b", node="node-1", fqdn=shared_fqdn), container("c", node="node-1"),
                            nodes=[node("node-1", "10.0.0.2")])

    with caplog.at_level(logging.INFO, logger="mountdns.sync"):
        for full in (True, False, True, False):
            reconciler.reconcile(west_objects, full=full)

    assert reconciler.owned_elsewhere == {shared_fqdn}
    assert caplog.text.count(f"not published: {shared_fqdn}: held by another owner") == 1
    assert west.resolve(shared_fqdn).addresses == ("10.0.0.1",)
    assert west.resolve(f"c.default.{ZONE}").addresses == ("10.0.0.2",)

    # The east sync lets the name go: the west one takes it at its next batch, and says so.
    Reconciler(east, SEED_CONFIG).reconcile(snapshot(nodes=[node("node-1", "10.0.0.1")]), full=True)
    with caplog.at_level(logging.INFO, logger="mountdns.sync"):
        reconciler.reconcile(west_objects)
    assert reconciler.owned_elsewhere == frozenset()
    assert f"no longer held by another owner: {shared_fqdn}" in caplog.text
    assert west.resolve(shared_fqdn).addresses == ("10.0.0.2",)


# --- batches larger than the script reads at once (it reads and writes names in groups) ---
MANY = 700  # more than one group of names in the write script, within one chunk


def test_a_big_batch_keeps_every_name_with_its_owner(owners):
    east, west = owners
    nodes = {"node-1": ("10.0.0.1",)}
    held = {f"n{i:04d}.{ZONE}": "node-1" for i in range(0, MANY, 2)}
    publish(east, parents=held, nodes=nodes)

    wanted = {f"n{i:04d}.{ZONE}": "node-1" for i in range(MANY)}
    result = publish(west, parents=wanted, nodes={"node-1": ("10.0.0.2",)})

    assert result.owned_elsewhere == set(held)
    assert all(west.resolve(name).addresses == ("10.0.0.1",) for name in held)
    assert all(west.resolve(name).addresses == ("10.0.0.2",) for name in set(wanted) - set(held))
    assert set(west.read_state().parents) == set(wanted) - set(held)


def test_a_big_batch_turning_children_into_parents_leaves_one_kind_per_name(owners):
    east, _ = owners
    nodes = {"node-1": ("10.0.0.1",)}
    target = f"target.{ZONE}"
    names = [f"k{i:04d}.{ZONE}" for i in range(MANY)]
    publish(east, parents={target: "node-1"}, children={name: target for name in names}, nodes=nodes)

    publish(east, parents={target: "node-1", **{name: "node-1" for name in names}}, nodes=nodes)

    assert all(east.resolve(name).kind == "parent" for name in names)
    state = east.read_state()
    assert state.children == {} and set(state.parents) == {target, *names}


def test_a_big_delete_removes_only_this_owners_names(owners):
    east, west = owners
    nodes = {"node-1": ("10.0.0.1",)}
    mine = {f"m{i:04d}.{ZONE}": "node-1" for i in range(MANY)}
    theirs = {f"t{i:04d}.{ZONE}": "node-1" for i in range(MANY)}
    publish(east, parents=mine, nodes=nodes)
    publish(west, parents=theirs, nodes=nodes)

    # A delete of every name, as from a stale belief that east held them all.
    east.apply(Changes(parents_delete=frozenset(mine) | frozenset(theirs)))

    assert all(east.resolve(name).kind == "none" for name in mine)
    assert all(west.resolve(name).addresses == ("10.0.0.1",) for name in theirs)
    assert set(west.read_state().parents) == set(theirs)


def test_a_big_batch_takes_over_ownerless_values_and_refuses_held_ones(redis_client, redis_server):
    east, west = RedisStore(redis_client, owner=EAST), RedisStore(redis_server.client(), owner=WEST)
    names = [f"o{i:04d}.{ZONE}" for i in range(MANY)]
    for i, name in enumerate(names):
        if i % 3 == 0:
            redis_client.set(KEYS.parent(name), "node-1")  # written before owners existed
        elif i % 3 == 1:
            redis_client.set(KEYS.child(name), owned(WEST, f"x.{ZONE}"))  # another owner's child

    result = publish(east, parents={name: "node-7" for name in names}, nodes={"node-7": ("10.0.0.7",)})

    refused = {name for i, name in enumerate(names) if i % 3 == 1}
    assert result.owned_elsewhere == refused
    for i, name in enumerate(names):
        if i % 3 == 1:
            assert west.resolve(name).target == f"x.{ZONE}" and redis_client.get(KEYS.parent(name)) is None
        else:
            assert redis_client.get(KEYS.parent(name)) == owned(EAST, "node-7").encode()

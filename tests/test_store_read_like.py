"""`read_state(like=desired)`: the same state as the plain read, made of the desired
state's own objects wherever the store agrees with it (its dicts themselves where the
store holds exactly them), for both stores; and a reconciler reading that way writes,
announces and remembers exactly what it did with the plain read."""

from __future__ import annotations

import random

import fakeredis
import pytest

from mountdns.records import State
from mountdns.store.like import Composed, compose, parts
from mountdns.store.memory_store import MemoryStore
from mountdns.store.redis_store import RedisStore
from mountdns.testing.objects import SEED_CONFIG, seed_objects
from mountdns.testing.seed import SEED_STATE, SEED_ZONE, ZONE
from sync.reconciler import Reconciler
from sync.rules import desired_state
from sync.sources.cache import Snapshot
from tests.conftest import load

KINDS = ("nodes", "parents", "children")


def fresh(text: str) -> str:
    """An equal string that is another object (as Redis's replies are)."""
    return (text + " ")[:-1]


def random_desired(rng: random.Random, size: int) -> State:
    nodes = {f"node-{n}": (f"10.0.{n}.1",) for n in range(rng.randrange(1, 5))}
    parents = {f"p{i}-{rng.randrange(10**6)}.{ZONE}": rng.choice(list(nodes)) for i in range(size)}
    children = {f"c{i}-{rng.randrange(10**6)}.{ZONE}": rng.choice(list(parents)) for i in range(size)}
    return State(zones={ZONE: SEED_ZONE}, nodes=nodes, parents=parents, children=children)


def random_held(desired: State, rng: random.Random) -> tuple[State, State]:
    """(what this owner holds, what another owner holds): each desired record equal,
    different, missing or another owner's; extra names of both owners; every string a
    copy, never the desired one."""
    ours: dict[str, dict] = {kind: {} for kind in KINDS}
    theirs: dict[str, dict] = {kind: {} for kind in KINDS}
    for kind in KINDS:
        for name, value in getattr(desired, kind).items():
            fate = rng.random()
            if fate < 0.5:
                ours[kind][fresh(name)] = tuple(map(fresh, value)) if kind == "nodes" else fresh(value)
            elif fate < 0.7:
                ours[kind][fresh(name)] = ("192.0.2.9",) if kind == "nodes" else f"other-{rng.randrange(99)}.{ZONE}"
            elif fate < 0.8 and kind != "nodes":  # node keys carry their owner: never another's
                theirs[kind][fresh(name)] = fresh(value)
            # else: missing
        for i in range(rng.randrange(1, 4)):
            ours[kind][f"stale-{kind}-{i}.{ZONE}"] = ("192.0.2.7",) if kind == "nodes" else f"gone.{ZONE}"
            theirs[kind][f"west-{kind}-{i}.{ZONE}"] = ("192.0.2.8",) if kind == "nodes" else f"west.{ZONE}"
    return (State(zones={ZONE: SEED_ZONE}, **ours), State(zones={ZONE: SEED_ZONE}, **theirs))


@pytest.fixture(params=["memory", "fakeredis"])
def stores(request):
    """(this owner's store, another owner's view of the same data)."""
    if request.param == "memory":
        east = MemoryStore(owner="east")
        yield east, east.view("west")
    else:
        client = fakeredis.FakeRedis()
        yield RedisStore(client, owner="east"), RedisStore(client, owner="west")


def assert_shared(read: State, desired: State) -> int:
    """Every record `read` holds with `desired`'s value is `desired`'s own key and value
    objects; how many there were."""
    shared = 0
    for kind in KINDS:
        got, wanted = getattr(read, kind), getattr(desired, kind)
        own_key = {key: key for key in wanted}  # an equal string -> desired's object
        for key, value in got.items():
            if key in wanted and wanted[key] == value:
                assert key is own_key[key] and value is wanted[key], (kind, key)
                shared += 1
    return shared


@pytest.mark.parametrize("seed", range(12))
def test_read_like_equals_the_plain_read_and_shares_the_equal_records(stores, seed):
    east, west = stores
    rng = random.Random(seed)
    desired = random_desired(rng, rng.randrange(1, 40))
    ours, theirs = random_held(desired, rng)
    load(west, theirs)
    load(east, ours)
    plain, read = east.read_state(), east.read_state(like=desired)
    assert read == plain
    assert not any(name.startswith("west-") for name in {**read.parents, **read.children})
    assert assert_shared(read, desired) == sum(
        1 for kind in KINDS for key, value in getattr(desired, kind).items()
        if getattr(plain, kind).get(key) == value)


def test_a_store_holding_exactly_the_desired_records_gives_back_its_dicts(stores):
    east, west = stores
    desired = random_desired(random.Random(1), 30)
    load(west, State(zones={ZONE: SEED_ZONE}, parents={f"west.{ZONE}": "node-9"}))
    load(east, State(zones={ZONE: SEED_ZONE}, nodes={k: tuple(map(fresh, v)) for k, v in desired.nodes.items()},
                     parents={fresh(k): fresh(v) for k, v in desired.parents.items()},
                     children={fresh(k): fresh(v) for k, v in desired.children.items()}))
    read = east.read_state(like=desired)
    assert read.nodes is desired.nodes and read.parents is desired.parents and read.children is desired.children
    assert read == east.read_state()


def test_the_plain_read_shares_nothing_so_sharing_is_the_read_like(stores):
    # The check above can fail: a read without `like` holds equal strings, not the same ones.
    east, _ = stores
    desired = random_desired(random.Random(2), 5)
    load(east, State(zones={ZONE: SEED_ZONE}, parents={fresh(k): fresh(v) for k, v in desired.parents.items()}))
    plain = east.read_state()
    assert plain.parents == desired.parents and plain.parents is not desired.parents
    with pytest.raises(AssertionError):
        assert_shared(plain, desired)


def test_an_empty_store_reads_empty_whatever_is_desired(stores):
    east, _ = stores
    desired = random_desired(random.Random(3), 10)
    assert east.read_state(like=desired) == State()


def test_compose_parts_round_trip():
    desired = {"a": "1", "b": "2", "c": "3"}
    held = {"a": fresh("1"), "b": "9", "d": "4"}
    missing, differing, extra = parts(held, desired)
    assert (missing, differing, extra) == (["c"], {"b": "9"}, {"d": "4"})
    assert compose(desired, missing, differing, extra) == held
    assert compose(desired, [], {}, {}) is desired
    assert compose(desired, ["a", "b", "c"], {}, {"d": "4"}) == {"d": "4"}


@pytest.mark.parametrize("seed", range(30))
def test_a_composed_mapping_answers_as_the_dict_it_stands_for(seed):
    rng = random.Random(seed)
    desired = {f"d{i}": f"v{rng.randrange(5)}" for i in range(rng.randrange(1, 30))}
    held = {key: rng.choice([value, fresh(value), "other"]) for key, value in desired.items() if rng.random() < 0.8}
    held.update({f"x{i}": f"w{i}" for i in range(rng.randrange(4))})
    missing, differing, extra = parts(held, desired)
    composed = Composed(desired, missing, differing, extra)
    assert composed == held and held == composed and dict(composed) == held
    assert len(composed) == len(held) and set(composed) == set(held) and dict(composed.items()) == held
    assert sorted(composed.items()) == sorted(held.items()) and list(composed.items()) == list(composed.items())
    for key in [*desired, *extra, "nowhere"]:
        assert (key in composed) == (key in held)
        assert composed.get(key) == held.get(key) and composed.get(key, 7) == held.get(key, 7)
        if key in held:
            assert composed[key] == held[key]
        else:
            with pytest.raises(KeyError):
                composed[key]


# -- the reconciler: the same outcome either way ------------------------------------------

class PlainRead:
    """A store that ignores `like`: the reconciler's outcome with the plain read."""

    def __init__(self, inner: MemoryStore):
        self.inner = inner

    def read_state(self, like: State | None = None, extra_limit: int | None = None) -> State:
        return self.inner.read_state()  # everything, whatever is asked

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.parametrize("seed", range(10))
def test_a_full_batch_read_like_the_plan_writes_announces_and_knows_what_the_plain_read_does(seed):
    rng = random.Random(seed)
    containers, nodes = seed_objects()
    snapshot = Snapshot(containers=tuple(containers), nodes=tuple(nodes), complete=True)
    desired = desired_state(containers, nodes, SEED_CONFIG).state
    ours, theirs = random_held(desired, rng)
    plain, like = MemoryStore(owner="east"), MemoryStore(owner="east")
    for store in (plain, like):
        load(store.view("west"), theirs)
        load(store, ours)
    by_plain, by_like = Reconciler(PlainRead(plain), SEED_CONFIG), Reconciler(like, SEED_CONFIG)
    for _ in range(2):  # the first batch, then a resync of what it wrote
        assert by_like.reconcile(snapshot, full=True).changes == by_plain.reconcile(snapshot, full=True).changes
        assert like.announcements == plain.announcements
        assert by_like.known == by_plain.known
        assert by_like.owned_elsewhere == by_plain.owned_elsewhere
        assert like.read_state() == plain.read_state()
        west = like.view("west").read_state()  # another owner's names are never touched
        assert (west.parents, west.children) == (theirs.parents, theirs.children)
    stale = {n for kind in ("parents", "children") for n in getattr(ours, kind) if n.startswith("stale-")}
    assert stale and not stale & (set(like.read_state().parents) | set(like.read_state().children))


def test_a_resync_of_what_was_written_reads_the_plans_own_dicts():
    store = MemoryStore()
    reads = []

    class Recording(PlainRead):
        def read_state(self, like=None, extra_limit=None):
            reads.append((like, self.inner.read_state(like=like, extra_limit=extra_limit)))
            return reads[-1][1]

    containers, nodes = seed_objects()
    snapshot = Snapshot(containers=tuple(containers), nodes=tuple(nodes), complete=True)
    reconciler = Reconciler(Recording(store), SEED_CONFIG)
    reconciler.reconcile(snapshot, full=True)
    assert reconciler.reconcile(snapshot, full=True).changes.empty
    like, read = reads[-1]
    assert read.parents is like.parents and read.children is like.children and read.nodes is like.nodes
    assert read.parents == SEED_STATE.parents


# -- against a real redis-server ------------------------------------------------------------

def test_read_like_against_redis_server_in_pages(redis_client, monkeypatch):
    # More names than one page: the MGET of the desired names and the SCAN both go page by page.
    import mountdns.store.redis_store as redis_store
    monkeypatch.setattr(redis_store, "_SCAN_BATCH", 50)
    rng = random.Random(11)
    desired = random_desired(rng, 400)
    ours, theirs = random_held(desired, rng)
    east, west = RedisStore(redis_client, owner="east", chunk_keys=300), RedisStore(redis_client, owner="west")
    load(west, theirs)
    load(east, ours)
    calls = []
    real_mget = redis_client.mget
    monkeypatch.setattr(redis_client, "mget", lambda keys, *a: calls.append(len(keys)) or real_mget(keys, *a))
    read = east.read_state(like=desired)
    assert calls and max(calls) <= 50
    assert read == east.read_state()
    assert assert_shared(read, desired) > 0
    mine = State(zones=desired.zones, nodes=desired.nodes,  # less the names west holds
                 parents={k: v for k, v in desired.parents.items() if k not in theirs.parents},
                 children={k: v for k, v in desired.children.items() if k not in theirs.children})
    load(east, mine)
    exact = east.read_state(like=mine)
    assert exact.parents is mine.parents and exact.children is mine.children and exact.nodes is mine.nodes
    assert west.read_state().parents == theirs.parents


def test_a_stale_childs_value_is_its_stale_parents_own_name(redis_client):
    # Stale names come in families (a stale parent and the children mounted to it): the
    # children's values are held once, as the parent names the read holds anyway.
    store = RedisStore(redis_client)
    stale = State(zones={ZONE: SEED_ZONE}, nodes={"node-9": ("192.0.2.9",)},
                  parents={f"gp{i}.{ZONE}": "node-9" for i in range(5)},
                  children={f"gc{i}.{ZONE}": f"gp{i}.{ZONE}" for i in range(5)})
    load(store, stale)
    read = store.read_state(like=SEED_STATE)
    assert read.parents == stale.parents and read.children == stale.children
    parent_names = {name: name for name in read.parents}
    assert all(value is parent_names[value] for value in read.children.values())


@pytest.mark.parametrize("seed", range(3))
def test_a_full_batch_against_redis_server_is_the_same_read_like_or_plain(redis_client, seed):
    # Two prefixes on one real Redis, loaded alike: a reconciler reading like its plan and
    # one reading plainly write, announce and leave the same; the stale names go, another
    # owner's stay.
    from mountdns import announce
    rng = random.Random(seed)
    containers, nodes = seed_objects()
    snapshot = Snapshot(containers=tuple(containers), nodes=tuple(nodes), complete=True)
    ours, theirs = random_held(desired_state(containers, nodes, SEED_CONFIG).state, rng)
    stores = {}
    for prefix in ("like:", "plain:"):
        load(RedisStore(redis_client, prefix=prefix, owner="west"), theirs)
        stores[prefix] = RedisStore(redis_client, prefix=prefix, owner="east", chunk_keys=3)
        load(stores[prefix], ours)
    by_like = Reconciler(stores["like:"], SEED_CONFIG)
    by_plain = Reconciler(PlainRead(stores["plain:"]), SEED_CONFIG)
    for _ in range(2):
        assert by_like.reconcile(snapshot, full=True).changes == by_plain.reconcile(snapshot, full=True).changes
        assert by_like.known == by_plain.known
    entries = [[announce.decode(fields) for _, fields in redis_client.xrange(store.keys.announcements)]
               for store in stores.values()]
    assert entries[0] == entries[1] and entries[0]
    like, plain = stores["like:"].read_state(), stores["plain:"].read_state()
    assert (like.nodes, like.parents, like.children) == (plain.nodes, plain.parents, plain.children)
    assert not any(name.startswith("stale-") for name in {**like.parents, **like.children})
    west = RedisStore(redis_client, prefix="like:", owner="west").read_state()
    assert (west.parents, west.children) == (theirs.parents, theirs.children)

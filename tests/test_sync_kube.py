"""The real `mountdns-sync` process against a Kubernetes API double and a real redis-server.

Each test starts `.venv/bin/mountdns-sync --kubeconfig ...` as a child process (debug log
in the test's tmp dir), changes the "cluster" through the double's Python API, injects the
failures a real control plane produces, and asserts what lands in Redis: the keys the
DNS backend serves. Every wait is bounded; every process is stopped by a fixture.
"""

from __future__ import annotations

import re

import pytest

from mountdns.backoff import DEFAULT_MAXIMUM
from mountdns.keyspace import DEFAULT_OWNER, Keys, owned
from mountdns.store.redis_store import RedisStore
from mountdns.plan import diff
from mountdns.records import State
from mountdns.testing.objects import MOUNTED, container, node, seed_fqdn, seed_objects
from mountdns.testing.kube_double import KubeAPIDouble
from mountdns.testing.seed import NODES, SEED_STATE
from mountdns.testing.servers import RedisServer
from mountdns.testing.sync_process import SyncProcess
from sync.sources.kube import PAGE_SIZE

pytestmark = pytest.mark.integration

KEYS = Keys()
ZONE_KEY = KEYS.zone("domain.foo.bar")
NODE_1_KEY = KEYS.node("node-1").encode()
MARKER_KEY = KEYS.marker(DEFAULT_OWNER).encode()
# With the stream on which each write announces the names it changed (mountdns.announce).
SEED_KEYS = ({KEYS.zones.encode(), ZONE_KEY.encode(), KEYS.zone_owners("domain.foo.bar").encode(), MARKER_KEY,
              KEYS.announcements.encode()}
             | {KEYS.node(n).encode() for n in SEED_STATE.nodes}
             | {KEYS.parent(p).encode() for p in SEED_STATE.parents}
             | {KEYS.child(c).encode() for c in SEED_STATE.children})


# --- helpers ---------------------------------------------------------------------------
def published(client) -> State:
    """What the sync published, with zone serials left out (the store maintains them)."""
    state = RedisStore(client).read_state()
    return State(zones={n: z.definition() for n, z in state.zones.items()}, nodes=dict(state.nodes),
                 parents=dict(state.parents), children=dict(state.children))


def is_seed(client) -> bool:
    return published(client) == SEED_STATE


def string_keys(client, pattern: str = KEYS.prefix + "*") -> dict[bytes, bytes]:
    """Every string key under the prefix with its raw value (zone hashes, the zone set and
    the data-loss marker, which holds the time of the last full write, left out)."""
    return {k: client.get(k) for k in client.scan_iter(match=pattern)
            if client.type(k) == b"string" and k != MARKER_KEY}


def exec_calls(client) -> int:
    """Write transactions so far: the sync writes with one script call (EVALSHA) per batch;
    a NOSCRIPT reply (the script loaded then called again) is counted as failed."""
    stats = client.info("commandstats")
    evalsha, eval_ = stats.get("cmdstat_evalsha", {}), stats.get("cmdstat_eval", {})
    return (int(evalsha.get("calls", 0)) - int(evalsha.get("failed_calls", 0))
            + int(eval_.get("calls", 0)) - int(eval_.get("failed_calls", 0)))


def child_key(label: str) -> bytes:
    return KEYS.child(f"{label.lower()}.domain.foo.bar").encode()


def parent_key(label: str) -> bytes:
    return KEYS.parent(f"{label.lower()}.domain.foo.bar").encode()


def seed_container(name: str) -> dict:
    containers, _ = seed_objects()
    return next(c for c in containers if c["metadata"]["name"] == name)


def retry_delays(log_text: str, failure: str) -> list[float]:
    """The delays the sync announced after each logged `failure` ("... retrying in 1.6s")."""
    return [float(m) for m in re.findall(re.escape(failure) + r".*retrying in ([0-9.]+)s", log_text)]


def relisted_then_batched(sync: SyncProcess, start: int, lists: int) -> bool:
    """Since log offset `start`: `lists` lists, and a batch (which read the cache) after the last."""
    lines = sync.log_text()[start:].splitlines()
    listed = [i for i, line in enumerate(lines) if " objects at resourceVersion " in line]
    return len(listed) >= lists and any("batch done" in line for line in lines[listed[lists - 1] + 1:])


def watch_requests(api):
    return [(path, query) for method, path, query in list(api.requests)
            if method == "GET" and query.get("watch") == "true"]


# --- fixtures --------------------------------------------------------------------------
@pytest.fixture
def seeded_api(api):
    containers, nodes = seed_objects()
    api.apply_many(nodes + containers)
    return api


@pytest.fixture
def make_sync(tmp_path, api, redis_server):
    """Build (not start) SyncProcesses against `api` and the session Redis; all stopped at the end."""
    processes = []
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")

    def make(redis_url: str | None = None, **options) -> SyncProcess:
        options.setdefault("coalesce_seconds", 0.02)
        options.setdefault("name", f"sync{len(processes)}")
        process = SyncProcess(tmp_path, redis_url or redis_server.url, kubeconfig=kubeconfig, **options)
        processes.append(process)
        return process

    yield make
    for process in processes:
        process.stop()


@pytest.fixture(scope="module")
def shared_stack(tmp_path_factory):
    """One API double, Redis and sync for the tests that start from the seed: starting a
    sync costs about a second (the Kubernetes client's imports), so they share one."""
    directory = tmp_path_factory.mktemp("shared-sync")
    redis_server = RedisServer(directory)
    api = KubeAPIDouble(bookmark_interval=0.5)
    sync = None
    try:
        redis_server.start()
        api.start()
        sync = SyncProcess(directory, redis_server.url, kubeconfig=api.write_kubeconfig(directory / "kubeconfig"),
                           coalesce_seconds=0.02, name="shared-sync").start()
        yield api, redis_server.client(), sync
    finally:
        if sync is not None:
            sync.stop()
        api.stop()
        redis_server.stop()


@pytest.fixture
def shared_api(shared_stack):
    """The shared cluster, put back to the seed (and nothing else) for each test."""
    api, _, _ = shared_stack
    containers, nodes = seed_objects()
    seed = {(o["kind"], o["metadata"]["name"]) for o in containers + nodes}
    for kind in ("Container", "Node"):
        for obj in api.objects(kind):
            meta = obj["metadata"]
            if (kind, meta["name"]) not in seed or meta.get("namespace", "default") != "default":
                api.delete(kind, meta["name"], meta.get("namespace"))
    api.apply_many(nodes + containers)
    return api


@pytest.fixture
def shared_redis(shared_stack):
    return shared_stack[1]


@pytest.fixture
def synced(shared_stack, shared_api, shared_redis):
    """The shared sync, once it has published the seed (and only the seed)."""
    sync = shared_stack[2]
    sync.wait_until(lambda: is_seed(shared_redis) and set(shared_redis.keys("*")) == SEED_KEYS,
                    10, "the seed published")
    assert shared_api.wait_for_open_watches(2, timeout=15)
    return sync


# --- the first sync --------------------------------------------------------------------
def test_first_sync_writes_exactly_the_seed_keys_then_watches_with_bookmarks(synced, shared_api, shared_redis):
    assert set(shared_redis.keys("*")) == SEED_KEYS
    assert published(shared_redis) == SEED_STATE
    assert shared_redis.get(NODE_1_KEY) == b"2.3.4.5"
    assert shared_redis.get(child_key("Container_D_0")) == b"default/container_b_0.domain.foo.bar"
    assert shared_redis.get(parent_key("Container_A_0")) == b"default/node-0"

    watches = watch_requests(shared_api)
    assert {path for path, _ in watches} == {"/api/v1/nodes", "/apis/mountdns.io/v1alpha1/containers",
                                             "/api/v1/pods"}
    # Pods only through the label that marks those a Container's spec.podRef names.
    assert {query.get("labelSelector") for path, query in watches if path == "/api/v1/pods"} == {"mountdns.io/backs"}
    for _, query in watches:
        assert query["allowWatchBookmarks"] == "true"
        assert int(query["resourceVersion"]) > 0  # from the list, not "everything again"


def test_resync_without_changes_writes_nothing(seeded_api, make_sync, redis_client):
    sync = make_sync(resync_interval=0.5).start()
    sync.wait_until(lambda: is_seed(redis_client), 20, "the seed published")
    execs, offset = exec_calls(redis_client), len(sync.log_text())
    sync.wait_until(lambda: relisted_then_batched(sync, start=offset, lists=4), 15,
                    "two resyncs re-listing both kinds, then a batch after the last list")
    assert exec_calls(redis_client) == execs
    assert is_seed(redis_client)


# --- watch events ------------------------------------------------------------------------
def test_node_moved_changes_only_its_node_key(synced, shared_api, shared_redis):
    before = string_keys(shared_redis)
    serial_before = int(shared_redis.hget(ZONE_KEY, "serial"))

    shared_api.apply(node("node-1", "12.34.5.6"))

    synced.wait_until(lambda: shared_redis.get(NODE_1_KEY) == b"12.34.5.6", 15, "node-1 moved")
    after = string_keys(shared_redis)
    assert {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)} == {NODE_1_KEY}
    assert int(shared_redis.hget(ZONE_KEY, "serial")) > serial_before


def test_container_added_then_mounted_then_unmounted(synced, shared_api, shared_redis):
    shared_api.apply(container("container-f-0", node="node-2", fqdn=seed_fqdn("Container_F_0"), type="odl"))
    synced.wait_until(lambda: shared_redis.get(parent_key("Container_F_0")) == b"default/node-2", 15, "F_0 added")

    # A child that is still connecting is a parent on its own node ...
    child = container("container-g-0", node="node-1", fqdn=seed_fqdn("Container_G_0"), type="netconf",
                      mounted_to="container-f-0", status="CONNECTING")
    shared_api.apply(child)
    synced.wait_until(lambda: shared_redis.get(parent_key("Container_G_0")) == b"default/node-1", 15, "G_0 connecting")
    assert shared_redis.get(child_key("Container_G_0")) is None

    # ... becomes a CNAME to its parent once its deviceStatus is MOUNTED ...
    child["status"] = {"deviceStatus": MOUNTED}
    shared_api.apply(child)
    synced.wait_until(lambda: shared_redis.get(child_key("Container_G_0")) == b"default/container_f_0.domain.foo.bar",
                      5, "G_0 mounted")
    assert shared_redis.get(parent_key("Container_G_0")) is None

    # ... and a parent of its own node again when unmounted.
    child["status"] = {"deviceStatus": "UNMOUNTED"}
    shared_api.apply(child)
    synced.wait_until(lambda: shared_redis.get(parent_key("Container_G_0")) == b"default/node-1", 15, "G_0 unmounted")
    assert shared_redis.get(child_key("Container_G_0")) is None

    # A seed child without a nodeName that is unmounted is published as nothing at all.
    d0 = seed_container("container-d-0")
    del d0["spec"]["nodeName"]
    d0["status"] = {"deviceStatus": "UNMOUNTED"}
    shared_api.apply(d0)
    synced.wait_until(lambda: shared_redis.get(child_key("Container_D_0")) is None, 15, "D_0 unmounted")
    assert shared_redis.get(parent_key("Container_D_0")) is None
    assert published(shared_redis).parents == {**SEED_STATE.parents,
                                               "container_f_0.domain.foo.bar": "node-2",
                                               "container_g_0.domain.foo.bar": "node-1"}


def test_parent_deleted_takes_its_children_with_it(synced, shared_api, shared_redis):
    shared_api.delete("Container", "container-b-0", "default")
    synced.wait_until(lambda: shared_redis.get(parent_key("Container_B_0")) is None, 15, "B_0 deleted")
    synced.wait_until(lambda: shared_redis.get(child_key("Container_D_0")) is None, 15, "D_0 gone")
    state = published(shared_redis)
    assert state.children == {c: p for c, p in SEED_STATE.children.items() if "container_d_0" not in c}
    assert state.parents == {p: n for p, n in SEED_STATE.parents.items() if "container_b_0" not in p}
    assert state.nodes == SEED_STATE.nodes


# --- the API server failing ----------------------------------------------------------------
def test_api_unreachable_keeps_every_key_then_converges(synced, shared_api, shared_redis):
    before = string_keys(shared_redis)
    failures = synced.log_count("list/watch failed")

    shared_api.stop()
    try:
        # Several reconnect attempts (both watchers, with backoff), none of which removes anything.
        synced.wait_for_log("list/watch failed", 20, count=failures + 6)
        assert string_keys(shared_redis) == before
        assert synced.running()

        # The cluster changes while the sync cannot see it: it keeps trying, and failing.
        shared_api.delete("Container", "container-e-0", "default")
        shared_api.apply(node("node-1", "12.34.5.6"))
        synced.wait_for_log("list/watch failed", 15, count=synced.log_count("list/watch failed") + 2)
        assert string_keys(shared_redis) == before
    finally:
        shared_api.start()
    synced.wait_until(lambda: shared_redis.get(child_key("Container_E_0")) is None
                      and shared_redis.get(NODE_1_KEY) == b"12.34.5.6", 15, "converged after the outage")
    expected = {k: v for k, v in before.items() if k != child_key("Container_E_0")}
    assert string_keys(shared_redis) == {**expected, NODE_1_KEY: b"12.34.5.6"}


def test_api_back_after_a_long_outage_the_next_change_lands_and_no_retry_waited_past_the_cap(
        seeded_api, make_sync, redis_client):
    sync = make_sync().start()
    sync.wait_until(lambda: is_seed(redis_client), 20, "the seed published")

    seeded_api.stop()
    try:
        # Seven failures each: uncapped, the seventh delay would be 0.2 s * 2**6 * (0.5..1) >= 6.4 s.
        sync.wait_until(lambda: all(sync.log_count(f"{kind} list/watch failed") >= 7 for kind in ("Container", "Node")),
                        60, "seven failed attempts of each watcher")
    finally:
        seeded_api.start()
    seeded_api.apply(node("node-1", "12.34.5.6"))

    sync.wait_until(lambda: redis_client.get(NODE_1_KEY) == b"12.34.5.6", 30, "the change after the outage")
    delays = retry_delays(sync.log_text(), "list/watch failed")
    assert len(delays) >= 14
    assert max(delays) <= DEFAULT_MAXIMUM
    assert max(delays) >= DEFAULT_MAXIMUM / 2  # the cap was reached: jitter takes off at most half


def test_api_unavailable_503_deletes_nothing_then_converges(synced, shared_api, shared_redis):
    before = string_keys(shared_redis)
    failures = synced.log_count("API error 503")
    shared_api.set_available(False)
    try:
        shared_api.delete("Container", "container-a-2", "default")
        synced.wait_for_log("API error 503", 20, count=failures + 4)
        assert string_keys(shared_redis) == before  # neither A_2 nor its child C_1 went
    finally:
        shared_api.set_available(True)
    synced.wait_until(lambda: shared_redis.get(parent_key("Container_A_2")) is None
                      and shared_redis.get(child_key("Container_C_1")) is None, 15, "A_2 and C_1 removed")
    assert set(string_keys(shared_redis)) == set(before) - {parent_key("Container_A_2"), child_key("Container_C_1")}


def test_failing_lists_delete_nothing_then_converge(synced, shared_api, shared_redis):
    before = string_keys(shared_redis)
    lists = shared_api.list_calls["Container"]
    failed = "Container list/watch failed (API error 500"
    failures = synced.log_count(failed)
    shared_api.fail_lists(3, status=500, kind="Container")
    shared_api.delete("Container", "container-c-0", "default")
    shared_api.drop_watches()  # the Container watcher re-lists, and its lists fail

    # After the second failure the next attempt is >= 0.2 s away and fails as well.
    synced.wait_for_log(failed, 20, count=failures + 2)
    assert string_keys(shared_redis) == before

    synced.wait_until(lambda: shared_redis.get(child_key("Container_C_0")) is None, 15, "C_0 removed")
    assert set(string_keys(shared_redis)) == set(before) - {child_key("Container_C_0")}
    assert synced.log_count(failed) == failures + 3
    assert shared_api.list_calls["Container"] >= lists + 4


def test_compaction_and_dropped_watches_relist_and_converge(synced, shared_api, shared_redis):
    lists = sum(shared_api.list_calls.values())
    watches_before = len(watch_requests(shared_api))
    shared_api.compact()
    compacted_at = shared_api.resource_version
    shared_api.drop_watches()
    shared_api.apply(node("node-2", "13.14.15.16"))

    synced.wait_until(lambda: shared_redis.get(KEYS.node("node-2")) == b"13.14.15.16", 20, "node-2 moved")
    synced.wait_until(lambda: sum(shared_api.list_calls.values()) >= lists + 2, 15, "both kinds re-listed")
    assert shared_api.wait_for_open_watches(2, timeout=15)
    # Watches after the compaction start from a fresh list, never from a compacted version.
    for _, query in watch_requests(shared_api)[watches_before:]:
        assert int(query["resourceVersion"]) >= compacted_at


def test_list_cut_short_by_410_is_relisted_before_anything_is_written(api, make_sync, redis_client):
    count = PAGE_SIZE + 100  # two pages
    api.apply_many([node("node-0", "1.2.3.4")] + [
        container(f"bulk-{i:05d}", node="node-0", fqdn=f"bulk-{i:05d}.domain.foo.bar") for i in range(count)])
    api.truncate_next_list()  # the continue request of the first paginated list gets 410
    execs = exec_calls(redis_client)
    # One write call for the whole batch, so a partial write would show as a second one.
    sync = make_sync(extra_args=("--write-chunk-keys", str(2 * count))).start()
    sync.wait_until(lambda: len(list(redis_client.scan_iter(match=KEYS.pattern("parent"), count=1000))) == count,
                    20, f"{count} parents")
    assert "410 Gone: re-listing" in sync.log_text()
    assert api.list_calls["Container"] >= 4  # page 1, expired page 2, then both pages again
    assert exec_calls(redis_client) - execs == 1  # one write, after the complete list: no partial one


def test_stale_names_beyond_one_round_are_collected_round_after_round(seeded_api, make_sync, redis_client):
    # A Redis holding ten times the round's size in stale names (a cluster that is gone):
    # the daemon collects them a round per batch, children before their parents, and the
    # seed is never touched.
    stale = 3000
    RedisStore(redis_client).apply(diff(State(), State(
        zones=SEED_STATE.zones, nodes={"gone-0": ("192.0.2.1",)},
        parents={f"gp-{i:05d}.domain.foo.bar": "gone-0" for i in range(stale // 2)},
        children={f"gc-{i:05d}.domain.foo.bar": f"gp-{i:05d}.domain.foo.bar" for i in range(stale // 2)})))
    sync = make_sync(extra_args=("--gc-round-names", "1000")).start()
    sync.wait_until(lambda: is_seed(redis_client), 60, "the stale names collected, the seed published")
    rounds = sync.log_count("Redis holds more stale records: the next batch collects them")
    assert rounds >= 2, sync.log_tail()
    deleted = [int(n) for line in sync.log_text().splitlines() if " wrote " in line
               for n in re.findall(r"(?:children|parents) \+\d+/-(\d+)", line)]
    assert max(deleted) <= 1000 and sum(deleted) == stale
    assert sync.running()


# --- Redis failing ----------------------------------------------------------------------
def test_redis_restarted_empty_is_rewritten_within_one_resync(seeded_api, make_sync, own_redis):
    sync = make_sync(own_redis.url, resync_interval=2).start()
    client = own_redis.client()
    sync.wait_until(lambda: is_seed(client), 20, "the seed published")

    own_redis.stop()
    sync.wait_for_log("Redis failed", 20)  # the next resync cannot read Redis: logged, retried
    assert sync.running()

    own_redis.start()
    assert client.dbsize() == 0
    sync.wait_until(lambda: is_seed(client), 30, "the seed rewritten")
    assert sync.running()
    # However long Redis stayed down, no retry was scheduled further off than the cap.
    assert max(retry_delays(sync.log_text(), "Redis failed")) <= DEFAULT_MAXIMUM
    client.close()


# --- scale -------------------------------------------------------------------------------
BURST_COALESCE = 2.0  # seconds a batch gathers after its first event


def test_burst_of_1000_containers_is_a_few_transactions(seeded_api, make_sync, redis_client):
    # A sync of its own that gathers for seconds, not the shared one's 20 ms: a batch then
    # takes every event that arrived in BURST_COALESCE, so the 1,000 events sent at once
    # make at most 1 + (time the sync takes to receive them) / BURST_COALESCE batches, of a
    # write call or two each (1,000 keys a call) -- 20 calls would need ~18 s of parsing.
    sync = make_sync(coalesce_seconds=BURST_COALESCE).start()
    sync.wait_until(lambda: is_seed(redis_client) and set(redis_client.keys("*")) == SEED_KEYS, 30,
                    "the seed published")
    assert seeded_api.wait_for_open_watches(2, timeout=30)
    execs = exec_calls(redis_client)
    seeded_api.apply_many([container(f"burst-{i:04d}", node=f"node-{i % 3}", fqdn=f"burst-{i:04d}.domain.foo.bar")
                           for i in range(1000)])

    def burst_keys():
        return sum(1 for key in redis_client.scan_iter(match=KEYS.pattern("parent"), count=2000)
                   if KEYS.strip("parent", key).startswith("burst-"))
    sync.wait_until(lambda: burst_keys() == 1000, 60, "1,000 burst parents")
    transactions = exec_calls(redis_client) - execs
    assert 1 <= transactions <= 20, transactions
    print(f"1,000 creations took {transactions} transactions")
    assert len(published(redis_client).parents) == 1004


# --- options -------------------------------------------------------------------------------
def test_namespace_flag_limits_containers_to_one_namespace(seeded_api, make_sync, redis_client):
    seeded_api.apply(container("x-0", node="node-0", fqdn="x_0.domain.foo.bar", namespace="team-a"))
    sync = make_sync(extra_args=("--namespace", "team-a")).start()
    sync.wait_until(lambda: published(redis_client).parents == {"x_0.domain.foo.bar": "node-0"}, 20, "team-a only")

    seeded_api.apply(container("other-0", node="node-1", fqdn="other_0.domain.foo.bar", namespace="default"))
    seeded_api.apply(container("x-1", node="node-1", fqdn="x_1.domain.foo.bar", namespace="team-a"))
    sync.wait_until(lambda: redis_client.get(KEYS.parent("x_1.domain.foo.bar")) == owned(DEFAULT_OWNER, "node-1").encode(), 15, "x-1")
    state = published(redis_client)
    assert state.parents == {"x_0.domain.foo.bar": "node-0", "x_1.domain.foo.bar": "node-1"}
    assert state.children == {}
    container_paths = {path for path, _ in watch_requests(seeded_api) if "containers" in path}
    assert container_paths == {"/apis/mountdns.io/v1alpha1/namespaces/team-a/containers"}


def test_once_syncs_and_exits_zero(seeded_api, make_sync, redis_client):
    result = make_sync().run("--once")
    assert result.returncode == 0
    assert published(redis_client) == SEED_STATE
    assert set(redis_client.keys("*")) == SEED_KEYS


def test_once_with_the_api_unreachable_exits_non_zero_and_writes_nothing(seeded_api, make_sync, redis_client):
    seeded_api.stop()
    sync = make_sync()
    result = sync.run("--once")
    assert result.returncode != 0
    assert redis_client.dbsize() == 0
    assert "listing failed, nothing written" in sync.log_text()


def test_dry_run_once_prints_the_plan_and_writes_nothing(seeded_api, make_sync, redis_client):
    result = make_sync().run("--dry-run", "--once")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert "zone   put    domain.foo.bar (ns ns1.domain.foo.bar, ttl 30)" in lines
    assert "node   put    node-1 -> 2.3.4.5" in lines
    assert "parent put    container_a_0.domain.foo.bar -> node node-0" in lines
    assert "child  put    container_d_0.domain.foo.bar -> CNAME container_b_0.domain.foo.bar" in lines
    assert lines[-1].startswith("dry run:") and lines[-1].endswith("(nothing written)")
    assert len(lines) == 1 + len(NODES) + len(SEED_STATE.parents) + len(SEED_STATE.children) + 1
    assert redis_client.dbsize() == 0


def test_keys_outside_the_prefix_survive_garbage_collection(seeded_api, make_sync, redis_client):
    redis_client.set("other:key", "keep")
    redis_client.set("mountdns-other:x", "keep too")
    redis_client.set(KEYS.parent("stale.domain.foo.bar"), owned(DEFAULT_OWNER, "node-9"))
    redis_client.set(KEYS.node("node-9"), "9.9.9.9")

    sync = make_sync(resync_interval=0.5).start()
    sync.wait_until(lambda: is_seed(redis_client), 20, "the seed published, the stale keys collected")
    sync.wait_for_log("periodic resync", 15, count=sync.log_count("periodic resync") + 1)
    assert redis_client.get("other:key") == b"keep"
    assert redis_client.get("mountdns-other:x") == b"keep too"
    assert set(redis_client.keys("*")) == SEED_KEYS | {b"other:key", b"mountdns-other:x"}


# --- an idle cluster ------------------------------------------------------------------------
def test_idle_watches_are_relisted_on_resync_and_stop_promptly(tmp_path, redis_client, redis_server):
    """No bookmarks, no events: nothing wakes a watcher reading its stream but the sync itself."""
    api = KubeAPIDouble(bookmark_interval=None)
    api.start()
    containers, nodes = seed_objects()
    api.apply_many(nodes + containers)
    sync = SyncProcess(tmp_path, redis_server.url, kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"),
                       resync_interval=0.5)
    try:
        sync.start()
        sync.wait_until(lambda: is_seed(redis_client), 20, "the seed published")
        lists = dict(api.list_calls)
        sync.wait_until(lambda: all(api.list_calls[kind] >= lists[kind] + 2 for kind in ("Container", "Node")),
                        5, "two re-lists of each kind on resync")
        assert "list/watch failed" not in sync.log_text()  # ending a stream to re-list is no failure

        sync.stop()
        assert sync.proc.returncode == 0, sync.log_tail()  # stopped by SIGTERM, not killed
        assert "did not stop" not in sync.log_text()  # both watchers woke from their silent streams
        assert sync.log_text().rstrip().endswith("INFO mountdns.sync: stopped")
    finally:
        sync.stop()
        api.stop()


def test_a_silent_watch_is_resumed_from_its_last_resource_version_without_a_relist(tmp_path, redis_client,
                                                                                   redis_server):
    """No bookmarks, no events, a tiny --watch-idle-timeout: each watch is dropped for its
    silence and opened again where it left off."""
    api = KubeAPIDouble(bookmark_interval=None)
    api.start()
    containers, nodes = seed_objects()
    api.apply_many(nodes + containers)
    listed_at = str(api.resource_version)
    sync = SyncProcess(tmp_path, redis_server.url, kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"),
                       resync_interval=300,
                       # No status writes: they are Container events, and this cluster must stay silent.
                       extra_args=("--watch-idle-timeout", "0.3", "--status-qps", "0"))
    try:
        sync.start()
        sync.wait_until(lambda: is_seed(redis_client), 20, "the seed published")
        lists = dict(api.list_calls)
        sync.wait_until(lambda: all(api.watch_calls[kind] >= 3 for kind in ("Container", "Node")), 15,
                        "each watch resumed twice")
        assert dict(api.list_calls) == lists
        resumed = {path: {query["resourceVersion"] for p, query in watch_requests(api) if p == path}
                   for path in ("/api/v1/nodes", "/apis/mountdns.io/v1alpha1/containers")}
        assert resumed == {"/api/v1/nodes": {listed_at}, "/apis/mountdns.io/v1alpha1/containers": {listed_at}}

        moved = api.apply(node("node-1", "12.34.5.6"))["metadata"]["resourceVersion"]
        sync.wait_until(lambda: redis_client.get(NODE_1_KEY) == b"12.34.5.6", 20, "node-1 moved")
        sync.wait_until(lambda: ("/api/v1/nodes", moved) in {(p, q["resourceVersion"]) for p, q in watch_requests(api)},
                        15, "the Node watch resumed from the move's resourceVersion")
        assert dict(api.list_calls) == lists  # never re-listed
        assert f"Node watch silent for 0.3s (not even a bookmark): resuming from resourceVersion {moved}" \
            in sync.log_text()
        assert "list/watch failed" not in sync.log_text()  # a silent watch is no failure
    finally:
        sync.stop()
        api.stop()

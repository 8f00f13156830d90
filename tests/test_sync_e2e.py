"""End to end through every real process: Kubernetes API double -> mountdns-sync -> redis-server
-> mountdns-backend (gunicorn) -> pdns_server 4.7 (shipped pdns/pdns.conf) -> dnspython.

The seed's story (US 2024/0031284 A1, FIG. 1-7) is told as the cluster would tell it:
parents start, children connect and mount one by one, a node fails over to a new address,
a child is unmounted and a parent goes away; each step is asserted as DNS answers. One
test keeps PowerDNS's shipped caches on and shows the announced purge at work; one
runs the sync on YAML manifests instead of a cluster.
"""

from __future__ import annotations

import re
import shutil
import urllib.request

import dns.rcode
import dns.rdatatype
import pytest
import yaml

from mountdns.keyspace import Keys
from mountdns.store.redis_store import RedisStore
from mountdns.testing.objects import MOUNTED, SEED_CHILDREN, SEED_NODES, SEED_PARENTS, container, node, seed_fqdn, seed_objects
from mountdns.testing.seed import SEED_STATE
from mountdns.testing.servers import CACHES_OFF, REPO, BackendServer, PdnsServer, RedisServer, free_port, workdir
from mountdns.testing.purging_stack import purging_pair, start_pair
from mountdns.testing.sync_process import SyncProcess

pytestmark = pytest.mark.integration

KEYS = Keys()
NODE_ADDRESS = dict(SEED_NODES)
PARENT_NODE = {label: host for _, label, host, _ in SEED_PARENTS}
CHILD_PARENT = {label: parent for _, label, _, _, parent in SEED_CHILDREN}
OBJECT_LABEL = {name: label for name, label, *_ in SEED_PARENTS + SEED_CHILDREN}


# --- DNS helpers -------------------------------------------------------------------------
def answer(pdns, label: str) -> tuple:
    """(rcode, CNAME targets, A addresses) for <label>.domain.foo.bar, all lowercased text."""
    response = pdns.query(seed_fqdn(label), "A")
    cnames = [rr.target.to_text().lower() for rrset in response.answer
              if rrset.rdtype == dns.rdatatype.CNAME for rr in rrset]
    addresses = sorted(rr.to_text() for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for rr in rrset)
    return dns.rcode.to_text(response.rcode()), cnames, addresses


def parent_answer(address: str) -> tuple:
    return "NOERROR", [], [address]


def child_answer(parent_label: str, address: str) -> tuple:
    return "NOERROR", [f"{parent_label.lower()}.domain.foo.bar."], [address]


NXDOMAIN = ("NXDOMAIN", [], [])


def wait_for_answer(pdns, sync, label: str, expected: tuple, timeout: float = 15.0) -> None:
    sync.wait_until(lambda: answer(pdns, label) == expected, timeout, f"{label} answering {expected}")


def raw_keys(client, pattern: str) -> dict[bytes, bytes]:
    return {key: client.get(key) for key in client.scan_iter(match=pattern)}


def is_seed(client) -> bool:
    state = RedisStore(client).read_state()
    return (state.parents, state.children, state.nodes) == (SEED_STATE.parents, SEED_STATE.children,
                                                            SEED_STATE.nodes)


# --- fixtures: one Redis, backend and pdns for the module; an API and a sync per test ----------
@pytest.fixture(scope="module")
def directory():
    path = workdir("mountdns-e2e-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_server(directory):
    """This module's own Redis: pdns and the backend outlive single tests, the suite's is flushed."""
    server = RedisServer(directory)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def zone_published(directory, redis_server):
    """PowerDNS reads its zone list at start: publish the zone first with one sync of nothing."""
    empty = directory / "no-manifests"
    empty.mkdir()
    sync = SyncProcess(directory, redis_server.url, manifests=str(empty), name="sync-zone")
    result = sync.run("--once")
    assert result.returncode == 0, sync.log_tail()
    assert redis_server.client().sismember(KEYS.zones, "domain.foo.bar")


@pytest.fixture(scope="module")
def backend(directory, redis_server):
    server = BackendServer(directory, redis_server.url)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def pdns(directory, backend, zone_published):
    """pdns_server with every cache off, so each answer shows what Redis holds right now."""
    server = PdnsServer(directory, backend.url, settings=CACHES_OFF)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def cached_pdns(redis_server, zone_published):
    """pdns_server with the SHIPPED cache settings (20 s packet, query and negative caches),
    and a backend of its own whose purge follower flushes its caches."""
    path = workdir("mountdns-e2e-cached-")
    metrics_port = free_port()
    backend, pdns = purging_pair(path, redis_server.url,
                                 backend_args=("--purge-metrics-bind", f"127.0.0.1:{metrics_port}"))
    pdns.purge_metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        start_pair(backend, pdns)
        yield pdns
    finally:
        pdns.stop()
        backend.stop()
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_sync(tmp_path, redis_server):
    processes = []

    def make(**options) -> SyncProcess:
        options.setdefault("coalesce_seconds", 0.02)
        process = SyncProcess(tmp_path, redis_server.url, name=f"sync{len(processes)}", **options)
        processes.append(process)
        return process

    yield make
    for process in processes:
        process.stop()


# --- the seed's story ----------------------------------------------------------------------
def test_the_seed_story_in_dns(api, make_sync, pdns, redis_server, tmp_path):
    client = redis_server.client()
    api.apply_many([node(name, address) for name, address in SEED_NODES])
    sync = make_sync(kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig")).start()

    # FIG. 1: the parents start on their nodes and resolve to the node's address.
    for name, label, host, kind in SEED_PARENTS:
        api.apply(container(name, node=host, fqdn=seed_fqdn(label), type=kind))
    for label, host in PARENT_NODE.items():
        wait_for_answer(pdns, sync, label, parent_answer(NODE_ADDRESS[host]))

    # FIG. 2: the children exist but are still connecting, and have no node of their own:
    # nothing to publish yet.
    children = {}
    for name, label, _, kind, parent in SEED_CHILDREN:
        children[name] = container(name, fqdn=seed_fqdn(label), type=kind, mounted_to=parent, status="CONNECTING")
        api.apply(children[name])
    for name in children:
        sync.wait_for_log(f"not published: default/{name}", 5)
    for name in children:
        assert answer(pdns, OBJECT_LABEL[name]) == NXDOMAIN, name

    # FIG. 3-4: they mount one by one; each becomes a CNAME to its parent, the rest wait.
    for mounted, (name, label, _, _, parent) in enumerate(SEED_CHILDREN, start=1):
        children[name]["status"] = {"deviceStatus": MOUNTED}
        api.apply(children[name])
        parent_label = OBJECT_LABEL[parent]
        wait_for_answer(pdns, sync, label, child_answer(parent_label, NODE_ADDRESS[PARENT_NODE[parent_label]]))
        for other, *_ in SEED_CHILDREN[mounted:]:
            assert answer(pdns, OBJECT_LABEL[other]) == NXDOMAIN, other
    assert is_seed(client)

    # FIG. 5-6: node-1 fails over to 12.34.5.6. One key changes; the children's do not.
    children_before = raw_keys(client, KEYS.pattern("child"))
    parents_before = raw_keys(client, KEYS.pattern("parent"))
    api.apply(node("node-1", "12.34.5.6"))
    wait_for_answer(pdns, sync, "Container_D_0", child_answer("Container_B_0", "12.34.5.6"))
    assert answer(pdns, "Container_C_0") == child_answer("Container_A_1", "12.34.5.6")
    assert answer(pdns, "Container_B_0") == parent_answer("12.34.5.6")
    assert answer(pdns, "Container_E_0") == child_answer("Container_A_0", "1.2.3.4")
    assert raw_keys(client, KEYS.pattern("child")) == children_before
    assert raw_keys(client, KEYS.pattern("parent")) == parents_before
    assert client.get(KEYS.node("node-1")) == b"12.34.5.6"

    # FIG. 7: a child is unmounted. Without a node of its own it is gone from DNS; one that
    # runs on a node answers as a parent there.
    children["container-c-1"]["status"] = {"deviceStatus": "UNMOUNTED"}
    api.apply(children["container-c-1"])
    wait_for_answer(pdns, sync, "Container_C_1", NXDOMAIN)
    children["container-e-0"]["status"] = {"deviceStatus": "UNMOUNTED"}
    children["container-e-0"]["spec"]["nodeName"] = "node-2"
    api.apply(children["container-e-0"])
    wait_for_answer(pdns, sync, "Container_E_0", parent_answer("3.4.5.6"))

    # A parent goes away: its children stop resolving with it.
    api.delete("Container", "container-b-0", "default")
    wait_for_answer(pdns, sync, "Container_B_0", NXDOMAIN)
    wait_for_answer(pdns, sync, "Container_D_0", NXDOMAIN)
    assert answer(pdns, "Container_C_0") == child_answer("Container_A_1", "12.34.5.6")
    assert answer(pdns, "Container_A_0") == parent_answer("1.2.3.4")
    assert sync.running()
    client.close()


# --- PowerDNS's shipped caches and the backend's purge --------------------------------------------
def purges_pending(pdns) -> float:
    """The purge follower's gauge of flushes still owed (repeats included)."""
    with urllib.request.urlopen(pdns.purge_metrics_url, timeout=5) as response:
        text = response.read().decode()
    return float(re.search(r"^mountdns_backend_purges_pending (\S+)$", text, re.M).group(1))


def test_node_move_shows_through_the_shipped_caches_once_the_backend_has_purged_them(api, make_sync, cached_pdns,
                                                                                     redis_server, tmp_path):
    client = redis_server.client()
    keys = Keys()
    containers, nodes = seed_objects()
    api.apply_many(nodes + containers)
    sync = make_sync(kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig")).start()
    sync.wait_until(lambda: is_seed(client), 10, "the seed published")
    # The first write's purges (and their repeats) go out in the background: let them all
    # pass before filling the cache.
    wait_for_answer(cached_pdns, sync, "Container_D_0", child_answer("Container_B_0", "2.3.4.5"))
    sync.wait_until(lambda: purges_pending(cached_pdns) == 0, 15, "the first write's purges done")
    for label in ("Container_D_0", "Container_B_0", "Container_C_0", "Container_A_0"):
        answer(cached_pdns, label)  # cached now

    # The answer is cached now: a change behind PowerDNS's back (no purge) is not seen ...
    client.set(keys.node("node-1"), "9.9.9.9")
    assert answer(cached_pdns, "Container_D_0") == child_answer("Container_B_0", "2.3.4.5")
    client.set(keys.node("node-1"), "2.3.4.5")

    # ... while the sync's write announces every name it affects, which the backend purges:
    # the new address is answered long before the caches' 20 s would let it through.
    api.apply(node("node-1", "12.34.5.6"))
    wait_for_answer(cached_pdns, sync, "Container_D_0", child_answer("Container_B_0", "12.34.5.6"), timeout=10)
    assert answer(cached_pdns, "Container_B_0") == parent_answer("12.34.5.6")
    assert answer(cached_pdns, "Container_C_0") == child_answer("Container_A_1", "12.34.5.6")
    assert answer(cached_pdns, "Container_A_0") == parent_answer("1.2.3.4")  # on another node, untouched
    client.close()


# --- manifests instead of a cluster -----------------------------------------------------------------
def copy_of_examples(target):
    """A copy of examples/; when the repository has none yet, the seed written as such files."""
    if (REPO / "examples").is_dir():
        shutil.copytree(REPO / "examples", target)
        return target
    target.mkdir()
    containers, nodes = seed_objects()
    (target / "nodes.yaml").write_text(yaml.safe_dump_all(nodes, sort_keys=False))
    (target / "containers.yaml").write_text(yaml.safe_dump_all(containers, sort_keys=False))
    return target


def test_manifest_mode_serves_the_seed_and_follows_an_edited_node(make_sync, pdns, redis_server, tmp_path):
    manifests = copy_of_examples(tmp_path / "examples")
    sync = make_sync(manifests=str(manifests)).start()
    for label, host in PARENT_NODE.items():
        wait_for_answer(pdns, sync, label, parent_answer(NODE_ADDRESS[host]))
    for label, parent in CHILD_PARENT.items():
        parent_label = OBJECT_LABEL[parent]
        assert answer(pdns, label) == child_answer(parent_label, NODE_ADDRESS[PARENT_NODE[parent_label]]), label

    nodes_file = next(p for p in sorted(manifests.rglob("*.y*ml")) if "2.3.4.5" in p.read_text())
    nodes_file.write_text(nodes_file.read_text().replace("2.3.4.5", "12.34.5.6"))
    wait_for_answer(pdns, sync, "Container_D_0", child_answer("Container_B_0", "12.34.5.6"))
    assert answer(pdns, "Container_B_0") == parent_answer("12.34.5.6")
    assert answer(pdns, "Container_E_0") == child_answer("Container_A_0", "1.2.3.4")

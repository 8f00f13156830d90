"""The real `mountdns-sync` process against the store's production rules: Redis flushed
under it is rewritten within seconds (the marker heartbeat, not the resync), and two syncs
with different owner ids share one Redis without taking each other's names or nodes."""

from __future__ import annotations

import pytest

from mountdns.store.redis_store import RedisStore
from mountdns.testing.objects import container, node, seed_objects
from mountdns.testing.seed import SEED_STATE, ZONE
from mountdns.testing.sync_process import SyncProcess
from mountdns.testing.kube_double import KubeAPIDouble

pytestmark = pytest.mark.integration


@pytest.fixture
def make_sync(tmp_path, redis_server):
    processes = []

    def make(api, name: str, *extra: str) -> SyncProcess:
        kubeconfig = api.write_kubeconfig(tmp_path / f"kubeconfig-{name}")
        process = SyncProcess(tmp_path, redis_server.url, kubeconfig=kubeconfig, resync_interval=3600,
                              name=name, extra_args=extra)
        processes.append(process)
        return process.start()

    yield make
    for process in processes:
        process.stop()


def test_a_flushall_is_detected_and_everything_rewritten_before_any_resync(api, make_sync, redis_client):
    containers, nodes = seed_objects()
    api.apply_many(nodes + containers)
    sync = make_sync(api, "sync")
    store = RedisStore(redis_client)
    sync.wait_until(lambda: store.read_state().parents == SEED_STATE.parents, 15, "the seed published")

    redis_client.flushall()

    # The resync interval is an hour: only the marker heartbeat can bring the records back.
    sync.wait_until(lambda: store.read_state().parents == SEED_STATE.parents
                    and store.read_state().children == SEED_STATE.children
                    and store.marker_present(), 15, "everything rewritten after FLUSHALL")
    assert "Redis lost this sync's data" in sync.log_text()
    assert "periodic resync" not in sync.log_text()


def test_two_clusters_share_one_redis_by_owner_id(make_sync, redis_client):
    east_api, west_api = KubeAPIDouble(bookmark_interval=0.5), KubeAPIDouble(bookmark_interval=0.5)
    east_api.start()
    west_api.start()
    try:
        shared = f"shared.{ZONE}"
        east_api.apply_many([node("node-1", "10.0.0.1"), container("a", node="node-1", fqdn=shared),
                             container("e", node="node-1", fqdn=f"e.{ZONE}")])
        east = make_sync(east_api, "east", "--owner-id", "east")
        east_store = RedisStore(redis_client, owner="east")
        east.wait_until(lambda: east_store.resolve(f"e.{ZONE}").addresses == ("10.0.0.1",), 15, "east published")

        west_api.apply_many([node("node-1", "10.0.0.2"), container("b", node="node-1", fqdn=shared),
                             container("w", node="node-1", fqdn=f"w.{ZONE}")])
        west = make_sync(west_api, "west", "--owner-id", "west")
        east.wait_until(lambda: east_store.resolve(f"w.{ZONE}").addresses == ("10.0.0.2",), 15, "west published")
        west.wait_for_log(f"not published: {shared}: held by another owner", 10)

        assert east_store.resolve(shared).addresses == ("10.0.0.1",)  # the first writer keeps it
        assert east_store.resolve(f"e.{ZONE}").addresses == ("10.0.0.1",)  # node-1 is east's own

        # East's cluster drops its Container: east's GC deletes its name, never west's.
        east_api.delete("Container", "e", namespace="default")
        east.wait_until(lambda: east_store.resolve(f"e.{ZONE}").kind == "none", 10, "e collected")
        assert east_store.resolve(f"w.{ZONE}").addresses == ("10.0.0.2",)
        assert west.log_count(f"not published: {shared}: held by another owner") == 1
    finally:
        east_api.stop()
        west_api.stop()

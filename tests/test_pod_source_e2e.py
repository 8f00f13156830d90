"""The pod source end to end: the real sync process with `--source pod` (and with both
sources), through the official client, against the API double serving Pods with label
selectors, writing to a real redis-server. Every wait is bounded; processes are stopped
by the fixture."""

from __future__ import annotations

import pytest

from mountdns.store.redis_store import RedisStore
from mountdns.testing.objects import container, pod, published_pod, seed_fqdn, seed_objects, seed_pods
from mountdns.testing.seed import SEED_STATE, ZONE
from mountdns.testing.sync_process import SyncProcess

pytestmark = pytest.mark.integration

B_0, D_0 = "container_b_0.domain.foo.bar", "container_d_0.domain.foo.bar"


@pytest.fixture
def start_sync(api, tmp_path, redis_server):
    processes = []

    def start(*sources):
        args = tuple(a for s in sources for a in ("--source", s))
        process = SyncProcess(tmp_path, redis_server.url, kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"),
                              coalesce_seconds=0.02, name=f"podsrc{len(processes)}", extra_args=args)
        processes.append(process)
        return process.start()

    yield start
    for process in processes:
        process.stop()


def records(redis_client):
    state = RedisStore(redis_client).read_state()
    return dict(state.parents), dict(state.children)


def test_the_seed_as_labelled_pods_is_published_and_follows_a_rescheduled_pod(api, start_sync, redis_client):
    _, nodes = seed_objects()
    api.apply_many(nodes + seed_pods() + [pod("unlabelled", node="node-0", labels={"app": "x"})])
    sync = start_sync("pod")
    sync.wait_until(lambda: records(redis_client) == (SEED_STATE.parents, SEED_STATE.children), 20,
                    "the seed published from Pods")
    watched = {(path, query.get("labelSelector")) for method, path, query in list(api.requests)
               if query.get("watch") == "true"}
    assert watched == {("/api/v1/nodes", None), ("/api/v1/pods", "mountdns.io/publish=true")}

    # Deleted and recreated on another node (a StatefulSet's way): the name follows, its child too.
    api.delete("Pod", "container-b-0", "default")
    sync.wait_until(lambda: B_0 not in records(redis_client)[0] and D_0 not in records(redis_client)[1], 20,
                    "the name and its child withdrawn")
    api.apply(published_pod("container-b-0", node="node-2", fqdn=seed_fqdn("Container_B_0"), type="odl"))
    sync.wait_until(lambda: records(redis_client)[0].get(B_0) == "node-2"
                    and records(redis_client)[1].get(D_0) == B_0, 20, "the name on node-2, the child back")

    # NotReady withdraws the name; Ready again brings it back.
    api.apply(published_pod("container-b-0", node="node-2", fqdn=seed_fqdn("Container_B_0"), ready=False))
    sync.wait_until(lambda: B_0 not in records(redis_client)[0], 20, "withdrawn while not Ready")
    api.apply(published_pod("container-b-0", node="node-2", fqdn=seed_fqdn("Container_B_0")))
    sync.wait_until(lambda: records(redis_client)[0].get(B_0) == "node-2", 20, "back once Ready")


def test_a_conflict_across_sources_goes_to_the_older_and_the_losing_pod_gets_an_event(api, start_sync,
                                                                                      redis_client):
    _, nodes = seed_objects()
    shared = f"shared.{ZONE}"
    api.apply_many(nodes + [
        container("ctl", node="node-0", fqdn=shared, created="2023-01-01T00:00:00Z"),
        published_pod("late", node="node-2", fqdn=shared, created="2024-06-01T00:00:00Z", namespace="apps"),
        # A Pod mounted to a Container (same namespace), and a Container mounted to it.
        published_pod("vnf", mounted_to="ctl", device_status="MOUNTED"),
        container("leaf", mounted_to="vnf", status="MOUNTED"),
    ])
    sync = start_sync("container", "pod")
    sync.wait_until(lambda: records(redis_client) == (
        {shared: "node-0"}, {f"vnf.default.{ZONE}": shared, f"leaf.default.{ZONE}": f"vnf.default.{ZONE}"}),
        20, "the older Container keeps the name; the mounts across kinds resolve")

    def pod_events():
        return [e for e in api.objects("Event") if e["involvedObject"].get("kind") == "Pod"]
    sync.wait_until(lambda: pod_events(), 20, "a Warning Event about the losing Pod")
    (event,) = pod_events()
    assert event["metadata"]["namespace"] == "apps" and event["involvedObject"]["name"] == "late"
    assert event["reason"] == "NameConflict" and event["type"] == "Warning"
    assert "default/ctl" in event["message"]

"""Containers backed by a Pod, end to end: the real sync process, through the official
`kubernetes` client, against the API double serving Pods with label selectors, writing to
a real redis-server. The seed's Container_B_0 is the Pod `controller-b`; Container_D_0
stays mounted to it. Every wait is bounded; every process is stopped by a fixture."""

from __future__ import annotations

import pytest

from mountdns.store.redis_store import RedisStore
from mountdns.testing.objects import pod, seed_objects
from mountdns.testing.seed import SEED_STATE
from mountdns.testing.sync_process import SyncProcess
from sync.sources.kube import PAGE_SIZE, POD_PAGE_SIZE

pytestmark = pytest.mark.integration

B_0, D_0 = "container_b_0.domain.foo.bar", "container_d_0.domain.foo.bar"


def pod_backed_seed():
    containers, nodes = seed_objects()
    backed = next(c for c in containers if c["metadata"]["name"] == "container-b-0")
    del backed["spec"]["nodeName"]
    backed["spec"]["podRef"] = {"name": "controller-b"}
    return containers, nodes


@pytest.fixture
def cluster(api, tmp_path, redis_server, redis_client):
    """The pod-backed seed in the double, with the Pod on node-1, and a sync watching it."""
    containers, nodes = pod_backed_seed()
    # A Pod no Container names and without the label: the sync must never see it.
    api.apply_many(nodes + containers + [pod("controller-b", node="node-1"),
                                         pod("unrelated", node="node-0", labels={"app": "x"})])
    sync = SyncProcess(tmp_path, redis_server.url, kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"),
                       coalesce_seconds=0.02, name="pods-sync")
    sync.start()
    try:
        yield api, sync, RedisStore(redis_client)
    finally:
        sync.stop()


def parents(store):
    return dict(store.read_state().parents)


def children(store):
    return dict(store.read_state().children)


def condition(api, name):
    obj = api.get("Container", name, "default") or {}
    for found in (obj.get("status") or {}).get("conditions") or ():
        if found.get("type") == "Published":
            return found["status"], found["reason"]
    return None


def test_the_seed_is_published_from_a_pod_and_only_labelled_pods_are_asked_for(cluster):
    api, sync, store = cluster
    sync.wait_until(lambda: parents(store) == SEED_STATE.parents and children(store) == SEED_STATE.children,
                    20, "the seed published with container-b-0 on its Pod's node")
    pod_requests = [query for method, path, query in list(api.requests) if path == "/api/v1/pods"]
    assert pod_requests and all(q.get("labelSelector") == "mountdns.io/backs" for q in pod_requests)
    # Listed Pods are large: smaller pages than the Containers' (see sync.sources.kube).
    pod_lists = [q for q in pod_requests if q.get("watch") != "true"]
    container_lists = [query for method, path, query in list(api.requests)
                       if path.endswith("/containers") and query.get("watch") != "true"]
    assert pod_lists and {q.get("limit") for q in pod_lists} == {str(POD_PAGE_SIZE)}
    assert container_lists and {q.get("limit") for q in container_lists} == {str(PAGE_SIZE)}


def test_a_pod_deleted_and_recreated_on_another_node_takes_the_name_and_the_child_along(cluster):
    api, sync, store = cluster
    sync.wait_until(lambda: parents(store).get(B_0) == "node-1", 20, "container-b-0 on node-1")

    api.delete("Pod", "controller-b", "default")
    sync.wait_until(lambda: B_0 not in parents(store) and D_0 not in children(store), 20,
                    "the name and its child withdrawn with the Pod")
    sync.wait_until(lambda: condition(api, "container-b-0") == ("False", "PodNotFound"), 20,
                    "container-b-0's status says PodNotFound")

    api.apply(pod("controller-b", node=None))  # recreated, not yet scheduled
    sync.wait_until(lambda: condition(api, "container-b-0") == ("False", "PodNotScheduled"), 20,
                    "container-b-0's status says PodNotScheduled")
    assert B_0 not in parents(store)

    api.apply(pod("controller-b", node="node-2"))  # bound to another node and Ready
    sync.wait_until(lambda: parents(store).get(B_0) == "node-2" and children(store).get(D_0) == B_0, 20,
                    "the name on node-2 and the child mounted to it again")
    sync.wait_until(lambda: condition(api, "container-b-0") == ("True", "Published"), 20,
                    "container-b-0 published again")


def test_a_pod_going_not_ready_withdraws_the_name_until_it_is_ready_again(cluster):
    api, sync, store = cluster
    sync.wait_until(lambda: parents(store).get(B_0) == "node-1", 20, "container-b-0 on node-1")

    api.apply(pod("controller-b", node="node-1", ready=False))
    sync.wait_until(lambda: B_0 not in parents(store) and D_0 not in children(store), 20,
                    "the name withdrawn while the Pod is not Ready")
    sync.wait_until(lambda: condition(api, "container-b-0") == ("False", "PodNotReady"), 20,
                    "container-b-0's status says PodNotReady")

    api.apply(pod("controller-b", node="node-1", ready=True))
    sync.wait_until(lambda: parents(store).get(B_0) == "node-1" and children(store).get(D_0) == B_0, 20,
                    "the name back once the Pod is Ready")


def test_a_pod_losing_its_label_is_as_good_as_gone(cluster):
    api, sync, store = cluster
    sync.wait_until(lambda: parents(store).get(B_0) == "node-1", 20, "container-b-0 on node-1")

    api.apply(pod("controller-b", node="node-1", labels={}))  # the watch sees it as DELETED
    sync.wait_until(lambda: condition(api, "container-b-0") == ("False", "PodNotFound"), 20,
                    "container-b-0's status says PodNotFound")
    assert B_0 not in parents(store)


def test_publish_unready_pods_keeps_the_name_of_a_pod_that_is_not_ready(api, tmp_path, redis_server,
                                                                         redis_client):
    containers, nodes = pod_backed_seed()
    api.apply_many(nodes + containers + [pod("controller-b", node="node-1", ready=False)])
    sync = SyncProcess(tmp_path, redis_server.url, kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"),
                       coalesce_seconds=0.02, name="unready-sync", extra_args=("--publish-unready-pods",))
    store = RedisStore(redis_client)
    sync.start()
    try:
        sync.wait_until(lambda: parents(store).get(B_0) == "node-1", 20, "container-b-0 published, not Ready")
        api.apply(pod("controller-b", node="node-1", ready=False, deleting="2024-02-01T00:00:00Z"))
        sync.wait_until(lambda: B_0 not in parents(store), 20, "a terminating Pod withdraws the name")
    finally:
        sync.stop()

"""Container status end to end: the real `mountdns-sync` process against the Kubernetes
API double and a real redis-server writes each Container's Published condition, fqdn
and target, records Warning Events (a repeat counts, it is not a new Event), keeps what
other controllers wrote, and sends nothing while the cluster is idle.

Every wait is on a condition with a generous deadline; requests are counted in the
double's request log.
"""

from __future__ import annotations

import pytest
from kubernetes import config

from mountdns.testing.kube_double import KubeAPIDouble
from mountdns.testing.objects import seed_fqdn, seed_objects
from mountdns.testing.servers import RedisServer
from mountdns.testing.sync_process import SyncProcess
from sync.status_writer import ContainerStatusClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DEADLINE = 20.0
FOREIGN = {"type": "Reachable", "status": "True", "reason": "ProbeSucceeded", "message": "answers on 830",
           "lastTransitionTime": "2026-01-01T00:00:00Z"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    directory = tmp_path_factory.mktemp("status-e2e")
    redis_server = RedisServer(directory)
    api = KubeAPIDouble(bookmark_interval=0.5)
    sync = None
    try:
        redis_server.start()
        api.start()
        containers, nodes = seed_objects()
        api.apply_many(nodes + containers)
        kubeconfig = api.write_kubeconfig(directory / "kubeconfig")
        # A resync every second, so the idle test sees full re-lists too.
        sync = SyncProcess(directory, redis_server.url, kubeconfig=kubeconfig, resync_interval=1.0,
                           extra_args=("--status-qps", "50")).start()
        other = ContainerStatusClient(config.new_client_from_config(config_file=kubeconfig))
        yield api, sync, other
    finally:
        if sync is not None:
            sync.stop()
        api.stop()
        redis_server.stop()


def published(api, name):
    obj = api.get("Container", name)
    for condition in ((obj or {}).get("status") or {}).get("conditions") or ():
        if condition["type"] == "Published":
            return condition
    return None


def wait_published(api, sync, name, status, reason=None):
    def check():
        condition = published(api, name)
        return condition is not None and condition["status"] == status and reason in (None, condition["reason"])
    sync.wait_until(check, DEADLINE, f"{name} Published={status} {reason or ''}")
    return published(api, name)


def status_patches(api) -> int:
    return sum(1 for method, path, _ in list(api.requests) if method == "PATCH" and path.endswith("/status"))


def events_about(api, name):
    return [e for e in api.objects("Event") if e["involvedObject"]["name"] == name]


def seed_container(name):
    containers, _ = seed_objects()
    return next(c for c in containers if c["metadata"]["name"] == name)


def test_containers_get_published_true_with_fqdn_and_target(stack):
    api, sync, _ = stack
    containers, _ = seed_objects()
    for obj in containers:
        wait_published(api, sync, obj["metadata"]["name"], "True")

    b_0 = api.get("Container", "container-b-0")
    d_0 = api.get("Container", "container-d-0")
    assert (b_0["status"]["fqdn"], b_0["status"]["target"]) == (seed_fqdn("Container_B_0").lower(), "node-1")
    assert (d_0["status"]["fqdn"], d_0["status"]["target"]) == (
        seed_fqdn("Container_D_0").lower(), seed_fqdn("Container_B_0").lower())
    assert d_0["status"]["deviceStatus"] == "MOUNTED"
    assert published(api, "container-d-0")["observedGeneration"] == d_0["metadata"]["generation"]


def test_child_of_a_deleted_parent_goes_false_with_one_event_and_a_repeat_counts_it(stack):
    api, sync, _ = stack
    wait_published(api, sync, "container-d-0", "True")
    for repeat in (1, 2):
        api.delete("Container", "container-b-0")
        condition = wait_published(api, sync, "container-d-0", "False", "ParentNotFound")
        assert condition["message"] == "parent default/container-b-0 not found"
        assert "fqdn" not in api.get("Container", "container-d-0")["status"]
        sync.wait_until(lambda: [e.get("count") for e in events_about(api, "container-d-0")] == [repeat],
                        DEADLINE, f"one Event about container-d-0 with count {repeat}")
        api.apply(seed_container("container-b-0"))
        wait_published(api, sync, "container-d-0", "True")

    (event,) = events_about(api, "container-d-0")
    assert (event["type"], event["reason"], event["metadata"]["namespace"]) == ("Warning", "ParentNotFound", "default")
    assert event["source"]["component"] == "mountdns-sync"


def test_what_another_controller_writes_to_status_survives(stack):
    api, sync, other = stack
    wait_published(api, sync, "container-a-1", "True")
    other.patch_status("default", "container-a-1", {"status": {"deviceStatus": "CONNECTED", "conditions": [
        FOREIGN, published(api, "container-a-1")]}})
    # Make our condition move: node-1 loses its addresses, then gets them back.
    node_1 = api.get("Node", "node-1")
    api.apply({**node_1, "status": {"addresses": [{"type": "Hostname", "address": "node-1"}]}})
    wait_published(api, sync, "container-a-1", "False", "NodeHasNoAddress")
    api.apply(node_1)
    wait_published(api, sync, "container-a-1", "True")

    status = api.get("Container", "container-a-1")["status"]
    assert status["deviceStatus"] == "CONNECTED"
    assert [c["type"] for c in status["conditions"]] == ["Reachable", "Published"]
    assert status["conditions"][0] == FOREIGN


def test_our_condition_removed_by_someone_else_is_written_again_at_the_next_resync(stack):
    api, sync, other = stack
    wait_published(api, sync, "container-c-1", "True")
    resyncs = sync.log_count("periodic resync")
    other.patch_status("default", "container-c-1", {"status": {"conditions": [FOREIGN], "fqdn": None}})

    sync.wait_for_log("periodic resync", DEADLINE, count=resyncs + 1)
    wait_published(api, sync, "container-c-1", "True")
    status = api.get("Container", "container-c-1")["status"]
    assert [c["type"] for c in status["conditions"]] == ["Reachable", "Published"]
    assert status["fqdn"] == seed_fqdn("Container_C_1").lower()


def test_an_idle_cluster_gets_no_status_writes(stack):
    api, sync, _ = stack
    containers, _ = seed_objects()
    for obj in containers:
        wait_published(api, sync, obj["metadata"]["name"], "True")
    # Settled: the last write has come back through the watch.
    resyncs = sync.log_count("periodic resync")
    sync.wait_for_log("periodic resync", DEADLINE, count=resyncs + 1)
    before = status_patches(api)
    resyncs = sync.log_count("periodic resync")

    sync.wait_for_log("periodic resync", DEADLINE, count=resyncs + 3)  # three full re-lists later

    assert status_patches(api) == before

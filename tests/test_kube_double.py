"""Prove the Kubernetes API double speaks the wire protocol the real client uses.

The sync daemon's tests trust the double, so every behaviour they rely on is
exercised here through the official ``kubernetes`` client over real HTTP:
lists, pagination, watches, bookmarks, 410 after compaction, and the injected
faults.
"""

import json
import threading

import pytest
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from mountdns.testing.kube_double import GROUP, PLURAL, VERSION, KubeAPIDouble

# A hang here would stall every suite that uses the double; fail fast instead.
pytestmark = pytest.mark.timeout(30)


def container(name, namespace="default", **spec):
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Container",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def node(name, **labels):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}


@pytest.fixture
def api(tmp_path):
    # Periodic bookmarks are off so event sequences are exact; the bookmark
    # test builds its own double with an interval.
    with KubeAPIDouble(bookmark_interval=None) as double:
        config.load_kube_config(config_file=double.write_kubeconfig(tmp_path / "kubeconfig"))
        yield double


@pytest.fixture
def custom():
    return client.CustomObjectsApi()


@pytest.fixture
def core():
    return client.CoreV1Api()


def list_containers(custom, **kwargs):
    return custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, **kwargs)


def watch_containers(custom, **kwargs):
    kwargs.setdefault("timeout_seconds", 5)
    return watch.Watch().stream(custom.list_cluster_custom_object, GROUP, VERSION, PLURAL,
                                **kwargs)


class Background(threading.Thread):
    """fn on a daemon thread; check() re-raises what it raised (a failed assert in a
    thread would otherwise be only a warning)."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn = fn
        self.error = None

    def run(self):
        try:
            self.fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised by check()
            self.error = exc

    def check(self, timeout=10):
        self.join(timeout)
        assert not self.is_alive(), "the background step did not finish"
        if self.error is not None:
            raise self.error


def in_background(fn):
    thread = Background(fn)
    thread.start()
    return thread


def event_summary(events):
    return [(e["type"], e["raw_object"]["metadata"].get("name")) for e in events]


def take_until(stream, event_type):
    """Collect events up to and including the first of event_type."""
    events = []
    for event in stream:
        events.append(event)
        if event["type"] == event_type:
            break
    return events


def test_list_through_real_client_returns_objects_and_resource_version(api, custom, core):
    api.apply(node("n1"))
    api.apply(container("c1", "ns1", image="busybox"))

    nodes = core.list_node()
    containers = list_containers(custom)

    assert [n.metadata.name for n in nodes.items] == ["n1"]
    assert nodes.metadata.resource_version == "2"
    assert containers["kind"] == "ContainerList"
    assert containers["metadata"]["resourceVersion"] == "2"
    [item] = containers["items"]
    assert item["spec"] == {"image": "busybox"}
    assert item["metadata"]["resourceVersion"] == "2"
    assert item["metadata"]["uid"]
    assert item["metadata"]["creationTimestamp"]


def test_namespaced_list_only_returns_that_namespace(api, custom):
    api.apply_many([container("a", "ns1"), container("b", "ns2")])

    listed = custom.list_namespaced_custom_object(GROUP, VERSION, "ns2", PLURAL)

    assert [i["metadata"]["name"] for i in listed["items"]] == ["b"]


def test_resource_version_is_one_global_counter_across_kinds(api):
    first = api.apply(node("n1"))
    second = api.apply(container("c1"))
    third = api.apply(node("n1", role="dns"))

    assert [o["metadata"]["resourceVersion"] for o in (first, second, third)] == ["1", "2", "3"]
    assert third["metadata"]["uid"] == first["metadata"]["uid"]


def test_apply_keeps_a_given_creation_timestamp(api):
    obj = container("c1")
    obj["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z"

    stored = api.apply(obj)

    assert stored["metadata"]["creationTimestamp"] == "2020-01-01T00:00:00Z"
    assert api.get("Container", "c1", "default") == stored


def test_get_by_name_returns_object_or_404_status(api, custom, core):
    api.apply(container("c1", "ns1"))

    found = custom.get_namespaced_custom_object(GROUP, VERSION, "ns1", PLURAL, "c1")
    with pytest.raises(ApiException) as missing_node:
        core.read_node("absent")

    assert found["metadata"]["name"] == "c1"
    assert missing_node.value.status == 404
    body = json.loads(missing_node.value.body)
    assert (body["kind"], body["status"], body["reason"]) == ("Status", "Failure", "NotFound")


def test_paginated_list_with_limit_and_continue_is_a_consistent_snapshot(api, custom):
    api.apply_many(container(f"c{i:02}") for i in range(25))

    first = list_containers(custom, limit=10)
    api.apply(container("zz-created-after-first-page"))
    pages = [first]
    for _ in range(10):  # 3 pages expected
        if not pages[-1]["metadata"].get("continue"):
            break
        pages.append(list_containers(custom, limit=10, _continue=pages[-1]["metadata"]["continue"]))
    else:
        pytest.fail(f"pagination did not end after {len(pages)} pages")

    names = [i["metadata"]["name"] for page in pages for i in page["items"]]
    assert names == [f"c{i:02}" for i in range(25)]
    assert [len(p["items"]) for p in pages] == [10, 10, 5]
    assert first["metadata"]["remainingItemCount"] == 15
    assert {p["metadata"]["resourceVersion"] for p in pages} == {"25"}


def test_lists_come_in_etcd_key_order_page_by_page(api, custom, core):
    # etcd holds "namespace/name" keys in byte order, whatever order they were written
    # in: namespace "a-b" before "a" ('-' < '/'), and name "c10" before "c9".
    api.apply_many([container("c9", "a"), container("c10", "b"), container("x", "a-b"),
                    container("c10", "a"), container("y", "a-b")])
    api.apply_many([node("n2"), node("n10"), node("n1")])

    pages = [list_containers(custom, limit=2)]
    while pages[-1]["metadata"].get("continue") and len(pages) < 10:
        pages.append(list_containers(custom, limit=2, _continue=pages[-1]["metadata"]["continue"]))

    listed = [f"{i['metadata']['namespace']}/{i['metadata']['name']}" for page in pages for i in page["items"]]
    assert listed == ["a-b/x", "a-b/y", "a/c10", "a/c9", "b/c10"]
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    assert [n.metadata.name for n in core.list_node(limit=2).items] == ["n1", "n10"]


def test_truncated_paginated_list_gets_410_expired_on_continue(api, custom):
    api.apply_many(container(f"c{i}") for i in range(5))
    api.truncate_next_list()

    first = list_containers(custom, limit=2)
    with pytest.raises(ApiException) as expired:
        list_containers(custom, limit=2, _continue=first["metadata"]["continue"])

    assert expired.value.status == 410
    assert json.loads(expired.value.body)["reason"] == "Expired"


def test_compaction_expires_continue_tokens(api, custom):
    api.apply_many(container(f"c{i}") for i in range(5))
    first = list_containers(custom, limit=2)
    api.compact()

    with pytest.raises(ApiException) as expired:
        list_containers(custom, limit=2, _continue=first["metadata"]["continue"])

    assert expired.value.status == 410


def test_watch_from_list_resource_version_sees_added_modified_deleted_in_order(api, custom):
    api.apply(container("before"))
    rv = list_containers(custom)["metadata"]["resourceVersion"]

    def mutate():
        assert api.wait_for_open_watches(1)
        api.apply(container("c1", image="v1"))
        api.apply(container("c1", image="v2"))
        api.delete("Container", "c1", "default")

    mutator = in_background(mutate)
    events = take_until(watch_containers(custom, resource_version=rv, allow_watch_bookmarks=True),
                        "DELETED")
    mutator.check()

    assert event_summary(events) == [("ADDED", "c1"), ("MODIFIED", "c1"), ("DELETED", "c1")]
    assert events[1]["object"]["spec"] == {"image": "v2"}
    rvs = [int(e["raw_object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)


def test_watch_replays_history_after_the_given_resource_version(api, custom):
    api.apply(node("n1"))
    rv = list_containers(custom)["metadata"]["resourceVersion"]
    api.apply(container("c1"))
    api.delete("Container", "c1", "default")

    events = take_until(watch_containers(custom, resource_version=rv), "DELETED")

    assert event_summary(events) == [("ADDED", "c1"), ("DELETED", "c1")]


def test_node_watch_through_core_v1_api_sees_events_in_order(api, core):
    rv = core.list_node().metadata.resource_version
    api.apply(container("not-a-node"))

    def mutate():
        assert api.wait_for_open_watches(1)
        api.apply(node("n1"))
        api.apply(node("n1", role="dns"))
        api.delete("Node", "n1")

    mutator = in_background(mutate)
    stream = watch.Watch().stream(core.list_node, resource_version=rv,
                                  allow_watch_bookmarks=True, timeout_seconds=5)
    events = take_until(stream, "DELETED")
    mutator.check()

    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "n1"), ("MODIFIED", "n1"), ("DELETED", "n1")]
    assert events[1]["object"].metadata.labels == {"role": "dns"}


def test_watch_without_resource_version_starts_with_synthetic_added_events(api, custom):
    api.apply_many([container("a"), container("b")])
    api.delete("Container", "a", "default")

    events = list(watch_containers(custom, timeout_seconds=1))

    assert event_summary(events) == [("ADDED", "b")]


def test_namespaced_watch_filters_out_other_namespaces(api, custom):
    api.apply_many([container("x", "other"), container("y", "mine")])

    stream = watch.Watch().stream(custom.list_namespaced_custom_object, GROUP, VERSION, "mine",
                                  PLURAL, resource_version="0", timeout_seconds=1)

    assert event_summary(stream) == [("ADDED", "y")]


def test_watch_ends_at_timeout_seconds(api, custom):
    # Nothing happens on this watch, so only its timeoutSeconds can end it; the server ends
    # it cleanly (the terminating chunk: no ProtocolError), as the real one does.
    events = list(watch_containers(custom, resource_version="0", timeout_seconds=1))

    assert events == []
    assert api.watch_calls["Container"] == 1
    assert api.requests[-1][2].get("timeoutSeconds") == "1"
    assert api.wait_until(lambda: api.open_watches == 0, timeout=10)


BOOKMARK_AT_1 = {"kind": "Container", "apiVersion": f"{GROUP}/{VERSION}",
                 "metadata": {"resourceVersion": "1"}}


def bookmarked_watch(api, tmp_path):
    """A watch from resourceVersion 1 that allows bookmarks, after one write (a Node) moved
    the double's resourceVersion on: nothing happens to Containers, so a bookmark is all
    it can get before its timeout. (watch, stream)."""
    config.load_kube_config(config_file=api.write_kubeconfig(tmp_path / "kubeconfig"))
    custom = client.CustomObjectsApi()
    api.apply(node("n1"))  # bumps the global rv; bookmarks must carry it
    w = watch.Watch()
    return w, w.stream(custom.list_cluster_custom_object, GROUP, VERSION, PLURAL,
                       resource_version="1", allow_watch_bookmarks=True, timeout_seconds=10)


def test_bookmarks_arrive_periodically(tmp_path):
    with KubeAPIDouble(bookmark_interval=0.2) as api:
        w, stream = bookmarked_watch(api, tmp_path)
        # Without periodic bookmarks it would end at its timeout with no event.
        events = take_until(stream, "BOOKMARK")
        w.stop()

    assert [(e["type"], e["raw_object"]) for e in events] == [("BOOKMARK", BOOKMARK_AT_1)]
    assert w.resource_version == "1"


def test_bookmarks_arrive_on_request(tmp_path):
    # Periodic bookmarks off: the only bookmark this watch can get is the requested one.
    with KubeAPIDouble(bookmark_interval=None) as api:
        w, stream = bookmarked_watch(api, tmp_path)

        def request_bookmark():
            assert api.wait_for_open_watches(1)
            api.send_bookmarks()

        requester = in_background(request_bookmark)
        events = take_until(stream, "BOOKMARK")
        w.stop()
        requester.check()

    assert [(e["type"], e["raw_object"]) for e in events] == [("BOOKMARK", BOOKMARK_AT_1)]
    assert w.resource_version == "1"


def test_no_bookmarks_unless_the_watch_allows_them(api, custom):
    api.apply(container("c1"))

    def request_bookmarks():
        assert api.wait_for_open_watches(1)
        api.send_bookmarks()

    requester = in_background(request_bookmarks)
    events = list(watch_containers(custom, resource_version="1", timeout_seconds=1))
    requester.check()

    assert events == []


def test_watch_from_compacted_resource_version_gets_410_error_event(api, custom):
    api.apply_many([container("a"), container("b")])
    api.compact()
    api.apply(container("c"))

    resp = list_containers(custom, watch=True, resource_version="1", timeout_seconds=5,
                           _preload_content=False)
    lines = [line for line in resp.read().decode().splitlines() if line]

    assert resp.status == 200
    assert [json.loads(line) for line in lines] == [{
        "type": "ERROR",
        "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "too old resource version: 1 (2)", "reason": "Expired",
                   "code": 410},
    }]


def test_watch_helper_raises_410_api_exception_for_compacted_resource_version(api, custom):
    api.apply_many([container("a"), container("b")])
    api.compact()

    with pytest.raises(ApiException) as gone:
        list(watch_containers(custom, resource_version="1", timeout_seconds=5))

    assert gone.value.status == 410
    assert "Expired" in gone.value.reason


def test_watch_from_the_compaction_point_is_still_allowed(api, custom):
    api.apply(container("a"))
    api.compact()
    api.apply(container("b"))

    events = take_until(watch_containers(custom, resource_version="1"), "ADDED")

    assert event_summary(events) == [("ADDED", "b")]


def test_drop_watches_ends_an_open_stream_abruptly(api, custom):
    def drop():
        assert api.wait_for_open_watches(1)
        api.drop_watches()

    dropper = in_background(drop)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        list(watch_containers(custom, resource_version="0", timeout_seconds=10))
    dropper.check()
    assert api.open_watches == 0


def test_watch_abandoned_by_the_client_stops_counting_as_open(api, custom):
    api.apply(container("c1"))
    w = watch.Watch()
    stream = w.stream(custom.list_cluster_custom_object, GROUP, VERSION, PLURAL,
                      resource_version="0", timeout_seconds=20)

    first = next(stream)
    assert api.open_watches == 1
    w.stop()
    stream.close()

    assert first["type"] == "ADDED"
    assert api.wait_until(lambda: api.open_watches == 0, timeout=3)


def test_unavailable_server_answers_503_status_and_drops_watches(api, custom, core):
    def go_down():
        assert api.wait_for_open_watches(1)
        api.set_available(False)

    downer = in_background(go_down)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        list(watch_containers(custom, resource_version="0", timeout_seconds=10))
    downer.check()
    with pytest.raises(ApiException) as unavailable:
        core.list_node()
    api.set_available(True)

    assert unavailable.value.status == 503
    assert json.loads(unavailable.value.body)["reason"] == "ServiceUnavailable"
    assert core.list_node().items == []


def test_fail_lists_fails_the_next_n_lists_then_recovers(api, custom, core):
    api.apply(container("c1"))
    api.fail_lists(2, status=500)

    statuses = []
    for _ in range(2):
        with pytest.raises(ApiException) as failed:
            list_containers(custom)
        statuses.append(failed.value.status)

    assert statuses == [500, 500]
    assert len(list_containers(custom)["items"]) == 1
    assert api.list_calls["Container"] == 3


def test_fail_lists_can_target_one_kind_and_spares_watches(api, custom, core):
    api.fail_lists(1, status=503, kind="Node")

    assert list_containers(custom)["items"] == []
    assert list(watch_containers(custom, resource_version="0", timeout_seconds=1)) == []
    with pytest.raises(ApiException) as failed:
        core.list_node()
    assert failed.value.status == 503
    assert api.watch_calls["Container"] == 1


def test_stopped_server_refuses_connections_and_restarts_on_the_same_port(api, core):
    api.apply(node("n1"))
    port = api.port
    api.stop()

    with pytest.raises(urllib3.exceptions.MaxRetryError):
        core.list_node(_request_timeout=2)
    api.start()

    assert api.port == port
    assert [n.metadata.name for n in core.list_node().items] == ["n1"]


def test_stop_closes_open_watch_streams_promptly(api, custom):
    def stop():
        assert api.wait_for_open_watches(1)
        api.stop()

    stopper = in_background(stop)
    # A watch left to its timeoutSeconds would end cleanly; the abrupt end (no terminating
    # chunk) is stop() cutting it off.
    with pytest.raises(urllib3.exceptions.ProtocolError):
        list(watch_containers(custom, resource_version="0", timeout_seconds=20))
    stopper.check()

    assert api.wait_until(lambda: api.open_watches == 0, timeout=10)


def test_requests_are_recorded_with_method_path_and_query(api, custom):
    list_containers(custom, limit=5)

    assert api.requests[-1] == ("GET", f"/apis/{GROUP}/{VERSION}/{PLURAL}", {"limit": "5"})


def test_http_create_patch_replace_delete_emit_watch_events(api, custom):
    api.apply(node("n1"))
    created = custom.create_namespaced_custom_object(GROUP, VERSION, "ns1", PLURAL,
                                                     container("c1", "ns1", image="v1"))
    patched = custom.patch_namespaced_custom_object(GROUP, VERSION, "ns1", PLURAL, "c1",
                                                    {"spec": {"image": "v2"}})
    patched["spec"]["image"] = "v3"
    custom.replace_namespaced_custom_object(GROUP, VERSION, "ns1", PLURAL, "c1", patched)
    custom.delete_namespaced_custom_object(GROUP, VERSION, "ns1", PLURAL, "c1")

    events = take_until(watch_containers(custom, resource_version="1"), "DELETED")

    assert created["metadata"]["resourceVersion"] == "2"
    assert event_summary(events) == [("ADDED", "c1"), ("MODIFIED", "c1"),
                                     ("MODIFIED", "c1"), ("DELETED", "c1")]
    assert [e["raw_object"]["spec"]["image"] for e in events] == ["v1", "v2", "v3", "v3"]


def test_http_replace_with_stale_resource_version_conflicts(api, custom):
    stale = api.apply(container("c1"))
    api.apply(container("c1", image="newer"))

    with pytest.raises(ApiException) as conflict:
        custom.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "c1", stale)

    assert conflict.value.status == 409


def test_version_discovery_answers(api):
    assert client.VersionApi().get_code().git_version.startswith("v1.")


def test_bulk_loaded_objects_list_completely_through_pagination(api, custom):
    count = 20_000
    api.apply_many(container(f"c{i:06}", f"ns{i % 7}", image="busybox") for i in range(count))

    seen = 0
    token = None
    for _ in range(count // 5_000 + 5):  # 4 pages expected
        page = list_containers(custom, limit=5_000, _continue=token)
        seen += len(page["items"])
        token = page["metadata"].get("continue")
        if not token:
            break
    else:
        pytest.fail(f"pagination did not end: {seen} items seen, still a continue token")

    assert seen == count
    assert page["metadata"]["resourceVersion"] == str(count)

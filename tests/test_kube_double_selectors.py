"""The API double's label selectors, through the official client: list and watch filter as
the real API server does, and a watched object that stops (starts) matching arrives as
DELETED (ADDED)."""

import threading

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from mountdns.testing.kube_double import KubeAPIDouble
from mountdns.testing.label_selector import InvalidSelector, parse
from mountdns.testing.objects import pod

pytestmark = pytest.mark.timeout(30)

LABELS = {"a": {"app": "dns", "tier": "front"}, "b": {"app": "dns", "tier": "back"}, "c": {"app": "db"},
          "d": {}, "e": {"app": "dns", "version": "3"}}


@pytest.fixture
def core(tmp_path):
    with KubeAPIDouble(bookmark_interval=None) as double:
        config.load_kube_config(config_file=double.write_kubeconfig(tmp_path / "kubeconfig"))
        double.apply_many([pod(name, node="node-1", labels=labels) for name, labels in LABELS.items()])
        core = client.CoreV1Api()
        core.double = double
        yield core


def listed(core, selector, namespace=None):
    if namespace:
        result = core.list_namespaced_pod(namespace, label_selector=selector)
    else:
        result = core.list_pod_for_all_namespaces(label_selector=selector)
    return sorted(p.metadata.name for p in result.items)


@pytest.mark.parametrize(("selector", "names"), [
    ("app=dns", ["a", "b", "e"]),
    ("app==dns", ["a", "b", "e"]),
    ("app!=dns", ["c", "d"]),  # != also matches objects without the label
    ("app in (dns, db)", ["a", "b", "c", "e"]),
    ("tier notin (front)", ["b", "c", "d", "e"]),
    ("tier", ["a", "b"]),
    ("!tier", ["c", "d", "e"]),
    ("app=dns,tier in (back,front)", ["a", "b"]),
    ("app=dns,!tier", ["e"]),
    ("version>2", ["e"]),
    ("version<2", []),
    ("", ["a", "b", "c", "d", "e"]),
])
def test_list_with_a_label_selector_returns_only_matching_objects(core, selector, names):
    assert listed(core, selector) == names
    assert listed(core, selector, namespace="default") == names


@pytest.mark.parametrize("selector", ["app=(dns", "app in dns", "=dns", "app=dns,", "app=a b", "version>x"])
def test_an_unparsable_selector_is_a_bad_request_on_list_and_watch(core, selector):
    with pytest.raises(InvalidSelector):
        parse(selector)
    with pytest.raises(ApiException) as listing:
        core.list_pod_for_all_namespaces(label_selector=selector)
    with pytest.raises(ApiException) as watching:
        next(iter(watch.Watch().stream(core.list_pod_for_all_namespaces, label_selector=selector, timeout_seconds=2)))
    assert listing.value.status == watching.value.status == 400


def events(core, selector, resource_version, count):
    stream = watch.Watch()
    seen = []
    for event in stream.stream(core.list_pod_for_all_namespaces, label_selector=selector,
                               resource_version=resource_version, timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == count:
            stream.stop()
    return seen


def test_a_watch_sees_an_object_leave_and_join_its_selection_as_deleted_and_added(core):
    start = core.list_pod_for_all_namespaces(label_selector="app=dns").metadata.resource_version
    double = core.double
    double.apply(pod("a", node="node-1", labels={"app": "db"}))  # leaves: DELETED
    double.apply(pod("c", node="node-1", labels={"app": "dns"}))  # joins: ADDED
    double.apply(pod("d", node="node-2", labels={}))  # never matches: nothing
    double.apply(pod("b", node="node-2", labels={"app": "dns", "tier": "back"}))  # stays: MODIFIED
    double.delete("Pod", "e", namespace="default")  # matched when deleted: DELETED
    double.apply(pod("f", node="node-2", labels={"app": "dns"}))  # created matching: ADDED

    assert events(core, "app=dns", start, 5) == [
        ("DELETED", "a"), ("ADDED", "c"), ("MODIFIED", "b"), ("DELETED", "e"), ("ADDED", "f")]


def test_a_live_watch_filters_as_the_replay_does(core):
    start = core.list_pod_for_all_namespaces().metadata.resource_version
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(events(core, "tier", start, 2)))
    reader.start()
    assert core.double.wait_for_open_watches(1, timeout=10)
    core.double.apply(pod("c", node="node-3", labels={"app": "db"}))  # no tier: not sent
    core.double.apply(pod("a", node="node-3", labels={"app": "dns"}))  # loses tier: DELETED
    core.double.apply(pod("d", node="node-3", labels={"tier": "x"}))  # gains tier: ADDED
    reader.join(10)

    assert seen == [("DELETED", "a"), ("ADDED", "d")]


def test_a_watch_from_zero_lists_only_matching_objects_as_added(core):
    assert events(core, "app=db", None, 1) == [("ADDED", "c")]

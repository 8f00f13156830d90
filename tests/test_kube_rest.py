"""sync.kube_rest: the sync's API calls by path send what the official client's generated
methods send, work against the API double over real HTTP, and keep the generated API
classes (and their ~20 MiB of validators) out of the sync process."""

import json
import subprocess
import sys

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from mountdns.testing.kube_double import GROUP, PLURAL, VERSION, KubeAPIDouble
from sync.events import EventsClient
from sync.kube_rest import CONTAINER, CONTAINERS, NAMESPACED_CONTAINERS, NAMESPACED_PODS, NODES, PODS, KubeRest
from sync.status_writer import ContainerStatusClient, PodClient

pytestmark = pytest.mark.timeout(60)


class Sent(Exception):
    """Raised by the recording call_api: the request is captured, nothing goes out."""


def recording_client() -> tuple[client.ApiClient, list]:
    configuration = client.Configuration(host="https://api.example:6443", api_key={"BearerToken": "tok"},
                                         api_key_prefix={"BearerToken": "Bearer"})
    api_client = client.ApiClient(configuration)
    sent = []

    def call_api(method, url, header_params=None, body=None, post_params=None, _request_timeout=None):
        sent.append({"method": method, "url": url, "body": body, "timeout": _request_timeout,
                     "auth": (header_params or {}).get("authorization"),
                     "content_type": (header_params or {}).get("Content-Type")})
        raise Sent()

    api_client.call_api = call_api
    return api_client, sent


def sent_by(call) -> None:
    """Run a call whose request the recording client captures; the writers wrap every
    failure in their own exception, the Sent one included."""
    with pytest.raises(Exception) as raised:
        call()
    assert isinstance(raised.value, Sent) or isinstance(raised.value.__cause__, Sent), raised.value


def request_of(api_client, sent, call) -> dict:
    sent.clear()
    sent_by(call)
    (request,) = sent
    if isinstance(request["body"], (str, bytes)):
        request["body"] = json.loads(request["body"])
    return request


# Each case: (ours, the generated method's), both called on the same recording client.
def cases(api_client):
    rest = KubeRest(api_client)
    custom, core = client.CustomObjectsApi(api_client), client.CoreV1Api(api_client)
    raw = {"_preload_content": False, "_request_timeout": 7.0}
    watch = {"watch": True, "resource_version": "41", "allow_watch_bookmarks": True, "timeout_seconds": 300}
    patch = {"status": {"conditions": [{"type": "Published", "status": "True"}]},
             "metadata": {"resourceVersion": "9"}}
    event = {"metadata": {"name": "p.1", "namespace": "team a"}, "reason": "Conflict", "type": "Warning",
             "involvedObject": {"kind": "Container", "name": "p", "namespace": "team a"}, "count": 1}
    statuses, pods, events = ContainerStatusClient(api_client), PodClient(api_client), EventsClient(api_client)
    return {
        "containers: a list page": (
            lambda: rest.lister(CONTAINERS)(limit=5000, _continue="tok en", **raw),
            lambda: custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, limit=5000, _continue="tok en", **raw)),
        "containers of a namespace: a watch": (
            lambda: rest.lister(NAMESPACED_CONTAINERS, "team a")(**watch, **raw),
            lambda: custom.list_namespaced_custom_object(GROUP, VERSION, "team a", PLURAL, **watch, **raw)),
        "pods: a label selector": (
            lambda: rest.lister(PODS, label_selector="mountdns.io/publish=true")(limit=500, **raw),
            lambda: core.list_pod_for_all_namespaces(label_selector="mountdns.io/publish=true", limit=500, **raw)),
        "pods of a namespace": (
            lambda: rest.lister(NAMESPACED_PODS, "ns", label_selector="a=b")(**watch, **raw),
            lambda: core.list_namespaced_pod("ns", label_selector="a=b", **watch, **raw)),
        "nodes": (
            lambda: rest.lister(NODES)(limit=5000, **raw),
            lambda: core.list_node(limit=5000, **raw)),
        "a Container": (
            lambda: statuses.get("team a", "p/1"),
            lambda: custom.get_namespaced_custom_object(GROUP, VERSION, "team a", PLURAL, "p/1", **raw)),
        "a Container's status, merge-patched": (
            lambda: statuses.patch_status("team a", "p", patch),
            lambda: custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, "team a", PLURAL, "p", patch, _content_type="application/merge-patch+json", **raw)),
        "a Pod": (
            lambda: pods.get("ns", "web-0"),
            lambda: core.read_namespaced_pod("web-0", "ns", **raw)),
        "an Event created": (
            lambda: events.create("team a", event),
            lambda: core.create_namespaced_event("team a", event, **raw)),
        "an Event merge-patched": (
            lambda: events.patch("team a", "p.1", {"count": 2}),
            lambda: core.patch_namespaced_event("p.1", "team a", {"count": 2},
                                                _content_type="application/merge-patch+json", **raw)),
    }


def test_each_call_sends_what_the_generated_method_sends():
    api_client, sent = recording_client()
    for what, (ours, generated) in cases(api_client).items():
        mine, theirs = request_of(api_client, sent, ours), request_of(api_client, sent, generated)
        if theirs["body"] is not None and theirs["content_type"] is None:
            # The generated create sends its JSON body with no Content-Type, which the API
            # server reads as JSON; ours says so.
            theirs["content_type"] = "application/json"
        for field in ("method", "url", "body", "auth", "content_type"):
            assert mine[field] == theirs[field], f"{what}: {field}: {mine[field]!r} != {theirs[field]!r}"
        assert mine["auth"] == "Bearer tok"


def test_a_listers_arguments_are_the_generated_methods():
    rest = KubeRest(recording_client()[0])
    with pytest.raises(TypeError, match="unknown list arguments: pretty"):
        rest.lister(NODES)(pretty="true")
    with pytest.raises(TypeError, match="raw response"):
        rest.lister(NODES)(_preload_content=True)


@pytest.fixture
def rest(tmp_path):
    with KubeAPIDouble(bookmark_interval=None) as double:
        api_client = config.new_client_from_config(config_file=double.write_kubeconfig(tmp_path / "kubeconfig"))
        yield double, KubeRest(api_client)


def container(name, namespace="default"):
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Container",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"fqdn": f"{name}.example.com"}}


def test_lists_page_by_page_and_watches_against_the_api_double(rest):
    double, rest = rest
    double.apply_many([container(f"c{i}") for i in range(5)] + [container("other", namespace="team-b")])
    listed, token, version = [], None, None
    for _ in range(10):  # 3 pages expected
        body = json.loads(rest.lister(CONTAINERS)(limit=2, _continue=token, _request_timeout=5).data)
        listed += [o["metadata"]["name"] for o in body["items"]]
        version = version or body["metadata"]["resourceVersion"]
        token = body["metadata"].get("continue")
        if not token:
            break
    else:
        pytest.fail(f"pagination did not end: {listed} listed, still a continue token")
    assert sorted(listed) == ["c0", "c1", "c2", "c3", "c4", "other"]
    only_b = json.loads(rest.lister(NAMESPACED_CONTAINERS, "team-b")(_request_timeout=5).data)
    assert [o["metadata"]["name"] for o in only_b["items"]] == ["other"]

    stream = rest.lister(NAMESPACED_CONTAINERS, "default")(watch=True, resource_version=version,
                                                          timeout_seconds=5, _request_timeout=(5, 5))
    double.apply(container("c9"))
    line = next(iter(stream.readline, b""))
    event = json.loads(line)
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "c9")
    stream.release_conn()


def test_an_error_answer_raises_the_clients_api_exception(rest):
    double, rest = rest
    with pytest.raises(ApiException) as raised:
        rest.request("GET", CONTAINER, path_params={"namespace": "default", "name": "gone"})
    assert raised.value.status == 404
    assert json.loads(raised.value.body)["reason"] == "NotFound"  # the API's Status, as sent


def test_the_sync_never_imports_the_generated_api_classes(tmp_path):
    """Every client the daemon uses (source, status writer, Events, Lease), each making a
    call, imports no generated API module: CoreV1Api alone costs ~20 MiB of RSS."""
    kubeconfig = tmp_path / "kubeconfig"
    with KubeAPIDouble(bookmark_interval=None) as double:
        double.write_kubeconfig(kubeconfig)
        script = f"""
import sys, threading
from sync.sources.cache import ObjectCache
from sync.sources.kube import KubernetesSource, load_client
from sync.status_writer import build_status_writer
from sync.leader import KubeLeaseLock
api_client = load_client({str(kubeconfig)!r})
source = KubernetesSource(api_client, ObjectCache(), threading.Event(), sources=("container", "pod"))
source.list_once()
writer = build_status_writer({str(kubeconfig)!r}, qps=5.0, leading=lambda: True)
try:
    writer.client.get("default", "absent")
except Exception as exc:
    assert type(exc).__name__ == "NotFound", exc
else:
    raise AssertionError("get() of an absent Container did not raise NotFound")
assert KubeLeaseLock(api_client, "default", "mountdns-sync").get() is None
loaded = sorted(m for m in sys.modules if m.startswith("kubernetes.client.api."))
print(loaded)
"""
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

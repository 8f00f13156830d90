"""The API double's write rules, through the official client over real HTTP.

The controller's Lease election, status writes and Event recording are only as well
tested as the double is faithful: these are the real API server's rules that such code
gets wrong (optimistic concurrency, the status subresource, patch media types,
MicroTime, Event namespaces), each checked the way the client meets it.
"""

import datetime
import json

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from mountdns.testing.kube_double import GROUP, PLURAL, VERSION, KubeAPIDouble

pytestmark = pytest.mark.timeout(30)

NAMESPACE = "mountdns"


@pytest.fixture
def api(tmp_path):
    with KubeAPIDouble(bookmark_interval=None) as double:
        config.load_kube_config(config_file=double.write_kubeconfig(tmp_path / "kubeconfig"))
        yield double


@pytest.fixture
def custom(api):
    return client.CustomObjectsApi()


@pytest.fixture
def core(api):
    return client.CoreV1Api()


@pytest.fixture
def coordination(api):
    return client.CoordinationV1Api()


def micro(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_body(holder, rv=None, renew="2026-01-01T00:00:00.250000Z", transitions=0):
    meta = {"name": "mountdns-sync", "namespace": NAMESPACE}
    if rv:
        meta["resourceVersion"] = rv
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": renew,
                     "acquireTime": renew, "leaseTransitions": transitions}}


def container_body(name, **spec):
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Container",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def status_of(error: ApiException) -> int:
    return error.status


def raw_request(api_client, method, path, body, content_type="application/json"):
    """Send `body` exactly as given: the typed client would re-serialise it (and turn
    a MicroTime with zero fractional seconds into one the server rejects)."""
    _, url, headers, body, _ = api_client.param_serialize(
        method, path, header_params={"Content-Type": content_type, "Accept": "application/json"},
        body=body, auth_settings=["BearerToken"])
    response = api_client.call_api(method, url, header_params=headers, body=body)
    response.read()
    return response.status, json.loads(response.data)


# --- Leases ---------------------------------------------------------------------------


def test_lease_created_then_read_back_through_the_coordination_client(coordination):
    created = coordination.create_namespaced_lease(NAMESPACE, lease_body("a"))
    read = coordination.read_namespaced_lease("mountdns-sync", NAMESPACE)
    assert read.spec.holder_identity == "a"
    assert read.metadata.resource_version == created.metadata.resource_version
    assert read.spec.renew_time == datetime.datetime(2026, 1, 1, 0, 0, 0, 250000, tzinfo=datetime.timezone.utc)


def test_second_create_of_a_lease_is_409_already_exists(coordination):
    coordination.create_namespaced_lease(NAMESPACE, lease_body("a"))
    with pytest.raises(ApiException) as error:
        coordination.create_namespaced_lease(NAMESPACE, lease_body("b"))
    assert status_of(error.value) == 409
    assert '"reason":"AlreadyExists"' in error.value.body.replace(" ", "")


def test_replace_with_a_stale_resource_version_is_409_conflict_and_changes_nothing(coordination):
    first = coordination.create_namespaced_lease(NAMESPACE, lease_body("a"))
    rv = first.metadata.resource_version
    coordination.replace_namespaced_lease("mountdns-sync", NAMESPACE, lease_body("a", rv=rv))
    with pytest.raises(ApiException) as error:
        coordination.replace_namespaced_lease("mountdns-sync", NAMESPACE, lease_body("b", rv=rv))
    assert status_of(error.value) == 409
    assert "the object has been modified" in error.value.body
    assert coordination.read_namespaced_lease("mountdns-sync", NAMESPACE).spec.holder_identity == "a"


def test_lease_time_without_six_fractional_digits_is_rejected_with_400(api):
    # The real server parses MicroTime with a layout of six fractional digits; a client
    # that drops ".000000" for a whole second gets 400 and cannot hold the Lease.
    path = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"
    status, body = raw_request(client.ApiClient(), "POST", path, lease_body("a", renew="2026-01-01T00:00:00Z"))
    assert (status, body["reason"]) == (400, "BadRequest")
    assert api.get("Lease", "mountdns-sync", NAMESPACE) is None
    status, _ = raw_request(client.ApiClient(), "POST", path, lease_body("a", renew="2026-01-01T00:00:00.000000Z"))
    assert status == 201


def test_leases_are_listed_only_in_their_namespace(coordination):
    coordination.create_namespaced_lease(NAMESPACE, lease_body("a"))
    assert [l.metadata.name for l in coordination.list_namespaced_lease(NAMESPACE).items] == ["mountdns-sync"]
    assert coordination.list_namespaced_lease("other").items == []


# --- the status subresource ------------------------------------------------------------


def test_status_patch_changes_status_only_and_keeps_other_fields(api, custom):
    api.apply({**container_body("c1", nodeName="node-1"), "status": {"deviceStatus": "MOUNTED"}})
    patch = {"status": {"conditions": [{"type": "Published", "status": "True"}]},
             "spec": {"nodeName": "sneaked-in"}}
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "c1", patch)
    stored = api.get("Container", "c1", "default")
    assert stored["status"] == {"deviceStatus": "MOUNTED",
                                "conditions": [{"type": "Published", "status": "True"}]}
    assert stored["spec"] == {"nodeName": "node-1"}


def test_status_patch_with_a_stale_resource_version_is_409(api, custom):
    stored = api.apply(container_body("c1", nodeName="node-1"))
    api.apply(container_body("c1", nodeName="node-2"))
    patch = {"metadata": {"resourceVersion": stored["metadata"]["resourceVersion"]},
             "status": {"deviceStatus": "X"}}
    with pytest.raises(ApiException) as error:
        custom.patch_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "c1", patch)
    assert status_of(error.value) == 409
    assert "status" not in api.get("Container", "c1", "default")


def test_object_write_ignores_status_and_status_write_keeps_generation(api, custom):
    api.apply({**container_body("c1", nodeName="node-1"), "status": {"deviceStatus": "MOUNTED"}})
    assert api.get("Container", "c1", "default")["metadata"]["generation"] == 1
    custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "c1",
                                          {"spec": {"nodeName": "node-2"}, "status": {"deviceStatus": "GONE"}})
    stored = api.get("Container", "c1", "default")
    assert stored["status"] == {"deviceStatus": "MOUNTED"}
    assert stored["metadata"]["generation"] == 2
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "c1",
                                                 {"status": {"deviceStatus": "CONNECTING"}})
    stored = api.get("Container", "c1", "default")
    assert stored["status"] == {"deviceStatus": "CONNECTING"}
    assert stored["metadata"]["generation"] == 2


def test_json_patch_on_status_applies_its_operations(api, custom):
    api.apply({**container_body("c1", nodeName="node-1"), "status": {"deviceStatus": "MOUNTED"}})
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "c1", [
        {"op": "test", "path": "/status/deviceStatus", "value": "MOUNTED"},
        {"op": "add", "path": "/status/fqdn", "value": "c1.default.example"}],
        _content_type="application/json-patch+json")
    assert api.get("Container", "c1", "default")["status"] == {"deviceStatus": "MOUNTED",
                                                              "fqdn": "c1.default.example"}


def test_strategic_merge_patch_on_a_custom_resource_is_415(api, custom):
    api.apply(container_body("c1", nodeName="node-1"))
    status, body = raw_request(custom.api_client, "PATCH", f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}/c1/status",
                               {"status": {"deviceStatus": "X"}}, "application/strategic-merge-patch+json")
    assert (status, body["reason"]) == (415, "UnsupportedMediaType")
    assert "status" not in api.get("Container", "c1", "default")


def test_status_of_a_missing_object_is_404(custom, api):
    with pytest.raises(ApiException) as error:
        custom.patch_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "nope",
                                                     {"status": {"deviceStatus": "X"}})
    assert status_of(error.value) == 404


# --- Events ------------------------------------------------------------------------------


def event_body(name, namespace, involved_namespace, count=1):
    return client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace),
        involved_object=client.V1ObjectReference(kind="Container", name="c1", namespace=involved_namespace,
                                                 api_version=f"{GROUP}/{VERSION}"),
        reason="ParentNotFound", message="parent default/x not found", type="Warning", count=count)


def test_event_created_and_its_count_patched(core, api):
    core.create_namespaced_event("default", event_body("c1.1", "default", "default"))
    core.patch_namespaced_event("c1.1", "default", {"count": 2})
    assert api.get("Event", "c1.1", "default")["count"] == 2


def test_event_outside_its_objects_namespace_is_422_invalid(core, api):
    with pytest.raises(ApiException) as error:
        core.create_namespaced_event("mountdns", event_body("c1.1", "mountdns", "default"))
    assert status_of(error.value) == 422
    assert "does not match event.namespace" in error.value.body
    assert api.objects("Event") == []

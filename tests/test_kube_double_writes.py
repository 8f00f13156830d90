"""The API double's write rules, through the official client over real HTTP.

The controller's Lease election, status writes and Event recording are only as well
tested as the double is faithful: these are the real API server's rules that such code
gets wrong (optimistic concurrency, updates without a resourceVersion, create on update,
the object's name and namespace against the URL, the status subresource, patch media
types, MicroTime, Event namespaces), each checked the way the client meets it.
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


def test_event_about_an_object_without_a_namespace_only_in_default_is_the_legacy_rule(core, api):
    # legacyValidateEvent: without an eventTime, an involvedObject without a namespace (a
    # cluster-scoped object) allows only an Event in "default" (or none).
    with pytest.raises(ApiException) as error:
        core.create_namespaced_event("mountdns", event_body("n1.1", "mountdns", None))
    assert status_of(error.value) == 422
    body = json.loads(error.value.body)
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Invalid", 422)
    assert body["message"] == ('Event "n1.1" is invalid: involvedObject.namespace: Invalid value: "": '
                               "does not match event.namespace")
    assert body["details"] == {"name": "n1.1", "kind": "Event", "causes": [{
        "reason": "FieldValueInvalid", "field": "involvedObject.namespace",
        "message": 'Invalid value: "": does not match event.namespace'}]}
    assert api.objects("Event") == []
    core.create_namespaced_event("default", event_body("n1.1", "default", None))
    assert api.get("Event", "n1.1", "default") is not None


def new_style_event(name, namespace, involved_namespace):
    """An Event with an eventTime, as events.k8s.io clients write them into core/v1."""
    involved = {"kind": "Container", "name": "c1", "apiVersion": f"{GROUP}/{VERSION}"}
    if involved_namespace:
        involved["namespace"] = involved_namespace
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved, "reason": "ParentNotFound", "type": "Warning",
            "eventTime": "2026-01-01T00:00:00.000000Z", "action": "Publish",
            "reportingComponent": "mountdns-sync", "reportingInstance": "host-1"}


def test_event_with_an_event_time_follows_the_other_namespace_rule(api):
    # With an eventTime the rule is another: an object without a namespace allows "default"
    # and "kube-system"; an object with one is not compared with the Event's namespace.
    path = "/api/v1/namespaces/{}/events"
    status, body = raw_request(client.ApiClient(), "POST", path.format("mountdns"),
                               new_style_event("n1.1", "mountdns", None))
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "involvedObject.namespace"
    status, _ = raw_request(client.ApiClient(), "POST", path.format("kube-system"),
                            new_style_event("n1.1", "kube-system", None))
    assert status == 201
    status, _ = raw_request(client.ApiClient(), "POST", path.format("mountdns"),
                            new_style_event("c1.1", "mountdns", "default"))
    assert status == 201


# --- updates without a resourceVersion --------------------------------------------------


LEASE_PATH = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/mountdns-sync"
CONTAINER_PATH = f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}/c1"


def test_replace_of_a_lease_without_resource_version_is_422_invalid(coordination, api):
    # The lease strategy's AllowUnconditionalUpdate is false: the registry refuses an
    # update whose object carries no resourceVersion instead of applying it to the latest.
    coordination.create_namespaced_lease(NAMESPACE, lease_body("a"))
    status, body = raw_request(client.ApiClient(), "PUT", LEASE_PATH, lease_body("b"))
    assert (status, body["kind"], body["reason"], body["code"]) == (422, "Status", "Invalid", 422)
    assert body["message"] == ('leases.coordination.k8s.io "mountdns-sync" is invalid: metadata.resourceVersion: '
                               "Invalid value: 0x0: must be specified for an update")
    assert body["details"] == {"name": "mountdns-sync", "group": "coordination.k8s.io", "kind": "leases",
                               "causes": [{"reason": "FieldValueInvalid", "field": "metadata.resourceVersion",
                                           "message": "Invalid value: 0x0: must be specified for an update"}]}
    assert api.get("Lease", "mountdns-sync", NAMESPACE)["spec"]["holderIdentity"] == "a"


def test_a_patch_that_drops_the_resource_version_of_a_lease_is_422_too(coordination, api):
    coordination.create_namespaced_lease(NAMESPACE, lease_body("a"))
    status, body = raw_request(client.ApiClient(), "PATCH", LEASE_PATH,
                               {"metadata": {"resourceVersion": None}, "spec": {"holderIdentity": "b"}},
                               "application/merge-patch+json")
    assert (status, body["reason"]) == (422, "Invalid")
    assert api.get("Lease", "mountdns-sync", NAMESPACE)["spec"]["holderIdentity"] == "a"


def test_replace_of_a_custom_resource_or_its_status_without_resource_version_is_422(api, custom):
    api.apply(container_body("c1", nodeName="node-1"))
    with pytest.raises(ApiException) as error:
        custom.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "c1",
                                                container_body("c1", nodeName="node-2"))
    assert status_of(error.value) == 422
    body = json.loads(error.value.body)
    assert body["reason"] == "Invalid"
    assert body["message"] == ('containers.mountdns.io "c1" is invalid: metadata.resourceVersion: '
                               "Invalid value: 0x0: must be specified for an update")
    assert (body["details"]["group"], body["details"]["kind"]) == ("mountdns.io", "containers")
    with pytest.raises(ApiException) as error:
        custom.replace_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "c1", {
            **container_body("c1", nodeName="node-1"), "status": {"deviceStatus": "X"}})
    assert (status_of(error.value), json.loads(error.value.body)["reason"]) == (422, "Invalid")
    stored = api.get("Container", "c1", "default")
    assert stored["spec"] == {"nodeName": "node-1"} and "status" not in stored


def test_kinds_whose_strategy_allows_it_update_unconditionally(core, api):
    # Nodes, Pods and Events allow an update without a resourceVersion.
    api.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    node = core.replace_node("n1", {"apiVersion": "v1", "kind": "Node",
                                    "metadata": {"name": "n1", "labels": {"a": "b"}}})
    assert node.metadata.labels == {"a": "b"}
    core.create_namespaced_event("default", event_body("c1.1", "default", "default"))
    event = core.replace_namespaced_event("c1.1", "default", event_body("c1.1", "default", "default", count=3))
    assert event.count == 3


# --- a PUT to a missing object ------------------------------------------------------------


def test_replace_of_a_missing_lease_creates_it_with_201(api):
    # AllowCreateOnUpdate is true for Leases; the resourceVersion the object carries is
    # ignored on that path, the object created afresh.
    status, body = raw_request(client.ApiClient(), "PUT", LEASE_PATH, lease_body("a", rv="12345"))
    assert status == 201
    stored = api.get("Lease", "mountdns-sync", NAMESPACE)
    assert stored["spec"]["holderIdentity"] == "a"
    assert body["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"] != "12345"
    assert body["metadata"]["uid"] and body["metadata"]["creationTimestamp"]


def test_replace_of_a_missing_lease_with_a_uid_is_a_409_precondition_failure(api):
    body = lease_body("a")
    body["metadata"]["uid"] = "0b5e0ed9-0000-4000-8000-000000000001"
    status, answer = raw_request(client.ApiClient(), "PUT", LEASE_PATH, body)
    assert (status, answer["reason"]) == (409, "Conflict")
    assert "Precondition failed: UID in precondition: 0b5e0ed9-0000-4000-8000-000000000001" in answer["message"]
    assert api.get("Lease", "mountdns-sync", NAMESPACE) is None


def test_patch_of_a_missing_lease_is_404_even_though_a_put_creates_it(api):
    status, body = raw_request(client.ApiClient(), "PATCH", LEASE_PATH, {"spec": {"holderIdentity": "a"}},
                               "application/merge-patch+json")
    assert (status, body["reason"]) == (404, "NotFound")
    assert body["message"] == 'leases.coordination.k8s.io "mountdns-sync" not found'
    assert body["details"] == {"name": "mountdns-sync", "group": "coordination.k8s.io", "kind": "leases"}
    assert api.get("Lease", "mountdns-sync", NAMESPACE) is None


def test_replace_of_a_missing_custom_resource_or_node_is_404(api, custom, core):
    # AllowCreateOnUpdate is false for custom resources (and their status) and for Nodes.
    with pytest.raises(ApiException) as error:
        custom.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "c1",
                                                container_body("c1", nodeName="node-1"))
    assert (status_of(error.value), json.loads(error.value.body)["reason"]) == (404, "NotFound")
    with pytest.raises(ApiException) as error:
        custom.replace_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "c1",
                                                       container_body("c1", nodeName="node-1"))
    assert status_of(error.value) == 404
    with pytest.raises(ApiException) as error:
        core.replace_node("n1", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    assert status_of(error.value) == 404
    assert api.objects("Container") == [] and api.objects("Node") == []


def test_replace_of_a_missing_event_creates_it(core, api):
    core.replace_namespaced_event("c1.1", "default", event_body("c1.1", "default", "default"))
    assert api.get("Event", "c1.1", "default")["count"] == 1


def test_create_with_a_resource_version_is_refused_by_the_storage(api):
    path = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"
    status, body = raw_request(client.ApiClient(), "POST", path, lease_body("a", rv="7"))
    assert status == 500
    assert body["message"] == "resourceVersion should not be set on objects to be created"
    assert api.get("Lease", "mountdns-sync", NAMESPACE) is None


# --- the patched object's resourceVersion ------------------------------------------------


def test_json_patch_setting_a_stale_resource_version_is_409_conflict(coordination, api):
    first = coordination.create_namespaced_lease(NAMESPACE, lease_body("a"))
    stale = first.metadata.resource_version
    coordination.patch_namespaced_lease("mountdns-sync", NAMESPACE, {"spec": {"leaseTransitions": 1}})
    patch = [{"op": "replace", "path": "/metadata/resourceVersion", "value": stale},
             {"op": "replace", "path": "/spec/holderIdentity", "value": "b"}]
    status, body = raw_request(client.ApiClient(), "PATCH", LEASE_PATH, patch, "application/json-patch+json")
    assert (status, body["reason"]) == (409, "Conflict")
    assert body["message"] == ('Operation cannot be fulfilled on leases.coordination.k8s.io "mountdns-sync": '
                               "the object has been modified; please apply your changes to the latest version "
                               "and try again")
    assert api.get("Lease", "mountdns-sync", NAMESPACE)["spec"]["holderIdentity"] == "a"
    current = api.get("Lease", "mountdns-sync", NAMESPACE)["metadata"]["resourceVersion"]
    patch[0]["value"] = current
    status, body = raw_request(client.ApiClient(), "PATCH", LEASE_PATH, patch, "application/json-patch+json")
    assert (status, body["spec"]["holderIdentity"]) == (200, "b")


def test_json_patch_of_a_status_with_a_stale_resource_version_is_409(api, custom):
    stored = api.apply(container_body("c1", nodeName="node-1"))
    api.apply(container_body("c1", nodeName="node-2"))
    with pytest.raises(ApiException) as error:
        custom.patch_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "c1", [
            {"op": "replace", "path": "/metadata/resourceVersion", "value": stored["metadata"]["resourceVersion"]},
            {"op": "add", "path": "/status", "value": {"deviceStatus": "X"}}],
            _content_type="application/json-patch+json")
    assert status_of(error.value) == 409
    assert "status" not in api.get("Container", "c1", "default")


def test_merge_patch_of_a_lease_with_a_stale_resource_version_is_409(coordination, api):
    first = coordination.create_namespaced_lease(NAMESPACE, lease_body("a"))
    coordination.patch_namespaced_lease("mountdns-sync", NAMESPACE, {"spec": {"leaseTransitions": 1}})
    with pytest.raises(ApiException) as error:
        coordination.patch_namespaced_lease("mountdns-sync", NAMESPACE, {
            "metadata": {"resourceVersion": first.metadata.resource_version}, "spec": {"holderIdentity": "b"}})
    assert status_of(error.value) == 409
    assert api.get("Lease", "mountdns-sync", NAMESPACE)["spec"]["holderIdentity"] == "a"


# --- the object's name and namespace against the URL ---------------------------------------


def test_replace_with_another_name_in_the_body_is_400_bad_request(coordination, api):
    created = coordination.create_namespaced_lease(NAMESPACE, lease_body("a"))
    body = lease_body("b", rv=created.metadata.resource_version)
    body["metadata"]["name"] = "other"
    status, answer = raw_request(client.ApiClient(), "PUT", LEASE_PATH, body)
    assert (status, answer["reason"], answer["code"]) == (400, "BadRequest", 400)
    assert answer["message"] == "the name of the object (other) does not match the name on the URL (mountdns-sync)"
    assert api.get("Lease", "other", NAMESPACE) is None
    assert api.get("Lease", "mountdns-sync", NAMESPACE)["spec"]["holderIdentity"] == "a"
    del body["metadata"]["name"]
    status, answer = raw_request(client.ApiClient(), "PUT", LEASE_PATH, body)
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert answer["message"] == ("the name of the object (mountdns-sync based on URL) was undeterminable: "
                                 "name must be provided")


def test_replace_with_another_namespace_in_the_body_is_400_and_none_takes_the_urls(coordination, api):
    created = coordination.create_namespaced_lease(NAMESPACE, lease_body("a"))
    body = lease_body("b", rv=created.metadata.resource_version)
    body["metadata"]["namespace"] = "other"
    status, answer = raw_request(client.ApiClient(), "PUT", LEASE_PATH, body)
    assert (status, answer["reason"]) == (400, "BadRequest")
    assert answer["message"] == ("the namespace of the provided object does not match the namespace sent "
                                 "on the request")
    assert api.objects("Lease")[0]["spec"]["holderIdentity"] == "a"
    del body["metadata"]["namespace"]
    status, answer = raw_request(client.ApiClient(), "PUT", LEASE_PATH, body)
    assert (status, answer["metadata"]["namespace"], answer["spec"]["holderIdentity"]) == (200, NAMESPACE, "b")


def test_create_with_another_namespace_in_the_body_is_400(core, api):
    with pytest.raises(ApiException) as error:
        core.create_namespaced_event("mountdns", event_body("c1.1", "default", "default"))
    assert status_of(error.value) == 400
    assert json.loads(error.value.body)["reason"] == "BadRequest"
    assert api.objects("Event") == []


def test_patch_that_renames_the_object_is_400(api, custom):
    api.apply(container_body("c1", nodeName="node-1"))
    with pytest.raises(ApiException) as error:
        custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "c1", [
            {"op": "replace", "path": "/metadata/name", "value": "c2"}],
            _content_type="application/json-patch+json")
    assert status_of(error.value) == 400
    assert "does not match the name on the URL (c1)" in error.value.body
    assert [c["metadata"]["name"] for c in api.objects("Container")] == ["c1"]

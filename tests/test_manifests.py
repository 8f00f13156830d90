"""The shipped manifests: the CRD and the seed examples (RBAC: test_deploy_rbac.py).

There is no API server on the build machines, so these tests check what one would:
the CRD is a structural schema every example Container passes (and bad objects fail),
and examples/ describes the same topology as the tests' seed_objects(), since the demo
runs on those files.
"""

import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from sync.rules import desired_state
from mountdns.testing.objects import SEED_CONFIG, container, seed_objects
from mountdns.testing.seed import SEED_STATE

ROOT = Path(__file__).resolve().parent.parent
CRD_PATH = ROOT / "deploy" / "crds" / "containers.mountdns.io.yaml"
EXAMPLES = ROOT / "examples"
# What Kubernetes demands of metadata.name for custom resources (a DNS-1123 subdomain).
DNS_1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def load_documents(path: Path) -> list[dict]:
    with path.open() as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


def example_objects(kind: str) -> list[dict]:
    return [doc for path in sorted(EXAMPLES.glob("*.yaml")) for doc in load_documents(path) if doc["kind"] == kind]


@pytest.fixture(scope="module")
def crd() -> dict:
    (document,) = load_documents(CRD_PATH)
    return document


@pytest.fixture(scope="module")
def validator(crd) -> jsonschema.Draft7Validator:
    # openAPIV3Schema is close enough to JSON Schema for the keywords the CRD uses.
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def errors(validator, obj) -> list[str]:
    return sorted(error.message for error in validator.iter_errors(obj))


# --- the CRD -------------------------------------------------------------------------------------


def test_crd_defines_namespaced_containers_in_mountdns_io(crd):
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == "containers.mountdns.io"
    spec = crd["spec"]
    assert spec["group"] == "mountdns.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {"kind": "Container", "listKind": "ContainerList", "plural": "containers",
                             "singular": "container", "shortNames": ["mct"]}


def test_crd_serves_and_stores_v1alpha1_with_a_status_subresource(crd):
    (version,) = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_crd_printer_columns_show_fqdn_node_mount_status_and_published(crd):
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    published = '.status.conditions[?(@.type=="Published")]'
    assert [(c["name"], c["type"], c["jsonPath"], c.get("priority", 0)) for c in columns] == [
        ("FQDN", "string", ".spec.fqdn", 0),
        ("Node", "string", ".spec.nodeName", 0),
        ("Mounted-To", "string", ".spec.mountedTo", 0),
        ("Device-Status", "string", ".status.deviceStatus", 0),
        ("Published", "string", f"{published}.status", 0),
        ("Reason", "string", f"{published}.reason", 1),
        ("Target", "string", ".status.target", 1),
        ("Age", "date", ".metadata.creationTimestamp", 0),
    ]


def schema_nodes(schema: dict, path="openAPIV3Schema"):
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from schema_nodes(child, f"{path}.{name}")


def test_crd_schema_is_structural(crd):
    # The API server refuses a v1 CRD whose schema leaves any field without a type.
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in schema_nodes(schema):
        assert "type" in node, f"{path} has no type"
        if "properties" in node:
            assert node["type"] == "object", path
        if "pattern" in node:
            re.compile(node["pattern"])


# --- objects against the schema -------------------------------------------------------------------


def test_every_example_container_validates_against_the_crd(validator):
    containers = example_objects("Container")
    assert len(containers) == 8
    for obj in containers:
        assert errors(validator, obj) == [], obj["metadata"]["name"]


def test_seed_objects_validate_against_the_crd(validator):
    containers, _ = seed_objects()
    for obj in containers:
        assert errors(validator, obj) == [], obj["metadata"]["name"]


def test_example_names_are_what_kubernetes_accepts():
    for obj in example_objects("Container") + example_objects("Node"):
        assert DNS_1123_SUBDOMAIN.match(obj["metadata"]["name"]), obj["metadata"]["name"]


@pytest.mark.parametrize("spec", [
    {"fqdn": "Container_A_0.domain.foo.bar."},
    {"fqdn": "web-1.prod.domain.foo.bar", "nodeName": "ip-10-0-0-1.ec2.internal"},
    {"mountedTo": "container-a-0", "type": "netconf"},
    {"podRef": {"name": "controller-b-0"}, "type": "odl"},
    {},
])
def test_crd_accepts_valid_specs(validator, spec):
    assert errors(validator, container("ok") | {"spec": spec}) == []


@pytest.mark.parametrize("spec, complaint", [
    ({"fqdn": "has space.domain.foo.bar"}, "does not match"),
    ({"fqdn": "a..domain.foo.bar"}, "does not match"),
    ({"fqdn": "x" * 64 + ".domain.foo.bar"}, "does not match"),
    ({"fqdn": ("a" * 60 + ".") * 4 + "domain.foo.bar"}, "is too long"),
    ({"mountedTo": "Container_A_1"}, "does not match"),
    ({"nodeName": "Node_0"}, "does not match"),
    ({"nodeName": 3}, "is not of type 'string'"),
    ({"podRef": {}}, "'name' is a required property"),
    ({"podRef": {"name": "Controller_B"}}, "does not match"),
    ({"podRef": "controller-b-0"}, "is not of type 'object'"),
])
def test_crd_rejects_invalid_specs(validator, spec, complaint):
    (message,) = errors(validator, container("bad") | {"spec": spec})
    assert complaint in message


def test_crd_requires_a_spec(validator):
    obj = container("bare")
    del obj["spec"]
    assert errors(validator, obj) == ["'spec' is a required property"]


# --- examples/ is the seed -----------------------------------------------------------------------------


def test_examples_describe_the_seed_topology():
    from_files = desired_state(example_objects("Container"), example_objects("Node"), SEED_CONFIG)

    assert from_files.state == SEED_STATE
    assert from_files.skipped == () and from_files.warnings == ()


def test_examples_and_seed_objects_describe_the_same_objects():
    containers, nodes = seed_objects()
    from_files = desired_state(example_objects("Container"), example_objects("Node"), SEED_CONFIG)

    assert from_files == desired_state(containers, nodes, SEED_CONFIG)
    # The same specs and statuses too, not only the same records.
    def essentials(objects):
        return {o["metadata"]["name"]: (o.get("spec"), o.get("status")) for o in objects}
    assert essentials(example_objects("Container")) == essentials(containers)
    assert essentials(example_objects("Node")) == essentials(nodes)


def test_examples_with_both_sources_give_the_seed_and_the_pods_carry_their_containers_names():
    from sync.objects import is_published_pod
    pods = example_objects("Pod")
    published = [p for p in pods if is_published_pod(p)]
    containers, nodes = example_objects("Container"), example_objects("Node")

    both = desired_state(containers, nodes, SEED_CONFIG, pods, published)
    assert both.state == SEED_STATE
    # The Pods claim names Containers of the same age (none given) hold: then the first by
    # namespace/name keeps it, and "container-a-2" sorts before "pod/container-a-2".
    assert {(s.name, s.code) for s in both.skipped} == {("pod/container-a-2", "NameConflict"),
                                                          ("pod/container-c-1", "NameConflict")}
    alone = desired_state([], nodes, SEED_CONFIG, (), published)
    assert alone.state.parents == {"container_a_2.domain.foo.bar": "node-2"}
    assert alone.state.children == {"container_c_1.domain.foo.bar": "container_a_2.domain.foo.bar"}


def test_crd_refuses_node_name_and_pod_ref_together_with_a_cel_rule(crd):
    # CEL is evaluated by the API server, not by the JSON Schema validator used here: the
    # rule is checked to say what the sync enforces (tests/test_rules_pods.py).
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    (rule,) = spec["x-kubernetes-validations"]
    assert rule["rule"] == "!(has(self.nodeName) && has(self.podRef))"
    assert "nodeName" in rule["message"] and "podRef" in rule["message"]

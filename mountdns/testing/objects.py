"""Kubernetes objects as the API server lists them, for tests and benchmarks to share.

The sync's rules take raw object dicts (what `kubectl get -o json` shows), so tests build
exactly those: `container(...)` for a mountdns.io Container, `node(...)` for a core/v1
Node, and `seed_objects()` for the seed's topology (US 2024/0031284 A1, FIG. 1-4), which
examples/ also describes and which must come out as tests/seed.py's SEED_STATE.

Kubernetes object names are DNS-1123 (lowercase, '-'), so the seed's Container_A_0 is
the object `container-a-0` with spec.fqdn `Container_A_0.domain.foo.bar`, and its
Node_0 is the Node `node-0`.
"""

from __future__ import annotations

from sync.rules import RulesConfig
from mountdns.testing.seed import SEED_ZONE, ZONE

API_VERSION = "mountdns.io/v1alpha1"
MOUNTED = "MOUNTED"
SEED_CONFIG = RulesConfig(zones=(SEED_ZONE,))


def container(name, node=None, mounted_to=None, status=None, fqdn=None, namespace="default",
              created="2024-01-01T00:00:00Z", type=None, pod=None) -> dict:
    """A Container object; fields left as None are absent, as the API server omits them.
    `pod` is the name in spec.podRef."""
    metadata = {"name": name, "namespace": namespace}
    if created is not None:
        metadata["creationTimestamp"] = created
    spec = {}
    for field, value in (("fqdn", fqdn), ("nodeName", node), ("mountedTo", mounted_to), ("type", type)):
        if value is not None:
            spec[field] = value
    if pod is not None:
        spec["podRef"] = {"name": pod}
    obj = {"apiVersion": API_VERSION, "kind": "Container", "metadata": metadata, "spec": spec}
    if status is not None:
        obj["status"] = {"deviceStatus": status}
    return obj


def node(name, *addresses) -> dict:
    """A Node with these addresses; a plain string is an InternalIP, a (type, address)
    pair anything else. Its Hostname entry is always there, as on a real node."""
    entries = [{"type": "InternalIP", "address": a} if isinstance(a, str) else {"type": a[0], "address": a[1]}
               for a in addresses]
    entries.append({"type": "Hostname", "address": name})
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "status": {"addresses": entries}}


BACKS_LABEL = "mountdns.io/backs"  # the label the sync selects the Pods it watches by


def pod(name, node=None, ready=True, namespace="default", created="2024-01-01T00:00:00Z", deleting=None,
        labels=None, annotations=None) -> dict:
    """A core/v1 Pod as the API server lists it, with the parts the sync does not read
    (containers, other conditions) so slimming is exercised. `node` is spec.nodeName
    (None: not scheduled); `ready` the Ready condition; `deleting` a deletionTimestamp.
    Labelled BACKS_LABEL unless `labels` says otherwise."""
    metadata = {"name": name, "namespace": namespace,
                "labels": {BACKS_LABEL: "true"} if labels is None else dict(labels)}
    if annotations:
        metadata["annotations"] = dict(annotations)
    if created is not None:
        metadata["creationTimestamp"] = created
    if deleting is not None:
        metadata["deletionTimestamp"] = deleting
    spec = {"containers": [{"name": "main", "image": "registry.example/app:1"}]}
    if node is not None:
        spec["nodeName"] = node
    conditions = [{"type": "PodScheduled", "status": "True" if node else "False"}]
    if node is not None:
        conditions += [{"type": "Initialized", "status": "True"},
                       {"type": "Ready", "status": "True" if ready else "False"},
                       {"type": "ContainersReady", "status": "True" if ready else "False"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec,
            "status": {"phase": "Running" if node else "Pending", "conditions": conditions}}


def seed_fqdn(label: str) -> str:
    """The seed spells fqdns with capitals and underscores: Container_A_0.domain.foo.bar."""
    return f"{label}.{ZONE}"


# (object name, seed label, node, type) of the seed's parents ...
SEED_PARENTS = (
    ("container-a-0", "Container_A_0", "node-0", "odl"),
    ("container-a-1", "Container_A_1", "node-1", "odl"),
    ("container-b-0", "Container_B_0", "node-1", "odl"),
    ("container-a-2", "Container_A_2", "node-2", "odl"),
)
# ... and of its children, with the parent they are mounted to. Children run on their
# parent's node (the seed: mounting "may also indicate ... the same node"), so one that
# is unmounted becomes a parent there.
SEED_CHILDREN = (
    ("container-c-0", "Container_C_0", "node-1", "netconf", "container-a-1"),
    ("container-c-1", "Container_C_1", "node-2", "netconf", "container-a-2"),
    ("container-d-0", "Container_D_0", "node-1", "upf", "container-b-0"),
    ("container-e-0", "Container_E_0", "node-0", "netconf", "container-a-0"),
)
SEED_NODES = (("node-0", "1.2.3.4"), ("node-1", "2.3.4.5"), ("node-2", "3.4.5.6"))


def seed_objects() -> tuple[list[dict], list[dict]]:
    """The seed topology as (Containers, Nodes); fresh dicts on every call, so tests may edit them."""
    containers = [container(name, node=host, fqdn=seed_fqdn(label), type=kind)
                  for name, label, host, kind in SEED_PARENTS]
    containers += [container(name, node=host, fqdn=seed_fqdn(label), type=kind, mounted_to=parent, status=MOUNTED)
                   for name, label, host, kind, parent in SEED_CHILDREN]
    nodes = [node(name, address) for name, address in SEED_NODES]
    return containers, nodes


def published_pod(name, node="node-1", fqdn=None, mounted_to=None, type=None, device_status=None, ready=True,
                  namespace="default", created="2024-01-01T00:00:00Z", deleting=None) -> dict:
    """A Pod for the pod source: labelled mountdns.io/publish=true, described by annotations."""
    annotations = {key: value for key, value in (
        ("mountdns.io/fqdn", fqdn), ("mountdns.io/mounted-to", mounted_to), ("mountdns.io/type", type),
        ("mountdns.io/device-status", device_status)) if value is not None}
    return pod(name, node=node, ready=ready, namespace=namespace, created=created, deleting=deleting,
               labels={"mountdns.io/publish": "true", "app": name}, annotations=annotations)


def seed_pods() -> list[dict]:
    """The seed's Containers as Pods of the pod source, on the same nodes."""
    pods = [published_pod(name, node=host, fqdn=seed_fqdn(label), type=kind)
            for name, label, host, kind in SEED_PARENTS]
    pods += [published_pod(name, node=host, fqdn=seed_fqdn(label), type=kind, mounted_to=parent,
                           device_status=MOUNTED)
             for name, label, host, kind, parent in SEED_CHILDREN]
    return pods

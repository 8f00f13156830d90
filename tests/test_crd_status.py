"""The status the sync writes, against the CRD that must declare it.

A real API server prunes every status field its CRD schema does not declare, silently:
a status the sync writes but the schema forgets would vanish in a cluster while every
test against the API double passed. So statuses the writer really produced (through the
double) are validated against the CRD's openAPIV3Schema and pruned the way the server
prunes; nothing may go. The README's `kubectl get containers -o wide` example is
rendered here from the CRD's printer columns and those objects, so it cannot drift.
"""

import re
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest
import yaml
from jsonpath_ng.ext import parse as jsonpath
from kubernetes import config

from mountdns.testing.kube_double import KubeAPIDouble
from mountdns.testing.objects import SEED_CONFIG, container, seed_fqdn, seed_objects
from sync.events import EventRecorder, EventsClient
from sync.rules import CODES, desired_state
from sync.sources.cache import CONTAINER, NODE, ObjectCache
from sync.status_writer import ContainerStatusClient, StatusWriter

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent
CRD_PATH = ROOT / "deploy" / "crds" / "containers.mountdns.io.yaml"
README = ROOT / "README.md"
WALL = datetime(2024, 1, 3, 12, 0, tzinfo=timezone.utc)
SHOWN_AT = datetime(2024, 1, 4, tzinfo=timezone.utc)  # "now" for the Age column: 3 days after creation
FOREIGN = {"type": "Reachable", "status": "True", "reason": "ProbeSucceeded", "message": "",
           "lastTransitionTime": "2024-01-02T00:00:00Z", "observedGeneration": 1}


@pytest.fixture(scope="module")
def version():
    (crd,) = [d for d in yaml.safe_load_all(CRD_PATH.read_text()) if d]
    (version,) = crd["spec"]["versions"]
    return version


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The seed topology plus a child whose parent does not exist and a parent on a node
    that does not exist, one of them with another controller's condition, after the
    status writer has done its work."""
    containers, nodes = seed_objects()
    containers += [
        container("container-f-0", node="node-2", fqdn=seed_fqdn("Container_F_0"), type="upf",
                  mounted_to="container-x-0", status="MOUNTED"),
        container("container-g-0", node="node-9", fqdn=seed_fqdn("Container_G_0"), type="odl"),
    ]
    with KubeAPIDouble(bookmark_interval=None) as api:
        api.apply_many(nodes + containers)
        a_0 = api.get("Container", "container-a-0")
        api.apply({**a_0, "status": {"conditions": [FOREIGN]}})
        client = config.new_client_from_config(
            config_file=api.write_kubeconfig(tmp_path_factory.mktemp("crd") / "kubeconfig"))
        writer = StatusWriter(ContainerStatusClient(client), EventRecorder(EventsClient(client), host="h"),
                              qps=1000, burst=1000, wall=lambda: WALL)
        cache = ObjectCache()
        cache.replace(CONTAINER, api.objects("Container"))
        cache.replace(NODE, api.objects("Node"))
        snapshot = cache.snapshot()
        writer.offer(snapshot.containers, snapshot.nodes,
                     desired_state(snapshot.containers, snapshot.nodes, SEED_CONFIG))
        writer.step()
        return sorted(api.objects("Container"), key=lambda o: o["metadata"]["name"])


def prune(value, schema):
    """What a structural schema keeps of `value`: fields it does not declare are dropped
    (unless it preserves unknown fields), as the API server does on every write."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return value
    if isinstance(value, dict) and schema.get("type") == "object":
        properties = schema.get("properties") or {}
        return {k: prune(v, properties[k]) for k, v in value.items() if k in properties}
    if isinstance(value, list) and "items" in schema:
        return [prune(item, schema["items"]) for item in value]
    return value


def test_written_statuses_validate_and_survive_pruning(version, written):
    schema = version["schema"]["openAPIV3Schema"]
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    for obj in written:
        assert sorted(e.message for e in validator.iter_errors(obj)) == [], obj["metadata"]["name"]
        assert prune(obj["status"], schema["properties"]["status"]) == obj["status"], obj["metadata"]["name"]


def test_conditions_are_a_map_list_keyed_by_type(version, written):
    conditions = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["conditions"]
    assert (conditions["x-kubernetes-list-type"], conditions["x-kubernetes-list-map-keys"]) == ("map", ["type"])
    assert "type" in conditions["items"]["required"]  # a map key must be required
    for obj in written:
        types = [c["type"] for c in obj["status"]["conditions"]]
        assert len(types) == len(set(types))


def test_the_writer_produced_true_and_false_and_kept_the_foreign_condition(written):
    by_name = {o["metadata"]["name"]: o for o in written}
    published = {name: next(c for c in o["status"]["conditions"] if c["type"] == "Published")
                 for name, o in by_name.items()}
    assert {name: c["reason"] for name, c in published.items() if c["status"] == "False"} == {
        "container-f-0": "ParentNotFound", "container-g-0": "NodeNotFound"}
    assert by_name["container-a-0"]["status"]["conditions"][0] == FOREIGN


def test_every_reason_matches_the_condition_reason_pattern(version):
    item = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["conditions"]["items"]
    pattern = re.compile(item["properties"]["reason"]["pattern"])
    for reason in ("Published", *CODES):
        assert pattern.match(reason), reason


# --- kubectl get containers -o wide ------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    """kubectl's Age (apimachinery's HumanDuration), for the ranges used here."""
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    minutes, hours = seconds // 60, seconds // 3600
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    return f"{hours // 24}d"


def render_table(version, objects, wide: bool, now: datetime) -> str:
    """What kubectl prints for these objects from the CRD's printer columns: NAME, then
    each column (priority 0, and the others with -o wide), '<none>' for no value,
    columns padded to their widest cell plus three spaces."""
    columns = [c for c in version["additionalPrinterColumns"] if wide or c.get("priority", 0) == 0]
    rows = [["NAME"] + [c["name"].upper() for c in columns]]
    for obj in objects:
        row = [obj["metadata"]["name"]]
        for column in columns:
            found = [m.value for m in jsonpath("$" + column["jsonPath"]).find(obj)]
            if not found:
                row.append("<none>")
            elif column["type"] == "date":
                created = datetime.fromisoformat(found[0].replace("Z", "+00:00"))
                row.append(human_duration((now - created).total_seconds()))
            else:
                row.append(str(found[0]))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


def test_readme_shows_kubectl_get_rendered_from_the_printer_columns_and_real_statuses(version, written):
    table = render_table(version, written, wide=True, now=SHOWN_AT)

    assert f"\n```\n$ kubectl get containers -o wide\n{table}\n```\n" in README.read_text(), table

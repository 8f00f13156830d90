"""Reading Kubernetes objects: from a Container or Node as the API returns it to the
few checked values the rules work with.

Everything that can be wrong with one object on its own (a missing name, a field of the
wrong type, an fqdn outside the zones, an unreadable address) is found here and raised as
`NotPublishable` with a `SkipCode`; `sync.rules` then decides between objects (conflicts,
mounts, cycles). Pure: no Redis, no Kubernetes client.

The checks do not trust the CRD schema: schemas get bypassed (an older CRD, a
`kubectl replace --validate=false`, manifests from files), so an object with `spec` as a
list, an integer address or a 10 MB string is skipped as `InvalidSpec` and every other
object keeps syncing.
"""

from __future__ import annotations

import ipaddress
import math
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum
from typing import Iterable, Mapping

from mountdns.names import InvalidName, check_publishable, containing_zone, normalize
from mountdns.records import Zone
from sync.flat_object import OBJECT_TYPES, FlatObject

DEFAULT_NAMESPACE = "default"  # what kubectl assumes for a manifest without metadata.namespace
UNDATED = math.inf  # objects without creationTimestamp (manifests from files) count as newest

ObjectKey = tuple[str, str]  # (namespace, name)

# A Pod named by a Container's spec.podRef must carry this label (any value): Pods are the
# largest kind a cluster has, so the sync watches only those that back a name, selected
# by the API server, rather than every Pod of the cluster.
BACKS_LABEL = "mountdns.io/backs"
# The pod source (--source pod): a Pod with this label is published from its annotations.
PUBLISH_LABEL, PUBLISH_VALUE = "mountdns.io/publish", "true"
FQDN_ANNOTATION = "mountdns.io/fqdn"
MOUNTED_TO_ANNOTATION = "mountdns.io/mounted-to"
TYPE_ANNOTATION = "mountdns.io/type"
DEVICE_STATUS_ANNOTATION = "mountdns.io/device-status"
POD_ANNOTATIONS = (FQDN_ANNOTATION, MOUNTED_TO_ANNOTATION, TYPE_ANNOTATION, DEVICE_STATUS_ANNOTATION)
# A published Pod's key in the rules: Containers and Pods share a namespace's names, and a
# Pod `x` must not be taken for the Container `x` (no Kubernetes name holds a '/').
POD_KEY_PREFIX = "pod/"


@dataclass(frozen=True)
class RulesConfig:
    """How Kubernetes objects map to records.

    zones: the zones served; the first is the default zone for Containers without spec.fqdn.
    mounted_status: the status.deviceStatus that makes a Container with spec.mountedTo a child.
    mount_types: the spec.type values that can be mounted; empty means every type.
    node_address_types: the Node.status.addresses types published as A/AAAA.
    max_mount_depth: the longest chain of nested mounts published (a child of a parent is 1).
    allow_special_addresses: publish unspecified, broadcast, multicast, loopback and
        link-local Node addresses too (demos on one machine); otherwise they are ignored.
    publish_unready_pods: a Container backed by a Pod (spec.podRef) is published while its
        Pod is scheduled and not terminating, Ready or not (as a Service's
        publishNotReadyAddresses); otherwise only while the Pod is Ready.
    """

    zones: tuple[Zone, ...]
    mounted_status: str = "MOUNTED"
    mount_types: frozenset[str] = frozenset()
    node_address_types: tuple[str, ...] = ("InternalIP",)
    max_mount_depth: int = 8
    allow_special_addresses: bool = False
    publish_unready_pods: bool = False

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


class SkipCode(StrEnum):
    """Why a Container is not published (or, for the Node codes, published without
    addresses): a small fixed set of CamelCase codes, usable as a metric label and as a
    Kubernetes condition reason. The human text beside it carries the details."""

    NOT_MOUNTED = "NotMounted"  # no spec.nodeName and not effectively mounted
    PARENT_NOT_FOUND = "ParentNotFound"  # spec.mountedTo names no Container
    PARENT_NOT_PUBLISHED = "ParentNotPublished"  # the Container mounted to is itself not published
    MOUNT_CYCLE = "MountCycle"
    MOUNT_TOO_DEEP = "MountTooDeep"  # nested deeper than max_mount_depth
    NAME_CONFLICT = "NameConflict"  # another Container holds the fqdn (or the object is listed twice)
    OWNED_ELSEWHERE = "OwnedElsewhere"  # the name is held in the store by another writer
    OUT_OF_ZONE = "OutOfZone"  # fqdn outside every zone, or a zone's apex
    INVALID_NAME = "InvalidName"  # fqdn not a publishable DNS name
    INVALID_SPEC = "InvalidSpec"  # a field missing, of the wrong type or too long
    NODE_NOT_FOUND = "NodeNotFound"  # published parent whose Node is not listed
    NODE_HAS_NO_ADDRESS = "NodeHasNoAddress"  # published parent whose Node has no usable address
    POD_NOT_FOUND = "PodNotFound"  # spec.podRef names no Pod (in the Container's namespace)
    POD_NOT_SCHEDULED = "PodNotScheduled"  # the Pod named by spec.podRef has no spec.nodeName yet
    POD_NOT_READY = "PodNotReady"  # that Pod is bound but not Ready, or is terminating


class NotPublishable(ValueError):
    """A Container cannot be published; the message says why, `code` says it as a SkipCode."""

    def __init__(self, message: str, code: SkipCode = SkipCode.INVALID_SPEC):
        super().__init__(message)
        self.code = code


# Longest text read from any field, far above any valid value (names are at most 253
# octets, checked where they are used): a 10 MB string is refused here, before it is
# lowercased, split or put whole into a log line.
MAX_TEXT = 1024


def unmounted(reason: str, code: SkipCode) -> tuple[str, SkipCode]:
    """(reason, code) as one tuple shared by every Claim that gives it: most Containers
    give one of a handful (a child mounted, a parent on its node)."""
    held = _UNMOUNTED.get((reason, code))
    if held is None:
        if len(_UNMOUNTED) >= _MAX_UNMOUNTED:
            _UNMOUNTED.clear()  # bounded: tuples handed out stay valid
        held = _UNMOUNTED[(reason, code)] = (reason, code)
    return held


_UNMOUNTED: dict[tuple, tuple] = {}
_MAX_UNMOUNTED = 4096


@dataclass(slots=True)
class Claim:
    """What one Container asks for, once read and checked on its own."""

    key: ObjectKey
    fqdn: str
    created: float
    node: str | None
    mounted_to: str | None  # set only when the Container is effectively mounted
    # Why it is skipped if it turns out to have no node either, and the code that goes
    # with it: one slot, not two. The rules' entry (a Claim with two slots more) takes 96
    # bytes with eight slots and 112 with nine (Python's allocator rounds to 16 bytes):
    # ~1.6 MiB at 100,000 Containers.
    unmounted: tuple[str, SkipCode]

    @property
    def unmounted_reason(self) -> str:
        return self.unmounted[0]

    @property
    def unmounted_code(self) -> SkipCode:
        return self.unmounted[1]

    @property
    def namespace(self) -> str:
        return self.key[0]

    @property
    def name(self) -> str:
        return self.key[1]


# --- one Container on its own -------------------------------------------------------


def _identity(obj) -> tuple[dict, str, str]:
    """(metadata, namespace, name) of a Container or Pod, or NotPublishable."""
    if not isinstance(obj, OBJECT_TYPES):
        raise NotPublishable(f"not an object: {type(obj).__name__}")
    meta = _section(obj, "metadata")
    name = _optional_text(meta, "metadata", "name")
    if name is None:
        raise NotPublishable("no metadata.name")
    return meta, _optional_text(meta, "metadata", "namespace") or DEFAULT_NAMESPACE, name


class ContainerReader:
    """Reads Containers one at a time, remembering what many of them share: the zone
    of a parent domain (every default fqdn in a namespace has the same one) and parsed
    creation timestamps; with 100,000 Containers, work done per object is what counts."""

    def __init__(self, config: RulesConfig, pods: Mapping[ObjectKey, "PodPlacement"] | None = None):
        self.config = config
        self.pods = pods if pods is not None else {}  # the Pods spec.podRef may name, by namespace/name
        self._zones = frozenset(config.zone_names)
        self._zone_of_domain: dict[str, str | None] = {}
        self._times: dict[str, float] = {}

    def read(self, obj) -> Claim:
        """A Container's claim, or NotPublishable saying why it has none."""
        meta, namespace, name = _identity(obj)
        spec = _section(obj, "spec")
        node = _optional_text(spec, "spec", "nodeName")
        pod_ref = _pod_ref(spec)
        if node is not None and pod_ref is not None:
            raise NotPublishable("spec.nodeName and spec.podRef are both set; exactly one may be")
        mounted_to, unmounted_reason = mount_target(spec, _section(obj, "status"), self.config)
        unmounted_code = SkipCode.NOT_MOUNTED
        if pod_ref is not None and mounted_to is None:
            # A Pod-backed parent: its node is the Pod's, while the Pod may carry the name.
            node, unmounted_reason, unmounted_code = self._pod_node(namespace, pod_ref,
                                                                    self.pods.get((namespace, pod_ref)))
        if node is not None and not node.isascii():
            raise NotPublishable(f"spec.nodeName {node!r} is not ASCII")
        key = getattr(obj, "key", None)  # the cache's tuple for a held object: one per Container
        return Claim(key if key == (namespace, name) else (namespace, name), self.fqdn(name, namespace, spec),
                      self.created(meta.get("creationTimestamp")),
                      sys.intern(node.lower()) if node else None,  # few nodes, many Containers
                      mounted_to, unmounted(unmounted_reason, unmounted_code))

    def read_pod(self, obj) -> Claim:
        """A Pod of the pod source as the Claim a Container would make: its annotations
        stand in for spec.fqdn, spec.mountedTo, spec.type and status.deviceStatus, its own
        placement for spec.podRef. Its key is (namespace, "pod/<name>")."""
        meta, namespace, name = _identity(obj)
        annotations = meta.get("annotations") or {}
        if not isinstance(annotations, OBJECT_TYPES):
            raise NotPublishable(f"metadata.annotations must be an object, got {type(annotations).__name__}")
        spec = {"fqdn": annotations.get(FQDN_ANNOTATION), "mountedTo": annotations.get(MOUNTED_TO_ANNOTATION),
                "type": annotations.get(TYPE_ANNOTATION)}
        status = {"deviceStatus": annotations.get(DEVICE_STATUS_ANNOTATION)}
        mounted_to, unmounted_reason = mount_target(spec, status, self.config)
        node, unmounted_code = None, SkipCode.NOT_MOUNTED
        if mounted_to is None:
            read = pod_placement(obj)
            node, unmounted_reason, unmounted_code = self._pod_node(namespace, name, read[1] if read else None)
        return Claim((namespace, POD_KEY_PREFIX + name), self.fqdn(name, namespace, spec),
                     self.created(meta.get("creationTimestamp")), node, mounted_to,
                     unmounted(unmounted_reason, unmounted_code))

    def _pod_node(self, namespace: str, pod: str, placement: "PodPlacement | None"
                  ) -> tuple[str | None, str, SkipCode]:
        """The node of the Pod `namespace`/`pod` if it may carry a name now, else None and
        why not (with its code)."""
        if placement is None:
            return None, f"pod {namespace}/{pod} not found", SkipCode.POD_NOT_FOUND
        if placement.node is None:
            return None, f"pod {namespace}/{pod} is not scheduled to a node", SkipCode.POD_NOT_SCHEDULED
        if placement.terminating:
            return None, f"pod {namespace}/{pod} is terminating", SkipCode.POD_NOT_READY
        if not placement.ready and not self.config.publish_unready_pods:
            return None, f"pod {namespace}/{pod} on node {placement.node} is not Ready", SkipCode.POD_NOT_READY
        return placement.node, "", SkipCode.NOT_MOUNTED

    def fqdn(self, name: str, namespace: str, spec: dict) -> str:
        """The normalized fqdn a Container (or published Pod) claims, or raise NotPublishable."""
        given = _optional_text(spec, "spec", "fqdn")
        raw = given if given is not None else f"{name}.{namespace}.{self.config.default_zone}"
        try:
            fqdn = check_publishable(raw)
        except InvalidName as exc:
            raise NotPublishable(f"invalid fqdn {_shown(raw)}: {exc}", SkipCode.INVALID_NAME) from None
        zone = self._zone_of(fqdn)
        if zone is None:
            raise NotPublishable(f"fqdn {fqdn} is outside the configured zones ({', '.join(self.config.zone_names)})",
                                 SkipCode.OUT_OF_ZONE)
        if zone == fqdn:
            raise NotPublishable(f"fqdn {fqdn} is the apex of zone {zone}, not a name below it", SkipCode.OUT_OF_ZONE)
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


def _pod_ref(spec: dict) -> str | None:
    """The Pod name in spec.podRef ({name: ...}, same namespace), or None when absent."""
    ref = spec.get("podRef")
    if ref is None:
        return None
    if not isinstance(ref, dict):
        raise NotPublishable(f"spec.podRef must be an object, got {type(ref).__name__}")
    name = _optional_text(ref, "spec.podRef", "name")
    if name is None:
        raise NotPublishable("spec.podRef has no name")
    return name


# --- Pods --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PodPlacement:
    """The little of a Pod that decides whether, and where, a name it backs is published."""

    node: str | None  # spec.nodeName, lowercased; None while not scheduled
    ready: bool  # the Ready condition is True
    terminating: bool  # metadata.deletionTimestamp is set


def pod_placement(pod) -> tuple[ObjectKey, PodPlacement] | None:
    """namespace/name and placement of a Pod as listed (whole or slimmed); None for an
    object that cannot be read as a Pod (it then backs nothing: PodNotFound)."""
    if not isinstance(pod, OBJECT_TYPES):
        return None
    meta, spec, status = pod.get("metadata"), pod.get("spec"), pod.get("status")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        return None
    namespace = meta.get("namespace") or DEFAULT_NAMESPACE
    if not isinstance(namespace, str):
        return None
    node = spec.get("nodeName") if isinstance(spec, dict) else None
    if not isinstance(node, str) or not node or len(node) > MAX_TEXT or not node.isascii():
        node = None
    ready = False
    conditions = status.get("conditions") if isinstance(status, dict) else None
    for condition in conditions if isinstance(conditions, list) else ():
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            ready = condition.get("status") == "True"
    # Interned: a node's name is shared by every Pod and Claim on it (few nodes, many Pods).
    return (namespace, meta["name"]), PodPlacement(sys.intern(node.lower()) if node else None, ready,
                                                   bool(meta.get("deletionTimestamp")))


def is_published_pod(pod) -> bool:
    """A Pod the pod source publishes: labelled mountdns.io/publish=true."""
    meta = pod.get("metadata") if isinstance(pod, OBJECT_TYPES) else None
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return isinstance(labels, dict) and labels.get(PUBLISH_LABEL) == PUBLISH_VALUE


def pod_placements(pods: Iterable) -> dict[ObjectKey, PodPlacement]:
    placements = {}
    for pod in pods:
        read = pod_placement(pod)
        if read is not None:
            placements[read[0]] = read[1]
    return placements


def mount_target(spec: dict, status: dict, config: RulesConfig) -> tuple[str | None, str]:
    """The name in spec.mountedTo if the Container is effectively mounted, else None and
    why it is not (for the skip reason of a Container that has no node either)."""
    target = _optional_text(spec, "spec", "mountedTo")
    device_status = _optional_text(status, "status", "deviceStatus")
    kind = _optional_text(spec, "spec", "type")
    if target is None:
        return None, "no spec.nodeName and not mounted"
    if device_status != config.mounted_status:
        shown = "unset" if device_status is None else repr(device_status)
        return None, (f"no spec.nodeName and not mounted (status.deviceStatus is {shown}, "
                      f"not {config.mounted_status!r})")
    if config.mount_types and kind not in config.mount_types:
        return None, f"no spec.nodeName and not mounted (spec.type {kind!r} cannot be mounted)"
    return target, ""


def _section(obj: dict, part: str) -> Mapping:
    """metadata, spec or status: a mapping, or absent (an empty one). A held Container's
    is read in place (FlatObject.part), not built."""
    if type(obj) is FlatObject:
        found = obj.part(part)
        if found is not None:
            return found
    value = obj.get(part)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise NotPublishable(f"{part} must be an object, got {type(value).__name__}")
    return value


def _optional_text(section: dict, part: str, key: str) -> str | None:
    """The string at `part`.`key`; None when absent or empty; NotPublishable(InvalidSpec)
    when of another type or too long."""
    value = section.get(key)
    if type(value) is str and 0 < len(value) <= MAX_TEXT:
        return value  # the common case first: seven fields of 100,000 objects per full batch
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise NotPublishable(f"{part}.{key} must be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise NotPublishable(f"{part}.{key} is longer than {MAX_TEXT} characters ({len(value)})")
    return value


def _epoch(moment: datetime) -> float:
    # Kubernetes writes UTC; a naive time from a hand-written manifest is taken as UTC too.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


# --- Nodes -----------------------------------------------------------------------------


_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def special_address_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What makes `address` unfit for a published record (it would point clients at
    themselves, at everyone or at nothing), or None for an ordinary address."""
    if address.is_unspecified:
        return "unspecified"
    if address == _BROADCAST:
        return "broadcast"
    if address.is_multicast:
        return "multicast"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    mapped = getattr(address, "ipv4_mapped", None)
    return special_address_kind(mapped) if mapped is not None else None


def node_addresses(node: Mapping, address_types: Iterable[str], allow_special: bool = False,
                   ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The Node's usable addresses (IPv4 before IPv6, each once, in canonical spelling)
    and the addresses of the wanted types it had to ignore (shown with why).

    Only IP strings count: `ipaddress` would also take the integer 16909060 as 1.2.3.4,
    which no kubelet writes. A status or address list of the wrong shape gives no
    addresses and one ignored entry saying so."""
    wanted = set(address_types)
    usable: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    ignored: list[str] = []
    status = node.get("status")
    entries = status.get("addresses") if isinstance(status, dict) else None
    if status is not None and not isinstance(status, dict):
        return (), (f"status is a {type(status).__name__}, not an object",)
    if entries is not None and not isinstance(entries, list):
        return (), (f"status.addresses is a {type(entries).__name__}, not a list",)
    for entry in entries or ():
        if not isinstance(entry, dict) or entry.get("type") not in wanted:
            continue
        raw = entry.get("address")
        if not isinstance(raw, str) or len(raw) > 64:
            ignored.append(_shown(raw))
            continue
        try:
            address = ipaddress.ip_address(raw)
        except ValueError:
            ignored.append(_shown(raw))
            continue
        if getattr(address, "scope_id", None):
            ignored.append(_shown(raw))  # a link-local scope cannot go into an AAAA record
            continue
        special = None if allow_special else special_address_kind(address)
        if special:
            ignored.append(f"{_shown(raw)} ({special})")
            continue
        usable.add(address)
    ordered = sorted(usable, key=lambda a: (a.version, int(a)))
    return tuple(str(a) for a in ordered), tuple(ignored)


def _shown(value) -> str:
    """A value for a log line: repr, cut short (a 10 MB string must not become a log line)."""
    text = repr(value)
    return text if len(text) <= 300 else text[:297] + "..."


def ipv4_first(addresses: Iterable[str]) -> tuple[str, ...]:
    parsed = (ipaddress.ip_address(a) for a in addresses)
    return tuple(str(a) for a in sorted(parsed, key=lambda a: (a.version, int(a))))

"""Reading Kubernetes objects: from a Container or Node as the API returns it to the
few checked values the rules work with.

Everything that can be wrong with one object on its own (a missing name, a field of the
wrong type, an fqdn outside the zones, an unreadable address) is found here and raised as
`NotPublishable`; `sync.rules` then decides between objects (conflicts, mounts, cycles).
Pure: no Redis, no Kubernetes client.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Mapping

from mountdns.names import InvalidName, containing_zone, normalize
from mountdns.records import Zone

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


class NotPublishable(ValueError):
    """A Container cannot be published; the message says why, `code` says it in one
    CamelCase word (the reason of its Published condition)."""

    def __init__(self, message: str, code: str = "InvalidSpec"):
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class Claim:
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


class ContainerReader:
    """Reads Containers one at a time, remembering what many of them share: the zone
    of a parent domain (every default fqdn in a namespace has the same one) and parsed
    creation timestamps; with 100,000 Containers, work done per object is what counts."""

    def __init__(self, config: RulesConfig):
        self.config = config
        self._zones = frozenset(config.zone_names)
        self._zone_of_domain: dict[str, str | None] = {}
        self._times: dict[str, float] = {}

    def read(self, obj: dict) -> Claim:
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        namespace = meta.get("namespace") or DEFAULT_NAMESPACE
        if not name or not isinstance(name, str):
            raise NotPublishable("no metadata.name")
        spec = obj.get("spec") or {}
        node = _optional_text(spec, "nodeName")
        mounted_to, unmounted_reason = mount_target(spec, obj.get("status") or {}, self.config)
        return Claim((namespace, name), self.fqdn(name, namespace, spec),
                      self.created(meta.get("creationTimestamp")),
                      node.lower() if node else None, mounted_to, unmounted_reason)

    def fqdn(self, name: str, namespace: str, spec: dict) -> str:
        """The normalized fqdn a Container claims, or raise NotPublishable."""
        given = spec.get("fqdn")
        raw = given if given not in (None, "") else f"{name}.{namespace}.{self.config.default_zone}"
        try:
            fqdn = normalize(raw)
        except InvalidName as exc:
            raise NotPublishable(f"invalid fqdn {raw!r}: {exc}", "InvalidName") from None
        zone = self._zone_of(fqdn)
        if zone is None:
            raise NotPublishable(f"fqdn {fqdn} is outside the configured zones ({', '.join(self.config.zone_names)})",
                                 "OutOfZone")
        if zone == fqdn:
            raise NotPublishable(f"fqdn {fqdn} is the apex of zone {zone}, not a name below it", "OutOfZone")
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


# --- Nodes -----------------------------------------------------------------------------


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


def ipv4_first(addresses: Iterable[str]) -> tuple[str, ...]:
    parsed = (ipaddress.ip_address(a) for a in addresses)
    return tuple(str(a) for a in sorted(parsed, key=lambda a: (a.version, int(a))))

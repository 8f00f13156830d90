"""The records mountdns publishes, as plain values.

Both processes speak in these types: the sync's rules produce a desired `State`, a store
holds the current one, and the backend resolves names against the same mappings into a
`Resolution`. Nothing here touches Redis or Kubernetes.

The mappings are the seed's three relations, kept apart on purpose:
  parents:  container fqdn -> node name      (answered with A/AAAA)
  children: container fqdn -> parent fqdn    (answered with CNAME)
  nodes:    node name      -> addresses      (one write when a node moves)
"""

from __future__ import annotations

import functools
import time
import zlib
from dataclasses import dataclass, field, replace
from typing import Mapping


@dataclass(frozen=True)
class Zone:
    """A zone's SOA/NS definition. Serial is maintained by the store, not compared."""

    name: str
    nameservers: tuple[str, ...]
    hostmaster: str
    ttl: int = 30
    refresh: int = 3600
    retry: int = 600
    expire: int = 604800
    minimum: int = 30  # negative-answer TTL (RFC 2308)
    serial: int = 0

    @functools.cached_property
    def id(self) -> int:
        """A stable positive id derived from the name: PowerDNS keys its caches by it,
        and deriving it means no counter to lose when Redis is wiped."""
        return (zlib.crc32(self.name.encode()) & 0x7FFFFFFF) or 1

    def definition(self) -> "Zone":
        """The zone without its serial, for comparing what the operator configured."""
        return replace(self, serial=0)

    def soa_content(self) -> str:
        return (
            f"{self.nameservers[0]}. {self.hostmaster}. {self.serial} "
            f"{self.refresh} {self.retry} {self.expire} {self.minimum}"
        )


def initial_serial() -> int:
    """Serial for a zone written for the first time: the clock, so a zone recreated
    after Redis lost its data still moves forward for secondaries."""
    return int(time.time())


@dataclass(frozen=True)
class State:
    """Everything published, as it is (in a store) or should be (planned)."""

    zones: Mapping[str, Zone] = field(default_factory=dict)
    nodes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    parents: Mapping[str, str] = field(default_factory=dict)
    children: Mapping[str, str] = field(default_factory=dict)
    # A store's bounded read (read_state's `extra_limit`) that stopped gathering records
    # the desired state does not have: the store holds more than this state shows.
    more_extra: bool = False

    def name_count(self) -> int:
        return len(self.parents) + len(self.children)


@dataclass(frozen=True)
class Resolution:
    """What a store knows about one name, fetched in one round trip.

    kind: "outside" (in no zone), "apex", "parent", "child" or "none" (in a zone,
    but owns no record). `addresses` are the parent's node addresses (possibly empty
    when the node is unknown), `target` the child's parent fqdn.
    """

    kind: str
    zone: Zone | None = None
    addresses: tuple[str, ...] = ()
    target: str = ""


OUTSIDE = Resolution("outside")

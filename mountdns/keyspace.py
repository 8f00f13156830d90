"""The Redis keyspace: the contract between the sync daemon and the DNS backend.

This module is the only place that spells a Redis key. Keys are meant to be read by a
person with redis-cli (names lowercased, no trailing dot):

  {prefix}zones              SET    zone names                      smembers mountdns:zones
  {prefix}zone:<zone>        HASH   nameservers, hostmaster, ttl, refresh, retry,
                                    expire, minimum, serial
  {prefix}parent:<fqdn>      STRING node name                       get mountdns:parent:container_a_0.domain.foo.bar
  {prefix}child:<fqdn>       STRING parent fqdn                     get mountdns:child:container_d_0.domain.foo.bar
  {prefix}node:<node>        STRING addresses, space separated      get mountdns:node:node-1
  {prefix}announcements      STREAM names each batch changed        xrevrange mountdns:announcements + - count 5

A node moving to a new address is one SET of its node key: parents point at the node
by name and children at their parent by name, so neither changes.

Reading and writing these keys is `mountdns.store.redis_store`'s job; this module only
names them and encodes their values.
"""

from __future__ import annotations

import re
from typing import Iterable

from mountdns.records import Zone

DEFAULT_PREFIX = "mountdns:"
ZONE_FIELDS = ("nameservers", "hostmaster", "ttl", "refresh", "retry", "expire", "minimum", "serial")


class Keys:
    """Builds every key name from one prefix."""

    def __init__(self, prefix: str = DEFAULT_PREFIX):
        if not prefix or re.search(r"[*?\[\]\s]", prefix):
            raise ValueError(f"key prefix {prefix!r} must be non-empty without glob characters or spaces")
        self.prefix = prefix
        self.zones = prefix + "zones"

    def zone(self, name: str) -> str:
        return f"{self.prefix}zone:{name}"

    def parent(self, fqdn: str) -> str:
        return f"{self.prefix}parent:{fqdn}"

    def child(self, fqdn: str) -> str:
        return f"{self.prefix}child:{fqdn}"

    def node(self, name: str) -> str:
        return f"{self.prefix}node:{name}"

    @property
    def announcements(self) -> str:
        """The stream on which the sync announces the names each batch changed (see
        mountdns.announce); backends follow it to purge their PowerDNS caches."""
        return self.prefix + "announcements"

    def pattern(self, kind: str, suffix: str = "") -> str:
        """SCAN pattern for all keys of `kind` ("parent", "child", "node"), optionally
        only names ending in `suffix`."""
        return f"{self.prefix}{kind}:*{_glob_escape(suffix)}"

    def strip(self, kind: str, key: bytes | str) -> str:
        key = key.decode() if isinstance(key, bytes) else key
        return key[len(self.prefix) + len(kind) + 1:]


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def encode_addresses(addresses: Iterable[str]) -> str:
    return " ".join(addresses)


def decode_addresses(raw: bytes | str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    raw = raw.decode() if isinstance(raw, bytes) else raw
    return tuple(raw.split())


def zone_from_hash(name: str, fields: dict) -> Zone:
    """A Zone from its Redis hash (bytes or str keys and values)."""
    f = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
         for k, v in fields.items()}
    return Zone(
        name=name,
        nameservers=tuple(f.get("nameservers", "").split()),
        hostmaster=f.get("hostmaster", ""),
        ttl=int(f.get("ttl", 30)),
        refresh=int(f.get("refresh", 3600)),
        retry=int(f.get("retry", 600)),
        expire=int(f.get("expire", 604800)),
        minimum=int(f.get("minimum", 30)),
        serial=int(f.get("serial", 0)),
    )


def zone_to_hash(zone: Zone) -> dict[str, str]:
    """The hash fields an operator configures (serial is left to the store)."""
    return {
        "nameservers": " ".join(zone.nameservers),
        "hostmaster": zone.hostmaster,
        "ttl": str(zone.ttl),
        "refresh": str(zone.refresh),
        "retry": str(zone.retry),
        "expire": str(zone.expire),
        "minimum": str(zone.minimum),
    }

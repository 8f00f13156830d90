"""The Redis keyspace: the contract between the sync daemon and the DNS backend.

This module is the only place that spells a Redis key (the Lua scripts of
`mountdns.store.scripts` follow the same spelling). Keys are meant to be read by a person
with redis-cli (names lowercased, no trailing dot):

  {prefix}zones                 SET    zone names                   smembers mountdns:zones
  {prefix}zone:<zone>           HASH   nameservers, hostmaster, ttl, refresh, retry,
                                       expire, minimum, serial, owner (who defined it)
  {prefix}zone-owners:<zone>    SET    owner ids publishing in the zone
  {prefix}parent:<fqdn>         STRING <owner>/<node>             get mountdns:parent:container_a_0.domain.foo.bar
  {prefix}child:<fqdn>          STRING <owner>/<parent fqdn>      get mountdns:child:container_d_0.domain.foo.bar
  {prefix}node:<owner>/<node>   STRING addresses, space separated get mountdns:node:default/node-1
  {prefix}fence:<owner>         STRING the newest writer's term   get mountdns:fence:default
  {prefix}marker:<owner>        STRING when the owner last wrote everything (unix time)
  {prefix}announcements         STREAM names each batch changed   xrevrange mountdns:announcements + - count 5

A node moving to a new address is one SET of its node key: parents point at the node
by name and children at their parent by name, so neither changes.

Owners. Syncs of several clusters (or namespaces) may share one Redis and one prefix, each
with its own owner id (`--owner-id`, a DNS label; replicas of one sync share theirs). A
name's value starts with the id of the owner that wrote it, and a sync never overwrites
or deletes a name another owner holds: the first writer keeps it. Node keys carry the
owner in their name, so equal node names from two clusters never collide; a parent's
value `<owner>/<node>` is exactly its node key's suffix, which keeps a lookup one GET per
step. A value without an owner (written before owners existed) is held by no one: the
first owner to write that name takes it over.

Fencing. A sync that starts leading records its term in its owner's fence key; every
write carries the writer's term and is refused inside Redis when the fence holds a newer
one. The marker key is written with every full write: a sync that finds it gone knows
Redis lost its data (FLUSHALL, a restart without persistence, an empty replica promoted).

Reading and writing these keys is `mountdns.store.redis_store`'s job; this module only
names them and encodes their values.
"""

from __future__ import annotations

import re
from typing import Iterable

from mountdns.records import Zone

DEFAULT_PREFIX = "mountdns:"
DEFAULT_OWNER = "default"
OWNER_SEPARATOR = "/"
_OWNER_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
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

    def zone_owners(self, name: str) -> str:
        return f"{self.prefix}zone-owners:{name}"

    def node(self, name: str, owner: str = DEFAULT_OWNER) -> str:
        return f"{self.prefix}node:{owner}{OWNER_SEPARATOR}{name}"

    def node_ref(self, ref: str) -> str:
        """The node key a parent's value (`<owner>/<node>`) points at."""
        return f"{self.prefix}node:{ref}"

    def fence(self, owner: str) -> str:
        return f"{self.prefix}fence:{owner}"

    def marker(self, owner: str) -> str:
        return f"{self.prefix}marker:{owner}"

    @property
    def announcements(self) -> str:
        """The stream on which the sync announces the names each batch changed (see
        mountdns.announce); backends follow it to purge their PowerDNS caches."""
        return self.prefix + "announcements"

    def pattern(self, kind: str, suffix: str = "") -> str:
        """SCAN pattern for all keys of `kind` ("parent", "child"), optionally only
        names ending in `suffix`."""
        return f"{self.prefix}{kind}:*{_glob_escape(suffix)}"

    def node_pattern(self, owner: str) -> str:
        """SCAN pattern for the node keys of one owner."""
        return f"{self.prefix}node:{_glob_escape(owner + OWNER_SEPARATOR)}*"

    def strip(self, kind: str, key: bytes | str) -> str:
        key = key.decode() if isinstance(key, bytes) else key
        return key[len(self.prefix) + len(kind) + 1:]


def check_owner(owner: str) -> str:
    """`owner` if it is a valid owner id (a lowercase DNS label), else ValueError."""
    if not isinstance(owner, str) or not _OWNER_RE.match(owner):
        raise ValueError(f"owner id {owner!r} must be a lowercase DNS label (a-z, 0-9, '-', at most 63)")
    return owner


def owned(owner: str, value: str) -> str:
    """A name's stored value: the owner's id, then the value (a node name or an fqdn)."""
    return f"{owner}{OWNER_SEPARATOR}{value}"


def split_owned(raw: bytes | str) -> tuple[str | None, str]:
    """(owner, value) of a stored name value; owner None for a value written without one."""
    raw = raw.decode() if isinstance(raw, bytes) else raw
    owner, sep, value = raw.partition(OWNER_SEPARATOR)
    return (owner, value) if sep else (None, raw)


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

"""DNS name handling in exactly one place.

Every name that enters mountdns (from a Kubernetes object, a PowerDNS request or a
command-line flag) passes through `normalize`, so the Redis keyspace, the lookup and
the sync all agree on one spelling: lowercase, no trailing dot. DNS compares names
case-insensitively (RFC 4343), and `Container_D_0.domain.foo.bar` must find the record
written for `container_d_0.domain.foo.bar`.

Only ASCII letters fold (RFC 4343 defines case for A-Z alone): Python's `str.lower` would
turn the KELVIN SIGN (U+212A) into `k`, so a query for `\u212aontainer...` would have
found `kontainer...`'s record. The sync publishes only `check_publishable` names (ASCII
letters, digits, `-` and `_`); the backend accepts any name PowerDNS asks about and simply
finds nothing for the others.
"""

from __future__ import annotations

import re
from typing import Callable

MAX_NAME_OCTETS = 253  # presentation form without the trailing dot (RFC 1035: 255 on the wire)
MAX_LABEL_OCTETS = 63
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_PUBLISHABLE_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}")
_PUBLISHABLE_NAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")  # label lengths: normalize checks them


class InvalidName(ValueError):
    """A DNS name is empty, too long, or has an empty or too long label."""


def normalize(name: str) -> str:
    """Return `name` lowercased without its trailing dot, or raise InvalidName.

    Underscores and other octets are allowed: the seed's names (`Container_A_0`) are
    not hostnames, and PowerDNS serves any octets in a label.
    """
    if not isinstance(name, str):
        raise InvalidName(f"name must be a string, got {type(name).__name__}")
    bare = name[:-1] if name.endswith(".") else name
    if not bare:
        raise InvalidName("empty name")
    if len(bare.encode("utf-8", "surrogateescape")) > MAX_NAME_OCTETS:
        raise InvalidName(f"name longer than {MAX_NAME_OCTETS} octets: {bare[:40]}...")
    for label in bare.split("."):
        if not label:
            raise InvalidName(f"empty label in {name!r}")
        if len(label.encode("utf-8", "surrogateescape")) > MAX_LABEL_OCTETS:
            raise InvalidName(f"label longer than {MAX_LABEL_OCTETS} octets in {name!r}")
    # Fast path for the common case; non-ASCII input keeps every non-ASCII character as is.
    lowered = bare.lower() if bare.isascii() else bare.translate(_ASCII_LOWER)
    # A name already normal is returned as is, not as an equal copy: the sync keeps a
    # million of them (the Container's spec and the desired records share one string).
    return bare if lowered == bare else lowered


def check_publishable(name: str) -> str:
    """Return normalized `name` if mountdns may publish it, else raise InvalidName.

    Stricter than `normalize`: every label is 1-63 of ASCII letters, digits, `-` and `_`
    (the seed's `Container_A_0` has `_`), so no wildcard `*`, no escapes, no spaces and no
    non-ASCII, which PowerDNS and resolvers spell in different ways.
    """
    fqdn = normalize(name)
    if _PUBLISHABLE_NAME.fullmatch(fqdn):
        return fqdn  # one match for the whole name: the sync checks 100,000 of them per full batch
    for label in fqdn.split("."):
        if not _PUBLISHABLE_LABEL.fullmatch(label):
            shown = label if len(label) <= 40 else label[:40] + "..."
            raise InvalidName(f"label {shown!r} may hold only ASCII letters, digits, '-' and '_'")
    raise InvalidName(f"{fqdn[:60]!r} may hold only ASCII letters, digits, '-' and '_' in its labels")


def as_absolute(name: str) -> str:
    """`name` as given (its case kept), ending in exactly the one dot a fully qualified
    name has: how PowerDNS wants an owner name echoed back."""
    return name if name.endswith(".") else name + "."


def absolute(name: str) -> str:
    """The normalized name with its trailing dot, as PowerDNS and zone files want it."""
    return name + "."


def is_within(name: str, zone: str) -> bool:
    """True when normalized `name` is `zone` or lies below it."""
    return name == zone or name.endswith("." + zone)


def containing_zone(name: str, zones) -> str | None:
    """The longest zone of `zones` that `name` lies in, or None."""
    best = None
    for zone in zones:
        if is_within(name, zone) and (best is None or len(zone) > len(best)):
            best = zone
    return best


def zone_finder(zones) -> Callable[[str], str | None]:
    """`containing_zone` for many names: a function of a name, remembering the answer for
    each parent domain (everything after the first label). A batch of a million names
    has a handful of parent domains, and asking each name's zone by comparing it with
    every zone took seconds. The longest zone a name lies in is the name itself when it
    is a zone, else the one its parent domain lies in."""
    zones = frozenset(zones)
    known: dict[str, str | None] = {}

    def find(name: str) -> str | None:
        if name in zones:
            return name
        parent = name.partition(".")[2]
        if not parent:
            return containing_zone(name, zones)
        try:
            return known[parent]
        except KeyError:
            found = known[parent] = containing_zone(parent, zones)
            return found
    return find

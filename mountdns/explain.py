"""Why a name resolves, or does not: the chain the backend follows, told step by step.

An operator asking "why does NAME not answer?" otherwise replays the backend's lookup by
hand with redis-cli. `explain` replays it from what Redis holds: the zone NAME lies in,
then, name after name, the child key (a CNAME to its parent's name) or the parent key
(`<owner>/<node>`), and for a parent its node key with the addresses. Every step lists
the keys it read and what they held, and names the owner that wrote it. When the chain
does not end at addresses, `missing` says what the keyspace lacks.

Pure: keys are read through a `Reader` (three read-only Redis commands), built by
mountdns.keyspace; the CLI (mountdns/cli.py) passes a Redis client and prints the result.
The order of reads is the backend's (mountdns.store.scripts.RESOLVE_SCRIPT): child
before parent, so what this says is what PowerDNS would be told.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol

from mountdns.keyspace import Keys, decode_addresses, split_owned
from mountdns.names import InvalidName, containing_zone, normalize

# The sync publishes mounts nested up to 8 levels; a longer chain (or a loop, which the
# sync never writes but a hand edit could) is reported rather than followed for ever.
MAX_STEPS = 16


class Reader(Protocol):
    """The read-only Redis commands explain needs (redis.Redis has them)."""

    def get(self, key: str): ...
    def smembers(self, key: str): ...
    def hgetall(self, key: str): ...


@dataclass(frozen=True)
class Read:
    """One key read: the command, the key, and what it held (None: no such key)."""

    command: str
    key: str
    value: str | list[str] | dict[str, str] | None


@dataclass
class Step:
    """One name of the chain and what Redis says about it."""

    name: str
    kind: str = "missing"
    """'parent', 'child', 'apex' (the zone's own name), 'outside' (no zone) or 'missing'."""
    zone: str | None = None
    owner: str | None = None
    """The owner id in the name's value (None: written without one, or not written)."""
    target: str | None = None
    """A child's parent name."""
    node: str | None = None
    """A parent's node, as `<owner>/<node>` (its node key's suffix)."""
    addresses: list[str] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)


@dataclass
class Explanation:
    name: str
    published: bool
    steps: list[Step]
    addresses: list[str]
    """What the chain ends at: the A/AAAA addresses PowerDNS would serve."""
    missing: str | None = None
    """When not published: what the keyspace lacks, in words."""
    notes: list[str] = field(default_factory=list)
    """Facts worth knowing that do not stop the name resolving (another owner holds it)."""

    def to_dict(self) -> dict:
        return asdict(self)


class ExplainError(ValueError):
    """The name given to explain is not a DNS name."""


def _text(raw) -> str:
    return raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw


def explain(name: str, reader: Reader, keys: Keys, *, owner: str | None = None) -> Explanation:
    """Follow `name` through the keyspace as the backend and PowerDNS do. With `owner`,
    a step held by a different owner is noted (it still resolves: the first writer keeps
    a name)."""
    try:
        qname = normalize(name)
    except InvalidName as exc:
        raise ExplainError(f"{name!r} is not a DNS name: {exc}") from exc
    zones_raw = reader.smembers(keys.zones)
    zones = sorted(_text(z) for z in zones_raw)
    zones_read = Read("SMEMBERS", keys.zones, zones)

    steps: list[Step] = []
    seen: set[str] = set()
    current = qname
    while True:
        step = Step(name=current, reads=[zones_read])
        steps.append(step)
        result = _explain_step(step, reader, keys, zones, owner)
        if result is not None:  # the chain ends here, published or not
            published, missing, notes = result
            break
        seen.add(current)
        current = step.target
        if current in seen:
            published, missing, notes = False, f"the chain loops back to {current}", []
            break
        if len(steps) >= MAX_STEPS:
            published, missing, notes = False, f"the chain is longer than {MAX_STEPS} names", []
            break

    all_notes = [n for s in steps for n in _owner_notes(s, owner)] + notes
    return Explanation(name=qname, published=published, steps=steps,
                       addresses=list(steps[-1].addresses) if published else [],
                       missing=None if published else missing, notes=all_notes)


def _explain_step(step: Step, reader: Reader, keys: Keys, zones: list[str], owner: str | None):
    """Fill `step`; (published, missing, notes) when the chain ends at it, None when it
    continues at step.target."""
    name = step.name
    step.zone = containing_zone(name, zones)
    if step.zone is None:
        step.kind = "outside"
        where = ", ".join(zones) if zones else "none: no zone is published"
        return False, f"{name} lies in no zone mountdns serves (zones: {where})", []
    zone_key = keys.zone(step.zone)
    zone_fields = {_text(k): _text(v) for k, v in reader.hgetall(zone_key).items()}
    step.reads.append(Read("HGETALL", zone_key, zone_fields or None))
    if not zone_fields:
        return False, f"zone {step.zone} is listed in {keys.zones} but its hash {zone_key} is missing", []
    if name == step.zone:
        step.kind = "apex"
        step.owner = zone_fields.get("owner")
        return True, None, []

    child_key = keys.child(name)
    child = reader.get(child_key)
    step.reads.append(Read("GET", child_key, None if child is None else _text(child)))
    if child is not None:
        step.kind = "child"
        step.owner, step.target = split_owned(child)
        return None

    parent_key = keys.parent(name)
    parent = reader.get(parent_key)
    step.reads.append(Read("GET", parent_key, None if parent is None else _text(parent)))
    if parent is None:
        return False, (f"{name} is neither a child nor a parent: no {child_key} and no {parent_key} "
                       "(the sync has not published it; see the Container's Published condition)"), []
    step.kind = "parent"
    step.owner, _ = split_owned(parent)
    step.node = _text(parent)
    node_key = keys.node_ref(step.node)
    node = reader.get(node_key)
    step.reads.append(Read("GET", node_key, None if node is None else _text(node)))
    if node is None:
        return False, (f"parent {name} points at node {step.node}, but {node_key} does not exist "
                       "(the Node is not listed, or no longer)"), []
    step.addresses = list(decode_addresses(node))
    if not step.addresses:
        return False, (f"parent {name} points at node {step.node}, whose key {node_key} holds no address "
                       "(the Node has no address of the sync's --node-address-type)"), []
    return True, None, []


def _owner_notes(step: Step, owner: str | None) -> list[str]:
    if step.kind in ("child", "parent") and step.owner is None:
        return [f"{step.name} was written without an owner: the first owner to write it takes it over"]
    if owner is not None and step.kind in ("child", "parent") and step.owner != owner:
        return [f"{step.name} is held by owner {step.owner!r}, not {owner!r}: "
                f"a sync with --owner-id={owner} leaves it alone"]
    return []


def render_text(explanation: Explanation) -> str:
    """For a person at a terminal: the verdict, then each step and the keys it read."""
    chain = " -> ".join(s.name for s in explanation.steps)
    if explanation.published:
        ends = ", ".join(explanation.addresses) if explanation.addresses else "SOA/NS (zone apex)"
        lines = [f"{explanation.name}: published: {chain} -> {ends}"]
    else:
        lines = [f"{explanation.name}: NOT published: {explanation.missing}"]
    shown: set[tuple[str, str]] = set()  # the zone set and hash, read again at every step, once
    for i, step in enumerate(explanation.steps, 1):
        what = {"child": f"child, CNAME to {step.target}",
                "parent": f"parent on node {step.node}" + (f": {', '.join(step.addresses)}" if step.addresses else ""),
                "apex": "the zone's apex (SOA, NS)",
                "outside": "outside every zone",
                "missing": "not in the keyspace"}[step.kind]
        owner = f"  owner {step.owner}" if step.owner else ("  no owner" if step.kind in ("child", "parent") else "")
        zone = f"  zone {step.zone}" if step.zone else ""
        lines.append(f"  {i}. {step.name}: {what}{zone}{owner}")
        for read in step.reads:
            if (read.command, read.key) in shown:
                continue
            shown.add((read.command, read.key))
            lines.append(f"       {read.command} {read.key} -> {_show(read.value)}")
    lines += [f"  note: {n}" for n in explanation.notes]
    return "\n".join(lines)


def _show(value) -> str:
    if value is None:
        return "(nil)"
    if isinstance(value, list):
        return "{" + ", ".join(value) + "}" if value else "(empty)"
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in sorted(value.items()))
    return repr(value)

"""A benchmark topology, generated: the same names as a mountdns `State`, as a BIND zone
file (for PowerDNS's bind backend, the reference) and as a dnsperf query file.

Default size (issue "Benchmarks and speed"): 10,000 parents spread over 100 nodes,
10,000 mounted children (child i -> parent i) in zone domain.foo.bar, and 1,000 names
that do not exist, which the query mix asks for to exercise the NXDOMAIN path.
Everything is deterministic: the same arguments give the same files byte for byte.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import redis

from mountdns.store.redis_store import RedisStore
from mountdns.names import absolute
from mountdns.plan import Changes, diff
from mountdns.records import State, Zone

ZONE_NAME = "domain.foo.bar"
DEFAULT_SEED = 20240131


def bench_zone(name: str = ZONE_NAME) -> Zone:
    return Zone(name=name, nameservers=(f"ns1.{name}",), hostmaster=f"hostmaster.{name}", ttl=30)


def node_address(index: int, generation: int = 0) -> str:
    """A distinct IPv4 address per node (and per generation, for moves); never .0."""
    return f"10.{generation % 256}.{index // 250}.{index % 250 + 1}"


@dataclass(frozen=True)
class Topology:
    """A State plus the names the queries ask for, grouped by what they are."""

    state: State
    zone: Zone
    parents: tuple[str, ...]
    children: tuple[str, ...]
    missing: tuple[str, ...]

    def names(self, kind: str) -> tuple[str, ...]:
        return {"parent": self.parents, "child": self.children, "missing": self.missing}[kind]


def generate(parents: int = 10_000, nodes: int = 100, children: int = 10_000, missing: int = 1_000,
             zone_name: str = ZONE_NAME) -> Topology:
    """Parents round-robin over `nodes`; child i mounts parent i (mod parents)."""
    if parents < 1 or nodes < 1:
        raise ValueError("a topology needs at least one parent and one node")
    zone = bench_zone(zone_name)
    node_names = [f"node-{n}" for n in range(nodes)]
    node_map = {name: (node_address(n),) for n, name in enumerate(node_names)}
    parent_names = tuple(f"parent-{i}.{zone_name}" for i in range(parents))
    child_names = tuple(f"child-{i}.{zone_name}" for i in range(children))
    missing_names = tuple(f"missing-{i}.{zone_name}" for i in range(missing))
    state = State(
        zones={zone_name: zone},
        nodes=node_map,
        parents={p: node_names[i % nodes] for i, p in enumerate(parent_names)},
        children={c: parent_names[i % parents] for i, c in enumerate(child_names)},
    )
    return Topology(state, zone, parent_names, child_names, missing_names)


def zone_file_text(topology: Topology, serial: int = 1) -> str:
    """The same records as mountdns serves, as a BIND master file (same TTLs, same SOA)."""
    zone, state = topology.zone, topology.state
    lines = [
        f"$ORIGIN {absolute(zone.name)}",
        f"$TTL {zone.ttl}",
        f"@ {zone.ttl} IN SOA {absolute(zone.nameservers[0])} {absolute(zone.hostmaster)} "
        f"{serial} {zone.refresh} {zone.retry} {zone.expire} {zone.minimum}",
    ]
    lines += [f"@ {zone.ttl} IN NS {absolute(ns)}" for ns in zone.nameservers]
    for fqdn, node in state.parents.items():
        for address in state.nodes.get(node, ()):
            rtype = "AAAA" if ":" in address else "A"
            lines.append(f"{absolute(fqdn)} {zone.ttl} IN {rtype} {address}")
    for fqdn, target in state.children.items():
        lines.append(f"{absolute(fqdn)} {zone.ttl} IN CNAME {absolute(target)}")
    return "\n".join(lines) + "\n"


def write_zone_file(topology: Topology, path: Path, serial: int = 1) -> Path:
    path.write_text(zone_file_text(topology, serial))
    return path


def write_named_conf(topology: Topology, zone_path: Path, path: Path) -> Path:
    """The bind-config file PowerDNS's bind backend reads: one primary zone."""
    path.write_text(f'zone "{topology.zone.name}" {{\n  type master;\n  file "{zone_path}";\n}};\n')
    return path


def query_names(topology: Topology, count: int | None = None, mix=(0.45, 0.45, 0.10),
                seed: int = DEFAULT_SEED) -> list[tuple[str, str]]:
    """(kind, name) pairs in the given parent/child/missing mix, shuffled with a fixed seed.

    `count` defaults to enough queries that every parent and child is asked about once
    at the default mix. Names are drawn without repetition while they last, then cycled.
    """
    rng = random.Random(seed)
    if count is None:
        count = round((len(topology.parents) + len(topology.children)) / (mix[0] + mix[1]))
    wanted = [round(count * share) for share in mix]
    wanted[0] += count - sum(wanted)
    pairs = []
    for kind, n in zip(("parent", "child", "missing"), wanted):
        pool = list(topology.names(kind))
        if not pool or n <= 0:
            continue
        rng.shuffle(pool)
        pairs += [(kind, pool[i % len(pool)]) for i in range(n)]
    rng.shuffle(pairs)
    return pairs


def write_query_file(path: Path, pairs, qtype: str = "A") -> Path:
    """A dnsperf data file: one `name qtype` a line."""
    path.write_text("".join(f"{name} {qtype}\n" for _, name in pairs))
    return path


def load_into_redis(client: redis.Redis, state: State, prefix: str | None = None) -> Changes:
    """Write `state` into an EMPTY keyspace in one transaction (no read, no SCAN)."""
    store = RedisStore(client) if prefix is None else RedisStore(client, prefix=prefix)
    changes = diff(State(), state)
    store.apply(changes)
    return changes

"""Pure answers to PowerDNS's remote-backend methods, from a store.

No HTTP and no Redis here: the functions take a store (RedisStore or MemoryStore) and
return the `result` value PowerDNS expects, so they are tested directly against the
in-memory store. Names arrive normalized (see mountdns.names.normalize).
"""

from __future__ import annotations

from mountdns.names import absolute, containing_zone
from mountdns.records import Resolution, State, Zone


def _record(qtype: str, qname: str, content: str, ttl: int, zone: Zone) -> dict:
    # ttl must be a JSON number (a string silently becomes 0); domain_id is echoed so
    # PowerDNS's query cache keys match.
    return {"qtype": qtype, "qname": qname, "content": content, "ttl": ttl, "domain_id": zone.id}


def address_qtype(address: str) -> str:
    return "AAAA" if ":" in address else "A"


def apex_records(zone: Zone, owner: str) -> list[dict]:
    records = [_record("SOA", owner, zone.soa_content(), zone.ttl, zone)]
    records += [_record("NS", owner, absolute(ns), zone.ttl, zone) for ns in zone.nameservers]
    return records


def records_for(resolution: Resolution, owner: str) -> list[dict]:
    """Every record `owner` has, given what the store knows about it.

    `owner` is the name to put in the answer (as PowerDNS asked it, with trailing dot).
    """
    zone = resolution.zone
    if resolution.kind == "apex":
        return apex_records(zone, owner)
    if resolution.kind == "child":
        return [_record("CNAME", owner, absolute(resolution.target), zone.ttl, zone)]
    if resolution.kind == "parent":
        return [_record(address_qtype(a), owner, a, zone.ttl, zone) for a in resolution.addresses]
    return []


def lookup(store, qname: str, qtype: str, owner: str | None = None) -> list[dict]:
    """Records of normalized `qname` of type `qtype` (ANY: all of them). One store round trip."""
    records = records_for(store.resolve(qname), owner or absolute(qname))
    qtype = qtype.upper()
    if qtype == "ANY":
        return records
    return [r for r in records if r["qtype"] == qtype]


def domain_info(zone: Zone) -> dict:
    return {"id": zone.id, "zone": absolute(zone.name), "kind": "native", "serial": zone.serial,
            "masters": [], "notified_serial": zone.serial}


def all_domains(store) -> list[dict]:
    return [domain_info(z) for z in store.zones()]


def zone_listing(zone: Zone, contents: State) -> list[dict]:
    """The whole zone, for AXFR: SOA and NS at the apex, then every name's records."""
    records = apex_records(zone, absolute(zone.name))
    for fqdn in sorted(contents.parents):
        addresses = contents.nodes.get(contents.parents[fqdn], ())
        records += [_record(address_qtype(a), absolute(fqdn), a, zone.ttl, zone) for a in addresses]
    for fqdn in sorted(contents.children):
        records.append(_record("CNAME", absolute(fqdn), absolute(contents.children[fqdn]), zone.ttl, zone))
    return records


def list_zone(store, zone_name: str) -> list[dict] | bool:
    zones = {z.name: z for z in store.zones()}
    if zone_name not in zones:
        return False
    contents = store.zone_state(zone_name)
    # A delegated-looking subzone we also serve has its own AXFR: leave its names out.
    own = State(
        parents={k: v for k, v in contents.parents.items() if containing_zone(k, zones) == zone_name},
        children={k: v for k, v in contents.children.items() if containing_zone(k, zones) == zone_name},
        nodes=contents.nodes,
    )
    return zone_listing(zones[zone_name], own)

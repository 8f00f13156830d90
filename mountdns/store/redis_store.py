"""The Redis store: published records read and written through the keyspace.

The sync applies a plan's changes here in one MULTI/EXEC; the backend resolves a name
here in one EVALSHA. Key names come from `mountdns.keyspace`, nothing here spells one.
"""

from __future__ import annotations

import functools
import threading
from typing import Iterator

import redis

from mountdns import announce
from mountdns.announce import Announcement
from mountdns.keyspace import DEFAULT_PREFIX, ZONE_FIELDS, Keys, decode_addresses, encode_addresses, zone_from_hash, zone_to_hash
from mountdns.plan import Changes
from mountdns.records import OUTSIDE, Resolution, State, Zone, initial_serial
from mountdns.store import StoreError

_SCAN_BATCH = 2000


# One round trip per lookup, whatever the name turns out to be: find the zone by
# walking up the name, then the child, parent and node keys. The keys are computed
# inside the script from the name, which standalone Redis allows (not Redis Cluster).
RESOLVE_SCRIPT = """
local prefix, qname = ARGV[1], ARGV[2]
local zone = qname
while redis.call('SISMEMBER', prefix .. 'zones', zone) == 0 do
  local dot = string.find(zone, '.', 1, true)
  if not dot then return {'outside'} end
  zone = string.sub(zone, dot + 1)
end
local z = redis.call('HMGET', prefix .. 'zone:' .. zone,
  'nameservers', 'hostmaster', 'ttl', 'refresh', 'retry', 'expire', 'minimum', 'serial')
for i = 1, 8 do if not z[i] then z[i] = '' end end
local kind, value = 'none', ''
if qname == zone then
  kind = 'apex'
else
  local target = redis.call('GET', prefix .. 'child:' .. qname)
  if target then
    kind, value = 'child', target
  else
    local node = redis.call('GET', prefix .. 'parent:' .. qname)
    if node then
      kind = 'parent'
      value = redis.call('GET', prefix .. 'node:' .. node) or ''
    end
  end
end
return {kind, value, zone, z[1], z[2], z[3], z[4], z[5], z[6], z[7], z[8]}
"""


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


@functools.lru_cache(maxsize=256)
def _zone_from_reply(zone_name: bytes, *fields: bytes) -> Zone:
    # Zones change rarely and every lookup carries its zone's fields: parse each version once.
    return zone_from_hash(zone_name.decode(), {f: v for f, v in zip(ZONE_FIELDS, fields) if v != b""})


def resolution_from_reply(reply: list) -> Resolution:
    kind = _text(reply[0])
    if kind == "outside":
        return OUTSIDE
    value = _text(reply[1])
    zone = _zone_from_reply(*(v if isinstance(v, bytes) else v.encode() for v in reply[2:11]))
    if kind == "parent":
        return Resolution("parent", zone, addresses=decode_addresses(value))
    if kind == "child":
        return Resolution("child", zone, target=value)
    return Resolution(kind, zone)


class RedisStore:
    """Published records in Redis. The connection is passed in, never global."""

    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX):
        self.redis = client
        self.keys = Keys(prefix)
        self._resolve = client.register_script(RESOLVE_SCRIPT)
        # EVALSHA <sha> 0 <prefix> <qname> in RESP, all but the name encoded once.
        sha, prefix_arg = self._resolve.sha.encode(), prefix.encode()
        self._resolve_command_head = b"*5\r\n$7\r\nEVALSHA\r\n$%d\r\n%s\r\n$1\r\n0\r\n$%d\r\n%s\r\n" % (
            len(sha), sha, len(prefix_arg), prefix_arg)
        self._local = threading.local()

    # -- reading -----------------------------------------------------------------
    def resolve(self, qname: str) -> Resolution:
        """Everything about normalized `qname` in one round trip (EVALSHA)."""
        try:
            try:
                reply = self._evalsha_resolve(qname)
            except (redis.ConnectionError, OSError):
                # Once more on a new connection: an idle one may have been closed under us
                # (Sentinel kills every client of a replica it promotes; Redis restarts).
                reply = self._evalsha_resolve(qname)
        except redis.exceptions.NoScriptError:
            # Redis restarted or was flushed of scripts: load it again (EVAL does).
            try:
                reply = self._resolve(args=[self.keys.prefix, qname])
            except redis.RedisError as exc:
                raise StoreError(f"redis lookup of {qname!r} failed: {exc}") from exc
        except redis.RedisError as exc:
            raise StoreError(f"redis lookup of {qname!r} failed: {exc}") from exc
        return resolution_from_reply(reply)

    def _evalsha_resolve(self, qname: str):
        """EVALSHA on this thread's own connection. The lookup is the hot path, and the
        client's generic machinery (pool bookkeeping with a readiness poll per command,
        retries, response callbacks) costs more CPU than the Redis round trip itself."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            pool = self.redis.connection_pool
            connection = pool.connection_class(**pool.connection_kwargs)
            connection.connect()  # where a Sentinel-managed connection asks for the primary
            self._local.connection = connection
        name = qname.encode()
        try:
            connection.send_packed_command(
                [b"%s$%d\r\n%s\r\n" % (self._resolve_command_head, len(name), name)], False)
            return connection.read_response()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            connection.disconnect()  # a half-read reply is dropped
            self._local.connection = None  # a new one next call (with Sentinel: the primary now)
            raise

    def zones(self) -> list[Zone]:
        try:
            names = sorted(_text(n) for n in self.redis.smembers(self.keys.zones))
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                pipe.hgetall(self.keys.zone(name))
            hashes = pipe.execute()
        except redis.RedisError as exc:
            raise StoreError(f"redis read of zones failed: {exc}") from exc
        return [zone_from_hash(n, h) for n, h in zip(names, hashes) if h]

    def zone(self, name: str) -> Zone | None:
        return next((z for z in self.zones() if z.name == name), None)

    def _scan_values(self, kind: str, suffix: str = "") -> Iterator[tuple[str, str]]:
        keys = list(self.redis.scan_iter(match=self.keys.pattern(kind, suffix), count=_SCAN_BATCH))
        for start in range(0, len(keys), _SCAN_BATCH):
            chunk = keys[start:start + _SCAN_BATCH]
            for key, value in zip(chunk, self.redis.mget(chunk)):
                if value is not None:  # deleted between SCAN and MGET
                    yield self.keys.strip(kind, key), _text(value)

    def read_state(self) -> State:
        """The whole published state (SCAN + MGET), for diffing against a desired one."""
        try:
            return State(
                zones={z.name: z for z in self.zones()},
                nodes={n: decode_addresses(v) for n, v in self._scan_values("node")},
                parents=dict(self._scan_values("parent")),
                children=dict(self._scan_values("child")),
            )
        except redis.RedisError as exc:
            raise StoreError(f"redis read of the published state failed: {exc}") from exc

    def zone_state(self, zone: str) -> State:
        """The records of one zone (for AXFR): its names and the nodes they use."""
        try:
            suffix = "." + zone
            parents = {k: v for k, v in self._scan_values("parent", suffix)}
            children = {k: v for k, v in self._scan_values("child", suffix)}
            node_names = sorted(set(parents.values()))
            values = self.redis.mget([self.keys.node(n) for n in node_names]) if node_names else []
        except redis.RedisError as exc:
            raise StoreError(f"redis read of zone {zone!r} failed: {exc}") from exc
        nodes = {n: decode_addresses(v) for n, v in zip(node_names, values) if v is not None}
        return State(parents=parents, children=children, nodes=nodes)

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    # -- writing -----------------------------------------------------------------
    def apply(self, changes: Changes, pipeline: redis.client.Pipeline | None = None,
              announcement: Announcement | None = None) -> None:
        """Write a batch in one MULTI/EXEC: a reader never sees half of it. An
        `announcement` of the names it changes goes in the same transaction.

        Given a `pipeline`, the commands are queued on it and the caller executes it.
        """
        if changes.empty and not changes.bump_serials:
            return
        pipe = pipeline if pipeline is not None else self.redis.pipeline(transaction=True)
        k = self.keys
        for name, zone in changes.zones_put.items():
            pipe.sadd(k.zones, name)
            pipe.hset(k.zone(name), mapping=zone_to_hash(zone))
            pipe.hsetnx(k.zone(name), "serial", initial_serial())
        for name in changes.zones_delete:
            pipe.srem(k.zones, name)
            pipe.delete(k.zone(name))
        for name, addresses in changes.nodes_put.items():
            pipe.set(k.node(name), encode_addresses(addresses))
        for name, node in changes.parents_put.items():
            pipe.set(k.parent(name), node)
        for name, target in changes.children_put.items():
            pipe.set(k.child(name), target)
        deletes = (
            [k.node(n) for n in changes.nodes_delete]
            + [k.parent(n) for n in changes.parents_delete]
            + [k.child(n) for n in changes.children_delete]
        )
        for start in range(0, len(deletes), 1000):
            pipe.delete(*deletes[start:start + 1000])
        for name in sorted(changes.bump_serials):
            pipe.hincrby(k.zone(name), "serial", 1)
        if announcement is not None:
            announce.queue(pipe, k, announcement)
        if pipeline is None:
            try:
                pipe.execute()
            except redis.RedisError as exc:
                raise StoreError(f"redis write of {changes.summary()} failed: {exc}") from exc

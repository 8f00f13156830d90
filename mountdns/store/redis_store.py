"""The Redis store: published records read and written through the keyspace.

The sync applies a plan's changes here in one EVALSHA (a script: fenced by the writer's
term, refusing names other owners hold); the backend resolves a name here in one
EVALSHA. Key names come from `mountdns.keyspace`, nothing here spells one.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from itertools import islice
from typing import Iterator

import redis

from mountdns import announce
from mountdns.announce import Announcement
from mountdns.keyspace import (DEFAULT_OWNER, DEFAULT_PREFIX, ZONE_FIELDS, Keys, check_owner, decode_addresses,
                               encode_addresses, split_owned, zone_from_hash, zone_to_hash)
from mountdns.plan import Changes
from mountdns.records import OUTSIDE, Resolution, State, Zone, initial_serial
from mountdns.store import NOTHING_APPLIED, Applied, DataLost, Fenced, StoreError, UnknownOutcome, chunks
from mountdns.store.like import ExtraRoom, compose
from mountdns.store.scripts import APPLY_SCRIPT, RESOLVE_SCRIPT, TAKE_TERM_SCRIPT

_SCAN_BATCH = 2000  # keys per SCAN page and per MGET: each reply stays small
_NOT_OURS = object()  # a record another owner holds (or none at all)


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
    """Published records in Redis, read and written as one owner. The connection is
    passed in, never global."""

    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX, owner: str = DEFAULT_OWNER,
                 chunk_keys: int = chunks.DEFAULT_CHUNK_KEYS):
        self.redis = client
        if chunk_keys < 1:
            raise ValueError(f"chunk size {chunk_keys} must be at least 1")
        self.chunk_keys = chunk_keys
        self.keys = Keys(prefix)
        self.owner = check_owner(owner)
        self._resolve = client.register_script(RESOLVE_SCRIPT)
        self._apply = client.register_script(APPLY_SCRIPT)
        self._take_term = client.register_script(TAKE_TERM_SCRIPT)
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

    def _scan_values(self, pattern: str) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) of every key matching `pattern`, one SCAN page and its MGET at a
        time: a million keys are never listed at once. SCAN may return a key twice (the
        callers build dicts) and misses none that exists throughout."""
        cursor = None
        while cursor != 0:
            cursor, keys = self.redis.scan(cursor=cursor or 0, match=pattern, count=_SCAN_BATCH)
            if keys:
                for key, value in zip(keys, self.redis.mget(keys)):
                    if value is not None:  # deleted between SCAN and MGET
                        yield key, value

    def _names(self, kind: str, suffix: str = "") -> Iterator[tuple[str, str | None, str]]:
        """(fqdn, owner, value) of every name of `kind` ("parent" or "child")."""
        for key, raw in self._scan_values(self.keys.pattern(kind, suffix)):
            owner, value = split_owned(raw)
            yield self.keys.strip(kind, key), owner, value

    def _own_zones(self) -> dict[str, Zone]:
        names = sorted(_text(n) for n in self.redis.smembers(self.keys.zones))
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self.keys.zone(name))
            pipe.sismember(self.keys.zone_owners(name), self.owner)
        replies = pipe.execute()
        return {n: zone_from_hash(n, h) for n, h, mine in zip(names, replies[::2], replies[1::2]) if h and mine}

    def read_state(self, like: State | None = None, extra_limit: int | None = None) -> State:
        """This owner's published state, for diffing against a desired one: the zones it
        publishes in, its nodes, and the names it holds. Another owner's records are
        never in it, so nothing diffed against it deletes them.

        With `like` (the desired state), the same state, but each record whose value in
        Redis equals `like`'s comes back as `like`'s own key and value objects: a mapping
        Redis holds exactly as `like` has it is `like`'s dict itself, any other a
        read-only mapping over `like`'s and what differs (see `mountdns.store.like`). A
        full read next to a million desired names costs only what differs. The desired
        names are read with MGET, then a SCAN finds the others, a page at a time: no
        reply holds more than a page of keys.

        With `extra_limit`, at most about that many records `like` does not have are
        gathered (see `mountdns.store.like.ExtraRoom`: children first, then parents,
        then nodes and zones); the state says `more_extra` when Redis holds more."""
        like = State() if like is None else like
        room = ExtraRoom(extra_limit)
        owner = self.owner
        node_prefix = len(self.keys.node("", owner))

        def name_value(raw: bytes):
            held_by, value = split_owned(raw)
            return value if held_by == owner else _NOT_OURS

        try:
            zones = self._own_zones()
            # Children first: a bounded read collects a stale child before the stale parent
            # it points at, and a stale parent before its node.
            children = self._read_like(like.children, self.keys.child, self.keys.pattern("child"),
                                       lambda key: self.keys.strip("child", key), name_value, None, room)
            # A parent's value is its node's name: a few thousand values for a million
            # parents, held once each.
            parents = self._read_like(like.parents, self.keys.parent, self.keys.pattern("parent"),
                                      lambda key: self.keys.strip("parent", key), name_value, sys.intern, room)
            # A child's value is its parent's name: a stale child of a stale parent holds
            # the parent's own string (stale names come in families), not a copy.
            stale_parents = {name: name for name in parents[2]}
            stale_children = children[2]
            for name, value in stale_children.items():
                stale_children[name] = stale_parents.get(value, value)
            del stale_parents
            nodes = self._read_like(like.nodes, lambda n: self.keys.node(n, owner), self.keys.node_pattern(owner),
                                    lambda key: _text(key)[node_prefix:], decode_addresses, None, room)
        except redis.RedisError as exc:
            raise StoreError(f"redis read of the published state failed: {exc}") from exc
        return State(zones=room.zones(zones, like.zones), nodes=compose(like.nodes, *nodes),
                     parents=compose(like.parents, *parents), children=compose(like.children, *children),
                     more_extra=room.cut)

    def _read_like(self, desired, key_of, pattern: str, name_of, parse, keep,
                   room: ExtraRoom) -> tuple[list, dict, dict]:
        """One mapping of this owner's records as (missing, differing, extra) against
        `desired` (see `mountdns.store.like`), the names of the first two `desired`'s own.
        `key_of(name)` is a name's key, `name_of(key)` the name back, `parse(raw)` a
        value as stored into the record's value (_NOT_OURS for another owner's), `keep`
        what is done to a fresh value kept; `room` bounds how many extra names are gathered."""
        missing, differing, extra = [], {}, {}
        names = iter(desired)
        while chunk := list(islice(names, _SCAN_BATCH)):
            for name, raw in zip(chunk, self.redis.mget([key_of(n) for n in chunk])):
                value = _NOT_OURS if raw is None else parse(raw)
                if value is _NOT_OURS:
                    missing.append(name)
                elif value != desired[name]:
                    differing[name] = keep(value) if keep else value
        cursor = None
        while cursor != 0:
            if not room.open():
                room.cut = True  # not looked for: there may be more
                break
            cursor, keys = self.redis.scan(cursor=cursor or 0, match=pattern, count=_SCAN_BATCH)
            others = [(key, name) for key, name in zip(keys, map(name_of, keys)) if name not in desired]
            if others:
                for (_, name), raw in zip(others, self.redis.mget([key for key, _ in others])):
                    value = _NOT_OURS if raw is None else parse(raw)  # None: deleted since the SCAN
                    if value is not _NOT_OURS and room.take():
                        extra[name] = keep(value) if keep else value
        return missing, differing, extra

    def zone_state(self, zone: str) -> State:
        """The records of one zone (for AXFR), whoever owns them: its names, and the
        nodes they use keyed by the parents' node references (`<owner>/<node>`)."""
        try:
            suffix = "." + zone
            parents = {self.keys.strip("parent", key): _text(raw)  # values are node references
                       for key, raw in self._scan_values(self.keys.pattern("parent", suffix))}
            children = {n: v for n, _, v in self._names("child", suffix)}
            refs = sorted(set(parents.values()))
            values = self.redis.mget([self.keys.node_ref(r) for r in refs]) if refs else []
        except redis.RedisError as exc:
            raise StoreError(f"redis read of zone {zone!r} failed: {exc}") from exc
        nodes = {r: decode_addresses(v) for r, v in zip(refs, values) if v is not None}
        return State(parents=parents, children=children, nodes=nodes)

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    # -- writing -----------------------------------------------------------------
    def apply(self, changes: Changes, *, term: int | None = None, mark: bool = False,
              require_marker: bool = False, announcement: Announcement | None = None,
              announce_always: bool = False) -> Applied:
        """Write a batch: one script call, or for a batch of more than `chunk_keys` record
        keys several, each of at most that many (see `mountdns.store.chunks`: nodes, then
        parents, then children are put, the reverse deleted, so a lookup between two
        calls only ever reaches complete records). An `announcement` of the names it
        changes is appended to the announcement stream with the last call, when something
        was written or `announce_always`.

        With a `term`, every call is refused inside Redis (Fenced, nothing more written)
        when the owner's fence holds a newer one; a writer fenced before its first call
        writes nothing. `mark` writes the data-loss marker with the last call (a full
        write); `require_marker` refuses a call (DataLost) when the marker is gone, for a
        batch diffed against what was there. Names another owner holds are left alone and
        reported in the result.
        """
        if changes.empty and not changes.bump_serials and not mark and not (announcement and announce_always):
            return NOTHING_APPLIED
        calls = chunks.count(changes, self.chunk_keys)
        refused: set[str] = set()
        zones_elsewhere: set[str] = set()
        wrote = False
        for index, part in enumerate(chunks.pieces(changes, self.chunk_keys)):
            last = index == calls - 1
            try:
                reply = self._apply_chunk(
                    part, changes, term=term, mark=mark and last, require_marker=require_marker,
                    announcement=announcement if last else None, announce_always=announce_always, earlier=wrote)
            except (Fenced, DataLost, UnknownOutcome):
                raise
            except StoreError as exc:
                if index == 0:
                    raise
                # Earlier calls were written and their names not announced yet: the caller
                # must re-read and purge, as for a write whose reply never came.
                raise UnknownOutcome(f"{exc} (after {index} of {calls} calls of the batch were "
                                     "written)") from exc
            refused.update(_text(n) for n in reply[1])
            zones_elsewhere.update(_text(n) for n in reply[2])
            wrote = wrote or bool(int(reply[3]))
        return Applied(owned_elsewhere=frozenset(refused), zones_elsewhere=frozenset(zones_elsewhere))

    def _apply_chunk(self, changes: Changes, whole: Changes, *, term: int | None, mark: bool,
                     require_marker: bool, announcement: Announcement | None, announce_always: bool,
                     earlier: bool) -> list:
        """One script call for one chunk; its reply, or the store's errors."""
        args = [self.keys.prefix, self.owner, "" if term is None else str(int(term)),
                "write" if mark else ("require" if require_marker else ""), str(int(time.time())),
                str(initial_serial()), "1" if earlier else ""]
        args.append(len(changes.zones_put))
        for name, zone in changes.zones_put.items():
            fields = zone_to_hash(zone)
            args.append(name)
            args.extend(fields[f] for f in ZONE_FIELDS[:7])
        args.append(len(changes.zones_delete))
        args.extend(changes.zones_delete)
        args.append(len(changes.nodes_put))
        for name, addresses in changes.nodes_put.items():
            args += (name, encode_addresses(addresses))
        args.append(len(changes.nodes_delete))
        args.extend(changes.nodes_delete)
        for put in (changes.parents_put, changes.children_put):
            args.append(len(put))
            for name, value in put.items():
                args += (name, value)
        for delete in (changes.parents_delete, changes.children_delete):
            args.append(len(delete))
            args.extend(delete)
        args.append(len(changes.bump_serials))
        args.extend(sorted(changes.bump_serials))
        if announcement is None:
            args.append(0)
        else:
            fields = announce.encode(announcement)
            args += (2 if announce_always else 1, announce.MAXLEN, fields["waves"], fields["zones"])
        try:
            reply = self._apply(args=args)
        except (redis.TimeoutError, redis.ConnectionError) as exc:
            raise UnknownOutcome(f"redis write of {whole.summary()}: no reply ({exc}); "
                                 "it may or may not have been applied") from exc
        except redis.RedisError as exc:
            raise StoreError(f"redis write of {whole.summary()} failed: {exc}") from exc
        status = _text(reply[0])
        if status == "fenced":
            raise Fenced(f"redis write of {whole.summary()} refused: owner {self.owner!r} is fenced at "
                         f"term {_text(reply[1])}, this writer has {term}", recorded=int(reply[1]))
        if status == "lost":
            raise DataLost(f"redis write of {whole.summary()} refused: the marker of owner {self.owner!r} "
                           "is gone, Redis lost its data")
        return reply

    def take_term(self, term: int) -> None:
        """Record `term` as this owner's newest writer; Fenced when a newer one is there."""
        try:
            reply = self._take_term(keys=[self.keys.fence(self.owner)], args=[str(int(term))])
        except redis.RedisError as exc:
            raise StoreError(f"redis write of the fence of owner {self.owner!r} failed: {exc}") from exc
        if _text(reply[0]) == "fenced":
            raise Fenced(f"owner {self.owner!r} is fenced at term {_text(reply[1])}, newer than {term}",
                         recorded=int(reply[1]))

    def write_marker(self, *, term: int | None = None) -> None:
        """Write the data-loss marker alone (a full sync that had nothing to change)."""
        self.apply(Changes(), term=term, mark=True)

    def marker_present(self) -> bool:
        try:
            return bool(self.redis.exists(self.keys.marker(self.owner)))
        except redis.RedisError as exc:
            raise StoreError(f"redis read of the marker of owner {self.owner!r} failed: {exc}") from exc

"""The lookups of one event-loop round sent to Redis together.

PowerDNS keeps many connections to the backend, one lookup in flight on each; under
load an event loop finds several of them ready at once. Resolving those one by one
costs a write, a blocking read and two context switches (ours and Redis's) per lookup.
`resolve_many` writes every EVALSHA of the round in one write and reads the replies in
order: still exactly one Redis command per lookup, one round trip per round.
"""

from __future__ import annotations

import redis

from mountdns.records import Resolution
from mountdns.store import StoreError
from mountdns.store.redis_store import RedisStore, resolution_from_reply


class BatchingRedisStore(RedisStore):
    """RedisStore with `resolve_many`: the backend's store (the sync never uses it)."""

    def resolve_many(self, qnames: list[str]) -> list[Resolution | StoreError]:
        """The Resolution of each normalized name, in order, or the StoreError that name
        met. One write and one read of pipelined EVALSHAs, tried once more on a new
        connection after a connection error (as `resolve`)."""
        if len(qnames) == 1:
            try:
                return [self.resolve(qnames[0])]
            except StoreError as exc:
                return [exc]
        try:
            try:
                replies = self._evalsha_many(qnames)
            except (redis.ConnectionError, OSError):
                replies = self._evalsha_many(qnames)
        except redis.RedisError as exc:
            error = StoreError(f"redis lookup of {len(qnames)} names failed: {exc}")
            return [error] * len(qnames)
        results: list[Resolution | StoreError] = []
        for qname, reply in zip(qnames, replies):
            if isinstance(reply, redis.exceptions.NoScriptError):
                # Redis restarted or its scripts were flushed: `resolve` loads it again.
                try:
                    results.append(self.resolve(qname))
                except StoreError as exc:
                    results.append(exc)
            elif isinstance(reply, Exception):
                results.append(StoreError(f"redis lookup of {qname!r} failed: {reply}"))
            else:
                results.append(resolution_from_reply(reply))
        return results

    def _evalsha_many(self, qnames: list[str]) -> list:
        """Every EVALSHA in one write on this thread's connection, then each reply; an
        error reply (a ResponseError) stands in its place, the rest still read so the
        connection stays in step."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            pool = self.redis.connection_pool
            connection = pool.connection_class(**pool.connection_kwargs)
            connection.connect()
            self._local.connection = connection
        head = self._resolve_command_head
        packed = []
        for qname in qnames:
            name = qname.encode()
            packed.append(b"%s$%d\r\n%s\r\n" % (head, len(name), name))
        replies = []
        try:
            connection.send_packed_command([b"".join(packed)], False)
            for _ in qnames:
                try:
                    replies.append(connection.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            connection.disconnect()  # half-read replies are dropped with it
            self._local.connection = None
            raise
        return replies

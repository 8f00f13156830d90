"""What Redis itself needs for our records: the floor under `Redis used_memory per name`.

The keyspace gives each name one string key (`mountdns:parent:<fqdn>` -> `<owner>/<node>`,
`mountdns:child:<fqdn>` -> `<owner>/<parent fqdn>`), so people can read it with redis-cli.
Copying those keys and values into a Redis of their own, as plain SETs, measures what
Redis's own structures cost for them (its dict entry, the key and value allocations, the
hash table's slots): the part of the figure no change of the sync can take away, short of
another keyspace.
"""

from __future__ import annotations

from pathlib import Path

from mountdns.keyspace import Keys
from mountdns.testing.servers import RedisServer

BATCH = 10_000  # keys a SCAN step, an MGET and a pipeline of SETs carry


def record_patterns(keys: Keys) -> tuple[str, str]:
    """The SCAN patterns of the parent and child record keys."""
    return keys.parent("*"), keys.child("*")


def plain_set_bytes(source, keys: Keys, directory: Path) -> tuple[float, int]:
    """Copy every parent and child key of `source` (a redis client) into a fresh
    redis-server, as plain SETs; return (used_memory bytes per key it added, keys copied)."""
    floor = RedisServer(directory, name="redis-floor")
    floor.start()
    try:
        target = floor.client()
        before = int(target.info("memory")["used_memory"])
        copied = 0
        for pattern in record_patterns(keys):
            batch: list[bytes] = []
            for key in source.scan_iter(match=pattern, count=BATCH):
                batch.append(key)
                if len(batch) >= BATCH:
                    copied += _copy(source, target, batch)
                    batch = []
            if batch:
                copied += _copy(source, target, batch)
        after = int(target.info("memory")["used_memory"])
        return ((after - before) / copied if copied else 0.0), copied
    finally:
        floor.stop()


def _copy(source, target, batch: list[bytes]) -> int:
    pipe = target.pipeline(transaction=False)
    copied = 0
    for key, value in zip(batch, source.mget(batch)):
        if value is not None:  # gone between the SCAN and the MGET
            pipe.set(key, value)
            copied += 1
    pipe.execute()
    return copied

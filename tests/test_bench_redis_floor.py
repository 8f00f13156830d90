"""The scale benchmark's floor under Redis bytes per name, against real redis-servers."""

import pytest

from bench.redis_floor import plain_set_bytes, record_patterns
from mountdns.keyspace import Keys
from mountdns.testing.servers import RedisServer

pytestmark = pytest.mark.integration


def test_patterns_are_the_keyspace_spelling():
    assert record_patterns(Keys("mountdns:")) == ("mountdns:parent:*", "mountdns:child:*")


def test_copies_only_the_record_keys_and_measures_them(tmp_path):
    source = RedisServer(tmp_path / "source")
    (tmp_path / "source").mkdir()
    source.start()
    try:
        client = source.client()
        keys = Keys("mountdns:")
        stored = {}
        for i in range(3_000):
            stored[keys.parent(f"p-{i:07d}.domain.foo.bar")] = f"default/node-{i % 30:05d}"
            stored[keys.child(f"c-{i:07d}.domain.foo.bar")] = f"default/p-{i:07d}.domain.foo.bar"
        client.mset(stored)
        raw = sum(len(key) + len(value) for key, value in stored.items()) / len(stored)
        client.set(keys.node("node-00001"), "10.0.0.1")  # not a record: not copied
        small, copied = plain_set_bytes(client, keys, tmp_path)
        assert copied == 6_000
        # Each key holds at least its own bytes plus Redis's per-key structures (a dict
        # entry of 24 bytes and a value object of 16), and far less than a kilobyte.
        assert raw + 24 + 16 < small < 400
        # Longer values cost more: the floor follows what is stored.
        for i in range(3_000):
            client.set(keys.child(f"c-{i:07d}.domain.foo.bar"), "default/" + "x" * 200)
        bigger, _ = plain_set_bytes(client, keys, tmp_path)
        assert bigger > small + 60
    finally:
        source.stop()

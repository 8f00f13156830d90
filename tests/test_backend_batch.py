"""A round's lookups resolved together (pdns_backend.redis_batch, Backend.respond_many)
against a real redis-server: the same answers as one at a time, one EVALSHA per name in
one round trip, and every failure mapped per request."""

import orjson
import pytest

from mountdns.store import StoreError
from mountdns.testing.seed import SEED_STATE, ZONE
from mountdns.testing.servers import free_port
from pdns_backend.redis_batch import BatchingRedisStore
from pdns_backend.service import Backend
from tests.conftest import load


def path(name: str) -> str:
    return "/dnsapi/lookup/" + "".join(c if c.isalnum() else f"%{ord(c):02x}" for c in name) + "/ANY"


NAMES = ["container_a_0.domain.foo.bar.", "container_d_0.domain.foo.bar.", "nothere.domain.foo.bar.",
         "*.domain.foo.bar.", "domain.foo.bar.", "example.org.", "Container_B_0.DOMAIN.foo.bar."]
REQUESTS = [("GET", path(n), b"") for n in NAMES] + [
    ("GET", "/healthz", b""),
    ("GET", "/dnsapi/lookup/bad%zzname/ANY", b""),  # broken percent-encoding: 400
    ("POST", "/dnsapi", orjson.dumps({"method": "lookup", "parameters": {"qname": NAMES[0], "qtype": "A"}})),
    ("POST", "/dnsapi", orjson.dumps({"method": "getAllDomains", "parameters": {}})),
    ("DELETE", path(NAMES[0]), b""),
]


@pytest.fixture
def store(redis_client):
    s = BatchingRedisStore(redis_client)
    load(s, SEED_STATE)
    return s


def evalsha_calls(client) -> int:
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


@pytest.mark.parametrize("max_age", [0.0, 0.25])
def test_a_round_gets_the_same_answers_as_one_request_at_a_time(store, max_age):
    one_by_one = Backend(store, zone_table_max_age=max_age)
    together = Backend(store, zone_table_max_age=max_age)
    expected = [one_by_one.respond(*r) for r in REQUESTS]
    assert together.respond_many(REQUESTS) == expected
    assert [reply[0] for reply in expected] == [200] * 8 + [400, 200, 200, 405]


def test_a_round_sends_one_evalsha_per_distinct_name_in_one_round_trip(store, redis_client):
    backend = Backend(store, zone_table_max_age=0.0)
    names = [f"container_{k}.domain.foo.bar." for k in ("a_0", "a_1", "b_0", "c_0", "d_0")]
    requests = [("GET", path(n), b"") for n in names + names[:2]]
    redis_client.config_resetstat()
    before = redis_client.info("stats")["total_net_input_bytes"]
    replies = backend.respond_many(requests)
    assert all(status == 200 for status, _ in replies)
    assert evalsha_calls(redis_client) == 5  # the two repeated names are read once
    assert redis_client.info("stats")["total_net_input_bytes"] > before


def test_resolve_many_matches_resolve_for_every_kind_of_name(store):
    names = ["container_a_0." + ZONE, "container_d_0." + ZONE, ZONE, "nothere." + ZONE, "example.org"]
    assert store.resolve_many(names) == [store.resolve(n) for n in names]


def test_resolve_many_loads_the_script_again_after_redis_forgot_it(store, redis_client):
    names = ["container_a_0." + ZONE, "container_b_0." + ZONE]
    expected = [store.resolve(n) for n in names]
    redis_client.script_flush()
    assert store.resolve_many(names) == expected


def test_resolve_many_reconnects_once_when_its_connection_was_killed(store, redis_client):
    names = ["container_a_0." + ZONE, "container_b_0." + ZONE]
    expected = store.resolve_many(names)
    redis_client.client_kill_filter(_type="normal", skipme=True)
    assert store.resolve_many(names) == expected


def test_a_redis_that_is_gone_fails_every_lookup_of_the_round_and_nothing_else(redis_server):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    # A port bound then closed: nothing listens there.
    store = BatchingRedisStore(redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2,
                                           socket_timeout=0.2, retry=Retry(NoBackoff(), 0)))
    backend = Backend(store, zone_table_max_age=0.25)
    replies = backend.respond_many([("GET", path(NAMES[0]), b""), ("GET", "/healthz", b""),
                                    ("GET", path(NAMES[1]), b"")])
    assert [status for status, _ in replies] == [500, 200, 500]
    assert b"store unavailable" in replies[0][1] and b"127.0.0.1" not in replies[0][1]
    assert all(isinstance(r, StoreError) for r in store.resolve_many(["a." + ZONE, "b." + ZONE]))

"""`mountdns explain NAME` against a real redis-server holding what the real store wrote:
the seed's topology, a chain of two mounts, a parent on a missing node and one on a node
without addresses, a name outside every zone, a name another owner holds. Each case
asserts the verdict, the exit code, the chain, the keys read and what is missing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mountdns.cli import main
from mountdns.keyspace import Keys
from mountdns.records import State
from mountdns.store.redis_store import RedisStore
from mountdns.testing.seed import CHILDREN, NODES, PARENTS, SEED_ZONE, ZONE
from tests.conftest import load

GRANDCHILD = f"container_g_0.{ZONE}"  # mounted to Container_D_0, itself mounted to Container_B_0
ON_MISSING_NODE = f"container_m_0.{ZONE}"
ON_EMPTY_NODE = f"container_n_0.{ZONE}"
KEYS = Keys()


@pytest.fixture
def published(redis_server, redis_client):
    """The seed plus the edge cases, published by the real store (owner 'default')."""
    state = State(zones={ZONE: SEED_ZONE}, nodes={**NODES, "node-empty": ()},
                  parents={**PARENTS, ON_MISSING_NODE: "node-gone", ON_EMPTY_NODE: "node-empty"},
                  children={**CHILDREN, GRANDCHILD: f"container_d_0.{ZONE}"})
    load(RedisStore(redis_client), state)
    return redis_server


def run(server, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["explain", *args, f"--redis-url={server.url}"], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def run_json(server, name: str, *args: str) -> tuple[int, dict]:
    code, out, err = run(server, name, "--json", *args)
    assert err == ""
    return code, json.loads(out)


def reads(step: dict) -> list[tuple[str, str]]:
    return [(r["command"], r["key"]) for r in step["reads"]]


def test_a_parent_resolves_through_its_node_key(published):
    code, result = run_json(published, "Container_A_0.domain.foo.bar.")

    assert code == 0
    assert result["published"] is True and result["missing"] is None
    assert result["name"] == f"container_a_0.{ZONE}"
    assert result["addresses"] == ["1.2.3.4"]
    (step,) = result["steps"]
    assert (step["kind"], step["node"], step["owner"], step["zone"]) == ("parent", "default/node-0", "default", ZONE)
    assert reads(step) == [("SMEMBERS", KEYS.zones), ("HGETALL", KEYS.zone(ZONE)),
                           ("GET", KEYS.child(f"container_a_0.{ZONE}")),
                           ("GET", KEYS.parent(f"container_a_0.{ZONE}")),
                           ("GET", "mountdns:node:default/node-0")]
    assert [r["value"] for r in step["reads"]][2:] == [None, "default/node-0", "1.2.3.4"]


def test_a_child_is_a_cname_to_its_parent_which_resolves(published):
    code, result = run_json(published, f"container_d_0.{ZONE}")

    assert code == 0
    assert [(s["name"], s["kind"]) for s in result["steps"]] == [
        (f"container_d_0.{ZONE}", "child"), (f"container_b_0.{ZONE}", "parent")]
    child, parent = result["steps"]
    assert child["target"] == f"container_b_0.{ZONE}" and child["owner"] == "default"
    assert ("GET", KEYS.parent(f"container_d_0.{ZONE}")) not in reads(child), "a child key ends the step"
    assert parent["node"] == "default/node-1"
    assert result["addresses"] == ["2.3.4.5"]


def test_a_chain_of_two_mounts_is_followed_to_the_addresses(published):
    code, result = run_json(published, GRANDCHILD)

    assert code == 0
    assert [s["name"] for s in result["steps"]] == [GRANDCHILD, f"container_d_0.{ZONE}", f"container_b_0.{ZONE}"]
    assert [s["kind"] for s in result["steps"]] == ["child", "child", "parent"]
    assert result["addresses"] == ["2.3.4.5"]


def test_a_parent_on_a_missing_node_is_not_published_and_names_the_node_key(published):
    code, result = run_json(published, ON_MISSING_NODE)

    assert code == 1
    assert result["published"] is False and result["addresses"] == []
    assert "mountdns:node:default/node-gone does not exist" in result["missing"]
    (step,) = result["steps"]
    assert step["reads"][-1] == {"command": "GET", "key": "mountdns:node:default/node-gone", "value": None}


def test_a_parent_on_a_node_without_addresses_is_not_published(published):
    code, result = run_json(published, ON_EMPTY_NODE)

    assert code == 1
    assert "holds no address" in result["missing"] and "default/node-empty" in result["missing"]


def test_a_child_whose_parent_vanished_says_which_keys_are_missing(published, redis_client):
    redis_client.delete(KEYS.parent(f"container_b_0.{ZONE}"))

    code, result = run_json(published, f"container_d_0.{ZONE}")

    assert code == 1
    assert [s["kind"] for s in result["steps"]] == ["child", "missing"]
    assert result["missing"].startswith(f"container_b_0.{ZONE} is neither a child nor a parent")
    assert KEYS.parent(f"container_b_0.{ZONE}") in result["missing"]


def test_a_name_outside_every_zone_is_not_published(published):
    code, result = run_json(published, "www.example.org")

    assert code == 1
    (step,) = result["steps"]
    assert step["kind"] == "outside" and step["zone"] is None
    assert result["missing"] == f"www.example.org lies in no zone mountdns serves (zones: {ZONE})"


def test_a_name_never_published_in_a_zone_is_not_published(published):
    code, out, err = run(published, f"nobody.{ZONE}")

    assert (code, err) == (1, "")
    assert out.startswith(f"nobody.{ZONE}: NOT published: nobody.{ZONE} is neither a child nor a parent")
    assert f"GET {KEYS.child(f'nobody.{ZONE}')} -> (nil)" in out


def test_a_name_held_by_another_owner_resolves_and_is_noted(redis_server, redis_client):
    shared = f"shared.{ZONE}"
    load(RedisStore(redis_client, owner="east"),
         State(zones={ZONE: SEED_ZONE}, nodes={"node-1": ("10.0.0.1",)}, parents={shared: "node-1"}))

    code, result = run_json(redis_server, shared, "--owner-id=west")

    assert code == 0
    (step,) = result["steps"]
    assert step["owner"] == "east" and step["node"] == "east/node-1"
    assert result["addresses"] == ["10.0.0.1"]
    assert result["notes"] == [f"{shared} is held by owner 'east', not 'west': "
                               "a sync with --owner-id=west leaves it alone"]
    code, result = run_json(redis_server, shared, "--owner-id=east")
    assert (code, result["notes"]) == (0, [])


def test_the_text_output_shows_the_chain_and_every_key_read(published):
    code, out, _ = run(published, GRANDCHILD)

    assert code == 0
    first, *rest = out.splitlines()
    assert first == (f"{GRANDCHILD}: published: {GRANDCHILD} -> container_d_0.{ZONE} -> "
                     f"container_b_0.{ZONE} -> 2.3.4.5")
    assert "       GET mountdns:node:default/node-1 -> '2.3.4.5'" in rest
    assert f"  3. container_b_0.{ZONE}: parent on node default/node-1: 2.3.4.5  zone {ZONE}  owner default" in rest


def test_a_key_prefix_reads_other_keys(redis_server, redis_client):
    load(RedisStore(redis_client, prefix="other:"), State(zones={ZONE: SEED_ZONE}, nodes=NODES, parents=PARENTS))

    assert run_json(redis_server, f"container_a_1.{ZONE}")[0] == 1  # nothing under the default prefix
    code, result = run_json(redis_server, f"container_a_1.{ZONE}", "--key-prefix=other:")
    assert code == 0 and result["steps"][0]["reads"][0]["key"] == "other:zones"


def test_explain_writes_nothing(published, redis_client):
    before = redis_client.info("stats")["total_commands_processed"]
    redis_client.config_resetstat()

    run_json(published, GRANDCHILD)
    run_json(published, ON_MISSING_NODE)

    commands = {name.removeprefix("cmdstat_") for name in redis_client.info("commandstats")}
    assert before > 0 and commands <= {"smembers", "hgetall", "get", "info", "config|resetstat", "hello", "client|setinfo"}


@pytest.mark.parametrize("args, flag", [
    (["a..b"], "NAME"),
    ([f"x.{ZONE}", "--key-prefix=bad prefix"], "--key-prefix"),
    ([f"x.{ZONE}", "--owner-id=Not_A_Label"], "--owner-id"),
    ([f"x.{ZONE}", "--redis-sentinel=127.0.0.1:26379"], "--redis-sentinel-master"),
])
def test_bad_input_exits_2_naming_the_flag(published, args, flag):
    code, out, err = run(published, *args)

    assert code == 2 and out == ""
    assert flag in err


def test_unreachable_redis_exits_2():
    from mountdns.testing.servers import free_port
    out, err = io.StringIO(), io.StringIO()
    code = main(["explain", f"x.{ZONE}", f"--redis-url=redis://127.0.0.1:{free_port()}/0"], out=out, err=err)

    assert code == 2
    assert "cannot read Redis" in err.getvalue() and "--redis-url" in err.getvalue()


def test_the_console_script_runs_explain(published):
    script = Path(sys.executable).with_name("mountdns")
    env = {**os.environ, "MOUNTDNS_REDIS_URL": published.url}

    done = subprocess.run([str(script), "explain", f"container_c_1.{ZONE}"], env=env,
                          capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (f"container_c_1.{ZONE}: published: container_c_1.{ZONE} -> "
                                           f"container_a_2.{ZONE} -> 3.4.5.6")


# --- the pure part, over hand-written keyspaces the sync never writes ----------------------

class DictReader:
    """What explain reads, from a dict: key -> str (GET), set (SMEMBERS) or dict (HGETALL)."""

    def __init__(self, data: dict):
        self.data = data

    def get(self, key):
        value = self.data.get(key)
        return value.encode() if isinstance(value, str) else None

    def smembers(self, key):
        return {m.encode() for m in self.data.get(key, set())}

    def hgetall(self, key):
        return {k.encode(): v.encode() for k, v in self.data.get(key, {}).items()}


ZONE_HASH = {"ttl": "30", "owner": "default"}


def test_a_loop_of_children_is_reported_not_followed():
    from mountdns.explain import explain
    a, b = f"a.{ZONE}", f"b.{ZONE}"
    reader = DictReader({KEYS.zones: {ZONE}, KEYS.zone(ZONE): ZONE_HASH,
                         KEYS.child(a): f"default/{b}", KEYS.child(b): f"default/{a}"})

    result = explain(a, reader, KEYS)

    assert not result.published and result.missing == f"the chain loops back to {a}"
    assert [s.name for s in result.steps] == [a, b]


def test_a_zone_listed_without_its_hash_is_what_is_missing():
    from mountdns.explain import explain
    result = explain(f"x.{ZONE}", DictReader({KEYS.zones: {ZONE}}), KEYS)

    assert not result.published
    assert result.missing == f"zone {ZONE} is listed in {KEYS.zones} but its hash {KEYS.zone(ZONE)} is missing"


def test_a_value_written_before_owners_is_noted():
    from mountdns.explain import explain
    name = f"old.{ZONE}"
    reader = DictReader({KEYS.zones: {ZONE}, KEYS.zone(ZONE): ZONE_HASH, KEYS.parent(name): "node-1",
                         "mountdns:node:node-1": "10.1.1.1"})

    result = explain(name, reader, KEYS)

    assert result.published and result.addresses == ["10.1.1.1"] and result.steps[0].owner is None
    assert result.notes == [f"{name} was written without an owner: the first owner to write it takes it over"]


def test_the_zone_apex_is_published_with_its_soa():
    from mountdns.explain import explain
    result = explain(ZONE.upper() + ".", DictReader({KEYS.zones: {ZONE}, KEYS.zone(ZONE): ZONE_HASH}), KEYS)

    assert result.published and result.steps[0].kind == "apex" and result.steps[0].owner == "default"

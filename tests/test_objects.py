"""Reading one object on its own: malformed Containers and Nodes are skipped (InvalidSpec,
InvalidName) or ignored with a warning, and everything else keeps syncing.

The CRD schema is not trusted: each row below is an object the API server would store
with the schema bypassed (or a hand-written manifest would hold). Each is added to the
seed topology, and the seed must still come out whole.
"""

from __future__ import annotations

import copy
import ipaddress

import pytest

from mountdns.names import InvalidName, check_publishable, normalize
from mountdns.testing.objects import SEED_CONFIG, container, node, seed_objects
from mountdns.testing.seed import SEED_STATE, SEED_ZONE
from sync.objects import SkipCode
from sync.rules import RulesConfig, Skip, desired_state, with_nodes

HUGE = "x" * (10 * 1024 * 1024)  # a 10 MB string


def bad(**fields) -> dict:
    """A Container named 'bad' with `fields` replaced at the top level (metadata kept)."""
    obj = container("bad", node="node-0")
    obj.update(fields)
    return obj


def with_spec(**spec) -> dict:
    obj = container("bad")
    obj["spec"] = {"nodeName": "node-0", **spec}
    return obj


# (what is wrong, the object, the code it is skipped with)
MALFORMED_CONTAINERS = [
    ("spec is a list", bad(spec=["nodeName", "node-0"]), SkipCode.INVALID_SPEC),
    ("spec is a string", bad(spec="node-0"), SkipCode.INVALID_SPEC),
    ("status is a string", bad(status="MOUNTED"), SkipCode.INVALID_SPEC),
    ("status is a list", bad(status=[{"deviceStatus": "MOUNTED"}]), SkipCode.INVALID_SPEC),
    ("metadata is a list", {"kind": "Container", "metadata": ["bad"], "spec": {"nodeName": "node-0"}},
     SkipCode.INVALID_SPEC),
    ("no metadata.name", {"kind": "Container", "metadata": {"namespace": "default"}, "spec": {"nodeName": "n"}},
     SkipCode.INVALID_SPEC),
    ("metadata.name is an int", bad(metadata={"name": 7, "namespace": "default"}), SkipCode.INVALID_SPEC),
    ("metadata.namespace is a dict", bad(metadata={"name": "bad", "namespace": {"a": 1}}), SkipCode.INVALID_SPEC),
    ("nodeName is an int", with_spec(nodeName=3), SkipCode.INVALID_SPEC),
    ("nodeName is a list", with_spec(nodeName=["node-0"]), SkipCode.INVALID_SPEC),
    ("nodeName is 10 MB", with_spec(nodeName=HUGE), SkipCode.INVALID_SPEC),
    ("nodeName is not ASCII", with_spec(nodeName="n\u00f6de-0"), SkipCode.INVALID_SPEC),
    ("fqdn is an int", with_spec(fqdn=42), SkipCode.INVALID_SPEC),
    ("fqdn is a dict", with_spec(fqdn={"name": "a.domain.foo.bar"}), SkipCode.INVALID_SPEC),
    ("fqdn is 10 MB", with_spec(fqdn=HUGE + ".domain.foo.bar"), SkipCode.INVALID_SPEC),
    ("mountedTo is a list", with_spec(mountedTo=["container-a-0"]), SkipCode.INVALID_SPEC),
    ("type is an int", with_spec(type=5), SkipCode.INVALID_SPEC),
    ("deviceStatus is a bool", bad(status={"deviceStatus": True}), SkipCode.INVALID_SPEC),
    ("deviceStatus is 10 MB", bad(status={"deviceStatus": HUGE}), SkipCode.INVALID_SPEC),
    ("fqdn with a wildcard", with_spec(fqdn="*.domain.foo.bar"), SkipCode.INVALID_NAME),
    ("fqdn with * inside a label", with_spec(fqdn="a*b.domain.foo.bar"), SkipCode.INVALID_NAME),
    ("fqdn with KELVIN SIGN", with_spec(fqdn="\u212aontainer.domain.foo.bar"), SkipCode.INVALID_NAME),
    ("fqdn with a non-ASCII letter", with_spec(fqdn="caf\u00e9.domain.foo.bar"), SkipCode.INVALID_NAME),
    ("fqdn with a space", with_spec(fqdn="a b.domain.foo.bar"), SkipCode.INVALID_NAME),
    ("fqdn with an escaped dot", with_spec(fqdn="a\\.b.domain.foo.bar"), SkipCode.INVALID_NAME),
    ("fqdn with a label of 64", with_spec(fqdn="a" * 64 + ".domain.foo.bar"), SkipCode.INVALID_NAME),
    ("fqdn of 254 octets", with_spec(fqdn=("a" * 60 + ".") * 4 + "dom.domain.foo.bar"), SkipCode.INVALID_NAME),
    ("fqdn with an empty label", with_spec(fqdn="a..domain.foo.bar"), SkipCode.INVALID_NAME),
    ("fqdn outside the zone", with_spec(fqdn="a.example.org"), SkipCode.OUT_OF_ZONE),
    ("fqdn at the zone apex", with_spec(fqdn="domain.foo.bar"), SkipCode.OUT_OF_ZONE),
    ("default fqdn from a non-ASCII name", bad(metadata={"name": "b\u00e4d", "namespace": "default"}),
     SkipCode.INVALID_NAME),
]


@pytest.mark.parametrize("obj, code", [row[1:] for row in MALFORMED_CONTAINERS],
                         ids=[row[0] for row in MALFORMED_CONTAINERS])
def test_malformed_container_is_skipped_with_its_code_and_the_seed_still_publishes(obj, code):
    containers, nodes = seed_objects()

    plan = desired_state(containers + [copy.deepcopy(obj)], nodes, SEED_CONFIG)

    assert plan.state == SEED_STATE
    (skip,) = plan.skipped
    assert skip.code == code
    assert len(skip.reason) < 400 and len(skip.name) <= 253  # nothing of 10 MB reaches a log line


def test_every_malformed_container_at_once_leaves_the_seed_whole_with_one_skip_each():
    containers, nodes = seed_objects()
    extra = []
    for index, (_, obj, _) in enumerate(MALFORMED_CONTAINERS):
        obj = copy.deepcopy(obj)
        if isinstance(obj.get("metadata"), dict) and obj["metadata"].get("name") == "bad":
            obj["metadata"]["name"] = f"bad-{index}"  # distinct objects, not one fqdn conflict
        extra.append(obj)

    plan = desired_state(containers + extra, nodes, SEED_CONFIG)

    assert plan.state == SEED_STATE
    assert sorted(str(s.code) for s in plan.skipped) == sorted(str(row[2]) for row in MALFORMED_CONTAINERS)


def test_child_of_a_malformed_parent_is_not_published():
    parent = with_spec(nodeName=["node-0"])
    child = container("kid", mounted_to="bad", status="MOUNTED")

    plan = desired_state([parent, child], [node("node-0", "10.0.0.1")], SEED_CONFIG)

    assert plan.state.parents == {} and plan.state.children == {}
    assert [(s.name, s.code) for s in plan.skipped] == [("bad", SkipCode.INVALID_SPEC),
                                                       ("kid", SkipCode.PARENT_NOT_PUBLISHED)]


def test_object_that_is_not_a_mapping_is_skipped():
    containers, nodes = seed_objects()

    plan = desired_state(containers + [["not", "an", "object"], None, 17], nodes, SEED_CONFIG)

    assert plan.state == SEED_STATE
    assert [s.code for s in plan.skipped] == [SkipCode.INVALID_SPEC] * 3


def test_seed_names_with_capitals_and_underscores_are_publishable():
    assert check_publishable("Container_A_0.domain.foo.bar.") == "container_a_0.domain.foo.bar"
    assert check_publishable("a-b_c.d-1.x") == "a-b_c.d-1.x"


def test_only_ascii_letters_are_folded_so_kelvin_sign_never_becomes_k():
    assert normalize("\u212a.Domain.Foo.Bar.") == "\u212a.domain.foo.bar"
    assert normalize("\u212a.Domain.Foo.Bar.") != normalize("k.domain.foo.bar")
    assert normalize("\u0130.X") == "\u0130.x"  # LATIN CAPITAL I WITH DOT stays as it is too
    with pytest.raises(InvalidName):
        check_publishable("\u212a.domain.foo.bar")


# --- Nodes -------------------------------------------------------------------------------------

def with_node_0(**fields) -> dict:
    obj = node("node-0")
    obj.update(fields)
    return obj


# (what is wrong, the Node that replaces node-0, the warning it gives)
MALFORMED_NODES = [
    ("status is a string", with_node_0(status="Ready"), "node node-0: ignored invalid address status is a str"),
    ("addresses is a dict", with_node_0(status={"addresses": {"InternalIP": "1.2.3.4"}}),
     "node node-0: ignored invalid address status.addresses is a dict"),
    ("address is an int", node("node-0", ("InternalIP", 16909060)), "node node-0: ignored invalid address 16909060"),
    ("address is a list", node("node-0", ("InternalIP", ["1.2.3.4"])),
     "node node-0: ignored invalid address ['1.2.3.4']"),
    ("address is 10 MB", node("node-0", HUGE), "node node-0: ignored invalid address 'xxxx"),
    ("address is not an IP", node("node-0", "node-0.example"),
     "node node-0: ignored invalid address 'node-0.example'"),
]


@pytest.mark.parametrize("bad_node, warning", [row[1:] for row in MALFORMED_NODES],
                         ids=[row[0] for row in MALFORMED_NODES])
def test_malformed_node_gives_no_address_and_a_warning_and_its_parent_stays_published(bad_node, warning):
    containers, nodes = seed_objects()
    nodes[0] = bad_node

    plan = desired_state(containers, nodes, SEED_CONFIG)

    assert plan.state.parents == SEED_STATE.parents and plan.state.children == SEED_STATE.children
    assert plan.state.nodes == {k: v for k, v in SEED_STATE.nodes.items() if k != "node-0"}
    assert any(w.startswith(warning) for w in plan.warnings), plan.warnings
    assert all(len(w) < 400 for w in plan.warnings)
    assert plan.unresolved == (Skip("default", "container-a-0", "node node-0 has no usable address",
                                    SkipCode.NODE_HAS_NO_ADDRESS),)


@pytest.mark.parametrize("node_obj", [["node-0"], {"metadata": "node-0"}, {"metadata": {"name": 5}},
                                      {"metadata": {"name": HUGE}}],
                         ids=["a list", "metadata a string", "name an int", "name of 10 MB"])
def test_node_without_a_readable_name_is_ignored_with_a_warning(node_obj):
    plan = desired_state([], [node_obj, node("node-1", "2.3.4.5")], SEED_CONFIG)

    assert plan.state.nodes == {"node-1": ("2.3.4.5",)}
    assert plan.warnings == ("ignored a Node without a valid metadata.name",)


SPECIAL_ADDRESSES = [
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("255.255.255.255", "broadcast"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"), ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"),
    ("::1", "loopback"), ("169.254.1.1", "link-local"), ("fe80::1", "link-local"),
    ("::ffff:127.0.0.1", "loopback"),
]


@pytest.mark.parametrize("address, kind", SPECIAL_ADDRESSES, ids=[a for a, _ in SPECIAL_ADDRESSES])
def test_special_node_address_is_ignored_unless_allowed(address, kind):
    nodes = [node("node-0", address, "10.1.2.3")]

    strict = desired_state([container("p", node="node-0")], nodes, SEED_CONFIG)
    allowed = desired_state([container("p", node="node-0")], nodes,
                            RulesConfig(zones=(SEED_ZONE,), allow_special_addresses=True))

    assert strict.state.nodes == {"node-0": ("10.1.2.3",)}
    assert strict.warnings == (f"node node-0: ignored invalid address {address!r} ({kind})",)
    assert set(allowed.state.nodes["node-0"]) == {"10.1.2.3", str(ipaddress.ip_address(address))}
    assert allowed.warnings == ()


def test_ordinary_private_and_documentation_addresses_are_published():
    nodes = [node("node-0", "10.0.0.1", "192.168.1.1", "2001:db8::1", "1.2.3.4")]

    assert desired_state([], nodes, SEED_CONFIG).state.nodes == {
        "node-0": ("1.2.3.4", "10.0.0.1", "192.168.1.1", "2001:db8::1")}


# --- parents whose node gives no address ---------------------------------------------------------

def test_parent_on_an_unknown_node_is_published_and_reported_as_node_not_found():
    containers = [container("p", node="ghost"), container("q", node="node-0")]

    plan = desired_state(containers, [node("node-0", "10.0.0.1")], SEED_CONFIG)

    assert plan.state.parents == {"p.default.domain.foo.bar": "ghost", "q.default.domain.foo.bar": "node-0"}
    assert plan.skipped == ()
    assert plan.unresolved == (Skip("default", "p", "node ghost not found", SkipCode.NODE_NOT_FOUND),)


def test_parent_on_a_node_without_address_is_reported_as_node_has_no_address():
    plan = desired_state([container("p", node="node-0")], [node("node-0")], SEED_CONFIG)

    assert plan.state.parents == {"p.default.domain.foo.bar": "node-0"}
    assert plan.unresolved == (Skip("default", "p", "node node-0 has no usable address",
                                    SkipCode.NODE_HAS_NO_ADDRESS),)


def test_with_nodes_gives_what_desired_state_gives_for_the_new_nodes():
    containers, nodes = seed_objects()
    first = desired_state(containers, nodes, SEED_CONFIG)
    moved = [node("node-0"), node("node-1", "9.9.9.9")]  # node-0 lost its address, node-2 is gone

    fast = with_nodes(first, moved, SEED_CONFIG)
    full = desired_state(containers, moved, SEED_CONFIG)

    assert (fast.state, fast.skipped, fast.warnings, fast.unresolved) == \
        (full.state, full.skipped, full.warnings, full.unresolved)
    assert [(s.name, s.code) for s in fast.unresolved] == [("container-a-0", SkipCode.NODE_HAS_NO_ADDRESS),
                                                          ("container-a-2", SkipCode.NODE_NOT_FOUND)]
    assert fast.state.parents is first.state.parents  # the Containers' part is reused, not recomputed

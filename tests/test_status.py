"""Scenarios for Container status (sync/status.py): from the rules' result to the
`Published` condition, and from the condition an object has to the exact patch (or none).
"""

import json

import pytest

from mountdns.testing.objects import SEED_CONFIG, container, node, seed_fqdn, seed_objects
from sync.rules import desired_state
from sync.status import (FOREIGN_CONDITIONS, PUBLISHED, Condition, Verdict, enters_failure, slim_status,
                         status_patch, up_to_date, verdicts)

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:05:00Z"
PARENT = Verdict(True, PUBLISHED, "p.domain.foo.bar has the addresses of node node-0", "p.domain.foo.bar", "node-0")
ORPHAN = Verdict(False, "ParentNotFound", "parent default/gone not found")


def verdicts_of(containers, nodes):
    return verdicts(desired_state(containers, nodes, SEED_CONFIG), nodes)


def stored(generation=1, resource_version="7", status=None) -> dict:
    """A Container as the API server returns it."""
    obj = container("c", node="node-0", fqdn="p.domain.foo.bar")
    obj["metadata"].update(generation=generation, resourceVersion=resource_version)
    if status is not None:
        obj["status"] = status
    return obj


def written(obj, patch) -> dict:
    """The object after the server applied the merge patch to its status."""
    status = dict(obj.get("status") or {})
    for key, value in patch["status"].items():
        if value is None:
            status.pop(key, None)
        else:
            status[key] = value
    return {**obj, "status": status}


# --- verdicts ------------------------------------------------------------------------------


def test_seed_parents_and_children_are_published_with_their_fqdn_and_target():
    containers, nodes = seed_objects()
    result = verdicts_of(containers, nodes)

    b_0, d_0 = seed_fqdn("Container_B_0").lower(), seed_fqdn("Container_D_0").lower()
    assert result[("default", "container-b-0")] == Verdict(
        True, "Published", f"{b_0} has the addresses of node node-1", b_0, "node-1")
    assert result[("default", "container-d-0")] == Verdict(True, "Published", f"{d_0} is a CNAME to {b_0}", d_0, b_0)
    assert len(result) == 8 and all(v.published for v in result.values())


def test_verdicts_that_say_the_same_as_before_are_the_previous_objects():
    containers, nodes = seed_objects()
    desired = desired_state(containers, nodes, SEED_CONFIG)
    first = verdicts(desired, nodes)
    moved = [c for c in containers if c["metadata"]["name"] != "container-b-0"]
    second = verdicts(desired_state(moved, nodes, SEED_CONFIG), nodes, previous=first)
    d_0, a_0 = ("default", "container-d-0"), ("default", "container-a-0")
    assert second[a_0] is first[a_0]  # unchanged: the very object kept before
    assert second[d_0] != first[d_0] and second[d_0].reason == "ParentNotFound"
    assert second == verdicts(desired_state(moved, nodes, SEED_CONFIG), nodes)  # the same answer without


def test_child_of_a_deleted_parent_is_not_published_with_parent_not_found():
    containers, nodes = seed_objects()
    containers = [c for c in containers if c["metadata"]["name"] != "container-b-0"]

    assert verdicts_of(containers, nodes)[("default", "container-d-0")] == Verdict(
        False, "ParentNotFound", "parent default/container-b-0 not found")


def test_parent_on_a_missing_node_and_on_an_addressless_node_do_not_resolve():
    result = verdicts_of([container("lost", node="node-9"), container("dark", node="node-1"),
                          container("kid", mounted_to="dark", status="MOUNTED")],
                         [node("node-1")])

    assert result[("default", "lost")].reason == "NodeNotFound"
    assert result[("default", "dark")].reason == "NodeHasNoAddress"
    assert result[("default", "kid")].reason == "NodeHasNoAddress"  # its name ends at dark's node
    assert not any(v.published or v.fqdn for v in result.values())


def test_a_name_another_owner_holds_is_not_published_with_owned_elsewhere():
    containers, nodes = seed_objects()
    desired = desired_state(containers, nodes, SEED_CONFIG)
    b_0 = seed_fqdn("Container_B_0").lower()

    result = verdicts(desired, nodes, owned_elsewhere=frozenset({b_0}))

    assert result[("default", "container-b-0")] == Verdict(
        False, "OwnedElsewhere", f"{b_0} is held by another owner, which wrote it first; it keeps it")
    assert result[("default", "container-a-0")].published  # the others are untouched


def test_every_reason_is_one_camel_case_word_from_the_documented_set():
    result = verdicts_of([container("idle"), container("cyc", mounted_to="cyc", status="MOUNTED"),
                          container("far", node="node-0", fqdn="x.example.org")], [])

    assert {v.reason for v in result.values()} == {"NotMounted", "MountCycle", "OutOfZone"}


# --- patches ---------------------------------------------------------------------------------


def test_first_publish_adds_the_condition_fqdn_and_target_with_a_precondition():
    obj = stored(generation=2, status={"deviceStatus": "MOUNTED"})

    assert status_patch(obj, PARENT, T0) == {
        "metadata": {"resourceVersion": "7"},
        "status": {
            "conditions": [{"type": "Published", "status": "True", "reason": "Published",
                            "message": PARENT.message, "lastTransitionTime": T0, "observedGeneration": 2}],
            "fqdn": "p.domain.foo.bar", "target": "node-0"},
    }


def test_no_change_means_no_patch():
    obj = stored(status={"deviceStatus": "MOUNTED"})
    obj = written(obj, status_patch(obj, PARENT, T0))

    assert up_to_date(obj, PARENT)
    assert status_patch(obj, PARENT, T1) is None


def test_true_to_false_moves_last_transition_time_and_drops_fqdn_and_target():
    obj = written(stored(), status_patch(stored(), PARENT, T0))

    patch = status_patch(obj, ORPHAN, T1)

    (condition,) = patch["status"]["conditions"]
    assert (condition["status"], condition["reason"], condition["lastTransitionTime"]) == ("False", "ParentNotFound", T1)
    assert patch["status"]["fqdn"] is None and patch["status"]["target"] is None  # merge patch: delete
    assert "fqdn" not in written(obj, patch)["status"]


def test_a_new_message_alone_keeps_last_transition_time():
    obj = written(stored(), status_patch(stored(), ORPHAN, T0))
    other = Verdict(False, "ParentNotFound", "parent default/another not found")

    (condition,) = status_patch(obj, other, T1)["status"]["conditions"]

    assert condition["message"] == other.message
    assert condition["lastTransitionTime"] == T0


def test_a_new_reason_with_the_same_status_keeps_last_transition_time_and_is_a_new_failure():
    obj = written(stored(), status_patch(stored(), ORPHAN, T0))
    cycle = Verdict(False, "MountCycle", "mount cycle: c -> c")

    (condition,) = status_patch(obj, cycle, T1)["status"]["conditions"]

    assert (condition["reason"], condition["lastTransitionTime"]) == ("MountCycle", T0)
    assert enters_failure(obj, cycle)
    assert not enters_failure(obj, ORPHAN)


def test_other_controllers_conditions_and_device_status_are_kept_in_place():
    ready = {"type": "Ready", "status": "True", "reason": "Up", "message": "", "lastTransitionTime": T0}
    mounted = {"type": "Mounted", "status": "True", "reason": "Done", "message": "", "lastTransitionTime": T0}
    obj = stored(status={"deviceStatus": "MOUNTED", "conditions": [ready, mounted]})
    obj = written(obj, status_patch(obj, PARENT, T0))
    obj["status"]["conditions"].append(dict(ready, type="Later"))

    patch = status_patch(obj, ORPHAN, T1)

    assert [c["type"] for c in patch["status"]["conditions"]] == ["Ready", "Mounted", "Published", "Later"]
    assert patch["status"]["conditions"][0] == ready
    assert "deviceStatus" not in patch["status"]  # never in the patch: it survives the merge
    assert written(obj, patch)["status"]["deviceStatus"] == "MOUNTED"


def test_a_spec_change_alone_rewrites_observed_generation():
    obj = written(stored(generation=1), status_patch(stored(generation=1), PARENT, T0))
    obj["metadata"]["generation"] = 2

    patch = status_patch(obj, PARENT, T1)

    (condition,) = patch["status"]["conditions"]
    assert condition["observedGeneration"] == 2 and condition["lastTransitionTime"] == T0
    assert set(patch["status"]) == {"conditions"}  # fqdn and target stay as they are


def test_first_status_that_is_a_failure_is_a_new_failure_but_a_publish_is_not():
    assert enters_failure(stored(), ORPHAN)
    assert not enters_failure(stored(), PARENT)


@pytest.mark.parametrize("bad", ["MOUNTED", ["MOUNTED"], 12], ids=["a string", "a list", "a number"])
def test_a_status_that_is_not_an_object_is_written_over_with_ours(bad):
    # The schema bypassed: the rules skip such a Container, and its status says why.
    obj = stored(status=bad)
    invalid = Verdict(False, "InvalidSpec", "status must be an object")

    assert not up_to_date(obj, invalid) and enters_failure(obj, invalid)
    assert status_patch(obj, invalid, T0) == {
        "metadata": {"resourceVersion": "7"},
        "status": {"conditions": [{"type": "Published", "status": "False", "reason": "InvalidSpec",
                                   "message": invalid.message, "lastTransitionTime": T0,
                                   "observedGeneration": 1}]},
    }


def test_metadata_that_is_not_an_object_gives_a_patch_without_a_precondition():
    obj = dict(stored(), metadata="c")

    patch = status_patch(obj, ORPHAN, T0)

    assert "metadata" not in patch and "observedGeneration" not in patch["status"]["conditions"][0]


# --- what the cache keeps -----------------------------------------------------------------------


def test_slim_status_keeps_our_condition_and_marks_others():
    ours = {"type": "Published", "status": "True"}
    status = {"deviceStatus": "MOUNTED", "fqdn": "a", "target": "n", "health": {"big": "x" * 100},
              "conditions": [{"type": "Ready", "status": "True"}, ours]}

    assert slim_status(status) == {"deviceStatus": "MOUNTED", "fqdn": "a", "target": "n",
                                   "conditions": [ours], FOREIGN_CONDITIONS: True}
    assert slim_status({"conditions": [ours]}) == {"conditions": [ours]}


def test_slimming_twice_keeps_the_mark_of_other_conditions():
    # A list slims each page and the cache slims what it stores: losing the mark there
    # made the next patch drop another controller's condition.
    status = {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Published", "status": "True"}]}

    assert slim_status(slim_status(status)) == slim_status(status)


def test_the_cached_condition_is_a_compact_read_only_mapping_equal_to_the_listed_one():
    listed = {"type": "Published", "status": "True", "reason": "Published", "message": "m",
              "lastTransitionTime": T0, "observedGeneration": 3}
    kept = slim_status({"conditions": [dict(listed)]})["conditions"][0]

    assert type(kept) is Condition and kept == listed and listed == kept and dict(kept) == listed
    assert kept.get("observedGeneration") == 3 and kept.get("absent", "d") == "d" and len(kept) == 6
    assert slim_status({"conditions": [kept]})["conditions"][0] is kept  # slimmed twice: the same one
    with pytest.raises(AttributeError):
        kept.message = "other"
    without = {k: v for k, v in listed.items() if k != "observedGeneration"}
    assert Condition.of(without) == without and "observedGeneration" not in Condition.of(without)
    assert Condition.of(without) != kept
    # A field this version does not know stays: the condition is kept as the dict it is.
    newer = {**listed, "severity": "Info"}
    assert slim_status({"conditions": [newer]})["conditions"][0] == newer
    assert type(slim_status({"conditions": [newer]})["conditions"][0]) is dict


def test_a_message_the_sync_wrote_is_held_as_its_template_and_made_when_read():
    for target, message in (("node-1", "p.example.com has the addresses of node node-1"),
                            ("q.example.com", "p.example.com is a CNAME to q.example.com")):
        listed = {"type": "Published", "status": "True", "reason": "Published", "message": message,
                  "lastTransitionTime": T0, "observedGeneration": 2}
        status = slim_status({"fqdn": "p.example.com", "target": target, "conditions": [dict(listed)]},
                             fqdn="p.example.com")
        kept = status["conditions"][0]
        assert kept == listed and dict(kept) == listed and kept["message"] == message
        assert type(kept._held[2]) is not str  # the template (a str subclass), not a copy of the string
        assert kept._fqdn is status["fqdn"] and kept._target is status["target"]
        assert kept == Condition.of(dict(listed), "p.example.com", target)
        # Another message (another writer's, or one written before a rename) is held as it is.
        other = slim_status({"fqdn": "p.example.com", "target": target,
                             "conditions": [{**listed, "message": message + "!"}]})["conditions"][0]
        assert other["message"] == message + "!" and other != kept and kept != other
        assert other == {**listed, "message": message + "!"}


def test_the_status_fqdn_is_held_as_the_specs_string():
    spec_fqdn = "".join(["p.", "example.com"])  # not the same object as the status's equal one
    status = slim_status({"fqdn": "p.example.com", "target": "n"}, fqdn=spec_fqdn)
    assert status["fqdn"] is spec_fqdn
    assert slim_status({"fqdn": "other.example.com"}, fqdn=spec_fqdn)["fqdn"] == "other.example.com"


def test_a_patch_built_from_a_cached_condition_holds_plain_dicts():
    obj = stored(status={"conditions": [{"type": "Published", "status": "False", "reason": "ParentNotFound",
                                         "message": "old", "lastTransitionTime": T0, "observedGeneration": 1}]})
    obj["status"] = slim_status(obj["status"])

    patch = status_patch(obj, PARENT, T1)
    assert status_patch({**obj, "status": slim_status(written(obj, patch)["status"])}, PARENT, T1) is None
    assert json.loads(json.dumps(patch)) == patch  # what the client sends: serializable
    assert patch["status"]["conditions"] == [{"type": "Published", "status": "True", "reason": "Published",
                                              "message": PARENT.message, "lastTransitionTime": T1,
                                              "observedGeneration": 1}]


def test_a_published_verdict_makes_its_message_when_asked_and_equals_one_given_in_full():
    made = Verdict.published_as("c.domain.foo.bar", "p.domain.foo.bar", cname=True)
    given = Verdict(True, PUBLISHED, "c.domain.foo.bar is a CNAME to p.domain.foo.bar", "c.domain.foo.bar",
                    "p.domain.foo.bar")
    assert made.message == given.message and made == given and hash(made) == hash(given)
    assert Verdict.published_as("p.domain.foo.bar", "node-0", cname=False) == PARENT
    assert made != Verdict.published_as("c.domain.foo.bar", "p2.domain.foo.bar", cname=True)
    assert made != Verdict(False, PUBLISHED, made.message, made.fqdn, made.target)
    assert made != ORPHAN and made != None  # noqa: E711 - the writer compares with dict.get()'s None

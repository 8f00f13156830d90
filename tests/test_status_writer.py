"""The status writer and the Event recorder against the Kubernetes API double, over real
HTTP through the official client, driven step by step with an injected clock.

Every assertion about what was sent counts the double's request log, so "no write" and
"at most N writes" are checked against what the server saw.
"""

import copy
import json
import random
from datetime import datetime, timezone

import pytest
from kubernetes import config

from mountdns.testing.kube_double import KubeAPIDouble
from mountdns.testing.objects import SEED_CONFIG, container, node, pod, published_pod
from sync import status
from sync.events import EventRecorder, EventsClient
from sync.incremental import IncrementalRules
from sync.rules import desired_state
from sync.sources.cache import CONTAINER, NODE, POD, PUBLISHED_POD, ObjectCache
from sync.status import verdicts
from sync.status_writer import (Conflict, ContainerStatusClient, NotFound, PodClient, StatusWriter, TokenBucket,
                                _resource_version)
from tests.test_rules_incremental import CONFIGS, World

pytestmark = pytest.mark.timeout(60)

WALL = datetime(2026, 1, 1, tzinfo=timezone.utc)
FOREIGN = {"type": "Ready", "status": "True", "reason": "Up", "message": "serving",
           "lastTransitionTime": "2025-12-31T00:00:00Z"}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def api(tmp_path):
    with KubeAPIDouble(bookmark_interval=None) as double:
        double.api_client = config.new_client_from_config(config_file=double.write_kubeconfig(tmp_path / "kc"))
        yield double


@pytest.fixture
def clock():
    return Clock()


def make_writer(api, clock, qps=100.0, burst=100, leading=lambda: True, pods=False):
    events = EventRecorder(EventsClient(api.api_client), host="test", wall=lambda: WALL)
    return StatusWriter(ContainerStatusClient(api.api_client), events, qps=qps, burst=burst, leading=leading,
                        clock=clock, wall=lambda: WALL, pods=PodClient(api.api_client) if pods else None)


def offer(writer, api):
    """What the daemon does after a batch: the cache's slimmed objects and the rules' result."""
    cache = ObjectCache()
    cache.replace(CONTAINER, api.objects("Container"))
    cache.replace(NODE, api.objects("Node"))
    snapshot = cache.snapshot()
    writer.offer(snapshot.containers, snapshot.nodes, desired_state(snapshot.containers, snapshot.nodes, SEED_CONFIG))


def status_patches(api):
    return [path for method, path, _ in list(api.requests) if method == "PATCH" and path.endswith("/status")]


def condition(api, name):
    (found,) = [c for c in api.get("Container", name)["status"]["conditions"] if c["type"] == "Published"]
    return found


def topology(api):
    api.apply_many([node("node-0", "10.0.0.1"), container("p", node="node-0"),
                    container("c", mounted_to="p", status="MOUNTED")])


def test_first_pass_publishes_and_an_unchanged_cluster_gets_no_further_writes(api, clock):
    topology(api)
    writer = make_writer(api, clock)
    offer(writer, api)
    assert writer.step() == 2

    assert condition(api, "p")["status"] == "True"
    assert api.get("Container", "c")["status"] == {
        "deviceStatus": "MOUNTED", "fqdn": "c.default.domain.foo.bar", "target": "p.default.domain.foo.bar",
        "conditions": [condition(api, "c")]}
    before = len(status_patches(api))
    for _ in range(3):  # the watch now shows the written status: nothing differs
        offer(writer, api)
        clock.now += 60
        assert writer.step() == 0
    assert len(status_patches(api)) == before == 2
    # Up to date, and nothing kept per Container: each verdict, made when asked from the
    # rules' result (its message from the name and target), says what the cached condition
    # says; no write is waiting or remembered as on its way.
    outcomes = writer._inputs[1]
    assert writer.pending == 0 and writer._sent == {}
    cached = {(obj["metadata"]["namespace"], obj["metadata"]["name"]): obj for obj in writer._inputs[0]}
    assert len(cached) == 2 and all(
        outcomes.verdict(key).message == obj["status"]["conditions"][0]["message"]
        and outcomes.verdict(key)._message in (status._PARENT_MESSAGE, status._CHILD_MESSAGE)
        for key, obj in cached.items())


def test_a_write_not_yet_seen_back_through_the_watch_is_not_repeated(api, clock):
    topology(api)
    writer = make_writer(api, clock)
    cache = ObjectCache()
    cache.replace(CONTAINER, api.objects("Container"))
    cache.replace(NODE, api.objects("Node"))
    stale = cache.snapshot()
    writer.offer(stale.containers, stale.nodes, desired_state(stale.containers, stale.nodes, SEED_CONFIG))
    writer.step()
    # Another batch from the same (stale) cache, e.g. a node event: same objects, new plan.
    writer.offer(stale.containers, stale.nodes, desired_state(stale.containers, stale.nodes, SEED_CONFIG))

    assert writer.step() == 0
    assert len(status_patches(api)) == 2


def test_status_qps_bounds_the_requests_per_second(api, clock):
    api.apply_many([node("node-0", "10.0.0.1")] + [container(f"p{i}", node="node-0") for i in range(40)])
    writer = make_writer(api, clock, qps=4, burst=4)
    offer(writer, api)

    sent = [writer.step()]
    for _ in range(5):
        clock.now += 1.0
        sent.append(writer.step())

    assert sent == [4, 4, 4, 4, 4, 4]
    assert len(status_patches(api)) == 24 and writer.pending == 16
    clock.now += 0.1  # not a whole token yet
    assert writer.step() == 0


def test_token_bucket_allows_a_burst_then_the_rate_and_may_be_overdrawn():
    bucket = TokenBucket(qps=2, burst=3, now=0.0)
    taken = 0
    while bucket.ready(0.0):
        bucket.take(0.0)
        taken += 1
    bucket.take(0.0)  # a retry after a conflict: the bucket goes into debt

    assert taken == 3
    assert bucket.delay(0.0) == pytest.approx(1.0)  # (1 - (-1)) / 2
    assert not bucket.ready(0.9) and bucket.ready(1.0)


def test_a_follower_writes_nothing_until_it_leads(api, clock):
    topology(api)
    leading = [False]
    writer = make_writer(api, clock, leading=lambda: leading[0])
    offer(writer, api)

    assert writer.step() == 0 and status_patches(api) == []
    leading[0] = True
    assert writer.step() == 2


def test_other_controllers_conditions_survive_via_a_re_read(api, clock):
    topology(api)
    api.apply({**api.get("Container", "p"), "status": {"deviceStatus": "X", "conditions": [FOREIGN]}})
    writer = make_writer(api, clock)
    offer(writer, api)
    writer.step()

    status = api.get("Container", "p")["status"]
    assert status["deviceStatus"] == "X"
    assert [c["type"] for c in status["conditions"]] == ["Ready", "Published"]
    assert status["conditions"][0] == FOREIGN
    reads = [path for method, path, _ in api.requests if method == "GET" and path.endswith("/containers/p")]
    assert len(reads) == 1  # the cache had only a marker for Ready


def test_a_status_written_by_someone_else_after_the_snapshot_is_a_conflict_then_kept(api, clock):
    topology(api)
    writer = make_writer(api, clock)
    offer(writer, api)  # the snapshot the writer works from
    # Another controller writes status meanwhile (its own condition, a deviceStatus).
    ContainerStatusClient(api.api_client).patch_status("default", "p", {"status": {"conditions": [FOREIGN],
                                                                                  "deviceStatus": "UP"}})
    writer.step()

    status = api.get("Container", "p")["status"]
    assert status["deviceStatus"] == "UP"
    assert [c["type"] for c in status["conditions"]] == ["Ready", "Published"]
    patches = [path for path in status_patches(api) if path.endswith("/containers/p/status")]
    assert len(patches) == 3  # the other controller's, our 409, our retry


def test_transition_into_a_failure_records_one_warning_and_a_repeat_counts_it(api, clock):
    topology(api)
    writer = make_writer(api, clock)
    offer(writer, api)
    writer.step()
    for _ in range(2):
        parent = api.get("Container", "p")
        api.delete("Container", "p")
        offer(writer, api)
        writer.step()
        assert condition(api, "c")["reason"] == "ParentNotFound"
        offer(writer, api)  # the same failure again: no new Event
        writer.step()
        api.apply({k: v for k, v in parent.items() if k != "status"} | {"metadata": {
            "name": "p", "namespace": "default", "creationTimestamp": parent["metadata"]["creationTimestamp"]}})
        offer(writer, api)
        writer.step()
        assert condition(api, "c")["status"] == "True"

    (event,) = api.objects("Event")
    assert (event["type"], event["reason"], event["count"]) == ("Warning", "ParentNotFound", 2)
    assert event["message"] == "parent default/p not found"
    assert event["involvedObject"]["name"] == "c" and event["involvedObject"]["uid"]
    assert event["metadata"]["namespace"] == "default"


def test_events_go_to_each_objects_own_namespace(api):
    recorder = EventRecorder(EventsClient(api.api_client), host="test", wall=lambda: WALL)
    for namespace in ("red", "blue"):
        obj = api.apply(container("x", node="node-0", namespace=namespace))
        recorder.warning(obj, "NodeNotFound", "node node-0 does not exist")

    assert sorted(e["metadata"]["namespace"] for e in api.objects("Event")) == ["blue", "red"]


def test_a_repeat_of_an_expired_event_creates_it_again_with_the_count_carried_on(api):
    recorder = EventRecorder(EventsClient(api.api_client), host="test", wall=lambda: WALL)
    obj = api.apply(container("x", node="node-0"))
    first = recorder.warning(obj, "NodeNotFound", "gone")
    api.delete("Event", first["metadata"]["name"], "default")

    recorder.warning(obj, "NodeNotFound", "gone")

    (event,) = api.objects("Event")
    assert event["count"] == 2


def test_api_unavailable_is_retried_after_a_backoff(api, clock):
    topology(api)
    writer = make_writer(api, clock)
    offer(writer, api)
    api.set_available(False)
    writer.step()
    assert writer.failures == 1 and writer.pending == 2
    api.set_available(True)

    assert writer.step() == 0  # still backing off
    clock.now += 60
    assert writer.step() == 2
    assert condition(api, "p")["status"] == condition(api, "c")["status"] == "True"


def test_a_pod_ref_to_a_pod_without_the_label_is_told_apart_from_a_missing_pod_in_the_event(api, clock):
    # The sync's watch selects Pods labelled mountdns.io/backs: to it, an unlabelled Pod is
    # not there (PodNotFound). The Event on entering PodNotFound says which of the two it is.
    api.apply_many([node("node-0", "10.0.0.1"), pod("web-0", node="node-0", labels={}),
                    pod("db-0", node="node-0", labels={"mountdns.io/backs": "true"}),
                    container("web", pod="web-0"), container("gone", pod="nobody"), container("db", pod="db-0")])
    writer = make_writer(api, clock, pods=True)
    cache = ObjectCache()
    cache.replace(CONTAINER, api.objects("Container"))
    cache.replace(NODE, api.objects("Node"))
    snapshot = cache.snapshot()  # the labelled Pod not listed yet: all three are PodNotFound for now
    writer.offer(snapshot.containers, snapshot.nodes, desired_state(snapshot.containers, snapshot.nodes, SEED_CONFIG))
    writer.step()

    messages = {e["involvedObject"]["name"]: (e["reason"], e["message"]) for e in api.objects("Event")}
    assert messages == {
        "web": ("PodNotFound", "pod default/web-0 exists but has no label mountdns.io/backs: the sync watches "
                               "only Pods with that label; add it to the Pod (or its template)"),
        "gone": ("PodNotFound", "pod default/nobody not found"),
        "db": ("PodNotFound", "pod default/db-0 not found"),  # labelled: the watch will show it
    }
    assert condition(api, "web")["message"] == "pod default/web-0 not found"  # the status stays the rules' word
    pod_reads = [path for method, path, _ in list(api.requests) if method == "GET" and "/pods/" in path]
    assert sorted(pod_reads) == ["/api/v1/namespaces/default/pods/db-0", "/api/v1/namespaces/default/pods/nobody",
                                 "/api/v1/namespaces/default/pods/web-0"]


# --- Pods of the pod source: Events, not status -----------------------------------------------


def offer_pods(writer, api):
    cache = ObjectCache()
    cache.replace(CONTAINER, api.objects("Container"))
    cache.replace(NODE, api.objects("Node"))
    cache.replace(PUBLISHED_POD, api.objects("Pod"))
    snap = cache.snapshot()
    writer.offer(snap.containers, snap.nodes,
                 desired_state(snap.containers, snap.nodes, SEED_CONFIG, published_pods=snap.published_pods),
                 pods=snap.published_pods)


def test_a_pod_losing_a_name_gets_one_warning_event_and_no_status_write(api, clock):
    api.apply_many([node("node-0", "1.2.3.4"),
                    container("old", node="node-0", fqdn="x.domain.foo.bar", created="2020-01-01T00:00:00Z"),
                    published_pod("young", node="node-0", fqdn="x.domain.foo.bar", namespace="apps",
                                  created="2024-01-01T00:00:00Z"),
                    published_pod("waiting", node="node-0", ready=False)])
    writer = make_writer(api, clock, pods=True)
    offer_pods(writer, api)
    writer.step()
    offer_pods(writer, api)  # the same again: no second Event
    writer.step()

    events = [e for e in api.objects("Event") if e["involvedObject"]["kind"] == "Pod"]
    assert [(e["metadata"]["namespace"], e["involvedObject"]["name"], e["reason"], e["count"]) for e in events] == [
        ("apps", "young", "NameConflict", 1)]  # the not-Ready Pod is not told: its own status says so
    assert all("/pods/" not in path or method == "GET" for method, path, _ in api.requests)  # no Pod written
    # The cache keeps no uid; the Event names it (kubectl describe pod matches on it): read once.
    assert events[0]["involvedObject"]["uid"] == api.get("Pod", "young", namespace="apps")["metadata"]["uid"]
    assert [path for method, path, _ in api.requests if "/pods/" in path] == ["/api/v1/namespaces/apps/pods/young"]


def test_no_event_about_a_pod_deleted_before_its_event_is_written(api, clock):
    api.apply_many([node("node-0", "1.2.3.4"),
                    container("old", node="node-0", fqdn="x.domain.foo.bar", created="2020-01-01T00:00:00Z"),
                    published_pod("young", node="node-0", fqdn="x.domain.foo.bar", namespace="apps",
                                  created="2024-01-01T00:00:00Z")])
    writer = make_writer(api, clock, pods=True)
    offer_pods(writer, api)
    api.delete("Pod", "young", namespace="apps")  # gone before the writer's turn
    writer.step()
    assert [e for e in api.objects("Event") if e["involvedObject"]["kind"] == "Pod"] == []


def test_a_pod_that_fails_again_after_being_published_gets_a_new_warning_event(api, clock):
    # Only the failing Pods' reasons are remembered: a published one is remembered as
    # nothing, so failing again is news, as it was when every Pod's reason was kept.
    older = container("old", node="node-0", fqdn="x.domain.foo.bar", created="2020-01-01T00:00:00Z")
    api.apply_many([node("node-0", "1.2.3.4"), older,
                    published_pod("young", node="node-0", fqdn="x.domain.foo.bar", namespace="apps",
                                  created="2024-01-01T00:00:00Z"),
                    published_pod("fine", node="node-0", fqdn="fine.domain.foo.bar")])
    writer = make_writer(api, clock)

    def conflicts():
        return sum(e["count"] for e in api.objects("Event")
                   if e["involvedObject"]["kind"] == "Pod" and e["reason"] == "NameConflict")

    offer_pods(writer, api)
    writer.step()
    assert conflicts() == 1
    assert list(writer._pod_reasons) == [("apps", "pod/young")]  # the published Pod costs nothing here
    api.delete("Container", "old", namespace="default")
    offer_pods(writer, api)  # the Pod holds its name now
    writer.step()
    assert conflicts() == 1 and not writer._pod_reasons
    api.apply(older)
    offer_pods(writer, api)
    writer.step()
    assert conflicts() == 2


def test_after_incremental_batches_only_the_changed_containers_are_looked_at_and_written(api, clock):
    # The incremental rules say which keys changed; offers not yet looked at are merged, so
    # a change in a batch the writer never saw on its own is still written.
    api.apply_many([node("node-0", "10.0.0.1")] + [container(f"p{i}", node="node-0") for i in range(20)]
                   + [container("c", mounted_to="p0", status="MOUNTED")])
    rules = IncrementalRules(SEED_CONFIG)
    cache = ObjectCache()
    cache.replace(CONTAINER, api.objects("Container"))
    cache.replace(NODE, api.objects("Node"))

    def batch():  # as the reconciler does: what the cache's snapshot says changed goes to both
        snapshot = cache.snapshot()
        told = snapshot.changed[CONTAINER]
        desired = rules.update(snapshot.containers, snapshot.nodes, changed=(told, None, None))
        writer.offer(snapshot.containers, snapshot.nodes, desired,
                     containers_changed=(snapshot.since, snapshot.version, *told))

    writer = make_writer(api, clock)
    batch()
    assert writer.step() == 21
    for obj in api.objects("Container"):
        cache.put(CONTAINER, obj)  # the written status comes back through the watch
    batch()
    assert writer.step() == 0
    full = writer.full_refreshes  # every Container came back with its first status: all looked at

    api.apply(container("p0", node="node-9"))  # a node nobody lists: p0 and its child stop resolving
    cache.put(CONTAINER, api.get("Container", "p0"))
    batch()
    api.apply(container("p5", node="node-0", fqdn="p0.default.domain.foo.bar"))  # younger: loses the name
    cache.put(CONTAINER, api.get("Container", "p5"))
    batch()  # offered before the writer looked at the previous batch: merged with it
    api.apply(container("p7", node="node-0", type="odl"))
    cache.put(CONTAINER, api.get("Container", "p7"))
    batch()  # and a third

    assert writer.step() == 7  # four status patches, and a Warning Event for each new failure
    assert writer.full_refreshes == full  # looked at by the keys they changed, not whole
    assert sorted(event["involvedObject"]["name"] for event in api.objects("Event")) == ["c", "p0", "p5"]
    assert [condition(api, name)["reason"] for name in ("p0", "c", "p5")] == [
        "NodeNotFound", "NodeNotFound", "NameConflict"]
    assert sorted(path.rsplit("/", 2)[1] for path in status_patches(api)[21:]) == ["c", "p0", "p5", "p7"]


def test_a_status_changed_behind_the_writers_back_is_written_again_at_the_next_resync(api, clock):
    # A status-only change keeps the cache's dict (only the rules' inputs make a new one), and
    # a re-list keeps every unchanged dict: a resync must say so for the writer to look again.
    api.apply_many([node("node-0", "10.0.0.1"), container("p", node="node-0")])
    rules = IncrementalRules(SEED_CONFIG)
    cache = ObjectCache()
    cache.replace(CONTAINER, api.objects("Container"))
    cache.replace(NODE, api.objects("Node"))
    writer = make_writer(api, clock)

    def batch(recheck=False):
        snapshot = cache.snapshot()
        told = snapshot.changed[CONTAINER]
        writer.offer(snapshot.containers, snapshot.nodes,
                     rules.update(snapshot.containers, snapshot.nodes, changed=(told, None, None)),
                     containers_changed=(snapshot.since, snapshot.version, *told), recheck=recheck)

    batch()
    assert writer.step() == 1
    cache.put(CONTAINER, api.get("Container", "p"))  # the write comes back through the watch
    batch()
    assert writer.step() == 0
    wiped = api.get("Container", "p")
    wiped["status"] = {}
    api.apply(wiped)
    cache.put(CONTAINER, api.get("Container", "p"))  # someone else wiped our status
    batch()
    assert writer.step() == 0  # nothing the rules or the objects' identities tell
    cache.replace(CONTAINER, api.objects("Container"))  # the resync's re-list: the same dicts kept
    batch(recheck=True)

    assert writer.step() == 1
    assert condition(api, "p")["status"] == "True"


def test_what_a_full_look_keeps_is_the_work_to_do_in_the_caches_own_key_tuples():
    # Nothing per Container beyond the writes to make: the queue holds the cache's key
    # tuples (not one of its own per Container), and an object is kept only where the
    # rules' claim does not hold it (a skipped Container).
    cache = ObjectCache()
    cache.replace(CONTAINER, [container("c", mounted_to="gone", status="MOUNTED")]
                  + [container(f"p{i}", node="node-0") for i in range(5)])
    cache.replace(NODE, [node("node-0", "10.0.0.1")])
    snap = cache.snapshot()
    writer = StatusWriter(None, None, qps=1, leading=lambda: False)  # a follower: looks, never writes
    writer.offer(snap.containers, snap.nodes, IncrementalRules(SEED_CONFIG).update(snap.containers, snap.nodes),
                 containers_changed=(snap.since, snap.version, *snap.changed[CONTAINER]))

    assert writer.step() == 0
    assert writer.pending == 6
    assert sorted(map(id, writer._backlog)) == sorted(id(obj.key) for obj in snap.containers)
    assert writer._backlog[-1] == ("default", "c")  # the published ones first, as ever
    assert list(writer._unclaimed) == [("default", "c")]  # ParentNotFound: no claim published


# --- against random histories, in memory ------------------------------------------------


class StatusApi(World):
    """test_rules_incremental's World of random changes, with what the API server does to
    status: it survives updates of the rest of the object (the status subresource), a
    merge patch is applied with a resourceVersion precondition, and every change bumps
    the resourceVersion and is shown to the cache at once (a watch without delay)."""

    def __init__(self, rng):
        self.raw: dict = {}  # Container key -> the object as the API server holds it
        self.version = 0
        super().__init__(rng, ObjectCache())

    def put(self, kind, key, obj):
        if kind == CONTAINER:
            obj = copy.deepcopy(obj)
            self.version += 1
            obj["metadata"]["resourceVersion"] = str(self.version)
            old = self.raw.get(key)
            ours = {k: v for k, v in old["status"].items() if k in ("conditions", "fqdn", "target")} \
                if old is not None and isinstance(old.get("status"), dict) else {}
            if ours:
                obj["status"] = {**(obj["status"] if isinstance(obj.get("status"), dict) else {}), **ours}
            self.raw[key] = obj
        super().put(kind, key, obj)

    def pop(self, kind, key):
        if kind == CONTAINER:
            self.raw.pop(key, None)
        super().pop(kind, key)

    # The status writer's client.
    def get(self, namespace, name):
        if (namespace, name) not in self.raw:
            raise NotFound("gone")
        return copy.deepcopy(self.raw[(namespace, name)])

    def patch_status(self, namespace, name, patch):
        patch = json.loads(json.dumps(patch))  # what goes over the wire
        obj = self.get(namespace, name)
        if patch.get("metadata", {}).get("resourceVersion") not in (None, obj["metadata"]["resourceVersion"]):
            raise Conflict("changed since")
        status = obj["status"] if isinstance(obj.get("status"), dict) else {}
        for field_name, value in patch["status"].items():
            if value is None:
                status.pop(field_name, None)
            else:
                status[field_name] = value
        self.raw[(namespace, name)] = {**obj, "status": {}}  # put() keeps no status of ours from it
        self.put(CONTAINER, (namespace, name), {**obj, "status": status})
        return self.get(namespace, name)


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_after_every_batch_of_random_changes_every_container_says_its_verdict(seed, config_name):
    # The daemon's flow: the cache's snapshot says what changed, the incremental rules say
    # which keys' verdicts may have, the writer looks at those alone (or at everything, on
    # a resync) and writes. Whatever the history, every Container's status then says what
    # verdicts() says of the whole rules' result, and the writer keeps nothing per
    # Container beyond the writes on their way and the objects no claim holds.
    rng = random.Random(seed)
    api = StatusApi(rng)
    rules = IncrementalRules(CONFIGS[config_name])
    clock = Clock()
    writer = StatusWriter(api, None, qps=1000, burst=1000, clock=clock, wall=lambda: WALL)
    for _ in range(30):
        api.step()
    batches, lingering = 0, {}
    for _ in range(300):
        for _ in range(rng.choice([1, 1, 1, 2, 5])):
            api.step()
        snap = api.cache.snapshot()
        told = tuple(snap.changed[kind] for kind in (CONTAINER, POD, PUBLISHED_POD))
        desired = rules.update(snap.containers, snap.nodes, snap.pods, snap.published_pods, changed=told)
        writer.offer(snap.containers, snap.nodes, desired, pods=snap.published_pods,
                     containers_changed=(snap.since, snap.version, *told[0]), recheck=rng.random() < 0.03)
        batches += 1
        clock.now += 10
        writer.step()

        want = verdicts(desired, snap.nodes)
        assert want.keys() <= api.raw.keys()
        assert all(status.up_to_date(api.raw[key], verdict) for key, verdict in want.items())
        assert writer.pending == 0 and writer.failures == 0
        cached = {(obj["metadata"]["namespace"], obj["metadata"]["name"]): obj for obj in snap.containers}
        assert all(writer._object(key) is cached[key] for key in want)
        assert writer._unclaimed.keys() == {key for key, obj in cached.items()
                                            if getattr(desired.published.get(key), "obj", None) is not obj}
        # Writes are remembered until the watch shows them back: at once where it swapped
        # the status into the cached object, by the next batch where it made a new one.
        assert all(sent[0] != lingering.get(key) for key, sent in writer._sent.items())
        writer.step()  # nothing to write: forgets what was shown back, oldest first
        assert not writer._sent or _resource_version(writer._object(next(iter(writer._sent)))) == next(
            iter(writer._sent.values()))[0]
        lingering = {key: rv for key, (rv, _) in writer._sent.items()}
    assert writer.writes > 100 and writer.full_refreshes < batches / 2  # mostly key by key

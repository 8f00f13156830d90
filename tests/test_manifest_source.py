"""Manifest files as a source: what is read from them, how changes are followed, and that
a file that does not parse never makes records disappear (its last good objects stay and
the snapshot is incomplete, so nothing is garbage-collected) while its error names it."""

from __future__ import annotations

import os
import threading

import pytest

from sync.sources.cache import ObjectCache, Snapshot
from sync.sources.manifests import ManifestSource

MTIME = 1_700_000_000  # the creationTimestamp a file-read object gets: 2023-11-14T22:13:20Z
MTIME_STAMP = "2023-11-14T22:13:20Z"

SEED_FILE = """\
apiVersion: mountdns.io/v1alpha1
kind: Container
metadata: {name: container-a-0}
spec: {fqdn: Container_A_0.domain.foo.bar, nodeName: node-0}
---
apiVersion: v1
kind: Node
metadata: {name: node-0}
status: {addresses: [{type: InternalIP, address: 1.2.3.4}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated}
---
apiVersion: other.io/v1
kind: Container
metadata: {name: not-ours}
---
"""

LIST_FILE = """\
apiVersion: v1
kind: List
items:
- apiVersion: mountdns.io/v1alpha1
  kind: Container
  metadata: {name: container-a-1, namespace: prod, creationTimestamp: "2024-01-01T00:00:00Z"}
  spec: {nodeName: node-1}
- apiVersion: v1
  kind: Service
  metadata: {name: unrelated}
- apiVersion: v1
  kind: Node
  metadata: {name: node-1}
"""

BROKEN = "apiVersion: mountdns.io/v1alpha1\nkind: Container\nmetadata: {name: [unclosed\n"


def container_doc(name: str, node: str = "node-0") -> str:
    return (f"apiVersion: mountdns.io/v1alpha1\nkind: Container\n"
            f"metadata: {{name: {name}}}\nspec: {{nodeName: {node}}}\n")


def write(path, text: str, mtime: float = MTIME) -> None:
    """Write and stamp the file; distinct mtimes make a rewrite visible whatever its size."""
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def names(objects) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objects)


@pytest.fixture
def cache() -> ObjectCache:
    return ObjectCache()


@pytest.fixture
def stop():
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def source(tmp_path, cache, stop) -> ManifestSource:
    src = ManifestSource(str(tmp_path), cache, stop, poll_seconds=0.02)
    yield src
    stop.set()
    src.close()


def test_multi_document_yaml_and_lists_are_read_with_api_server_defaults(tmp_path, source, cache):
    write(tmp_path / "seed.yaml", SEED_FILE)
    write(tmp_path / "more.yml", LIST_FILE)
    write(tmp_path / "node.json", '{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-2"}}')
    write(tmp_path / "notes.txt", container_doc("ignored-suffix"))
    write(tmp_path / ".hidden.yaml", container_doc("ignored-hidden"))

    assert source.scan() is True

    snapshot = cache.snapshot()
    assert snapshot.complete is True
    assert sorted(snapshot.containers, key=lambda o: o["metadata"]["name"]) == [
        {"apiVersion": "mountdns.io/v1alpha1", "kind": "Container",
         "metadata": {"name": "container-a-0", "namespace": "default", "creationTimestamp": MTIME_STAMP},
         "spec": {"fqdn": "Container_A_0.domain.foo.bar", "nodeName": "node-0"}},
        {"apiVersion": "mountdns.io/v1alpha1", "kind": "Container",
         "metadata": {"name": "container-a-1", "namespace": "prod", "creationTimestamp": "2024-01-01T00:00:00Z"},
         "spec": {"nodeName": "node-1"}},
    ]
    assert names(snapshot.nodes) == ["node-0", "node-1", "node-2"]
    # Nodes are cluster-scoped: no namespace is invented for them.
    assert [n["metadata"] for n in snapshot.nodes if n["metadata"]["name"] == "node-2"] == [
        {"name": "node-2", "creationTimestamp": MTIME_STAMP}]
    assert source.errors == {}


def test_an_empty_directory_lists_both_kinds_as_complete_and_empty(source, cache):
    source.list_once()
    assert cache.listed() is True
    assert cache.snapshot() == Snapshot(containers=(), nodes=(), complete=True)


def test_a_changed_file_is_followed_and_an_unchanged_one_is_not_reread(tmp_path, source, cache):
    write(tmp_path / "c.yaml", container_doc("first"))
    assert source.scan() is True
    cache.changed.clear()

    assert source.scan() is False
    assert not cache.changed.is_set()

    write(tmp_path / "c.yaml", container_doc("second"), mtime=MTIME + 1)
    assert source.scan() is True
    assert cache.changed.is_set()
    assert names(cache.snapshot().containers) == ["second"]


def test_a_yaml_error_keeps_last_good_objects_and_makes_the_snapshot_incomplete(tmp_path, source, cache):
    write(tmp_path / "a.yaml", container_doc("a"))
    write(tmp_path / "b.yaml", container_doc("b"))
    source.scan()
    assert cache.snapshot().complete is True

    write(tmp_path / "b.yaml", BROKEN, mtime=MTIME + 1)
    source.scan()

    snapshot = cache.snapshot()
    assert names(snapshot.containers) == ["a", "b"]
    assert snapshot.complete is False
    assert list(source.errors) == [tmp_path / "b.yaml"]
    assert source.errors[tmp_path / "b.yaml"].startswith(f"{tmp_path / 'b.yaml'}: ")


def test_fixing_the_file_makes_the_snapshot_complete_again(tmp_path, source, cache):
    write(tmp_path / "a.yaml", container_doc("a"))
    write(tmp_path / "b.yaml", container_doc("b"))
    source.scan()
    write(tmp_path / "b.yaml", BROKEN, mtime=MTIME + 1)
    source.scan()

    write(tmp_path / "b.yaml", container_doc("b-fixed"), mtime=MTIME + 2)
    source.scan()

    snapshot = cache.snapshot()
    assert snapshot.complete is True
    assert names(snapshot.containers) == ["a", "b-fixed"]
    assert source.errors == {}


def test_a_broken_file_still_lets_other_files_change(tmp_path, source, cache):
    write(tmp_path / "a.yaml", container_doc("a"))
    write(tmp_path / "b.yaml", BROKEN)
    source.scan()
    write(tmp_path / "a.yaml", container_doc("a-renamed"), mtime=MTIME + 1)
    source.scan()

    snapshot = cache.snapshot()
    assert names(snapshot.containers) == ["a-renamed"]
    assert snapshot.complete is False


def test_no_snapshot_is_ever_complete_while_a_file_is_broken(tmp_path, stop):
    """The daemon snapshots from another thread at any moment: a complete snapshot
    between two cache calls would let it garbage-collect a broken file's records."""

    class WatchedCache(ObjectCache):
        def __init__(self):
            super().__init__()
            self.seen: list[bool] = []

        def replace(self, kind, objects, *, complete=True):
            super().replace(kind, objects, complete=complete)
            self.seen.append(self.snapshot().complete)

        def mark_incomplete(self, kind):
            super().mark_incomplete(kind)
            self.seen.append(self.snapshot().complete)

    cache = WatchedCache()
    source = ManifestSource(str(tmp_path), cache, stop)
    write(tmp_path / "a.yaml", container_doc("a") + "---\napiVersion: v1\nkind: Node\nmetadata: {name: node-0}\n")
    write(tmp_path / "b.yaml", container_doc("b"))
    source.scan()
    cache.seen.clear()

    write(tmp_path / "b.yaml", BROKEN, mtime=MTIME + 1)
    source.scan()

    assert cache.seen and True not in cache.seen


def test_metadata_that_is_not_a_mapping_is_reported_like_a_parse_error(tmp_path, source, cache):
    write(tmp_path / "a.yaml", container_doc("a"))
    write(tmp_path / "b.yaml", "apiVersion: mountdns.io/v1alpha1\nkind: Container\nmetadata: just-a-string\n")

    source.scan()

    assert names(cache.snapshot().containers) == ["a"]
    assert cache.snapshot().complete is False
    assert source.errors == {
        tmp_path / "b.yaml": f"{tmp_path / 'b.yaml'}: the metadata of a Container is not a mapping"}


def test_a_document_that_is_not_a_mapping_names_the_file(tmp_path, source, cache):
    write(tmp_path / "a.yaml", "- just\n- a list\n")
    source.scan()
    assert source.errors == {tmp_path / "a.yaml": f"{tmp_path / 'a.yaml'}: a document is not a mapping"}
    assert cache.snapshot().complete is False


def test_deleting_a_file_removes_its_objects(tmp_path, source, cache):
    write(tmp_path / "a.yaml", container_doc("a"))
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "b.yaml", container_doc("b"))
    source.scan()
    assert names(cache.snapshot().containers) == ["a", "b"]

    (tmp_path / "sub" / "b.yaml").unlink()
    assert source.scan() is True

    assert names(cache.snapshot().containers) == ["a"]
    assert cache.snapshot().complete is True


def test_deleting_a_broken_file_clears_its_error(tmp_path, source, cache):
    write(tmp_path / "a.yaml", container_doc("a"))
    write(tmp_path / "b.yaml", BROKEN)
    source.scan()

    (tmp_path / "b.yaml").unlink()
    source.scan()

    assert source.errors == {}
    assert cache.snapshot().complete is True


def test_a_resync_request_rereads_unchanged_files(tmp_path, source, cache):
    write(tmp_path / "a.yaml", container_doc("a"))
    source.scan()
    cache.changed.clear()

    source.request_resync()

    assert source.scan() is True
    assert cache.changed.is_set()
    assert names(cache.snapshot().containers) == ["a"]


def test_the_thread_follows_a_changed_file(tmp_path, source, cache, stop):
    write(tmp_path / "a.yaml", container_doc("a"))
    source.start()
    assert cache.changed.wait(5)
    assert names(cache.snapshot().containers) == ["a"]
    cache.changed.clear()

    write(tmp_path / "a.yaml", container_doc("a-renamed"), mtime=MTIME + 1)

    assert cache.changed.wait(5)
    assert names(cache.snapshot().containers) == ["a-renamed"]
    stop.set()
    source.close()
    assert not source.thread.is_alive()


def test_stop_wakes_the_thread_between_polls(tmp_path, cache, stop):
    source = ManifestSource(str(tmp_path), cache, stop, poll_seconds=3600)
    source.start()

    stop.set()
    source.close()  # waits up to 5 s: without the stop waking it, the thread sleeps for an hour

    assert not source.thread.is_alive()


PODS_FILE = """\
apiVersion: v1
kind: Pod
metadata: {name: backs, labels: {mountdns.io/backs: "true"}}
spec: {nodeName: node-0}
---
apiVersion: v1
kind: Pod
metadata: {name: published, labels: {mountdns.io/publish: "true"}}
spec: {nodeName: node-0}
---
apiVersion: v1
kind: Pod
metadata: {name: plain, labels: {app: x}}
spec: {nodeName: node-0}
"""


@pytest.mark.parametrize(("sources", "backing", "published"), [
    (("container",), ["backs"], []),
    (("pod",), [], ["published"]),
    (("container", "pod"), ["backs"], ["published"]),
])
def test_manifest_pods_reach_the_cache_as_the_label_selectors_would_choose_them(tmp_path, sources, backing,
                                                                                published):
    (tmp_path / "pods.yaml").write_text(PODS_FILE)
    cache = ObjectCache()
    ManifestSource(str(tmp_path), cache, threading.Event(), sources=sources).scan()

    snapshot = cache.snapshot()
    assert [p["metadata"]["name"] for p in snapshot.pods] == backing
    assert [p["metadata"]["name"] for p in snapshot.published_pods] == published
    assert all(p["metadata"]["namespace"] == "default" for p in (*snapshot.pods, *snapshot.published_pods))

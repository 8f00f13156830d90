"""What keeps the sync's memory per Container down: repeated values held once, and a
list's objects slimmed once."""

from __future__ import annotations

import json

from mountdns.testing.objects import MOUNTED, container
from sync.sources.cache import CONTAINER, ObjectCache, slim


def listed(obj: dict) -> dict:
    """The object as a list page decodes it: every string a new object."""
    return json.loads(json.dumps(obj))


def test_values_many_containers_share_are_held_once():
    a = slim(CONTAINER, listed(container("a", node="node-1", type="odl", status=MOUNTED)))
    b = slim(CONTAINER, listed(container("b", node="node-1", type="odl", status=MOUNTED)))

    assert a["spec"]["nodeName"] is b["spec"]["nodeName"]
    assert a["spec"]["type"] is b["spec"]["type"]
    assert a["status"]["deviceStatus"] is b["status"]["deviceStatus"]
    assert a["metadata"]["namespace"] is b["metadata"]["namespace"]
    assert a["apiVersion"] is b["apiVersion"] and a["kind"] is b["kind"]


def test_slimmed_objects_are_cached_as_they_are():
    cache = ObjectCache()
    obj = slim(CONTAINER, listed(container("a", node="node-1")))

    cache.replace(CONTAINER, [obj], slimmed=True)

    assert cache.snapshot().containers == (obj,)
    assert cache.snapshot().containers[0] is obj

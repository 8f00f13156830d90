"""Warning Events on Containers, recorded the way client-go's recorder does it.

A Container that keeps failing the same way (its parent deleted, re-created and deleted
again) must not flood its namespace with Events: as client-go's EventCorrelator does, an
Event identical to one already sent (same object, type, reason and message) is a repeat,
sent as a patch of the first Event's `count` and `lastTimestamp`, not as a new Event.
What was sent is remembered in an LRU of 4,096 entries (client-go's size); a repeat whose
Event has meanwhile expired from the cluster (404) is created anew.

An Event must live in its object's namespace (the server rejects anything else with
422), so the recorder writes to each Container's own namespace.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Callable, Mapping

from sync.kube_rest import EVENT, EVENTS, KubeRest, call

log = logging.getLogger("mountdns.sync.events")

COMPONENT = "mountdns-sync"
MAX_ENTRIES = 4096  # client-go's maxLruCacheEntries


class EventError(Exception):
    """An Event could not be written (API error or unreachable)."""


class EventNotFound(EventError):
    """The Event to patch no longer exists (Events expire, after an hour by default)."""


class EventsClient:
    """core/v1 Events through the official client; bodies and answers are plain dicts."""

    def __init__(self, api_client):
        self.rest = KubeRest(api_client)

    def create(self, namespace: str, body: dict) -> dict:
        return self._call("POST", EVENTS, {"namespace": namespace}, body=body)

    def patch(self, namespace: str, name: str, body: dict) -> dict:
        return self._call("PATCH", EVENT,
                          {"namespace": namespace, "name": name}, body=body,
                          content_type="application/merge-patch+json")

    def _call(self, method: str, path: str, path_params: dict, **request) -> dict:
        return call(self.rest, method, path, path_params=path_params, errors={404: EventNotFound},
                    failure=EventError, **request)


def rfc3339(moment: datetime) -> str:
    """metav1.Time: seconds resolution, UTC."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """Writes Warning Events about objects, aggregating repeats into a count."""

    def __init__(self, client, *, component: str = COMPONENT, host: str | None = None,
                 wall: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 max_entries: int = MAX_ENTRIES):
        self.client = client
        self.component = component
        self.host = host if host is not None else socket.gethostname()
        self.wall = wall
        self.max_entries = max_entries
        self._sent: OrderedDict[tuple, tuple[str, int, str]] = OrderedDict()  # key -> (name, count, first)

    def warning(self, obj: Mapping, reason: str, message: str) -> dict:
        """Record a Warning about `obj` (a Kubernetes object as a dict). Returns the Event
        as the server stored it; raises EventError."""
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        involved = {"kind": obj.get("kind"), "namespace": namespace, "name": meta.get("name"),
                    "uid": meta.get("uid"), "apiVersion": obj.get("apiVersion"),
                    "resourceVersion": meta.get("resourceVersion")}
        key = (self.component, self.host, involved["kind"], namespace, involved["name"], involved["uid"],
               involved["apiVersion"], "Warning", reason, message)
        now = rfc3339(self.wall())
        previous = self._sent.get(key)
        if previous is not None:
            name, count, first = previous
            try:
                stored = self.client.patch(namespace, name, {"count": count + 1, "lastTimestamp": now})
                self._remember(key, (name, count + 1, first))
                return stored
            except EventNotFound:
                log.debug("event %s/%s expired; creating it again", namespace, name)
                first, count = now, count  # created anew below, the count carried over as client-go does
        else:
            count, first = 0, now
        name = f"{involved['name']}.{time.time_ns():x}"  # client-go's naming: object name and time
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {k: v for k, v in involved.items() if v},
            "reason": reason, "message": message, "type": "Warning",
            "count": count + 1, "firstTimestamp": first, "lastTimestamp": now,
            "source": {"component": self.component, "host": self.host},
            "reportingComponent": self.component, "reportingInstance": self.host,
        }
        stored = self.client.create(namespace, body)
        self._remember(key, (name, count + 1, first))
        return stored

    def _remember(self, key: tuple, value: tuple[str, int, str]) -> None:
        self._sent[key] = value
        self._sent.move_to_end(key)
        while len(self._sent) > self.max_entries:
            self._sent.popitem(last=False)

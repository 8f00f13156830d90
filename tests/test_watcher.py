"""The Kubernetes watcher without HTTP, fed canned event streams (as kopf tests its own).

First the part that consumes one stream (`decode_lines`, `apply_event`, `follow`), then the
list-then-watch loop of `ResourceWatcher`, driven by a canned stand-in for the client's list
call: which resourceVersion each watch starts from, when it re-lists, when it backs off
(the sleeps are recorded, not slept). The same loop over real HTTP against the API double
is in test_sync_kube.py.
"""

from __future__ import annotations

import json
import threading

import pytest
from kubernetes.client.rest import ApiException
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from mountdns.backoff import Backoff
from sync.sources.cache import NODE, ObjectCache
from sync.sources.kube import Gone, ResourceWatcher, WatchError, apply_event, decode_lines, follow


def node_at(name: str, address: str, rv: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "resourceVersion": rv},
            "status": {"addresses": [{"type": "InternalIP", "address": address}]}}


def bookmark(rv: str) -> dict:
    return {"type": "BOOKMARK", "object": {"apiVersion": "v1", "kind": "Node", "metadata": {"resourceVersion": rv}}}


def error(code: int, reason: str, message: str) -> dict:
    return {"type": "ERROR", "object": {"apiVersion": "v1", "kind": "Status", "status": "Failure",
                                        "code": code, "reason": reason, "message": message}}


STREAM_WITH_NORMAL_EVENTS = [
    {"type": "ADDED", "object": node_at("node-1", "10.0.0.1", "11")},
    {"type": "ADDED", "object": node_at("node-2", "10.0.0.2", "12")},
    {"type": "MODIFIED", "object": node_at("node-1", "10.0.0.9", "13")},
    {"type": "DELETED", "object": node_at("node-2", "10.0.0.2", "14")},
]
STREAM_WITH_BOOKMARKS = [
    bookmark("20"),
    {"type": "ADDED", "object": node_at("node-1", "10.0.0.1", "21")},
    bookmark("25"),
]
STREAM_WITH_UNKNOWN_EVENT = [
    {"type": "ADDED", "object": node_at("node-1", "10.0.0.1", "11")},
    {"type": "UNKNOWN", "object": node_at("node-2", "10.0.0.2", "12")},
    {"type": "MODIFIED", "object": node_at("node-1", "10.0.0.9", "13")},
]
STREAM_WITH_ERROR_410GONE = [
    {"type": "ADDED", "object": node_at("node-1", "10.0.0.1", "11")},
    error(410, "Expired", "too old resource version: 5 (10)"),
    {"type": "ADDED", "object": node_at("node-2", "10.0.0.2", "12")},
]
STREAM_WITH_ERROR_CODE = [
    {"type": "ADDED", "object": node_at("node-1", "10.0.0.1", "11")},
    error(500, "InternalError", "etcdserver: request timed out"),
    {"type": "ADDED", "object": node_at("node-2", "10.0.0.2", "12")},
]
LINES_WITH_BLANKS = [b"", json.dumps(STREAM_WITH_NORMAL_EVENTS[0]).encode(), "  ",
                     json.dumps(STREAM_WITH_NORMAL_EVENTS[1])]
LINES_WITH_A_BROKEN_EVENT = [json.dumps(STREAM_WITH_NORMAL_EVENTS[0]), '{"type": "ADDED", "obj']
LINES_WITH_A_NON_OBJECT = ['["ADDED"]']


def addresses(cache: ObjectCache) -> dict[str, str]:
    return {n["metadata"]["name"]: n["status"]["addresses"][0]["address"] for n in cache.snapshot().nodes}


# --- one stream -----------------------------------------------------------------------------
def test_empty_stream_yields_nothing_and_changes_nothing():
    cache = ObjectCache()
    assert list(follow(NODE, cache, [], "10")) == []
    assert addresses(cache) == {}
    assert not cache.changed.is_set()


def test_every_event_is_applied_and_its_resource_version_yielded():
    cache = ObjectCache()
    assert list(follow(NODE, cache, STREAM_WITH_NORMAL_EVENTS, "10")) == ["11", "12", "13", "14"]
    assert addresses(cache) == {"node-1": "10.0.0.9"}


def test_bookmarks_move_the_resource_version_without_touching_the_cache():
    cache = ObjectCache()
    versions = follow(NODE, cache, STREAM_WITH_BOOKMARKS, "10")
    assert next(versions) == "20"
    assert addresses(cache) == {} and not cache.changed.is_set()
    assert list(versions) == ["21", "25"]
    assert addresses(cache) == {"node-1": "10.0.0.1"}


def test_unknown_event_type_ignored():
    cache = ObjectCache()
    assert list(follow(NODE, cache, STREAM_WITH_UNKNOWN_EVENT, "10")) == ["11", "11", "13"]
    assert addresses(cache) == {"node-1": "10.0.0.9"}


def test_error_410gone_raises_gone_after_applying_the_events_before_it():
    cache = ObjectCache()
    seen = []
    with pytest.raises(Gone, match="too old resource version"):
        for version in follow(NODE, cache, STREAM_WITH_ERROR_410GONE, "10"):
            seen.append(version)
    assert seen == ["11"]
    assert addresses(cache) == {"node-1": "10.0.0.1"}  # the event after the error is never applied


def test_other_error_raises_watch_error_with_its_status():
    cache = ObjectCache()
    with pytest.raises(WatchError, match="API error 500: InternalError: etcdserver") as caught:
        list(follow(NODE, cache, STREAM_WITH_ERROR_CODE, "10"))
    assert caught.value.status == 500
    assert addresses(cache) == {"node-1": "10.0.0.1"}


def test_a_deleted_object_the_cache_never_had_is_no_error():
    cache = ObjectCache()
    assert apply_event(NODE, cache, STREAM_WITH_NORMAL_EVENTS[3], "13") == "14"
    assert addresses(cache) == {}


def test_an_event_without_a_resource_version_keeps_the_last_one():
    cache = ObjectCache()
    event = {"type": "ADDED", "object": {"kind": "Node", "metadata": {"name": "node-7"}}}
    assert apply_event(NODE, cache, event, "42") == "42"


def test_blank_lines_are_skipped_and_each_line_is_one_event():
    assert list(decode_lines(LINES_WITH_BLANKS)) == STREAM_WITH_NORMAL_EVENTS[:2]


def test_an_undecodable_line_ends_the_stream_with_a_watch_error_after_the_good_ones():
    events = decode_lines(LINES_WITH_A_BROKEN_EVENT)
    assert next(events) == STREAM_WITH_NORMAL_EVENTS[0]
    with pytest.raises(WatchError, match="undecodable watch event"):
        next(events)
    with pytest.raises(WatchError, match="not an object"):
        list(decode_lines(LINES_WITH_A_NON_OBJECT))


# --- the list-then-watch loop ----------------------------------------------------------------
class CannedResponse:
    """A list page (`.data`) or a watch stream (`.stream()`, which raises `then` at its end)."""

    connection = None

    def __init__(self, body: dict | None = None, events=(), then: Exception | None = None):
        self.data = json.dumps(body).encode() if body is not None else b""
        self.events = list(events)
        self.then = then
        self.released = False

    def stream(self, amt=None, decode_content=False):
        for event in self.events:
            yield json.dumps(event).encode() + b"\n"
        if self.then is not None:
            raise self.then

    def release_conn(self):
        self.released = True

    def close(self):
        pass


class CannedApi:
    """Stands in for the client's list call: answers lists and watches from canned scripts
    (a response, or an exception to raise), records (call, resourceVersion), and stops the
    watcher once a script runs out."""

    def __init__(self, stop: threading.Event, lists, watches):
        self.stop = stop
        self.lists = list(lists)
        self.watches = list(watches)
        self.calls: list[tuple[str, str | None]] = []

    def __call__(self, **kwargs):
        watching = bool(kwargs.get("watch"))
        self.calls.append(("watch", kwargs["resource_version"]) if watching else ("list", None))
        script = self.watches if watching else self.lists
        if not script:
            self.stop.set()
            raise ProtocolError("the canned script is over")
        answer = script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def listing(rv: str, *nodes: dict) -> CannedResponse:
    return CannedResponse({"apiVersion": "v1", "kind": "NodeList", "metadata": {"resourceVersion": rv},
                           "items": list(nodes)})


def watching(*events: dict, then: Exception | None = None) -> CannedResponse:
    return CannedResponse(events=events, then=then)


IDLE = ReadTimeoutError(None, None, "Read timed out.")


def run_watcher(lists, watches, **options) -> tuple[ResourceWatcher, CannedApi, list[float]]:
    """Run the loop in this thread until the canned scripts are over."""
    stop, cache, sleeps = threading.Event(), ObjectCache(), []
    api = CannedApi(stop, lists, watches)
    options.setdefault("backoff", Backoff(initial=0.5, maximum=4.0, rand=lambda: 0.0))
    watcher = ResourceWatcher(NODE, api, cache, stop, sleep=sleeps.append, **options)
    watcher.run()
    return watcher, api, sleeps


def test_the_watch_starts_at_the_list_version_and_each_next_one_at_the_last_event():
    watcher, api, sleeps = run_watcher(
        lists=[listing("10", node_at("node-1", "10.0.0.1", "7"))],
        watches=[watching(*STREAM_WITH_NORMAL_EVENTS[:2]),  # ended by the server (its timeout)
                 watching(*STREAM_WITH_BOOKMARKS)])
    assert api.calls == [("list", None), ("watch", "10"), ("watch", "12"), ("watch", "25")]
    assert addresses(watcher.cache) == {"node-1": "10.0.0.1", "node-2": "10.0.0.2"}
    assert sleeps == []  # a watch ending normally is no failure


def test_error_410gone_relists_at_once_and_watches_from_the_new_list():
    watcher, api, sleeps = run_watcher(
        lists=[listing("10"), listing("30", node_at("node-3", "10.0.0.3", "29"))],
        watches=[watching(*STREAM_WITH_ERROR_410GONE)])
    assert api.calls == [("list", None), ("watch", "10"), ("list", None), ("watch", "30")]
    assert addresses(watcher.cache) == {"node-3": "10.0.0.3"}  # the re-list replaced the kind
    assert sleeps == []


def test_a_silent_watch_is_resumed_from_the_last_version_without_a_relist():
    watcher, api, sleeps = run_watcher(
        lists=[listing("10")],
        watches=[watching(then=IDLE),  # not even a bookmark
                 watching(*STREAM_WITH_NORMAL_EVENTS[:1], then=IDLE),
                 watching(bookmark("40"), then=IDLE)],
        idle_timeout=0.5)
    assert api.calls == [("list", None), ("watch", "10"), ("watch", "10"), ("watch", "11"), ("watch", "40")]
    assert watcher.idle_restarts == 3
    assert sleeps == []
    assert addresses(watcher.cache) == {"node-1": "10.0.0.1"}


def test_the_idle_timeout_is_the_read_timeout_of_the_watch_request():
    stop, requests = threading.Event(), []

    def list_call(**kwargs):
        requests.append(kwargs)
        if kwargs.get("watch"):
            stop.set()
            return watching()
        return listing("10")

    ResourceWatcher(NODE, list_call, ObjectCache(), stop, idle_timeout=7.5, request_timeout=3.0).run()
    watch = requests[1]
    assert watch["_request_timeout"] == (3.0, 7.5)
    assert (watch["resource_version"], watch["allow_watch_bookmarks"]) == ("10", True)


def test_failures_back_off_on_the_capped_schedule_and_a_good_list_resets_it():
    server_error = ApiException(status=500, reason="Internal Server Error")
    watcher, api, sleeps = run_watcher(
        lists=[server_error] * 5 + [listing("10")] + [server_error, listing("20")],
        watches=[watching(*STREAM_WITH_ERROR_CODE)])
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 4.0,  # five failed lists
                      0.5,  # the error in the stream, after a good list reset the schedule
                      1.0]  # the failed re-list after it
    assert api.calls[-3:] == [("list", None), ("list", None), ("watch", "20")]


def test_a_dropped_stream_backs_off_then_relists():
    watcher, api, sleeps = run_watcher(
        lists=[listing("10"), listing("20")],
        watches=[watching(*STREAM_WITH_NORMAL_EVENTS[:1], then=ProtocolError("Connection broken"))])
    assert api.calls == [("list", None), ("watch", "10"), ("list", None), ("watch", "20")]
    assert sleeps == [0.5]


def test_a_stop_while_a_stream_is_read_ends_the_loop_at_the_event_being_read():
    stop, cache = threading.Event(), ObjectCache()

    class StoppingStream(CannedResponse):
        def stream(self, amt=None, decode_content=False):
            for number, line in enumerate(super().stream(amt, decode_content)):
                if number == 1:
                    stop.set()  # while the second event is on its way
                yield line

    api = CannedApi(stop, [listing("10")], [StoppingStream(events=STREAM_WITH_NORMAL_EVENTS)])
    ResourceWatcher(NODE, api, cache, stop, sleep=pytest.fail).run()
    assert api.calls == [("list", None), ("watch", "10")]
    assert addresses(cache) == {"node-1": "10.0.0.1", "node-2": "10.0.0.2"}  # not the MODIFIED or DELETED after

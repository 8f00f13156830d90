"""Purging PowerDNS caches: which names a batch affects (pure, named scenarios with exact
sets), and the background purger against a small local HTTP server standing in for the
PowerDNS API (it records each PUT and can fail, hang or be stopped)."""

from __future__ import annotations

import socket
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mountdns.backoff import Backoff
from mountdns.plan import diff
from mountdns.records import State, Zone
from sync.purge import MAX_NAMES_PER_PURGE, CachePurger, affected_names, purge_targets, purge_waves
from mountdns.testing.servers import eventually

ZONE = "example.com"
OTHER = "other.org"
FLUSH = "/api/v1/servers/localhost/cache/flush?domain="

BEFORE = State(
    zones={ZONE: Zone(ZONE, ("ns1.example.com",), "hostmaster.example.com"),
           OTHER: Zone(OTHER, ("ns1.example.com",), "hostmaster.other.org")},
    nodes={"node-1": ("10.0.0.1",), "node-2": ("10.0.0.2",)},
    parents={"p1.example.com": "node-1", "p2.other.org": "node-1", "p3.example.com": "node-2"},
    children={
        "c1.example.com": "p1.example.com",
        "c2.example.com": "c1.example.com",  # nested: a child of a child
        "c3.other.org": "c2.example.com",  # nested further, across zones
        "c4.example.com": "p3.example.com",
    },
)


def after(**changed) -> State:
    return replace(BEFORE, **{k: {**getattr(BEFORE, k), **v} for k, v in changed.items()})


def affected(new: State) -> set[str]:
    return affected_names(diff(BEFORE, new), BEFORE, new)


# --- affected_names -----------------------------------------------------------------------


def test_node_move_purges_its_parents_and_every_chained_child_but_not_the_apex():
    moved = after(nodes={"node-1": ("10.9.9.9",)})
    # The serial of every zone moves, but purging an apex would flush its whole zone.
    assert diff(BEFORE, moved).bump_serials == {ZONE, OTHER}
    assert affected(moved) == {
        "p1.example.com", "p2.other.org",  # the parents on the node
        "c1.example.com", "c2.example.com", "c3.other.org",  # every child chained to them
    }


def test_node_move_leaves_names_on_other_nodes_alone():
    moved = after(nodes={"node-2": ("10.9.9.9",)})
    assert affected(moved) == {"p3.example.com", "c4.example.com"}


def test_new_child_purges_its_own_name_only():
    added = after(children={"c5.other.org": "p3.example.com"})
    assert affected(added) == {"c5.other.org"}


def test_parent_moving_to_another_node_purges_it_and_its_descendants():
    moved = after(parents={"p1.example.com": "node-2"})
    # other.org's own records did not change (c3 still names c2): only example.com's serial moves.
    assert affected(moved) == {"p1.example.com", "c1.example.com", "c2.example.com", "c3.other.org"}


def test_deleted_child_purges_the_children_that_were_chained_through_it():
    children = {k: v for k, v in BEFORE.children.items() if k != "c1.example.com"}
    removed = replace(BEFORE, children=children)
    assert affected(removed) == {"c1.example.com", "c2.example.com", "c3.other.org"}


def test_no_changes_affect_no_names():
    assert affected(BEFORE) == set()


# --- purge_targets ------------------------------------------------------------------------


def test_up_to_the_limit_each_name_is_purged():
    names = {f"h{i}.example.com" for i in range(MAX_NAMES_PER_PURGE)}
    assert purge_targets([names], [ZONE]) == sorted(names)


def test_above_the_limit_whole_zones_are_purged_and_stray_names_kept():
    names = {f"h{i}.example.com" for i in range(150)} | {f"h{i}.sub.other.org" for i in range(60)}
    names.add("stray.net")
    assert purge_targets([names], [ZONE, OTHER]) == [ZONE, OTHER, "stray.net"]


def test_parents_are_purged_before_the_children_chained_to_them():
    moved = after(nodes={"node-1": ("10.9.9.9",)})
    waves = purge_waves(diff(BEFORE, moved), BEFORE, moved)
    assert waves == [{"p1.example.com", "p2.other.org"}, {"c1.example.com"}, {"c2.example.com"},
                     {"c3.other.org"}]
    assert purge_targets(waves, [ZONE, OTHER]) == [
        "p1.example.com", "p2.other.org", "c1.example.com", "c2.example.com", "c3.other.org"]


# --- CachePurger against a local HTTP server -----------------------------------------------------


class FakePdnsApi:
    """The PowerDNS API's cache flush endpoint, recording (path, X-API-Key, status) per PUT."""

    def __init__(self):
        self.requests: list[tuple[str, str | None, int]] = []
        self.status = 200
        self.hang = threading.Event()  # set: requests wait until `release` is set
        self.release = threading.Event()
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self):
                if api.hang.is_set():
                    api.release.wait(10)
                with api.lock:
                    status = api.status
                    api.requests.append((self.path, self.headers.get("X-API-Key"), status))
                body = b'{"count": 1, "result": "Flushed cache."}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        self.stopped = False

    def paths(self, status: int = 200) -> list[str]:
        with self.lock:
            return [path for path, _, s in self.requests if s == status]

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.release.set()
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def make_api():
    apis = []

    def make() -> FakePdnsApi:
        apis.append(FakePdnsApi())
        return apis[-1]

    yield make
    for api in apis:
        api.stop()


def quick_retries() -> Backoff:
    return Backoff(initial=0.01, maximum=0.1)


@pytest.fixture
def silent_server():
    """A listening socket that accepts connections and never answers (a hung PowerDNS)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def make_purger():
    purgers = []

    def make(urls, key="secret", **kwargs) -> CachePurger:
        purgers.append(CachePurger(urls, key, **kwargs).start())
        return purgers[-1]

    yield make
    for purger in purgers:
        purger.stop()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_purges_arrive_with_the_key_and_absolute_percent_encoded_domains(make_api, make_purger):
    api = make_api()
    purger = make_purger([api.url], key="s3cret")

    purger.submit({"container_a_0.example.com", "a+b c.example.com"}, [ZONE])

    # The server records a request before answering it: wait for the purger to count the answer.
    assert eventually(lambda: purger.sent == 2 and purger.pending() == 0)
    assert sorted(api.requests) == [
        (FLUSH + "a%2Bb%20c.example.com.", "s3cret", 200),
        (FLUSH + "container_a_0.example.com.", "s3cret", 200),
    ]
    assert (purger.sent, purger.failures) == (2, 0)


def test_every_api_url_gets_every_purge(make_api, make_purger):
    first, second = make_api(), make_api()
    purger = make_purger([first.url, second.url])

    purger.submit({"p1.example.com"}, [ZONE])
    purger.submit({"p2.example.com"}, [ZONE])

    expected = [FLUSH + "p1.example.com.", FLUSH + "p2.example.com."]
    assert eventually(lambda: sorted(first.paths()) == expected and sorted(second.paths()) == expected)
    assert eventually(lambda: purger.pending() == 0)


def test_many_names_become_one_purge_per_zone(make_api, make_purger):
    api = make_api()
    purger = make_purger([api.url])

    purger.submit({f"h{i}.example.com" for i in range(MAX_NAMES_PER_PURGE + 1)}, [ZONE, OTHER])

    assert eventually(lambda: purger.pending() == 0 and api.paths() == [FLUSH + "example.com."])


def test_a_failing_server_is_retried_until_it_succeeds(make_api, make_purger):
    api = make_api()
    api.status = 500
    purger = make_purger([api.url], backoff=quick_retries)

    purger.submit({"p1.example.com"}, [ZONE])
    assert eventually(lambda: len(api.paths(500)) >= 2)
    # Between tries the name is queued again (while a try is in flight it is not).
    assert eventually(lambda: purger.pending() == 1)

    with api.lock:
        api.status = 200
    assert eventually(lambda: purger.sent == 1 and purger.pending() == 0)
    assert api.paths(200) == [FLUSH + "p1.example.com."]
    assert purger.failures >= 2


def test_a_stopped_server_is_retried_once_it_is_back_on_another_server(make_api, make_purger):
    down = closed_port_url()
    up = make_api()
    purger = make_purger([down, up.url], backoff=quick_retries)

    purger.submit({"p1.example.com"}, [ZONE])

    assert eventually(lambda: up.paths() == [FLUSH + "p1.example.com."])
    assert eventually(lambda: purger.failures >= 2)
    assert eventually(lambda: purger.pending() == 1)  # still owed to the server that is down
    assert up.paths() == [FLUSH + "p1.example.com."]  # the healthy server got it exactly once


def test_submit_queues_without_waiting_for_a_server_that_never_answers(make_purger, silent_server):
    purger = make_purger([silent_server], timeout=60.0)
    purger.submit({"p0.example.com"}, [ZONE])
    # The purge thread is stuck in its request to the silent server for a minute ...
    assert eventually(lambda: purger.servers[0].in_flight == 1 and not purger.servers[0].pending)

    submitter = threading.Thread(target=lambda: [purger.submit({f"p{i}.example.com"}, [ZONE])
                                                 for i in range(1, 100)])
    submitter.start()
    submitter.join(10)

    # ... yet every submit returned, and all of them were queued behind it.
    assert not submitter.is_alive()
    assert (purger.sent, purger.failures) == (0, 0)
    assert purger.servers[0].in_flight == 1
    assert purger.pending() == 100


def test_submit_queues_while_a_purge_hangs_and_both_go_out_once_it_answers(make_api, make_purger):
    api = make_api()
    api.hang.set()
    purger = make_purger([api.url], timeout=30.0)
    purger.submit({"p1.example.com"}, [ZONE])
    # taken by the thread, now stuck in the request: in flight, not queued
    assert eventually(lambda: purger.servers[0].in_flight == 1 and not purger.servers[0].pending)

    purger.submit({"p2.example.com"}, [ZONE])

    assert api.requests == []  # the first purge has not been answered yet
    assert purger.pending() == 2  # one queued, one in flight
    api.release.set()
    assert eventually(lambda: sorted(api.paths()) == [FLUSH + "p1.example.com.", FLUSH + "p2.example.com."])


def test_submit_without_names_or_urls_queues_nothing(make_purger):
    empty = make_purger([closed_port_url()])
    empty.submit(set(), [ZONE])
    assert (empty.pending(), empty.failures) == (0, 0)
    nothing = make_purger([])
    nothing.submit({"p1.example.com"}, [ZONE])
    assert nothing.pending() == 0


def test_a_server_that_is_down_does_not_delay_purges_to_another(make_api, make_purger):
    api = make_api()
    # After its first failure the server that is down waits an hour: purges to the other
    # one arriving at all shows that they do not wait on it.
    purger = make_purger([closed_port_url(), api.url], backoff=lambda: Backoff(initial=3600.0, maximum=3600.0))
    purger.submit({"p1.example.com"}, [ZONE])
    assert eventually(lambda: purger.failures == 1 and api.paths() == [FLUSH + "p1.example.com."])
    purger.submit({"p2.example.com"}, [ZONE])
    assert eventually(lambda: sorted(api.paths()) == [FLUSH + "p1.example.com.", FLUSH + "p2.example.com."])
    assert purger.failures == 1  # the dead one is still waiting out its first delay


def test_retries_follow_the_shared_capped_backoff(make_purger):
    delays = []

    class Recording(Backoff):
        def next_delay(self):
            delays.append(super().next_delay())
            return 0.0 if len(delays) < 8 else 3600.0  # the schedule is recorded, not waited out

    purger = make_purger([closed_port_url()], backoff=lambda: Recording(initial=0.1, rand=lambda: 0.0))
    purger.submit({"p1.example.com"}, [ZONE])
    assert eventually(lambda: len(delays) == 8)
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 4.0, 4.0]


def test_changed_zone_definition_purges_the_whole_zone():
    retimed = replace(BEFORE, zones={**BEFORE.zones, ZONE: replace(BEFORE.zones[ZONE], ttl=60)})
    assert affected(retimed) == {ZONE}


def test_queued_waves_merge_level_by_level_and_a_name_keeps_its_earliest_wave():
    from sync.purge import _merge_waves
    assert _merge_waves([{"p1"}, {"c1"}], [{"c1", "p2"}, {"c2"}, {"c3"}]) == [{"p1", "c1", "p2"}, {"c2"}, {"c3"}]
    assert _merge_waves([], [{"p1"}]) == [{"p1"}]

"""Purging changed names from PowerDNS's caches after each committed batch.

PowerDNS caches whole answers (packet cache) and backend lookups (query cache); a child's
cached answer holds its parent's address, so when a node moves, the parents on it AND
every child chained to them must be purged, parents first. `purge_waves` computes that purely;
`CachePurger` sends it to every PowerDNS API in the background, retrying with backoff, so
an unreachable PowerDNS is logged and retried but never delays writing Redis.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Iterable
from urllib.parse import quote

import urllib3

from mountdns.backoff import Backoff
from mountdns.names import absolute, containing_zone
from mountdns.plan import Changes
from mountdns.records import State

log = logging.getLogger("mountdns.sync.purge")

# Past this many names, purging the zones wholesale (one call each) is cheaper than
# one call per name, and PowerDNS refills its caches on demand anyway.
MAX_NAMES_PER_PURGE = 32


def purge_waves(changes: Changes, before: State, after: State) -> list[set[str]]:
    """The names whose answers may differ after `changes`, in the order to purge them:
    first the names that changed (and the parents on moved nodes), then the children
    chained to them, one level of nesting per wave.

    The order matters: a child's cached answer is rebuilt from its parent's cached
    records, so purging a child before its parent lets a query in between re-cache the
    old address for a whole cache TTL."""
    names = set(changes.parents_put) | set(changes.parents_delete)
    names |= set(changes.children_put) | set(changes.children_delete)
    moved_nodes = set(changes.nodes_put) | set(changes.nodes_delete)
    if moved_nodes:
        for state in (before, after):
            names.update(p for p, node in state.parents.items() if node in moved_nodes)
    # Not the apex for a mere serial bump: PowerDNS's cache flush takes a name AND all
    # below it, so purging the apex would empty the zone's caches on every batch. A stale
    # serial in a cached SOA lives at most one cache TTL. A changed zone definition (NS,
    # SOA fields, TTL) does change every answer: then the whole zone goes.
    names |= set(changes.zones_put)
    waves = [names] if names else []
    # One scan of the children per level of nesting: unlike an index of every child by
    # target, it allocates nothing per child (that index cost 35-160 ms per batch at 100,000).
    seen, frontier = set(names), set(names)
    while frontier:
        frontier = {child for state in (before, after) for child, target in state.children.items()
                    if target in frontier and child not in seen}
        if frontier:
            waves.append(frontier)
            seen |= frontier
    return waves


def affected_names(changes: Changes, before: State, after: State) -> set[str]:
    """Every name whose answer may differ after `changes` (both sides of each mapping)."""
    return set().union(*purge_waves(changes, before, after))


def purge_targets(waves: list[set[str]], zones: Iterable[str]) -> list[str]:
    """The API `domain` values to flush, in order: the names wave by wave, or whole zones
    when there are many (one call each instead of one per name; PowerDNS flushes the
    given name and everything below it)."""
    total = set().union(*waves) if waves else set()
    if len(total) <= MAX_NAMES_PER_PURGE:
        ordered, seen = [], set()
        for wave in waves:
            ordered += sorted(wave - seen)
            seen |= wave
        return ordered
    zones = list(zones)
    return sorted({containing_zone(n, zones) or n for n in total})


def _merge_waves(first: list[set[str]], second: list[set[str]]) -> list[set[str]]:
    """Wave i of both, together; a name keeps its earliest wave."""
    merged = [set(a) | set(b) for a, b in zip(first, second)] + [set(w) for w in (first[len(second):] or second[len(first):])]
    seen = set()
    for wave in merged:
        wave -= seen
        seen |= wave
    return [w for w in merged if w]


class _ServerPurger:
    """Purges for one PowerDNS API, on its own thread, so a server that is down delays
    only its own purges."""

    def __init__(self, url: str, api_key: str, http: urllib3.PoolManager, backoff: Backoff):
        self.url = url
        self.api_key = api_key
        self.http = http
        self.backoff = backoff
        self.pending: list[set[str]] = []  # waves, purged in order
        self.zones: set[str] = set()
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"pdns-purge {url}", daemon=True)
        self.sent = 0
        self.failures = 0
        self.in_flight = 0

    def submit(self, waves: list[set[str]], zones) -> None:
        with self.cond:
            self.zones.update(zones)
            self.pending = _merge_waves(self.pending, waves)
            self.cond.notify()

    def stop(self) -> None:
        self.stopping.set()
        with self.cond:
            self.cond.notify()

    def _run(self) -> None:
        while not self.stopping.is_set():
            with self.cond:
                while not self.stopping.is_set() and not self.pending:
                    self.cond.wait()
                waves, self.pending = self.pending, []
                zones = set(self.zones)
                self.in_flight = sum(len(w) for w in waves)
            if not waves:
                continue
            unsent = self._purge(waves, zones)
            with self.cond:
                self.pending = _merge_waves(unsent, self.pending)
                self.in_flight = 0
            if unsent:
                self.stopping.wait(self.backoff.next_delay())
            else:
                self.backoff.reset()

    def _purge(self, waves: list[set[str]], zones: set[str]) -> list[set[str]]:
        """Send purges for `waves`; return the waves still to purge."""
        for target in purge_targets(waves, zones):
            endpoint = f"{self.url}/api/v1/servers/localhost/cache/flush?domain={quote(absolute(target))}"
            try:
                response = self.http.request("PUT", endpoint, headers={"X-API-Key": self.api_key})
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {response.data[:200]!r}")
                self.sent += 1
            except Exception as exc:  # noqa: BLE001 - any failure is logged and retried
                self.failures += 1
                log.warning("purging %s from PowerDNS at %s failed (will retry): %s", target, self.url, exc)
                return waves
        return []


class CachePurger:
    """Sends purges to every PowerDNS API in the background, each server independently,
    retrying with backoff; `submit` never blocks on the network.

    `backoff` makes each server's retry schedule (one Backoff per server, so a server
    that is down backs off alone); the default retries within 4 s of PowerDNS's return."""

    def __init__(self, api_urls: Iterable[str], api_key: str, *, timeout: float = 2.0,
                 backoff: Callable[[], Backoff] = lambda: Backoff(initial=0.1)):
        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False)
        self.servers = [_ServerPurger(url, api_key, http, backoff()) for url in api_urls]
        self._started = False

    @property
    def api_urls(self) -> list[str]:
        return [s.url for s in self.servers]

    @property
    def sent(self) -> int:
        return sum(s.sent for s in self.servers)

    @property
    def failures(self) -> int:
        return sum(s.failures for s in self.servers)

    def submit(self, waves: list[set[str]] | set[str], zones: Iterable[str]) -> None:
        """Queue purges: a list of waves (see purge_waves) or one set of names."""
        waves = [set(w) for w in ([waves] if isinstance(waves, (set, frozenset)) else waves) if w]
        if waves:
            zones = set(zones)
            for server in self.servers:
                server.submit(waves, zones)

    def pending(self) -> int:
        """Names not yet purged (queued or being sent), over all servers."""
        return sum(sum(len(w) for w in s.pending) + s.in_flight for s in self.servers)

    def start(self) -> "CachePurger":
        if not self._started:
            self._started = True
            for server in self.servers:
                server.thread.start()
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        if self._started:
            for server in self.servers:
                server.thread.join(5)

"""Purging changed names from PowerDNS's caches after each committed batch.

PowerDNS caches whole answers (packet cache) and backend lookups (query cache); a child's
cached answer holds its parent's address, so when a node moves, the parents on it AND
every child chained to them must be purged. `affected_names` computes that set purely;
`CachePurger` sends it to every PowerDNS API in the background, retrying with backoff, so
an unreachable PowerDNS is logged and retried but never delays writing Redis.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import Iterable
from urllib.parse import quote

import urllib3

from mountdns.names import absolute, containing_zone
from mountdns.state import Changes, State

log = logging.getLogger("mountdns.sync.purge")

# Past this many names, purging the zones wholesale (one call each) is cheaper than
# one call per name, and PowerDNS refills its caches on demand anyway.
MAX_NAMES_PER_PURGE = 200


def affected_names(changes: Changes, before: State, after: State) -> set[str]:
    """Every name whose answer may differ after `changes` (both sides of each mapping)."""
    names = set(changes.parents_put) | set(changes.parents_delete)
    names |= set(changes.children_put) | set(changes.children_delete)
    moved_nodes = set(changes.nodes_put) | set(changes.nodes_delete)
    if moved_nodes:
        for state in (before, after):
            names.update(p for p, node in state.parents.items() if node in moved_nodes)
    # Children whose CNAME chain passes through an affected name answer with its records.
    children_of = defaultdict(set)
    for state in (before, after):
        for child, target in state.children.items():
            children_of[target].add(child)
    frontier = list(names)
    while frontier:
        for child in children_of.get(frontier.pop(), ()):
            if child not in names:
                names.add(child)
                frontier.append(child)
    names |= set(changes.bump_serials)  # the apex: its SOA serial moved
    return names


def purge_targets(names: Iterable[str], zones: Iterable[str]) -> list[str]:
    """The API `domain` values to flush: the names, or whole zones when there are many.
    PowerDNS flushes the given name and everything below it."""
    names = set(names)
    if len(names) <= MAX_NAMES_PER_PURGE:
        return sorted(names)
    zones = list(zones)
    return sorted({containing_zone(n, zones) or n for n in names})


class CachePurger:
    """Sends purges to each PowerDNS API from a background thread, per server, with retry."""

    def __init__(self, api_urls: Iterable[str], api_key: str, *, timeout: float = 2.0,
                 max_backoff: float = 5.0):
        self.api_urls = list(api_urls)
        self.api_key = api_key
        self.http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False)
        self.max_backoff = max_backoff
        self._pending: dict[str, set[str]] = {url: set() for url in self.api_urls}
        self._zones: set[str] = set()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failures = 0

    def submit(self, names: Iterable[str], zones: Iterable[str]) -> None:
        names = set(names)
        if not names or not self.api_urls:
            return
        with self._cond:
            self._zones.update(zones)
            for pending in self._pending.values():
                pending.update(names)
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return sum(len(p) for p in self._pending.values())

    def start(self) -> "CachePurger":
        if self.api_urls and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pdns-purge", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify()
        if self._thread:
            self._thread.join(5)

    def _run(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            with self._cond:
                while not self._stop.is_set() and not any(self._pending.values()):
                    self._cond.wait()
                work = {url: set(names) for url, names in self._pending.items() if names}
                for url in work:
                    self._pending[url].clear()
                zones = set(self._zones)
            failed = False
            for url, names in work.items():
                unsent = self._purge(url, names, zones)
                if unsent:
                    failed = True
                    with self._cond:
                        self._pending[url].update(unsent)
            backoff = min(self.max_backoff, max(0.1, backoff * 2)) if failed else 0.0
            if backoff:
                self._stop.wait(backoff)

    def _purge(self, url: str, names: set[str], zones: set[str]) -> set[str]:
        """Send purges for `names` to one server; return the names still to purge."""
        for target in purge_targets(names, zones):
            endpoint = f"{url}/api/v1/servers/localhost/cache/flush?domain={quote(absolute(target))}"
            try:
                response = self.http.request("PUT", endpoint, headers={"X-API-Key": self.api_key})
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {response.data[:200]!r}")
                self.sent += 1
            except Exception as exc:  # noqa: BLE001 - any failure is logged and retried
                self.failures += 1
                log.warning("purging %s from PowerDNS at %s failed (will retry): %s", target, url, exc)
                return names
        return set()

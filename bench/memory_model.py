"""Where the long-running sync's memory goes, phase by phase, counted by tracemalloc.

The scale benchmark gives the sync's peak RSS, one figure; this one says what makes it.
In one process, the sync's own pieces run over the scale benchmark's topology (each
Container with the status the sync writes, its steady state) the way
the daemon runs them: the object cache fills from a list (each object parsed from JSON
and slimmed, as a list page gives it), a first full batch runs the incremental rules and
writes to a real redis-server, the status writer looks at every Container, then Redis is
given as many stale names as there are live ones and a resync follows: a re-list, a full
batch that reads Redis and collects the stale names, and the status writer's recheck.

Per phase: the Python memory held after it and the highest reached during it, per
Container (tracemalloc counts Python's allocations, not the interpreter, libraries or
the allocator's slack, which the scale benchmark's RSS includes), and at the end the
source lines holding the most while the sync is idle between batches.
"""

from __future__ import annotations

import gc
import json
import os
import tracemalloc
from pathlib import Path

from bench.report import Table
from bench.scale import ZONE, stale, topology, with_published_status
from bench.teardown import tear_down
from mountdns.records import Zone
from mountdns.store.redis_store import RedisStore
from mountdns.testing.servers import RedisServer, workdir
from sync.config import SyncSettings
from sync.reconciler import Reconciler
from sync.rules import RulesConfig
from sync.sources.cache import CONTAINER, NODE, ObjectCache, slim
from sync.status_writer import StatusWriter

DEFAULT_SIZES = (100_000,)
QUICK_SIZE = 2_000
PER_NODE = 100
TOP_LINES = 8
ROOT = str(Path(__file__).resolve().parent.parent)


class _NoApi:
    """The status writer's API client: the model never lets the writer write (it only
    looks at what to write), so nothing may call this."""

    def __getattr__(self, name):
        raise AssertionError(f"the memory model's status writer called the API ({name})")


def sizes(quick: bool) -> tuple[int, ...]:
    if quick:
        return (QUICK_SIZE,)
    raw = os.environ.get("BENCH_MEMORY_SIZES", "")
    return tuple(int(s) for s in raw.split(",") if s.strip()) or DEFAULT_SIZES


def _listed(pages: list[str], cache: ObjectCache) -> None:
    """A list as the watcher reads one: parsed, slimmed, unchanged objects kept as held."""
    nodes = [json.loads(raw) for raw in pages if '"kind": "Node"' in raw]
    cache.replace(NODE, nodes)
    cache.replace(CONTAINER, [cache.kept(CONTAINER, slim(CONTAINER, json.loads(raw)))
                              for raw in pages if '"kind": "Node"' not in raw], slimmed=True)


def _own_lines(snapshot: tracemalloc.Snapshot) -> list[tracemalloc.Statistic]:
    return [stat for stat in snapshot.statistics("lineno")
            if stat.traceback[0].filename.startswith(ROOT) or "json" in stat.traceback[0].filename]


def measure(containers: int) -> Table:
    nodes = max(1, containers // PER_NODE)
    # With the status the sync writes, as the scale benchmark's long-running phase: the
    # steady state, where the cache holds every Container's status too.
    objects = with_published_status(topology(containers, nodes))
    for number, obj in enumerate(objects):  # what the API server adds
        meta = obj["metadata"]
        meta.update(uid=f"{number:08x}-0000-4000-8000-000000000000", resourceVersion=str(1000 + number),
                    generation=1)
    # In the API server's list order (etcd's: "namespace/name"), as a watcher gets them:
    # the children (c-...) before the parents (p-...).
    objects.sort(key=lambda obj: f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}")
    pages = [json.dumps(obj) for obj in objects]
    del objects
    directory = workdir("mountdns-bench-memory-")
    redis_server = RedisServer(directory)
    table = Table(f"{containers:,} Containers ({containers // 2:,} parents on {nodes:,} nodes + "
                  f"{containers // 2:,} mounted children), Python memory per Container",
                  ["phase", "held after (B)", "peak during (B)"])
    try:
        redis_server.start()
        store = RedisStore(redis_server.client())
        zone = Zone(name=ZONE, nameservers=(f"ns1.{ZONE}",), hostmaster=f"hostmaster.{ZONE}", ttl=30)
        gc.collect()
        tracemalloc.start()

        def phase(name: str) -> None:
            gc.collect()
            held, peak = tracemalloc.get_traced_memory()
            table.add(name, held / containers, peak / containers)
            tracemalloc.reset_peak()

        cache = ObjectCache()
        _listed(pages, cache)
        phase("list: the cache filled")
        writer = StatusWriter(_NoApi(), None, qps=10)
        # Stale names collected in rounds of the daemon's default size, as it runs.
        reconciler = Reconciler(store, RulesConfig(zones=(zone,)), status=writer,
                                gc_round_names=SyncSettings.gc_round_names)
        reconciler.reconcile(cache.snapshot(), full=True)
        phase("first batch: rules, diff, write")
        writer._refresh()
        phase("status writer: every Container looked at")
        idle = tracemalloc.take_snapshot()
        store.apply(stale(containers, nodes))  # the benchmark's own write, gone once made:
        gc.collect()
        tracemalloc.reset_peak()  # its peak is not the sync's
        _listed(pages, cache)
        phase("resync: re-list")
        # The daemon's next batches, at once. Only whether there is more is kept between
        # them: the daemon lets each batch's outcome (its changes) go when the batch ends,
        # and one held through the next batch was ~40 B per Container of its peak.
        more = reconciler.reconcile(cache.snapshot(), full=True).more_garbage
        rounds = 1
        while more:
            more = reconciler.reconcile(cache.snapshot()).more_garbage
            rounds += 1
        phase("resync: full batch, then a batch a garbage round (read Redis, diff, collect the stale names)")
        table.notes.append(f"The resync's garbage: {containers + nodes:,} stale records, collected in {rounds} "
                           f"batch(es) of up to {reconciler.gc_round(containers):,} (the daemon's default: "
                           f"{SyncSettings.gc_round_names:,}, or a quarter of the names published when more).")
        writer._refresh()
        phase("resync: status writer's recheck")
        tracemalloc.stop()
        if store.read_state().parents.keys() != reconciler.known.parents.keys():
            raise RuntimeError("the model's sync did not leave Redis as it planned")
        for stat in _own_lines(idle)[:TOP_LINES]:
            frame = stat.traceback[0]
            where = os.path.relpath(frame.filename, ROOT) if frame.filename.startswith(ROOT) else \
                os.path.basename(frame.filename)
            table.notes.append(f"idle, {where}:{frame.lineno}: {stat.size / containers:.0f} B per Container "
                               f"({stat.count:,} blocks)")
        table.notes.append("Python allocations only (tracemalloc): the interpreter and libraries (~60 MiB "
                           "for mountdns-sync) and the allocator's slack are not in these figures.")
        return table
    finally:
        tracemalloc.stop()
        tear_down([redis_server], directory)


def run(quick: bool) -> list[Table]:
    return [measure(containers) for containers in sizes(quick)]


if __name__ == "__main__":
    import sys
    for result in run(quick="--quick" in sys.argv):
        print(result.render())

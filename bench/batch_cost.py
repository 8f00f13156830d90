"""The sync's own cost of a batch under churn, in one process, nothing else running.

The churn benchmark runs the sync next to the API double, Redis, two PowerDNS, the
backend and dnsperf on two shared cores, so its latencies move with everything else
there. This one measures the sync's work alone, the part a code change can make cheaper:
over the churn benchmark's topology (50,000 parents on 1,000 nodes, each with a mounted
child), batches of the churn's changes (children unmounted, and mounted again their second
time round; Nodes given a new InternalIP) go through the sync's pieces as the daemon
runs them: the list read with the cycle collector paused and its objects frozen, then
per batch each changed object into the object cache (slimmed, flattened), one batch of
the incremental rules, the diff and the write to a real redis-server with its
announcement and purge waves (under sync.sources.heap's batch(), as the daemon runs it),
and the status writer's look at what changed (it writes nothing: no API). The objects a
batch changes are made before its clock starts.

`BENCH_BATCH_NAMES=100000,1000000` measures at each of these name counts (half parents,
100 on a node, half children), a table each; 100,000 by default.

Per batch size: milliseconds a batch, microseconds a change (the median of BATCHES
batches), and what the churn benchmark's rate (1,000 Container changes and 100 node
moves a second) costs the sync in batches of that size, as a share of one core. A line
through the sizes splits a batch into a fixed part (paid whatever its size: what grows
with the cluster, such as the per-Node work, rather than with the batch) and a part per
change.
"""

from __future__ import annotations

import gc
import itertools
import os
import statistics
import time

from bench.change_latency import new_address
from bench.churn import UNMOUNTED, _child
from bench.churn import topology as churn_topology
from bench.report import Table
from bench.teardown import tear_down
from mountdns.records import Zone
from mountdns.store.redis_store import RedisStore
from mountdns.testing.objects import node
from mountdns.testing.servers import RedisServer, workdir
from mountdns.testing.sync_process import ZONE
from sync.config import SyncSettings
from sync.reconciler import Reconciler
from sync.rules import RulesConfig
from sync.sources import heap
from sync.sources.cache import CONTAINER, NODE, ObjectCache
from sync.status_writer import StatusWriter

FULL = {"parents": 50_000, "nodes": 1_000, "batches": 60}
PARENTS_PER_NODE = 50
QUICK = {"parents": 1_000, "nodes": 20, "batches": 5}
# (Container changes, node moves) a batch: one of each (the fixed part shows), what the
# daemon's batches hold at the churn benchmark's rate, and larger ones.
SIZES = ((1, 1), (80, 8), (400, 40))
CHURN_RATE = (1_000, 100)  # changes a second, as the churn benchmark sends them
WARM_UP = 3  # batches first, not counted


class _NoApi:
    """The status writer's client: the writer never leads here, so nothing may call it."""

    def __getattr__(self, name):
        raise AssertionError(f"the batch-cost benchmark's status writer called the API ({name})")


class _Churn:
    """The churn benchmark's changes, in its order, each a fresh object with the fields the
    API server adds."""

    def __init__(self, parents: int, nodes: int):
        self.parents, self.nodes = parents, nodes
        self.children, self.moves = itertools.count(), itertools.count()
        self.version = itertools.count(10_000_000)

    def stamped(self, obj: dict) -> dict:
        meta = obj["metadata"]
        meta.update(uid=f"uid-{meta['name']}", resourceVersion=str(next(self.version)), generation=1)
        return obj

    def batch(self, changes: int, moves: int) -> list[tuple[str, dict]]:
        made = []
        for _ in range(changes):
            sent = next(self.children)
            mounted = (sent // self.parents) % 2 == 1  # the second time round: mounted again
            made.append((CONTAINER, self.stamped(_child(sent % self.parents, self.nodes, mounted))))
        for _ in range(moves):
            sent = next(self.moves)
            made.append((NODE, self.stamped(node(f"node-{sent % self.nodes:04d}", new_address(sent)))))
        return made


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(fixed, per change) of the least-squares line through (changes, ms) points."""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x in xs)
    return mean_y - slope * mean_x, slope


def sizes(quick: bool) -> list[dict]:
    """The topologies to measure: QUICK, FULL, or one per name count in BENCH_BATCH_NAMES."""
    if quick:
        return [QUICK]
    raw = os.environ.get("BENCH_BATCH_NAMES", "")
    names = [int(n) for n in raw.split(",") if n.strip()]
    return [dict(FULL, parents=n // 2, nodes=max(1, n // 2 // PARENTS_PER_NODE)) for n in names] or [FULL]


def measure(quick: bool, size: dict | None = None) -> Table:
    size = size or (QUICK if quick else FULL)
    parents, nodes = size["parents"], size["nodes"]
    directory = workdir("mountdns-bench-batch-")
    redis_server = RedisServer(directory)
    table = Table(f"The sync's batch path alone, {2 * parents:,} names ({parents:,} parents on {nodes:,} nodes + "
                  f"{parents:,} mounted children)",
                  ["batch: Container changes + node moves", "ms a batch (median)", "us a change",
                   "1,000 changes/s + 100 moves/s in batches of this size: share of one core"])
    try:
        redis_server.start()
        zone = Zone(name=ZONE, nameservers=(f"ns1.{ZONE}",), hostmaster=f"hostmaster.{ZONE}", ttl=30)
        cache = ObjectCache()
        churn = _Churn(parents, nodes)
        listed = [churn.stamped(obj) for obj in churn_topology(parents, nodes)]
        with heap.paused(CONTAINER) as counted:  # as a watcher lists
            cache.replace(NODE, [obj for obj in listed if obj["kind"] == "Node"])
            cache.replace(CONTAINER, [obj for obj in listed if obj["kind"] != "Node"])
            counted.add(len(listed))
        del listed
        writer = StatusWriter(_NoApi(), None, qps=10, leading=lambda: False)
        reconciler = Reconciler(RedisStore(redis_server.client()), RulesConfig(zones=(zone,)), status=writer,
                                gc_round_names=SyncSettings.gc_round_names)
        with heap.batch():
            reconciler.reconcile(cache.snapshot(), full=True)
        writer.step()
        points = []
        for changes, moves in SIZES:
            timings = []
            for number in range(WARM_UP + size["batches"]):
                made = churn.batch(changes, moves)
                started = time.perf_counter()
                for kind, obj in made:
                    cache.put(kind, obj)
                with heap.batch():
                    reconciler.reconcile(cache.snapshot())
                writer.step()
                if number >= WARM_UP:
                    timings.append((time.perf_counter() - started) * 1000)
            ms = statistics.median(timings)
            points.append((changes + moves, ms))
            per_second = (CHURN_RATE[0] + CHURN_RATE[1]) / (changes + moves)
            table.add(f"{changes:,} + {moves:,}", ms, ms * 1000 / (changes + moves),
                      f"{per_second * ms / 10:.0f}%")
        fixed, per_change = fit(points)
        table.notes += [
            f"A line through these: {fixed:.1f} ms a batch whatever its size, plus {per_change * 1000:.0f} us a "
            "change.",
            f"{size['batches']} batches of each size after {WARM_UP} not counted; the clock covers the objects "
            "going into the cache, the rules, the diff, the write to redis-server (same machine) and the status "
            "writer's refresh. A child unmounted becomes a parent on its node, mounted again a child: each change "
            f"moves a name between the parent and child records ({UNMOUNTED} and back).",
            "At the churn benchmark's rate the daemon's batches hold about 90 changes (an estimate, not counted: "
            "1,100 changes a second over its 50 ms of coalescing plus the batch's own time); a share over 100% is "
            "a rate the sync cannot keep up with in batches that small.",
        ]
        return table
    finally:
        gc.unfreeze()  # the benchmark's objects back to normal collection for what runs next
        tear_down([redis_server], directory)


def run(quick: bool) -> list[Table]:
    return [measure(quick, size) for size in sizes(quick)]


if __name__ == "__main__":
    import sys
    for result in run(quick="--quick" in sys.argv):
        print(result.render())

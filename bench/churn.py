"""Sustained churn: Container changes and node moves at a steady rate, caches on.

With the topology published (50,000 parents on 1,000 nodes + 50,000 mounted children by
default), a driver in this process changes the Kubernetes API double at a fixed rate for
a fixed time: every 10 ms, CONTAINER_RATE / 100 children are unmounted (or mounted again,
their second time round), which turns each child into a parent or back, and
NODE_RATE / 100 Nodes get a new InternalIP. A checker polls Redis (MGET every 20 ms) for
every pending change and records when it landed: change -> Redis latency, and the
backlog (changes sent but not yet in Redis) second by second. Meanwhile a probe asks
PowerDNS (shipped cache settings, the backend purging through its API) for a child on
every 10th moved node, cached before the move, until it answers the new address.

The backend's uncached throughput: a second PowerDNS with its caches off, on the same
backend, is loaded with dnsperf (A queries for parents and children) for a while before
the churn (idle) and again in the middle of the churn; both figures, and the change
-> Redis latency of changes sent while dnsperf ran, are reported (dnsperf, PowerDNS and the
backend then take what CPU they can from the sync on the 2 shared cores).

The sync runs with its shipped defaults (coalescing 50 ms).

`churn_split` (bench/churn_split.py) runs the same churn with the 2 cores split the way a
deployment splits the work between machines: one core for what a DNS pod runs (the
PowerDNS dnsperf asks, the backend, and Redis, as the pod's replica applies every write
of the churn), the other for everything else (the sync, this process's API double,
driver and checker, the probed PowerDNS, dnsperf). Idle and churn are measured with the
same split: the churn's effect on the DNS path through Redis and purges, without the
sync's CPU taken from it on shared cores.
"""

from __future__ import annotations

import os
import statistics
import threading
import time

from bench.change_latency import Probe, new_address
from bench.cpu import CpuMeter, allowed_cpus, pin, pin_group
from bench.dnsperf import dnsperf
from bench.report import Table
from bench.teardown import tear_down
from mountdns.keyspace import Keys
from mountdns.testing.kube_double import KubeAPIDouble
from mountdns.testing.objects import MOUNTED, container, node
from mountdns.testing.purging_stack import purging_pair, wait_for_workers
from mountdns.testing.servers import CACHES_OFF, PdnsServer, wait_until, workdir, RedisServer
from mountdns.testing.stats import percentile
from mountdns.testing.sync_process import ZONE, SyncProcess

FULL = {"parents": 50_000, "nodes": 1_000, "container_rate": 1_000, "node_rate": 100, "seconds": 60.0,
        "dnsperf_seconds": 20.0}
QUICK = {"parents": 500, "nodes": 20, "container_rate": 200, "node_rate": 20, "seconds": 3.0,
         "dnsperf_seconds": 1.0}
QUERY_NAMES = 2_000  # names in dnsperf's query file, half parents and half children
TARGET_THROUGHPUT_SHARE = 0.8  # the uncached throughput during the churn, at least this share of idle
TICK = 0.01
CHECK_EVERY = 0.02
TARGET_P99_S = 1.0
PROBE_EVERY = 10  # every 10th moved node is asked through PowerDNS
UNMOUNTED = "UNMOUNTED"


def backlog_growing(backlog: list[int]) -> bool:
    """Whether the backlog (changes sent and not yet in Redis, one count a second) grows
    through the run: the median of its second half over twice that of its first. A sync
    that cannot keep up falls further behind second after second, and the whole second
    half sits higher; a spike that drains (dnsperf loading both cores for a few seconds)
    leaves the medians where they were. The maxima are printed too, not judged: one spike
    in the second half read as growth with them."""
    half = len(backlog) // 2
    if half == 0:
        return False
    return statistics.median(backlog[half:]) > 2 * max(1, statistics.median(backlog[:half]))


def _child(i: int, nodes: int, mounted: bool) -> dict:
    host = f"node-{i % nodes:04d}"
    return container(f"c-{i:06d}", node=host, fqdn=f"c-{i:06d}.{ZONE}", type="netconf",
                     mounted_to=f"p-{i:06d}", status=MOUNTED if mounted else UNMOUNTED)


def topology(parents: int, nodes: int) -> list[dict]:
    objects = [node(f"node-{n:04d}", f"10.{n // 250}.{n % 250}.1") for n in range(nodes)]
    for i in range(parents):
        objects.append(container(f"p-{i:06d}", node=f"node-{i % nodes:04d}", fqdn=f"p-{i:06d}.{ZONE}",
                                 type="odl"))
        objects.append(_child(i, nodes, True))
    return objects


class Checker(threading.Thread):
    """Polls Redis for pending changes: key -> (wanted value or None for 'exists', sent)."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client, self.lock, self.stop = client, threading.Lock(), threading.Event()
        self.pending: dict[str, tuple[bytes | None, float]] = {}
        self.latencies: list[tuple[float, float]] = []  # (change -> Redis, sent at)
        self.backlog: list[int] = []
        self.last_landed = 0.0

    def expect(self, key: str, value: bytes | None, sent: float) -> None:
        with self.lock:
            self.pending[key] = (value, sent)  # a newer change to the same key replaces the older

    def run(self) -> None:
        next_sample = time.monotonic() + 1.0
        while not self.stop.is_set():
            with self.lock:
                keys = list(self.pending)
            if keys:
                values = self.client.mget(keys)
                now = time.monotonic()
                with self.lock:
                    for key, value in zip(keys, values):
                        wanted, sent = self.pending.get(key, (b"", 0.0))
                        if value is not None and (wanted is None or value == wanted):
                            self.latencies.append((now - sent, sent))
                            self.last_landed = now
                            del self.pending[key]
            if time.monotonic() >= next_sample:
                with self.lock:
                    self.backlog.append(len(self.pending))
                next_sample += 1.0
            time.sleep(CHECK_EVERY)


def query_file(path, parents: int):
    """A queries for parents and children spread over the topology."""
    step = max(1, parents // (QUERY_NAMES // 2))
    lines = [f"{kind}-{i:06d}.{ZONE} A" for i in range(0, parents, step) for kind in ("p", "c")]
    path.write_text("\n".join(lines[:QUERY_NAMES]) + "\n")
    return path


class Load(threading.Thread):
    """dnsperf against the uncached PowerDNS, started at `start_at` (monotonic)."""

    def __init__(self, port: int, queries, seconds: float, start_at: float):
        super().__init__(daemon=True)
        self.port, self.queries, self.seconds, self.start_at = port, queries, seconds, start_at
        self.result = None
        self.window = (start_at, start_at)
        self.error: Exception | None = None

    def run(self) -> None:
        time.sleep(max(0.0, self.start_at - time.monotonic()))
        began = time.monotonic()
        try:
            self.result = dnsperf(self.port, self.queries, self.seconds)
        except Exception as exc:  # reported in the table, not a crash of the whole suite
            self.error = exc
        self.window = (began, time.monotonic())


DNS_POD_CPUS, OTHER_CPUS = {1}, {0}  # the split: a DNS pod's core, and the rest


def run(quick: bool, split_cores: bool = False, probe_deadline: float = 10.0) -> list[Table]:
    """`probe_deadline`: seconds after its move a probed name must answer the new address
    by to count as answered (the report's limit; a smoke run on a loaded machine passes
    a longer one, to check that every move is answered at all)."""
    size = QUICK if quick else FULL
    original_cpus = os.sched_getaffinity(0)
    if split_cores and not DNS_POD_CPUS | OTHER_CPUS <= original_cpus:
        raise RuntimeError(f"churn_split needs cores {sorted(DNS_POD_CPUS | OTHER_CPUS)} to split; this "
                           f"process may use {sorted(original_cpus)}")
    parents, nodes = size["parents"], size["nodes"]
    directory = workdir("mountdns-bench-churn-")
    api = KubeAPIDouble(bookmark_interval=5.0)
    redis_server = RedisServer(directory)
    backend = pdns = sync = uncached = None
    keys = Keys()
    try:
        api.start()
        api.apply_many(topology(parents, nodes))
        kubeconfig = api.write_kubeconfig(directory / "kubeconfig")
        redis_server.start()
        client = redis_server.client()
        backend, pdns = purging_pair(directory, redis_server.url)
        backend.start()
        sync = SyncProcess(directory, redis_server.url, kubeconfig=kubeconfig, coalesce_seconds=0.05,
                           resync_interval=3600.0, log_level="info", name="sync").start()
        wait_until(lambda: client.dbsize() >= 2 * parents + nodes, 300, "the topology published")
        wait_for_workers(backend)
        pdns.start()
        uncached_dir = directory / "uncached"  # one pdns_server per directory (its control socket)
        uncached_dir.mkdir()
        uncached = PdnsServer(uncached_dir, backend.url, settings=CACHES_OFF)
        uncached.start()
        queries = query_file(directory / "queries.txt", parents)
        if split_cores:
            # This process's threads and what it starts later (dnsperf) inherit its core.
            pin([os.getpid()], OTHER_CPUS)
            for server in (sync, pdns):
                pin_group(server.proc.pid, OTHER_CPUS)
            for server in (uncached, backend, redis_server):
                pin_group(server.proc.pid, DNS_POD_CPUS)
        idle = dnsperf(uncached.port, queries, size["dnsperf_seconds"])
        probe = Probe(pdns, client, keys)
        wait_until(lambda: probe.addresses(f"c-000000.{ZONE}"), 30, "PowerDNS answering a child")
        if not api.wait_for_open_watches(2, timeout=30):
            raise RuntimeError("the sync did not open its watches")

        checker = Checker(redis_server.client())
        checker.start()
        moved: list[tuple[str, int, int, float]] = []  # (child fqdn, node, its move, moved at) to probe
        # Every address each node was given, in order: a node moved again before its probe
        # saw the move (quick runs move each node every few tenths of a second) answers a
        # later address, which counts: the move was followed, and then the next one.
        given: dict[int, list[str]] = {}
        dns_latencies: list[float] = []
        dns_late = 0
        per_tick_children = max(1, int(size["container_rate"] * TICK))
        per_tick_nodes = max(1, int(size["node_rate"] * TICK))
        ticks = int(size["seconds"] / TICK)
        # Probed children: one on each probed node, cached in PowerDNS before their node moves.
        for n in range(0, min(nodes, ticks * per_tick_nodes), PROBE_EVERY):
            probe.addresses(f"c-{n:06d}.{ZONE}")

        def probe_dns() -> None:
            nonlocal dns_late
            while not probing_done.is_set() or moved:
                if not moved:
                    time.sleep(0.005)
                    continue
                fqdn, n, move, at = moved.pop(0)
                while True:
                    try:
                        if set(given[n][move:]) & set(probe.addresses(fqdn, timeout=0.5)):
                            dns_latencies.append(time.monotonic() - at)
                            break
                    except Exception:  # a timed-out query: ask again
                        pass
                    if time.monotonic() - at > probe_deadline:
                        dns_late += 1
                        break
                    time.sleep(0.005)

        probing_done = threading.Event()
        prober = threading.Thread(target=probe_dns, daemon=True)
        prober.start()

        sent_children = sent_nodes = 0
        # Where the 2 cores go during the churn: each server's process group, this process
        # (the API double, the driver, the checker and the prober) and dnsperf.
        meter = CpuMeter({"sync": sync, "Redis": redis_server, "backend": backend,
                          "PowerDNS, caches on (purged)": pdns, "PowerDNS, caches off (dnsperf's)": uncached})
        meter.start()
        own_cpu = time.process_time()
        started = time.monotonic()
        # In the middle of the churn: as much of it in each half, so the backlog's halves compare.
        load = Load(uncached.port, queries, size["dnsperf_seconds"],
                    started + max(0.0, (size["seconds"] - size["dnsperf_seconds"]) / 2))
        load.start()
        for tick in range(ticks):
            due = started + tick * TICK
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now = time.monotonic()
            batch = []
            for _ in range(per_tick_children):
                i = sent_children % parents
                mounted = (sent_children // parents) % 2 == 1  # the second time round: mounted again
                batch.append(_child(i, nodes, mounted))
                kind = keys.child if mounted else keys.parent
                checker.expect(kind(f"c-{i:06d}.{ZONE}"), None, now)
                sent_children += 1
            for _ in range(per_tick_nodes):
                n = sent_nodes % nodes
                address = new_address(sent_nodes)
                batch.append(node(f"node-{n:04d}", address))
                checker.expect(keys.node(f"node-{n:04d}"), address.encode(), now)
                history = given.setdefault(n, [])
                history.append(address)
                if n % PROBE_EVERY == 0 and sent_nodes < nodes:
                    moved.append((f"c-{n:06d}.{ZONE}", n, len(history) - 1, now))
                sent_nodes += 1
            api.apply_many(batch)
        churn_seconds = time.monotonic() - started
        meter.stop()
        own_cpu = time.process_time() - own_cpu
        stopped = time.monotonic()
        load.join(size["dnsperf_seconds"] + 60)
        wait_until(lambda: not checker.pending, 120, "every change in Redis")
        probing_done.set()
        prober.join(probe_deadline + 50)  # each probe ends by its move + the deadline
        checker.stop.set()
        checker.join(5)

        latencies = sorted(latency for latency, _ in checker.latencies)
        loaded = sorted(latency for latency, sent in checker.latencies if load.window[0] <= sent <= load.window[1])
        unloaded = sorted(latency for latency, sent in checker.latencies
                          if not load.window[0] - 1.0 <= sent <= load.window[1])
        table = Table(f"Churn: {size['container_rate']:,} Container changes/s + {size['node_rate']:,} node "
                      f"moves/s for {size['seconds']:.0f} s, {2 * parents:,} names published"
                      + (", cores split: a DNS pod's work on one, the rest on the other" if split_cores else ""),
                      ["figure", "value", "target", "result"])
        p99 = percentile(latencies, 99)
        table.add("changes sent (Containers + nodes)", f"{sent_children:,} + {sent_nodes:,} in {churn_seconds:.1f} s",
                  "", "")
        table.add("change -> Redis p50 (s)", percentile(latencies, 50), "", "")
        table.add("change -> Redis p99 (s)", p99, f"< {TARGET_P99_S:.0f} s", "pass" if p99 < TARGET_P99_S else "FAIL")
        table.add("change -> Redis max (s)", latencies[-1], "", "")
        backlog = checker.backlog
        half = len(backlog) // 2
        first, second = backlog[:half] or [0], backlog[half:] or [0]
        table.add("backlog each second: median of first half / median of second half",
                  f"{statistics.median(first):,.0f} / {statistics.median(second):,.0f}", "not growing",
                  "FAIL" if backlog_growing(backlog) else "pass")
        table.add("backlog each second: max of first half / max of second half",
                  f"{max(first):,} / {max(second):,}", "", "")
        drained = max(0.0, checker.last_landed - stopped)
        table.add("last change landed after the churn stopped (s)", drained, f"< {TARGET_P99_S:.0f} s",
                  "pass" if drained < TARGET_P99_S else "FAIL")
        if dns_latencies:
            dns_sorted = sorted(dns_latencies)
            dns_p99 = percentile(dns_sorted, 99)
            table.add(f"moved node -> PowerDNS answers it: p50 / p99 / max (s), {len(dns_sorted)} probed",
                      f"{percentile(dns_sorted, 50):.2f} / {dns_p99:.2f} / {dns_sorted[-1]:.2f}", "< 1 s",
                      "pass" if dns_p99 < 1.0 and not dns_late else "FAIL")
        table.add(f"probed moves not answered within {probe_deadline:g} s", dns_late, "0", "pass" if not dns_late else "FAIL")
        if load.result is not None:
            share = load.result.answered_qps / idle.answered_qps if idle.answered_qps else 0.0
            table.add("backend's uncached throughput through PowerDNS (caches off), queries/s: idle / during churn",
                      f"{idle.answered_qps:,.0f} / {load.result.answered_qps:,.0f} ({share:.0%})",
                      f">= {TARGET_THROUGHPUT_SHARE:.0%} of idle",
                      "pass" if share >= TARGET_THROUGHPUT_SHARE else "FAIL")
            if loaded:
                table.add("change -> Redis p50 / p99 (s) of changes sent while dnsperf ran",
                          f"{percentile(loaded, 50):.2f} / {percentile(loaded, 99):.2f}", "", "")
            if unloaded:
                table.add("change -> Redis p50 / p99 (s) of changes sent outside dnsperf's run "
                          "(and its last second before)",
                          f"{percentile(unloaded, 50):.2f} / {percentile(unloaded, 99):.2f}", "", "")
        else:
            table.add("backend's uncached throughput during churn", f"not measured: {load.error}", "", "FAIL")
        shares = {name: meter.total(name) / churn_seconds for name in meter.servers}
        shares["this process: API double, driver, checker"] = own_cpu / churn_seconds
        shares["dnsperf"] = meter.total("dnsperf") / churn_seconds
        table.add("CPU during the churn, share of one core: " + " / ".join(shares),
                  " / ".join(f"{share:.0%}" for share in shares.values()), "", "")
        table.notes += [
            f"The driver sends every {TICK * 1000:.0f} ms; the checker polls Redis every "
            f"{CHECK_EVERY * 1000:.0f} ms (MGET of every pending key), so latencies are rounded up by up to that.",
            "A Container change unmounts a child (it becomes a parent on its node) or mounts it again; "
            "a node move gives a Node a new InternalIP. PowerDNS runs the shipped cache settings; the "
            "backend purges the names each batch announces.",
            f"Uncached throughput: dnsperf -c 4 for {size['dnsperf_seconds']:g} s against a second PowerDNS with "
            f"its caches off on the same backend ({QUERY_NAMES:,} names, parents and children, A), idle before "
            "the churn and in the middle of it; answered (NOERROR/NXDOMAIN) queries/s. dnsperf, PowerDNS and the "
            "backend then take the CPU they can from the sync on the 2 shared cores.",
            f"Load average {os.getloadavg()[0]:.1f} at the end ({os.cpu_count()} cores, shared).",
        ]
        if split_cores:
            where = {"sync": sync, "PowerDNS, caches on (purged)": pdns, "PowerDNS, caches off (dnsperf's)": uncached,
                     "backend": backend, "Redis": redis_server}
            table.notes.append(
                "Cores split (sched_setaffinity, read back from /proc after the run): "
                + ", ".join(f"{name} {allowed_cpus(server.proc.pid)}" for name, server in where.items())
                + f", this process and dnsperf {allowed_cpus(os.getpid())}. Idle and churn figures are both "
                "measured so; the sync's CPU is not taken from the DNS path here, as on separate machines.")
        return [table]
    finally:
        tear_down([sync, uncached, pdns, backend, redis_server, api], directory)
        if split_cores:
            pin([os.getpid()], original_cpus)  # this process's threads run where they ran before

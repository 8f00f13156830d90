"""A million names: what the sync costs, and what readers see while it writes.

For each size (100,000 and 1,000,000 Containers by default, half parents and half
mounted children, 100 Containers a node) against the Kubernetes API double and a real
redis-server:

1. `mountdns-sync --once` into an empty Redis: wall time, peak RSS per Container,
   Redis bytes per name, and, while it runs, a separate prober process looking names up
   back to back the way the backend does (RedisStore.resolve, one EVALSHA): lookup p50,
   p99 and max, and every answer checked for completeness (a child's parent resolves,
   a parent has its node's address). Redis' own time per write call comes from SLOWLOG
   (calls of 1 ms or more are logged).
2. The same with the write in one call (`--write-chunk-keys` above the batch), the way
   it was before writes were chunked: the blocking figure to compare with (the smaller
   size only: one call of a million names blocks Redis for seconds).
3. The long-running mode over the same Containers carrying the status the sync writes
   (its steady state: what it lists after any restart), then stale names of half as
   many Containers added behind its back, which its next periodic resync collects:
   lookup figures during that garbage collection, and the sync's peak RSS over the
   whole run (list, watch, re-list); and, to set it against, the RSS of the same daemon
   over the Nodes alone.

During 1 and 3 a second prober asks a real pdns_server (the shipped configuration with
its caches off, so every answer comes from Redis through mountdns-backend) for sampled
names, and checks every answer whole: a parent's A is its node's address, a child is its
CNAME plus its parent's A, never SERVFAIL, never a CNAME without its target. A name not
written yet (initial sync) or already collected (a stale one, during GC) may be NXDOMAIN;
a live name during GC may not. After each phase every sampled name is asked once more and
must answer right (or, a collected one, NXDOMAIN).

Both probers are paced (LOOKUP_RATE, DNS_RATE a second) rather than back to back: they
sample the whole write just as well, without taking a core from the sync they time.

    BENCH_SCALE_SIZES=100000 scripts/bench --only scale   # the smaller size alone
"""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from bench.process_memory import memory_kib, run_once, settled_rss
from bench.redis_floor import plain_set_bytes
from bench.report import Table
from bench.teardown import tear_down
from mountdns.plan import Changes
from mountdns.records import Zone
from mountdns.store.chunks import DEFAULT_CHUNK_KEYS
from mountdns.store.redis_store import RedisStore
from mountdns.testing.kube_double import KubeAPIDouble
from mountdns.testing.objects import MOUNTED, container, node
from mountdns.testing.purging_stack import wait_for_workers
from mountdns.testing.servers import CACHES_OFF, BackendServer, PdnsServer, RedisServer, wait_until, workdir
from mountdns.testing.sync_process import ZONE, SyncProcess
from sync.events import rfc3339
from sync.status import Verdict, status_patch

DEFAULT_SIZES = (100_000, 1_000_000)
QUICK_SIZE = 2_000
PER_NODE = 100
QUICK_CHUNK_KEYS = 200  # the quick run's batches must still be split
TARGET_RSS_BYTES = 1500
TARGET_SECONDS = 60.0
TARGET_BYTES_PER_NAME = 150.0
TARGET_LOOKUP_P99_MS = 20.0
SAMPLE_NAMES = 20_000
SLOW_MICROSECONDS = 1000
LOOKUP_RATE = 2000  # backend lookups a second by the Redis-level prober
DNS_RATE = 200  # queries a second through PowerDNS (caches off: 3-6 backend lookups each)
VERIFY_NAMES = 2000  # names asked once more through PowerDNS after a phase
QUICK_VERIFY_NAMES = 200


def topology(containers: int, nodes: int) -> list[dict]:
    """Nodes, then parents round-robin over them, each with one child mounted to it."""
    objects = [node(f"node-{n:05d}", f"10.{n // 250 % 250}.{n % 250}.1") for n in range(nodes)]
    for i in range(containers // 2):
        host = f"node-{i % nodes:05d}"
        objects.append(container(f"p-{i:07d}", node=host, fqdn=f"p-{i:07d}.{ZONE}", type="odl"))
        objects.append(container(f"c-{i:07d}", node=host, fqdn=f"c-{i:07d}.{ZONE}", type="netconf",
                                 mounted_to=f"p-{i:07d}", status=MOUNTED))
    return objects


def with_published_status(objects: list[dict]) -> list[dict]:
    """The Containers as the cluster holds them once the sync has published them: each
    with the Published status the sync's status writer writes (built by its own
    `status_patch`), written ten a second (the writer's default rate), so ten Containers
    share a lastTransitionTime. This is what a long-running sync lists after any restart
    or failover, and what it holds for each Container in the steady state."""
    result, written = [], 0
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for obj in objects:
        if obj["kind"] != "Container":
            result.append(obj)
            continue
        spec = obj["spec"]
        cname = "mountedTo" in spec
        target = f"{spec['mountedTo']}.{ZONE}" if cname else spec["nodeName"]
        stored = {**obj, "metadata": {**obj["metadata"], "generation": 1}}
        when = rfc3339(start + timedelta(seconds=written // 10))
        patch = status_patch(stored, Verdict.published_as(spec["fqdn"], target, cname), when)
        result.append({**obj, "status": {**(obj.get("status") or {}), **patch["status"]}})
        written += 1
    return result


def stale(containers: int, nodes: int) -> Changes:
    """Names the cluster does not have (as a Redis that outlived a cluster's Containers
    holds them): `containers // 2` parents and as many children, on their own nodes."""
    return Changes(
        nodes_put={f"gone-{n:05d}": (f"10.250.{n // 250 % 250}.{n % 250}",) for n in range(nodes)},
        parents_put={f"gp-{i:07d}.{ZONE}": f"gone-{i % nodes:05d}" for i in range(containers // 2)},
        children_put={f"gc-{i:07d}.{ZONE}": f"gp-{i:07d}.{ZONE}" for i in range(containers // 2)},
    )


def sizes(quick: bool) -> tuple[int, ...]:
    if quick:
        return (QUICK_SIZE,)
    raw = os.environ.get("BENCH_SCALE_SIZES", "")
    return tuple(int(s) for s in raw.split(",") if s.strip()) or DEFAULT_SIZES


# -- the prober: a separate process, so the API double's threads in this one do not
#    stretch its latencies through the GIL -----------------------------------------------

class _Pace:
    """Start one operation every 1/rate s; one that falls behind starts at once, but never
    more than a tenth of a second's worth in a burst."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate
        self.next = time.monotonic()

    def wait(self) -> None:
        now = time.monotonic()
        if self.next > now:
            time.sleep(self.next - now)
        self.next = max(self.next + self.interval, now - 0.1)


def _probe(redis_url: str, names: list[str], stop, ready, results) -> None:
    import redis

    store = RedisStore(redis.Redis.from_url(redis_url))
    latencies: list[float] = []
    incomplete: list[str] = []
    answered = 0
    rng = random.Random(7)
    pace = _Pace(LOOKUP_RATE)
    ready.set()
    while not stop.is_set() and len(latencies) < 5_000_000:  # bounded: ~40 minutes of lookups
        pace.wait()
        name = rng.choice(names)
        started = time.perf_counter()
        found = store.resolve(name)
        latencies.append(time.perf_counter() - started)
        if found.kind == "child":
            answered += 1
            target = store.resolve(found.target)
            if target.kind != "parent" or not target.addresses:
                incomplete.append(f"{name} -> {found.target}: {target.kind} {target.addresses}")
        elif found.kind == "parent":
            answered += 1
            if not found.addresses:
                incomplete.append(f"{name}: parent without addresses")
    latencies.sort()
    results.put({
        "lookups": len(latencies), "answered": answered, "incomplete": len(incomplete),
        "examples": incomplete[:3],
        "p50": _quantile(latencies, 0.50), "p99": _quantile(latencies, 0.99),
        "max": latencies[-1] if latencies else 0.0,
    })


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


# -- the PowerDNS prober: what a DNS client gets while the sync writes -----------------------

def expected_answer(name: str, nodes: int) -> tuple[str | None, str]:
    """(CNAME target or None, A address) that the topology (p-/c- names, `topology`) or the
    stale names (gp-/gc-, `stale`) give `name`."""
    kind, number = name.split(".", 1)[0].rsplit("-", 1)
    n = int(number) % nodes
    if kind in ("p", "c"):
        parent, address = f"p-{number}.{ZONE}", f"10.{n // 250 % 250}.{n % 250}.1"
    elif kind in ("gp", "gc"):
        parent, address = f"gp-{number}.{ZONE}", f"10.250.{n // 250 % 250}.{n % 250}"
    else:
        raise ValueError(f"not a benchmark name: {name}")
    return (parent if kind in ("c", "gc") else None), address


def judge(response: dns.message.Message, name: str, nodes: int) -> str:
    """'right' (the whole expected answer and nothing else), 'absent' (NXDOMAIN, nothing in
    the answer section), 'cut' (NXDOMAIN after the expected CNAME: the child was there when
    PowerDNS asked for it, its parent no longer when PowerDNS asked for that, a second
    lookup) or what is wrong with it."""
    rcode = response.rcode()
    got = {(rrset.name.to_text(omit_final_dot=True), dns.rdatatype.to_text(rrset.rdtype), rr.to_text())
           for rrset in response.answer for rr in rrset}
    target, address = expected_answer(name, nodes)
    if rcode == dns.rcode.NXDOMAIN and not got:
        return "absent"
    if rcode == dns.rcode.NXDOMAIN and target and got == {(name, "CNAME", target + ".")}:
        return "cut"
    if rcode != dns.rcode.NOERROR:
        return f"{dns.rcode.to_text(rcode)} {sorted(got)}"
    want = {(target or name, "A", address)}
    if target:
        want.add((name, "CNAME", target + "."))
    return "right" if got == want else f"NOERROR {sorted(got)}, expected {sorted(want)}"


def count_verdict(verdict: str, name: str, required: tuple[str, ...]) -> tuple[str, ...]:
    """The prober's counters a verdict adds to. A name starting with one of `required` must
    answer right; the others may also be absent, or cut: a name on its way out whose parent
    went between PowerDNS's two lookups (the sync deletes children first, but no order
    helps a reader that reads twice)."""
    if verdict == "right":
        return ("right",)
    if verdict in ("absent", "cut") and not name.startswith(required):
        return ("absent", "cut") if verdict == "cut" else ("absent",)
    return ("wrong",)


def _ask(port: int, name: str) -> tuple[str, float]:
    started = time.perf_counter()
    try:
        response = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=2.0)
    except dns.exception.Timeout:
        return "timeout", time.perf_counter() - started
    return response, time.perf_counter() - started


def _probe_dns(port: int, names: list[str], nodes: int, required: tuple[str, ...], stop, ready,
               results) -> None:
    """Ask PowerDNS for random `names` until stopped. A name starting with one of
    `required` must always answer; the others may be absent. Waits first until the zone
    answers its SOA (an empty Redis has no zone: PowerDNS says SERVFAIL, not our doing)."""
    latencies: list[float] = []
    counts = {"right": 0, "absent": 0, "cut": 0, "wrong": 0}
    wrong: list[str] = []
    rng = random.Random(11)
    pace = _Pace(DNS_RATE)
    ready.set()
    waited = time.monotonic()
    while not stop.is_set():
        try:
            soa = dns.query.udp(dns.message.make_query(ZONE, "SOA"), "127.0.0.1", port=port, timeout=1.0)
            if soa.rcode() == dns.rcode.NOERROR and soa.answer:
                break
        except dns.exception.Timeout:
            pass
        time.sleep(0.01)
    waited = time.monotonic() - waited
    while not stop.is_set() and len(latencies) < 500_000:  # bounded: ~40 minutes of queries
        pace.wait()
        name = rng.choice(names)
        response, seconds = _ask(port, name)
        latencies.append(seconds)
        verdict = "timeout" if response == "timeout" else judge(response, name, nodes)
        tally = count_verdict(verdict, name, required)
        for key in tally:
            counts[key] += 1
        if "wrong" in tally:
            wrong.append(f"{name}: {verdict}" + (", but it must answer" if verdict in ("absent", "cut") else ""))
    latencies.sort()
    results.put({**counts, "queries": len(latencies), "examples": wrong[:3], "zone_wait": waited,
                 "p50": _quantile(latencies, 0.50), "p99": _quantile(latencies, 0.99),
                 "max": latencies[-1] if latencies else 0.0})


def verify_dns(port: int, names: list[str], nodes: int, absent: tuple[str, ...] = ()) -> tuple[int, list[str]]:
    """Ask for each name once: (how many answered as they must, what was wrong). Names
    starting with one of `absent` must be NXDOMAIN, the others right."""
    good, wrong = 0, []
    for name in names:
        response, _ = _ask(port, name)
        verdict = "timeout" if response == "timeout" else judge(response, name, nodes)
        if verdict == ("absent" if name.startswith(absent) else "right"):
            good += 1
        else:
            wrong.append(f"{name}: {verdict}")
    return good, wrong


class Prober:
    """Start before a write, stop after: lookup latencies and completeness meanwhile, in a
    separate process (`_probe` against Redis, or `_probe_dns` through PowerDNS)."""

    def __init__(self, *args, target=None):
        context = multiprocessing.get_context("spawn")
        self._stop, self._ready, self._results = context.Event(), context.Event(), context.Queue()
        self._process = context.Process(target=target or _probe,
                                        args=(*args, self._stop, self._ready, self._results), daemon=True)

    def __enter__(self) -> "Prober":
        self._process.start()
        if not self._ready.wait(60):
            raise RuntimeError("the lookup prober did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if exc[0] is None:
            self.figures = self._results.get(timeout=120)
        self._process.join(30)
        if self._process.is_alive():
            self._process.kill()


def _sample(containers: int, rng: random.Random) -> list[str]:
    parents = containers // 2
    picks = rng.sample(range(parents), min(parents, SAMPLE_NAMES // 2))
    return [f"{kind}-{i:07d}.{ZONE}" for i in picks for kind in ("p", "c")]


def _slow_writes(client, apply_sha: str) -> list[float]:
    """Milliseconds Redis spent in each write call of SLOWLOG_THRESHOLD or more, since the
    last reset."""
    durations = []
    for entry in client.slowlog_get(100_000):
        command = entry.get("command", b"")
        command = command.decode(errors="replace") if isinstance(command, bytes) else str(command)
        if command.lower().startswith("evalsha " + apply_sha.lower()):
            durations.append(entry["duration"] / 1000)
    return sorted(durations)


def _write_seconds(sync: SyncProcess) -> float | None:
    """The sync's own timing of its first batch: rules + diff + write (its log)."""
    found = re.search(r" wrote .* in ([\d.]+) ms", sync.log_text())
    return float(found.group(1)) / 1000 if found else None


def _lookup_rows(table: Table, what: str, figures: dict, writes: list[float]) -> None:
    p99 = figures["p99"] * 1000
    table.add(f"{what}: lookup p99 (ms)", p99, f"< {TARGET_LOOKUP_P99_MS:.0f} ms",
              "pass" if p99 < TARGET_LOOKUP_P99_MS else "FAIL")
    table.add(f"{what}: lookup p50 / max (ms)", f"{figures['p50'] * 1000:.2f} / {figures['max'] * 1000:.1f}",
              "", "")
    table.add(f"{what}: lookups (answered) / incomplete answers",
              f"{figures['lookups']:,} ({figures['answered']:,}) / {figures['incomplete']}", "= 0 incomplete",
              "pass" if figures["incomplete"] == 0 else "FAIL")
    if writes:
        table.add(f"{what}: Redis busy per write call >= 1 ms: count, median, max (ms)",
                  f"{len(writes)}, {writes[len(writes) // 2]:.1f}, {writes[-1]:.1f}", "", "")


def _dns_rows(table: Table, what: str, figures: dict, after: tuple[int, list[str]], asked: int) -> None:
    table.add(f"{what}, through PowerDNS: queries: right / not there (yet or any more) / wrong",
              f"{figures['queries']:,}: {figures['right']:,} / {figures['absent']:,} / {figures['wrong']}",
              "0 wrong", "pass" if figures["wrong"] == 0 else "FAIL")
    if figures["examples"]:
        table.notes.append(f"{what}: wrong answers through PowerDNS, e.g. " + "; ".join(figures["examples"]))
    if figures.get("cut"):
        table.notes.append(f"{what}: {figures['cut']} of the 'not there' answers were a stale child's CNAME "
                           "and NXDOMAIN for its parent, deleted between PowerDNS's two lookups")
    table.add(f"{what}, through PowerDNS: p50 / p99 / max (ms)",
              f"{figures['p50'] * 1000:.1f} / {figures['p99'] * 1000:.1f} / {figures['max'] * 1000:.0f}", "", "")
    good, wrong = after
    table.add(f"{what}, through PowerDNS, each sampled name once after it: as expected", f"{good:,} of {asked:,}",
              "all", "pass" if good == asked else "FAIL")
    if wrong:
        table.notes.append(f"{what}: after it, through PowerDNS, e.g. " + "; ".join(wrong[:3]))


def _dns_stack(directory: Path, redis_url: str, client) -> tuple[BackendServer, PdnsServer]:
    """mountdns-backend and pdns_server with the shipped configuration, caches off (every
    answer from Redis) and no zone cache (a zone is asked for, not remembered: the initial
    sync writes it into an empty Redis). Started while Redis holds the zone, as PowerDNS
    needs it to come up; the caller empties Redis after."""
    RedisStore(client).apply(Changes(zones_put={ZONE: Zone(ZONE, (f"ns1.{ZONE}",), f"hostmaster.{ZONE}")}))
    backend = BackendServer(directory, redis_url, workers=2)
    pdns = PdnsServer(directory, backend.url, settings={**CACHES_OFF, "zone-cache-refresh-interval": "0"})
    backend.start()
    wait_for_workers(backend)
    pdns.start()
    return backend, pdns


def run_size(containers: int, quick: bool) -> Table:
    nodes = max(1, containers // PER_NODE)
    names = containers
    directory = workdir("mountdns-bench-scale-")
    api = KubeAPIDouble(bookmark_interval=5.0)
    redis_server = RedisServer(directory)
    syncs: list[SyncProcess] = []
    backend = pdns = None
    chunk_args = ("--write-chunk-keys", str(QUICK_CHUNK_KEYS)) if quick else ()
    table = Table(f"{containers:,} Containers ({containers // 2:,} parents on {nodes:,} nodes + "
                  f"{containers // 2:,} mounted children)", ["figure", "value", "target", "result"])
    try:
        api.start()
        load_started = time.monotonic()
        api.apply_many(topology(containers, nodes))
        load_seconds = time.monotonic() - load_started
        kubeconfig = api.write_kubeconfig(directory / "kubeconfig")
        redis_server.start()
        client = redis_server.client()
        client.config_set("slowlog-log-slower-than", SLOW_MICROSECONDS)
        client.config_set("slowlog-max-len", 100_000)
        apply_sha = RedisStore(client)._apply.sha
        sample = _sample(containers, random.Random(containers))
        verify = sample[:QUICK_VERIFY_NAMES if quick else VERIFY_NAMES]
        backend, pdns = _dns_stack(directory, redis_server.url, client)

        # --- 0. the process alone: the same daemon over the Nodes, no Container to read ----
        # (a namespace without Containers): what it holds before the first Container.
        alone = SyncProcess(directory, redis_server.url, kubeconfig=kubeconfig, log_level="info",
                            coalesce_seconds=0.05, extra_args=chunk_args + ("--namespace", "no-containers-here"),
                            name="sync-alone")
        syncs.append(alone)
        alone.start()
        wait_until(lambda: client.dbsize() >= nodes, 300, "the node keys written")
        alone_kib, _ = settled_rss(alone)
        alone.stop()

        # --- 1. initial sync, chunked --------------------------------------------------------
        client.flushall()
        client.slowlog_reset()
        before = int(client.info("memory")["used_memory"])
        once = SyncProcess(directory, redis_server.url, kubeconfig=kubeconfig, log_level="info",
                           extra_args=chunk_args, name="sync-once")
        syncs.append(once)
        with (Prober(redis_server.url, sample) as prober,
              Prober(pdns.port, sample, nodes, (), target=_probe_dns) as dns_prober):
            # This process's CPU meanwhile is the API double serving the list (its threads),
            # and the VmHWM polling (a few ms).
            double_cpu = time.process_time()
            wall, code, rss_kib = run_once(once, timeout=1800)
            double_cpu = time.process_time() - double_cpu
        if code != 0:
            raise RuntimeError(f"mountdns-sync --once exited {code}:\n{once.log_tail()}")
        dns_after = verify_dns(pdns.port, verify, nodes)
        stream = client.memory_usage(RedisStore(client).keys.announcements) or 0
        # The write calls as Redis timed them, read before the per-name figure: the SLOWLOG
        # this benchmark turned on (every call of 1 ms or more, each entry keeping up to 32
        # of its arguments) is its own instrument, not what Redis needs for the names.
        writes = _slow_writes(client, apply_sha)
        with_log = int(client.info("memory")["used_memory"])
        client.slowlog_reset()
        per_name = (int(client.info("memory")["used_memory"]) - before) / names
        slowlog_per_name = (with_log - before) / names - per_name
        per_container = rss_kib * 1024 / containers
        table.add("initial sync, process start to exit (s)", wall, f"< {TARGET_SECONDS:.0f} s",
                  "pass" if wall < TARGET_SECONDS else "FAIL")
        table.add("  of which rules + diff + write, chunked (s)", _write_seconds(once), "", "")
        table.add("  API double's CPU meanwhile, serving the list on the same cores (s)", double_cpu, "", "")
        table.add("initial sync: peak RSS (MiB)", rss_kib / 1024, "", "")
        table.add("initial sync: peak RSS per Container (bytes)", per_container, f"<= {TARGET_RSS_BYTES} B",
                  "pass" if per_container <= TARGET_RSS_BYTES else "FAIL")
        table.add("Redis used_memory per name (bytes)", per_name, f"< {TARGET_BYTES_PER_NAME:.0f} B",
                  "pass" if per_name < TARGET_BYTES_PER_NAME else "FAIL")
        table.add("  of which the announcement of the initial write (bytes per name)", stream / names, "", "")
        table.add("  not counted: the SLOWLOG of the write calls this benchmark keeps (bytes per name)",
                  slowlog_per_name, "", "")
        floor, copied = plain_set_bytes(client, RedisStore(client).keys, directory)
        table.add(f"  Redis's floor: the {copied:,} record keys and values as plain SETs in an empty Redis "
                  "(bytes per key)", floor, "", "")
        _lookup_rows(table, "during the initial sync (chunked)", prober.figures, writes)
        _dns_rows(table, "during the initial sync", dns_prober.figures, dns_after, len(verify))
        zone_wait = dns_prober.figures["zone_wait"]

        # --- 2. the same in one call, as before --------------------------------------------
        if containers <= 200_000:
            client.flushall()
            client.slowlog_reset()
            whole = SyncProcess(directory, redis_server.url, kubeconfig=kubeconfig, log_level="info",
                                extra_args=("--write-chunk-keys", "10000000"), name="sync-once-whole")
            syncs.append(whole)
            with Prober(redis_server.url, sample) as prober:
                _, code, _ = run_once(whole, timeout=1800)
            if code != 0:
                raise RuntimeError(f"mountdns-sync --once exited {code}:\n{whole.log_tail()}")
            table.add("same, written in one call (before): rules + diff + write (s)", _write_seconds(whole), "", "")
            _lookup_rows(table, "same, written in one call (before)", prober.figures,
                         _slow_writes(client, apply_sha))

        # --- 3. long-running: first write, stale names, resync collects them ----------------
        # Over Containers that carry the status the sync writes: its steady state.
        client.flushall()
        api.apply_many(with_published_status(topology(containers, nodes)))
        resync = 10.0 if quick else max(30.0, containers / 10_000)
        daemon = SyncProcess(directory, redis_server.url, kubeconfig=kubeconfig, log_level="info",
                             coalesce_seconds=0.05, resync_interval=resync, extra_args=chunk_args,
                             name="sync-daemon")
        syncs.append(daemon)
        daemon.start()
        expected = names + nodes
        wait_until(lambda: client.dbsize() >= expected, 1800, "every key written")
        settled = client.dbsize()
        resyncs_before = daemon.log_count("periodic resync")
        RedisStore(client).apply(stale(containers, nodes))  # chunked too: it is a big write
        client.slowlog_reset()
        garbage = sample + [f"g{n}" for n in sample]  # gp-/gc- names: deleted as the resync runs
        with (Prober(redis_server.url, garbage) as prober,
              Prober(pdns.port, garbage, nodes, ("p-", "c-"), target=_probe_dns) as dns_prober):
            wait_until(lambda: daemon.log_count("periodic resync") > resyncs_before, resync + 60, "a resync")
            wait_until(lambda: client.dbsize() <= settled, 1800, "the stale names collected")
        half = verify[:len(verify) // 2]
        dns_after = verify_dns(pdns.port, half + [f"g{n}" for n in half], nodes, absent=("gp-", "gc-"))
        _lookup_rows(table, f"during garbage collection of {names:,} names", prober.figures,
                     _slow_writes(client, apply_sha))
        _dns_rows(table, f"during garbage collection of {names:,} names", dns_prober.figures, dns_after,
                  2 * len(half))
        _, hwm = memory_kib(daemon.proc.pid)
        daemon.stop()
        table.add("long-running over Containers with their status, list + write + resync + GC: "
                  "peak RSS per Container (bytes)",
                  hwm * 1024 / containers, f"<= {TARGET_RSS_BYTES} B",
                  "pass" if hwm * 1024 / containers <= TARGET_RSS_BYTES else "FAIL")
        table.add("the same daemon over the Nodes alone, no Container: RSS (MiB)", alone_kib / 1024, "", "")
        beyond = (hwm - alone_kib) * 1024 / containers
        table.add("long-running peak RSS per Container beyond the process alone (bytes)", beyond,
                  f"<= {TARGET_RSS_BYTES} B", "pass" if beyond <= TARGET_RSS_BYTES else "FAIL")
        table.notes += [
            f"The API test double runs in the benchmark process and serves the lists over HTTP; loading it "
            f"took {load_seconds:.1f} s (not counted). Lookups run in a separate process, "
            f"over {len(sample):,} names sampled from the topology (the GC phase adds as many stale ones), "
            f"paced at {LOOKUP_RATE:,}/s; the PowerDNS prober asks the same names at {DNS_RATE}/s through "
            "pdns_server 4.7 (shipped configuration, caches and zone cache off) and mountdns-backend (2 workers) "
            f"on the same Redis; it starts once the zone answers (during the initial sync it waited "
            f"{zone_wait:.1f} s for the sync's first write).",
            "Peak RSS: VmHWM of the sync process (of `--once` read every 20 ms until it exits). The process "
            "alone: the same daemon watching a namespace without Containers, its VmRSS once the node keys are "
            "written and it is idle (interpreter, libraries, client, threads, the Nodes). Redis per name: "
            "INFO used_memory after - before over the names (node keys and zone keys included; after: once "
            "the write calls' SLOWLOG entries are read and dropped, the benchmark's own log); its floor "
            "copies the parent and child keys into a redis-server of their own with plain SETs: what Redis's "
            "own structures cost for one string key per name.",
            f"Write calls are timed by Redis itself (SLOWLOG, calls of {SLOW_MICROSECONDS / 1000:.0f} ms or "
            f"more); the sync writes at most {QUICK_CHUNK_KEYS if quick else DEFAULT_CHUNK_KEYS:,} record keys a call.",
            f"Load average {os.getloadavg()[0]:.1f} at the end ({os.cpu_count()} cores, shared).",
        ]
        return table
    finally:
        tear_down([*syncs, pdns, backend, redis_server, api], directory)


def run(quick: bool) -> list[Table]:
    tables = []
    for size in sizes(quick):
        table = run_size(size, quick)
        if size != 100_000:  # 100,000 keeps the suite's own section
            table.section = "scale_1m" if size == 1_000_000 else f"scale_{size}"
            table.heading = f"scale ({size:,} Containers)"
        tables.append(table)
    return tables

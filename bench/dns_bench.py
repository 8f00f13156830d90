"""DNS throughput and latency: PowerDNS's own bind backend against pdns + mountdns.

In one run, on one machine, with the same query file and the same dnsperf settings:
  (a) pdns_server 4.7, bind backend serving an equivalent zone file, caches off: the reference;
  (b) pdns_server 4.7 + mountdns-backend + Redis, caches off: every query reaches the backend
      (mountdns-backend's default size over the shipped connector, the same over the other
      connector, unix socket or HTTP, and the fastest of a sweep of workers x threads);
  (c) pdns_server 4.7 + mountdns with the settings shipped in pdns/pdns.conf (caches on).
Then the backend alone under wrk (HTTP keep-alive, PowerDNS's REST shape), the Redis
commands and round trips per lookup, the backend lookups PowerDNS makes per DNS query,
and where the CPU goes in (b).

Each measurement is bounded (dnsperf -l, wrk -d). dnsperf 2.10 has no latency histogram,
so p99 comes from a second, rate-limited dnsperf run with -v, which prints every query's
latency; -v costs dnsperf CPU, which is why the throughput run does not use it.

Environment knobs (optional):
  MOUNTDNS_BENCH_BACKEND=3x1                 workers x threads of (b) (default: mountdns-backend's
                                             own defaults; threads = event loops per worker)
  MOUNTDNS_BENCH_SWEEP=2x1,3x1,4x1,...       combinations tried for the fastest (b)
  MOUNTDNS_BENCH_SECONDS=10                  length of each dnsperf/wrk run (full mode)
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.cpu import CpuMeter
from bench.dnsperf import DnsperfResult, dnsperf
from bench.http_load import WrkResult, http_lookups, lookup_path, wrk
from bench.redis_calls import counting
from bench.report import Table
from mountdns.testing import topology as topo
from mountdns.testing.servers import (CACHES_OFF, PDNS_CONFIG_DIR, BackendServer, PdnsServer, RedisServer, wait_until,
                                      workdir)

LATENCY_QPS = 1_500    # offered load of the latency runs: the (b) target rate
DEFAULT_SWEEP = "2x1,3x1,4x1,3x2"

TARGET_B_QPS = 2_000   # issue 10 section 4: at least 2,000 uncached queries/s (goal 3,000)
TARGET_B_GOAL_QPS = 3_000
TARGET_B_P99_MS = 10.0
TARGET_C_RATIO = 0.80
TARGET_BACKEND_LOOKUPS = 6_000


# -- servers ---------------------------------------------------------------------------
def shipped_pdns_settings() -> dict[str, str]:
    """pdns/pdns.conf as a mapping (the settings (b) and (c) start from)."""
    settings = {}
    for line in (PDNS_CONFIG_DIR / "pdns.conf").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def shipped_threads() -> tuple[str, str]:
    """(receiver-threads, distributor-threads) as shipped, with PowerDNS's defaults."""
    shipped = shipped_pdns_settings()
    return shipped.get("receiver-threads", "1"), shipped.get("distributor-threads", "3")


def shipped_connector() -> str:
    """"unix" or "http": the kind of remote-connection-string pdns/pdns.conf ships."""
    return shipped_pdns_settings().get("remote-connection-string", "http:").partition(":")[0]


def mountdns_pair(stack: contextlib.ExitStack, directory: Path, redis_url: str, combo: tuple[int, int],
                  settings: dict | None = None, connector: str | None = None):
    """mountdns-backend and a pdns_server using it, over `connector` (default: the shipped
    one): (backend, pdns), both stopped with `stack`."""
    connector = connector or shipped_connector()
    extra, settings = (), dict(settings or {})
    if connector == "unix":
        socket_path = directory / f"backend-{next(_PAIRS)}.sock"
        extra = ("--pdns-socket", str(socket_path))
        settings["remote-connection-string"] = f"unix:path={socket_path},timeout=2000"
    backend = _started(stack, BackendServer(directory, redis_url, workers=combo[0], threads=combo[1],
                                            extra_args=extra))
    if connector == "unix":
        wait_until(socket_path.exists, 20, "the backend's unix socket")
    return backend, _started(stack, PdnsServer(directory, backend.url, settings=settings))


_PAIRS = itertools.count()


def default_backend_size() -> tuple[int, int]:
    """mountdns-backend's own --workers/--threads defaults."""
    from pdns_backend.cli import build_parser
    defaults = build_parser().parse_args([])
    return defaults.workers, defaults.threads


class BindPdnsServer(PdnsServer):
    """pdns_server with only the bind backend, from its own config dir (no shipped settings)."""

    def __init__(self, directory: Path, named_conf: Path, settings: dict | None = None,
                 zone: str = topo.ZONE_NAME):
        super().__init__(directory, backend_url="", settings=settings, zone=zone)
        self.config_dir = directory / "bind-pdns"
        self.config_dir.mkdir(exist_ok=True)
        conf = {
            "launch": "bind",
            "bind-config": str(named_conf),
            "local-address": "127.0.0.1",
            "local-port": str(self.port),
            "socket-dir": str(directory),
            "daemon": "no",
            "guardian": "no",
            "write-pid": "no",
            "webserver": "no",
            # The same threads as the shipped pdns.conf, so only the backend differs.
            "receiver-threads": shipped_threads()[0],
            "distributor-threads": shipped_threads()[1],
            "loglevel": "4",
            **CACHES_OFF,
            **(settings or {}),
        }
        (self.config_dir / "pdns.conf").write_text("".join(f"{k}={v}\n" for k, v in conf.items()))

    def argv(self) -> list[str]:
        return [shutil.which("pdns_server") or "/usr/sbin/pdns_server", f"--config-dir={self.config_dir}"]


def parse_combo(text: str) -> tuple[int, int]:
    workers, _, threads = text.strip().lower().partition("x")
    return int(workers), int(threads)


def combo_label(combo: tuple[int, int]) -> str:
    return f"{combo[0]} worker{'s' if combo[0] != 1 else ''} x {combo[1]} thread{'s' if combo[1] != 1 else ''}"


@dataclass
class DnsMeasure:
    label: str
    throughput: DnsperfResult
    latency: DnsperfResult
    cpu: CpuMeter | None = None


def measure(label: str, server: PdnsServer, query_file: Path, seconds: float,
            cpu_of: dict[str, object] | None = None) -> DnsMeasure:
    """One unlimited throughput run (optionally CPU-metered), then one -v run at LATENCY_QPS."""
    meter = CpuMeter(cpu_of) if cpu_of else None
    if meter:
        meter.start()
    throughput = dnsperf(server.port, query_file, seconds)
    if meter:
        meter.stop()
    latency = dnsperf(server.port, query_file, seconds, max_qps=LATENCY_QPS, verbose=True)
    return DnsMeasure(label, throughput, latency, meter)


# -- the suite -------------------------------------------------------------------------
def _verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


@dataclass
class Settings:
    quick: bool
    parents: int
    nodes: int
    children: int
    missing: int
    seconds: float
    sweep_seconds: float
    backend: tuple[int, int]
    sweep: list[tuple[int, int]]
    http_lookups: int
    per_kind_queries: int
    distributor_threads: list[int]

    @classmethod
    def for_run(cls, quick: bool) -> "Settings":
        default = default_backend_size()
        backend = parse_combo(os.environ["MOUNTDNS_BENCH_BACKEND"]) if os.environ.get("MOUNTDNS_BENCH_BACKEND") \
            else default
        shipped = int(shipped_threads()[1])
        if quick:
            sweep = [backend, (1, backend[1])]
            distributor_threads = [t for t in (3, 8) if t != shipped][:1]
            return cls(True, 200, 10, 200, 50, 2, 1, backend, sweep, 200, 20, distributor_threads)
        sweep = [parse_combo(c) for c in os.environ.get("MOUNTDNS_BENCH_SWEEP", DEFAULT_SWEEP).split(",")]
        seconds = float(os.environ.get("MOUNTDNS_BENCH_SECONDS", "10"))
        return cls(False, 10_000, 100, 10_000, 1_000, seconds, 5, backend, sweep, 2_000, 300,
                   [t for t in (8, 16, 48) if t != shipped])


def run(quick: bool) -> list[Table]:
    cfg = Settings.for_run(quick)
    directory = workdir("mountdns-bench-dns-")
    load_before = os.getloadavg()
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, directory, True)
        tables = _run(cfg, directory, stack)
    load_after = os.getloadavg()
    tables[0].notes.append(
        f"1-minute load average {load_before[0]:.1f} before and {load_after[0]:.1f} after this suite: the "
        "machine is shared, so other work competes for the same cores.")
    return tables


def _started(stack: contextlib.ExitStack, server):
    stack.callback(server.stop)
    return server.start()


def _run(cfg: Settings, directory: Path, stack: contextlib.ExitStack) -> list[Table]:
    topology = topo.generate(cfg.parents, cfg.nodes, cfg.children, cfg.missing)
    pairs = topo.query_names(topology)
    query_file = topo.write_query_file(directory / "queries.txt", pairs)
    zone_file = topo.write_zone_file(topology, directory / f"{topology.zone.name}.zone")
    named_conf = topo.write_named_conf(topology, zone_file, directory / "named.conf")

    redis_server = _started(stack, RedisServer(directory))
    client = redis_server.client()
    stack.callback(client.close)
    topo.load_into_redis(client, topology.state)

    measures: dict[str, DnsMeasure] = {}

    # (a) the reference: PowerDNS's bind backend, caches off.
    bind = BindPdnsServer(directory, named_conf)
    _started(stack, bind)
    measures["a"] = measure("(a) pdns 4.7 + bind backend, caches off (reference)", bind, query_file, cfg.seconds)
    bind.stop()

    # (b) pdns + mountdns, caches off, the default backend size, over the shipped connector.
    connector = shipped_connector()
    backend, pdns = mountdns_pair(stack, directory, redis_server.url, cfg.backend, CACHES_OFF)
    measures["b"] = measure(f"(b) pdns + mountdns, caches off, {combo_label(cfg.backend)}, {connector} connector",
                            pdns, query_file, cfg.seconds,
                            cpu_of={"pdns_server": pdns, "mountdns-backend": backend, "redis-server": redis_server})
    per_kind = lookups_per_query(pdns, backend, client, topology, cfg.per_kind_queries)
    redis_per_lookup = redis_per_http_lookup(backend, client, pairs, cfg.http_lookups)
    backend_alone = wrk(backend, [n for _, n in pairs[:5000]], cfg.seconds, directory)
    pdns.stop()
    backend.stop()

    # (b) over the other connector, for comparison (HTTP: PowerDNS's 1 ms wait per reuse).
    other = "http" if connector == "unix" else "unix"
    backend, pdns = mountdns_pair(stack, directory, redis_server.url, cfg.backend, CACHES_OFF, other)
    measures["b_other"] = measure(f"(b) pdns + mountdns, caches off, {combo_label(cfg.backend)}, {other} "
                                  "connector (not the shipped pdns.conf)", pdns, query_file, cfg.seconds,
                                  cpu_of={"pdns_server": pdns, "mountdns-backend": backend,
                                          "redis-server": redis_server})
    per_kind["polls"] = connector_polls(pdns if other == "http" else None, topology.parents[-1], directory)
    pdns.stop()
    backend.stop()

    # (b) sweep: which workers x threads serves pdns fastest (short throughput runs), then,
    # outside the shipped settings, what more pdns distributor threads would give.
    sweep_rows = []

    def sweep_run(combo, distributor_threads=None):
        settings = dict(CACHES_OFF)
        if distributor_threads:
            settings["distributor-threads"] = str(distributor_threads)
        b, p = mountdns_pair(stack, directory, redis_server.url, combo, settings)
        try:
            result = dnsperf(p.port, query_file, cfg.sweep_seconds)
        finally:
            p.stop()
            b.stop()
        sweep_rows.append((combo, distributor_threads, result))
        return result

    for combo in cfg.sweep:
        sweep_run(combo)
    # A size that makes pdns SERVFAIL (e.g. too few connections per worker) is not "fast".
    candidates = [row for row in sweep_rows if row[1] is None and row[2].error_share < 0.01] or \
        [row for row in sweep_rows if row[1] is None]
    best_combo = max(candidates, key=lambda row: row[2].answered_qps)[0]
    for threads in cfg.distributor_threads:
        # Enough connections per worker for all of pdns's, however the kernel spreads them.
        sweep_run(best_combo, threads)
    if best_combo != cfg.backend:
        backend, pdns = mountdns_pair(stack, directory, redis_server.url, best_combo, CACHES_OFF)
        measures["b_best"] = measure(f"(b) pdns + mountdns, caches off, fastest: {combo_label(best_combo)}",
                                     pdns, query_file, cfg.seconds)
        pdns.stop()
        backend.stop()

    # (c) the shipped settings (packet and query caches on), after one warm-up pass.
    backend, pdns = mountdns_pair(stack, directory, redis_server.url, cfg.backend)
    warm_started = time.monotonic()
    warm = dnsperf(pdns.port, query_file, 120, passes=1)
    warm_seconds = time.monotonic() - warm_started
    counters_before = pdns_counters(pdns)
    measures["c"] = measure("(c) pdns + mountdns, shipped pdns/pdns.conf (caches on)", pdns, query_file,
                            cfg.seconds)
    counters_after = pdns_counters(pdns)
    pdns.stop()
    backend.stop()

    tables = [
        dns_table(cfg, measures, best_combo, query_file, warm, warm_seconds, counters_before, counters_after),
        sweep_table(cfg, sweep_rows, best_combo),
        backend_table(cfg, backend_alone, redis_per_lookup),
        per_kind_table(per_kind, redis_per_lookup),
        cpu_table([(connector, measures["b"]), (other, measures["b_other"])],
                  lookups_per_mixed_query(per_kind, pairs)),
    ]
    return tables


def pdns_counters(pdns: PdnsServer) -> dict[str, int]:
    text = pdns.control("show", "*")
    return {k: int(v) for k, v in re.findall(r"([a-z0-9-]+)=(\d+)", text)}


def backend_lookups(backend: BackendServer) -> int:
    """Lookups the backend has answered, from its /metrics (every worker's, after each
    has added its tally: they do so once a second)."""
    import urllib.request
    time.sleep(1.5)
    with urllib.request.urlopen(f"{backend.url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return int(sum(float(v) for v in re.findall(r"^mountdns_backend_lookups_total\{[^}]*\} ([0-9.e+]+)$", text,
                                                  re.M)))


def lookups_per_query(pdns: PdnsServer, backend: BackendServer, client, topology: topo.Topology,
                      count: int) -> dict[str, dict]:
    """Per kind of name: the backend lookups PowerDNS makes per DNS query, caches off, the
    EVALSHA calls and Redis round trips they cost, and the median latency of one query
    at a time."""
    results = {}
    for kind in ("parent", "child", "missing"):
        names = list(topology.names(kind))[:count]
        latencies = []
        for name in names:
            started = time.perf_counter()
            pdns.query(name, "A")
            latencies.append((time.perf_counter() - started) * 1000)
        before = backend_lookups(backend)
        with counting(client) as counted:
            for name in names:
                pdns.query(name, "A")
        lookups = backend_lookups(backend) - before
        results[kind] = {"queries": len(names), "median_ms": statistics.median(latencies), "lookups": lookups,
                         **counted}
    return results


_POLL = re.compile(r"poll\(\[\{fd=\d+, events=POLLIN\}\], 1, 1\) = 0 \(Timeout\) <([0-9.]+)>")


def connector_polls(pdns: PdnsServer | None, name: str, directory: Path) -> dict | None:
    """strace pdns_server (over HTTP) during one query: the lookups it sends and the 1 ms
    polls its HTTP connector makes before reusing a connection. None when strace is missing
    or not allowed."""
    strace = shutil.which("strace")
    if not strace or pdns is None:
        return None
    trace = directory / "pdns.strace"
    tracer = subprocess.Popen([strace, "-f", "-T", "-e", "trace=poll,write", "-o", str(trace),
                               "-p", str(pdns.proc.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)  # strace attaches to every thread before the query is sent
        if tracer.poll() is not None:
            return None
        pdns.query(name, "A")
        time.sleep(0.2)
    finally:
        tracer.terminate()
        try:
            tracer.wait(5)
        except subprocess.TimeoutExpired:
            tracer.kill()
            tracer.wait(5)
    try:
        text = trace.read_text(errors="replace")
    except FileNotFoundError:
        return None
    polls = [float(d) * 1000 for d in _POLL.findall(text)]
    lookups = len(re.findall(r'write\(\d+, "GET /dnsapi/lookup/', text))
    if not lookups:
        return None
    return {"lookups": lookups, "polls": len(polls), "poll_ms": statistics.mean(polls) if polls else 0.0}


def redis_per_http_lookup(backend: BackendServer, client, pairs, count: int) -> dict:
    """Redis traffic of `count` HTTP lookups, and the time of one lookup at a time."""
    names = [n for _, n in pairs[:count]]
    http_lookups(backend, names[:10])  # warm the backend's Redis connections and script cache
    started = time.perf_counter()
    http_lookups(backend, names)
    sequential_ms = (time.perf_counter() - started) * 1000 / len(names)
    with counting(client) as counted:
        http_lookups(backend, names)
    return {"lookups": len(names), "sequential_ms": sequential_ms, **counted}


# -- tables ----------------------------------------------------------------------------
def dns_table(cfg, measures, best_combo, query_file, warm, warm_seconds, before, after) -> Table:
    table = Table(
        f"DNS queries: pdns bind reference vs pdns + mountdns ({cfg.parents:,} parents on {cfg.nodes} nodes, "
        f"{cfg.children:,} children, {cfg.missing:,} missing names)",
        ["setup", "queries/s", "avg latency ms (max load)", f"avg latency ms @{LATENCY_QPS:,} q/s",
         f"p99 latency ms @{LATENCY_QPS:,} q/s", "queries/s as % of (a)", "target", "result"])
    reference = measures["a"].throughput.answered_qps
    for key, m in measures.items():
        ratio = m.throughput.answered_qps / reference
        p99 = m.latency.percentile(0.99)
        if key == "b_other":
            target, result = "comparison", ""
        elif key.startswith("b"):
            target = f">= {TARGET_B_QPS:,} q/s (goal {TARGET_B_GOAL_QPS:,}), p99 < {TARGET_B_P99_MS:g} ms"
            result = _verdict(m.throughput.answered_qps >= TARGET_B_QPS and p99 < TARGET_B_P99_MS
                              and m.latency.error_share < 0.001)
        elif key == "c":
            target = f">= {TARGET_C_RATIO:.0%} of (a)"
            result = _verdict(ratio >= TARGET_C_RATIO)
        else:
            target, result = "reference", ""
        table.add(m.label, m.throughput.answered_qps, m.throughput.avg_ms, m.latency.avg_ms, p99, f"{ratio:.1%}",
                  target, result)
    throughput_argv = " ".join(measures["a"].throughput.argv).replace(str(query_file), "queries.txt")
    latency_argv = " ".join(measures["a"].latency.argv).replace(str(query_file), "queries.txt")
    mix = "45% parents (A), 45% children (A, answered with CNAME + A), 10% missing names (NXDOMAIN)"
    table.notes += [
        f"queries.txt: {sum(1 for _ in open(query_file)):,} queries, {mix}, shuffled with a fixed seed; "
        "dnsperf cycles through it.",
        f"queries/s (answered NOERROR or NXDOMAIN; SERVFAILs are not counted) and the first latency column: "
        f"`{throughput_argv}` (unlimited rate; dnsperf's default -q 100 queries outstanding, so latency at "
        "max load is mostly queueing).",
        f"p99: dnsperf 2.10 has no latency histogram, so a second run at a fixed offered load, "
        f"`{latency_argv}`, prints every query's latency (-v); p99 is the nearest-rank 99th percentile of "
        "those. -v costs dnsperf CPU, so the throughput run does not use it.",
        "(a) runs pdns_server from its own config dir: launch=bind, cache-ttl=0, query-cache-ttl=0, "
        f"negquery-cache-ttl=0, receiver-threads={shipped_threads()[0]}, "
        f"distributor-threads={shipped_threads()[1]} (as shipped). (b) is the shipped pdns.conf with the "
        f"three caches at 0 (over the shipped {shipped_connector()} connector unless the row says otherwise). Everything (dnsperf, pdns, gunicorn, redis) shares {os.cpu_count()} cores.",
        f"(c) was warmed with one pass over queries.txt first (`-n 1`, {warm.completed:,} queries in "
        f"{warm_seconds:.1f} s); during its runs {_cache_note(before, after)}.",
    ]
    if "b_best" not in measures:
        table.notes.append(f"The default backend size ({combo_label(best_combo)}) was also the fastest of the sweep.")
    for key, m in measures.items():
        for run_name, r in (("throughput", m.throughput), ("latency", m.latency)):
            if r.unexpected():
                table.notes.append(f"{m.label}, {run_name} run: {r.unexpected()} (of {r.sent:,} sent).")
    return table


def _cache_note(before: dict, after: dict) -> str:
    def delta(name):
        return after.get(name, 0) - before.get(name, 0)
    hits, misses = delta("packetcache-hit"), delta("packetcache-miss")
    q_hits, q_misses = delta("query-cache-hit"), delta("query-cache-miss")
    total = hits + misses
    if not total:
        return "pdns reported no packet cache counters"
    return (f"the packet cache answered {hits / total:.1%} of {total:,} queries; "
            f"the query cache {q_hits:,} hits / {q_misses:,} misses (backend lookups)")


def sweep_table(cfg, rows, best_combo) -> Table:
    table = Table("(b) sweep: pdns + mountdns, caches off, by backend size and pdns distributor threads",
                  ["mountdns-backend", "pdns distributor-threads", "queries/s", "avg latency ms (max load)",
                   "SERVFAIL or lost", "note"])
    for combo, distributor_threads, result in rows:
        if distributor_threads is None:
            threads, note = f"{shipped_threads()[1]} (shipped)", "fastest backend size" if combo == best_combo else ""
        else:
            threads, note = str(distributor_threads), "not the shipped pdns.conf"
        table.add(combo_label(combo), threads, result.answered_qps, result.avg_ms, f"{result.error_share:.1%}",
                  note)
    table.notes.append(f"{cfg.sweep_seconds:g} s unlimited-rate dnsperf runs (same options as above); set "
                       "MOUNTDNS_BENCH_SWEEP=2x1,3x1,... to try other sizes, MOUNTDNS_BENCH_BACKEND for the (b) "
                       "row.")
    table.notes.append(f"pdns keeps one keep-alive backend connection per distributor thread (plus one for TCP "
                       f"and short-lived ones), one request in flight on each: with the shipped "
                       f"{shipped_threads()[1]}, at most that many lookups are in flight. mountdns-backend's "
                       "threads are event loops per worker process (each serving many connections); a worker "
                       "refuses connections beyond --max-connections (256), and pdns answers SERVFAIL for the "
                       "lookups it had on a refused connection.")
    table.notes.append(f"Differences of 10-15% between short runs are within the noise of a shared "
                       f"{os.cpu_count()}-core machine; the fastest size is picked among runs with < 1% SERVFAIL/lost.")
    return table


def backend_table(cfg, alone: WrkResult, per_lookup: dict) -> Table:
    table = Table("mountdns-backend alone and its Redis traffic",
                  ["measure", "value", "target", "result"])
    table.add("lookups/s (wrk, HTTP keep-alive)", alone.requests_per_s, f">= {TARGET_BACKEND_LOOKUPS:,}",
              _verdict(alone.requests_per_s >= TARGET_BACKEND_LOOKUPS))
    table.add("avg latency ms (wrk)", alone.avg_ms, "", "")
    table.add("p99 latency ms (wrk)", alone.p99_ms, "", "")
    lookups = per_lookup["lookups"]
    evalsha = per_lookup["calls"].get("evalsha", 0)
    trips = per_lookup["round_trips"]
    round_trips = sum(trips.values()) / lookups
    table.add("one lookup at a time, ms (Python http.client, keep-alive)", per_lookup["sequential_ms"], "", "")
    table.add("EVALSHA calls per lookup", evalsha / lookups, "", "")
    table.add("Redis round trips per lookup", round_trips, "exactly 1", _verdict(abs(round_trips - 1) < 0.005))
    table.add("Redis commands executed per lookup (incl. inside the script)", per_lookup["commands"] / lookups,
              "", "")
    table.notes.append(f"wrk: `{' '.join(alone.argv)}`; lookups.lua cycles through "
                       f"the lookup URLs of the query mix in PowerDNS's REST shape, e.g. "
                       f"`{lookup_path('parent-1.' + topo.ZONE_NAME)}`"
                       f"{'; ' + alone.errors if alone.errors else ''}. wrk shares the machine's {os.cpu_count()} cores with the backend.")
    inner = {k: v for k, v in per_lookup["calls"].items() if k != "evalsha"}
    inner_text = ", ".join(f"{k} {v / lookups:.2f}" for k, v in sorted(inner.items())) or "none"
    trips_text = ", ".join(f"{k} {v:,}" for k, v in sorted(trips.items())) or "none"
    table.notes.append(
        f"Redis counts: CONFIG RESETSTAT, {lookups:,} sequential HTTP lookups (the query mix) over one "
        f"keep-alive connection, then INFO commandstats and INFO stats. Round trips are the commands "
        f"MONITOR shows from TCP clients ({trips_text}); total_commands_processed also counts what the "
        f"EVALSHA runs server-side (Redis 7 counts script calls), per lookup: {inner_text}.")
    return table


def per_kind_table(per_kind: dict, per_lookup: dict) -> Table:
    table = Table("(b) backend lookups per DNS query, pdns caches off, one query at a time",
                  ["query", "DNS queries", "backend lookups", "lookups per query", "EVALSHA per query",
                   "Redis round trips per query", "median latency ms", "ms per lookup"])
    for kind, label in (("parent", "parent A"), ("child", "child A (CNAME chased to the parent)"),
                        ("missing", "missing name A (NXDOMAIN)")):
        r = per_kind[kind]
        evalsha = r["calls"].get("evalsha", 0)
        per_query = r["lookups"] / r["queries"]
        table.add(label, r["queries"], r["lookups"], per_query, evalsha / r["queries"],
                  sum(r["round_trips"].values()) / r["queries"], r["median_ms"],
                  r["median_ms"] / per_query if per_query else float("nan"))
    table.notes.append("Sequential dnspython queries with distinct names, timed in one pass and counted in a "
                       "second: backend lookups from mountdns-backend's /metrics "
                       "(mountdns_backend_lookups_total), EVALSHA calls and round trips from Redis (as above). "
                       "PowerDNS asks for the zone apex (SOA probe) and the name (twice); a CNAME repeats that "
                       "for the target; a missing name adds a wildcard probe. The SOA probes are answered from "
                       "each worker's zone table (--zone-table-max-age), without Redis: the difference between "
                       "lookups and EVALSHA calls.")
    polls = per_kind.get("polls")
    if polls:
        why = (f"strace of pdns_server during one parent query: {polls['lookups']} lookups sent, "
               f"{polls['polls']} times `poll([fd], 1, 1) = 0 (Timeout)` taking {polls['poll_ms']:.2f} ms each: "
               "before reusing its keep-alive connection the HTTP connector waits 1 ms to see whether the "
               "backend closed it. That wait is idle, not CPU, so more pdns distributor threads (more "
               "lookups in flight) raise the rate; see the sweep")
    else:
        why = "strace was not available to show where (the HTTP connector's 1 ms poll before each reuse)"
    table.notes.append(
        f"'ms per lookup' vs the backend answering one lookup at a time in "
        f"{per_lookup['sequential_ms']:.2f} ms: the rest is PowerDNS. {why}.")
    return table


def lookups_per_mixed_query(per_kind: dict, pairs) -> float:
    """Backend lookups per query of the query file's mix, from the per-kind counts."""
    total = 0.0
    for kind, _ in pairs:
        r = per_kind[kind]
        total += r["lookups"] / r["queries"]
    return total / len(pairs)


def cpu_table(rows: list[tuple[str, DnsMeasure]], lookups_per_query: float) -> Table:
    """Where the CPU goes in each (connector, measure) of `rows`."""
    table = Table("(b) where the CPU goes: pdns + mountdns, caches off, unlimited rate, by connector",
                  ["process", "connector", "CPU ms per 1,000 queries", "CPU us per backend lookup",
                   "share of CPU used", "processes"])
    cores = os.cpu_count() or 1
    for connector, m in rows:
        queries = m.throughput.completed or 1
        totals = {name: m.cpu.total(name) for name in m.cpu.used}
        all_cpu = sum(totals.values()) or 1
        for name, total in sorted(totals.items(), key=lambda kv: -kv[1]):
            per_pid = sorted((t for t in m.cpu.used[name].values()), reverse=True)
            split = " / ".join(f"{t:.1f} s" for t in per_pid if t >= 0.05) if len(per_pid) > 1 else ""
            table.add(name, connector, total * 1_000_000 / queries,
                      total * 1_000_000 / (queries * lookups_per_query), f"{total / all_cpu:.0%}", split)
        table.add("all", connector, all_cpu * 1_000_000 / queries,
                  all_cpu * 1_000_000 / (queries * lookups_per_query), "100%", "")
        seconds = m.throughput.run_seconds
        table.notes.append(f"{connector}: {m.throughput.answered_qps:,.0f} queries/s; {all_cpu:.1f} CPU seconds of "
                           f"the {cores * seconds:.1f} s the {cores} cores offer over the {seconds:.1f} s "
                           "throughput run; the rest is idle or other work on the machine.")
    table.notes.append("CPU seconds from /proc/<pid>/stat of each server's process group (and dnsperf's rusage) "
                       "over each throughput run. 'processes' splits a group by process (gunicorn: master and "
                       f"workers). Per backend lookup: the mix averages {lookups_per_query:.2f} lookups per query "
                       "(from the per-kind counts above). On a machine shared with other work, CPU per query is "
                       "the steadier figure: queries/s moves with the others' load.")
    return table

"""The backend's `/metrics`: lookups by qtype and result, lookup latency, Redis errors,
and the purge follower's counters, in one scrape of any worker.

Two costs to keep apart. Per lookup: a Prometheus counter and histogram in multiprocess
mode cost about 4 us (label lookup, a lock and an mmap write each), a few percent of a
lookup; so each process tallies in plain Python (`LookupTally`, well under a
microsecond) and adds the tallies to the Prometheus metrics once a second (the worker's
heartbeat) and before every scrape. Across processes: gunicorn's workers and master are
separate processes, so the metrics use prometheus-client's multiprocess mode, whose
values live in files of a directory private to this backend instance
(PROMETHEUS_MULTIPROC_DIR, made by the CLI); a scrape of any worker merges every
process's files, the master's follower metrics included. What other workers have not yet
added is at most a second behind.

Without a directory (the Flask app in tests, any other WSGI server) the metrics live in
one process's own registry.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Lookups take a fraction of a millisecond when Redis is near; the upper buckets show a
# slow or distant Redis (the store times out at 0.5 s).
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

# qtype is a label: anything PowerDNS may ask outside these is counted as OTHER, so a
# stranger's requests cannot grow the number of series.
QTYPES = frozenset({"A", "AAAA", "ANY", "CNAME", "SOA", "NS", "PTR", "MX", "TXT", "SRV", "CAA", "DS",
                    "DNSKEY", "NSEC", "NSEC3", "NSEC3PARAM", "HTTPS", "SVCB", "TLSA", "NAPTR"})

# Results of a lookup: records answered; no records (NXDOMAIN or no data of that type, which
# PowerDNS tells apart); Redis failed (SERVFAIL); the request was malformed.
ANSWERED, EMPTY, STORE_ERROR, BAD_REQUEST = "answered", "empty", "store_error", "bad_request"

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def qtype_label(qtype) -> str:
    if not isinstance(qtype, str):
        return "OTHER"
    upper = qtype.upper()
    return upper if upper in QTYPES else "OTHER"


class LookupTally:
    """One process's counts since they were last added to the metrics. `lookup` and
    `store_error` are the per-request cost; a lock keeps event-loop threads from losing
    counts, and is uncontended with the default one loop per worker."""

    def __init__(self):
        self._lock = threading.Lock()
        self._reset()

    def _reset(self):
        self.counts: dict[tuple[str, str], int] = {}
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last: above every bound (+Inf)
        self.seconds = 0.0
        self.store_errors = 0
        self.zone_table_answers = 0

    def lookup(self, qtype: str, result: str, seconds: float) -> None:
        key = (qtype_label(qtype), result)
        index = bisect_left(LATENCY_BUCKETS, seconds)
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            self.buckets[index] += 1
            self.seconds += seconds

    def store_error(self) -> None:
        with self._lock:
            self.store_errors += 1

    def zone_table_answer(self) -> None:
        with self._lock:
            self.zone_table_answers += 1

    def take(self) -> tuple[dict, list[int], float, int, int]:
        """The tallies so far, and start again from zero."""
        with self._lock:
            taken = (self.counts, self.buckets, self.seconds, self.store_errors, self.zone_table_answers)
            self._reset()
        return taken


class BackendMetrics:
    """The backend's metrics, fed from a LookupTally. With `directory`, in multiprocess
    mode: the environment must name it before prometheus-client makes any metric (the
    CLI sets it before gunicorn starts)."""

    def __init__(self, directory: str | None = None):
        from prometheus_client import CollectorRegistry, Counter, Histogram
        if directory is not None and os.environ.get(MULTIPROC_ENV) != directory:
            raise ValueError(f"{MULTIPROC_ENV} must be {directory!r} before the metrics are made")
        self.directory = directory
        self.registry = CollectorRegistry()
        r = self.registry
        self.tally = LookupTally()
        self.lookups = Counter("mountdns_backend_lookups", "lookups answered, by qtype and result",
                               ["qtype", "result"], registry=r)
        self.latency = Histogram("mountdns_backend_lookup_duration_seconds",
                                 "time to answer a lookup, from the decoded request to the encoded answer",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.redis_errors = Counter("mountdns_backend_redis_errors",
                                    "requests that failed because Redis could not be read", registry=r)
        self.zone_table_answers = Counter("mountdns_backend_zone_table_answers",
                                          "apex lookups (PowerDNS's SOA probes) answered from the zone table, "
                                          "without Redis", registry=r)

    def flush(self) -> None:
        """Add this process's tallies to the metrics (in multiprocess mode: its files)."""
        counts, buckets, seconds, store_errors, zone_table_answers = self.tally.take()
        for (qtype, result), n in counts.items():
            self.lookups.labels(qtype, result).inc(n)
        if any(buckets):
            # prometheus-client has no public way to add many observations at once; a
            # histogram is its per-bucket counts and a sum, which is what observe() adds to.
            for i, n in enumerate(buckets):
                if n:
                    self.latency._buckets[i].inc(n)
            self.latency._sum.inc(seconds)
        if store_errors:
            self.redis_errors.inc(store_errors)
        if zone_table_answers:
            self.zone_table_answers.inc(zone_table_answers)

    def exposition(self) -> bytes:
        """The text format for a scrape: every process's metrics in multiprocess mode."""
        from prometheus_client import CollectorRegistry, generate_latest
        self.flush()
        if self.directory is None:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.directory)
        return generate_latest(merged)


DIRECTORY_PREFIX = "mountdns-backend-metrics-"


def make_directory(parent: str | None = None) -> str:
    """A new directory for this backend instance's metric files, named after its pid, after
    removing those of instances that are gone (a killed master cannot remove its own; in a
    container restarted with the same emptyDir, they would pile up). A directory whose pid
    is this process's is an earlier life's: pids start again in a new container."""
    import shutil
    import tempfile
    parent = parent or tempfile.gettempdir()
    me = os.getpid()
    for entry in os.listdir(parent):
        if not entry.startswith(DIRECTORY_PREFIX):
            continue
        pid = entry[len(DIRECTORY_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and (int(pid) == me or not _alive(int(pid))):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{DIRECTORY_PREFIX}{me}-", dir=parent)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def use_multiprocess_directory(directory: str) -> None:
    """Make every metric made from now on in this process (and the processes it forks)
    keep its values in `directory`. prometheus-client reads the variable when it is first
    imported; if it already was, its value class is chosen again the way that import does."""
    os.environ[MULTIPROC_ENV] = directory
    import sys
    if "prometheus_client.values" in sys.modules:
        from prometheus_client import values
        values.ValueClass = values.get_value_class()

"""Initial sync at scale: 100,000 Containers from the Kubernetes API into a fresh Redis.

The real `mountdns-sync --once` process lists every Container (paginated, `PAGE_SIZE` objects a page) and
every Node from the Kubernetes API test double over HTTP, computes the desired state and
writes it in one transaction into a fresh real redis-server. Measured: wall time from
process start to exit (and, from the sync's own log timestamps, how it splits between
start-up, listing and reconcile+write), the process's peak RSS (its VmHWM, read until it
exits), Redis memory per published name and the number of keys. Then the
long-running mode against an emptied Redis: time from process start until every key is
written.

Topology: half the Containers are parents spread over the nodes, the other half children,
each mounted to one parent on the same node (the seed's shape, scaled up).
"""

from __future__ import annotations

import os
import re
import time
from datetime import datetime

from bench.process_memory import run_once
from bench.report import Table
from bench.teardown import tear_down
from mountdns.testing.objects import MOUNTED, container, node
from mountdns.testing.kube_double import KubeAPIDouble
from mountdns.testing.servers import RedisServer, workdir
from mountdns.testing.sync_process import ZONE, SyncProcess
from sync.sources.kube import PAGE_SIZE

FULL = {"containers": 100_000, "nodes": 500}
QUICK = {"containers": 2_000, "nodes": 20}
TARGET_SECONDS = 20.0
TARGET_BYTES_PER_NAME = 200.0
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def topology(containers: int, nodes: int) -> list[dict]:
    """Nodes, then `containers // 2` parents round-robin over them and as many children,
    child i mounted to parent i on the parent's node."""
    parents = containers // 2
    objects = [node(f"node-{n:04d}", f"10.{n // 250}.{n % 250}.1") for n in range(nodes)]
    for i in range(parents):
        host = f"node-{i % nodes:04d}"
        objects.append(container(f"p-{i:06d}", node=host, fqdn=f"p-{i:06d}.{ZONE}", type="odl"))
        objects.append(container(f"c-{i:06d}", node=host, fqdn=f"c-{i:06d}.{ZONE}", type="netconf",
                                 mounted_to=f"p-{i:06d}", status=MOUNTED))
    return objects


def _log_times(text: str, marker: str) -> list[float]:
    """Epoch seconds of every log line containing `marker` (the log's asctime is local time)."""
    found = []
    for line in text.splitlines():
        match = _LOG_TIME.match(line)
        if match and marker in line:
            found.append(datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return found


def _used_memory(client) -> int:
    return int(client.info("memory")["used_memory"])


def run(quick: bool) -> list[Table]:
    size = QUICK if quick else FULL
    directory = workdir("mountdns-bench-scale-")
    api = KubeAPIDouble(bookmark_interval=5.0)
    redis_server = RedisServer(directory)
    syncs: list[SyncProcess] = []
    load_before = os.getloadavg()[0]
    try:
        api.start()
        load_started = time.monotonic()
        objects = topology(size["containers"], size["nodes"])
        api.apply_many(objects)
        load_seconds = time.monotonic() - load_started
        kubeconfig = api.write_kubeconfig(directory / "kubeconfig")
        redis_server.start()
        client = redis_server.client()
        client.flushall()
        names = size["containers"]
        # + the zone set, the zone hash, its owners set, the data-loss marker and the
        # announcement stream
        expected_keys = names + size["nodes"] + 5

        # --- sync --once into a fresh Redis ---------------------------------------------------
        before = _used_memory(client)
        once = SyncProcess(directory, redis_server.url, kubeconfig=kubeconfig, log_level="info", name="sync-once")
        syncs.append(once)
        started_epoch = time.time()
        wall, code, rss_kib = run_once(once, timeout=300)
        if code != 0:
            raise RuntimeError(f"mountdns-sync --once exited {code}:\n{once.log_tail()}")
        after = _used_memory(client)
        keys = client.dbsize()
        per_name = (after - before) / names
        text = once.log_text()
        starting = _log_times(text, "starting:")
        listed = _log_times(text, " listed ")
        wrote = _log_times(text, " wrote ")
        done = _log_times(text, "sync done")
        reconcile_ms = re.search(r" wrote .* in ([\d.]+) ms", text)

        table = Table(
            f"Initial sync of {names:,} Containers ({names // 2:,} parents on {size['nodes']:,} nodes + "
            f"{names // 2:,} mounted children), `mountdns-sync --once`",
            ["figure", "value", "target", "result"])
        table.add("wall time, process start to exit (s)", wall, f"< {TARGET_SECONDS:.0f} s",
                  "pass" if wall < TARGET_SECONDS else "FAIL")
        if starting and listed and done:
            table.add("  interpreter start-up to the first log line (s)", starting[0] - started_epoch, "", "")
            table.add("  client set-up + list Containers and Nodes over HTTP (s)", listed[-1] - starting[0], "", "")
            if reconcile_ms:
                table.add("  rules + diff + Redis write in one transaction (s)",
                          float(reconcile_ms.group(1)) / 1000, "", "")
            table.add("  after the write to process exit (s)", started_epoch + wall - done[-1], "", "")
        table.add("peak RSS of the sync process (MiB)", rss_kib / 1024, "", "")
        table.add("Redis used_memory, after - before (MiB)", (after - before) / 2**20, "", "")
        table.add("Redis memory per published name (bytes)", per_name, f"< {TARGET_BYTES_PER_NAME:.0f} B",
                  "pass" if per_name < TARGET_BYTES_PER_NAME else "FAIL")
        table.add("keys in Redis", keys, f"= {expected_keys:,}", "pass" if keys == expected_keys else "FAIL")
        table.notes += [
            f"The API test double (mountdns/testing/kube_double.py) runs in the benchmark process on the "
            f"same {os.cpu_count()}-core machine and serves the list over real HTTP, {PAGE_SIZE:,} objects a page; loading it took "
            f"{load_seconds:.1f} s (not counted).",
            "Wall time covers interpreter start-up, imports, the paginated list, the rules, the diff "
            "against the empty Redis and one write (a script call); the split comes from the sync's own log "
            "timestamps (millisecond resolution).",
            "Peak RSS is the sync process's VmHWM, read every 20 ms until it exits; Redis memory is INFO memory "
            "used_memory after the sync minus before, divided by the published names "
            f"(parents + children; the {size['nodes']:,} node keys, the zone's keys and the announcement "
            "stream are included in the numerator).",
        ]
        if wrote:
            table.notes.append(f"the write committed {wrote[-1] - listed[-1]:.2f} s after the last list "
                               f"(log timestamps).")

        # --- the long-running mode into an emptied Redis --------------------------------------
        client.flushall()
        daemon = SyncProcess(directory, redis_server.url, kubeconfig=kubeconfig, log_level="info",
                             coalesce_seconds=0.05, resync_interval=300.0, name="sync-daemon")
        syncs.append(daemon)
        started = time.monotonic()
        daemon.start()
        daemon.wait_until(lambda: client.dbsize() >= expected_keys, 300, "every key written")
        daemon_seconds = time.monotonic() - started
        daemon.wait_for_log(" wrote ", 10)
        daemon_ms = re.search(r" wrote .* in ([\d.]+) ms", daemon.log_text())
        daemon.stop()
        table.add("long-running mode: process start to every key written (s)", daemon_seconds,
                  f"< {TARGET_SECONDS:.0f} s", "pass" if daemon_seconds < TARGET_SECONDS else "FAIL")
        if daemon_ms:
            table.add("  its first batch: rules + diff + write (s)", float(daemon_ms.group(1)) / 1000, "", "")
        table.notes.append(f"1-minute load average {load_before:.1f} before the run, "
                           f"{os.getloadavg()[0]:.1f} after ({os.cpu_count()} cores, shared with anything else running).")
        return [table]
    finally:
        tear_down([*syncs, redis_server, api], directory)

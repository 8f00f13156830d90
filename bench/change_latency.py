"""Change latency: a Node's address changes in the Kubernetes API -> PowerDNS answers it.

Everything real but the API server: the Kubernetes API test double (real HTTP, real watch
streams), the `mountdns-sync` process, redis-server, mountdns-backend and pdns_server
with the SHIPPED cache settings of pdns/pdns.conf (packet cache and query cache 20 s; no
override). For each move a child on the node is queried first, so its old answer (CNAME
to the parent + the parent's A) sits in PowerDNS's caches; then the Node's InternalIP is
changed in the API (`api.apply`) and PowerDNS is polled over UDP until the child answers
the new address. The latency runs from just before `api.apply` to the first correct
answer; the Redis node key is polled in the same loop, which splits the figure into
"API -> Redis" (watch event, coalescing, rules, diff, the write script with the announcement) and
"Redis -> answer" (the backend's purge follower reads the announcement and purges through
the PowerDNS API, then a fresh lookup).

For comparison a few moves run with a backend started WITHOUT --pdns-api-url: the answer
then stays stale until PowerDNS's caches expire.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from bench.report import Table
from bench.teardown import tear_down
from mountdns.keyspace import Keys, decode_addresses
from mountdns.testing.stats import percentile
from mountdns.testing.objects import MOUNTED, container, node, seed_objects
from mountdns.testing.kube_double import KubeAPIDouble
from mountdns.testing.purging_stack import purging_pair, wait_for_workers
from mountdns.testing.servers import BackendServer, PdnsServer, RedisServer, wait_until, workdir
from pdns_backend.purge_follower import REPEAT_AFTER
from mountdns.testing.sync_process import ZONE, SyncProcess

COALESCE_SECONDS = 0.05  # the shipped default of --coalesce-seconds
TARGET_P99_MS = 250.0
POLL_SLEEP = 0.001  # between polls while waiting for the purge
POLL_LIMIT = 5.0  # give up on a purged move after this long
NO_PURGE_POLL_SLEEP = 0.01
NO_PURGE_LIMIT = 45.0  # caches of 20 s + 20 s bound the stale answer
_WROTE_MS = re.compile(r" wrote .* in ([\d.]+) ms")
FULL = {"parents": 1_000, "nodes": 10, "moves": 200, "no_purge_moves": 3}
QUICK = {"moves": 10, "no_purge_moves": 1}  # on the seed's 8 Containers and 3 Nodes


def topology(parents: int, nodes: int) -> tuple[list[dict], list[dict]]:
    """`parents` parents round-robin over `nodes` nodes, and one mounted child per parent."""
    node_objects = [node(f"node-{n:02d}", f"10.{n // 250}.{n % 250}.1") for n in range(nodes)]
    containers = []
    for i in range(parents):
        host = f"node-{i % nodes:02d}"
        containers.append(container(f"p-{i:05d}", node=host, fqdn=f"p-{i:05d}.{ZONE}", type="odl"))
        containers.append(container(f"c-{i:05d}", node=host, fqdn=f"c-{i:05d}.{ZONE}", type="netconf",
                                    mounted_to=f"p-{i:05d}", status=MOUNTED))
    return containers, node_objects


def children_by_node(containers: list[dict]) -> dict[str, list[str]]:
    """The fqdns of the mounted children whose parent runs on each node."""
    by_name = {(c["metadata"]["namespace"], c["metadata"]["name"]): c for c in containers}
    found: dict[str, list[str]] = {}
    for c in containers:
        spec = c["spec"]
        parent = by_name.get((c["metadata"]["namespace"], spec.get("mountedTo")))
        if parent is not None and spec.get("fqdn"):
            found.setdefault(parent["spec"]["nodeName"], []).append(spec["fqdn"].lower())
    return found


def new_address(move: int) -> str:
    """A fresh address for every move, never one a node had before."""
    return f"172.{16 + (move >> 16)}.{(move >> 8) & 255}.{move & 255}"


class Probe:
    """Asks PowerDNS for a name's A records and reads a node's key in Redis."""

    def __init__(self, pdns: PdnsServer, redis_client, keys: Keys):
        self.pdns = pdns
        self.redis = redis_client
        self.keys = keys

    def addresses(self, qname: str, timeout: float = 1.0) -> set[str]:
        response = dns.query.udp(dns.message.make_query(qname, "A"), "127.0.0.1", port=self.pdns.port,
                                 timeout=timeout)
        return {rdata.address for rrset in response.answer if rrset.rdtype == dns.rdatatype.A
                for rdata in rrset}

    def node_in_redis(self, name: str) -> tuple[str, ...]:
        return decode_addresses(self.redis.get(self.keys.node(name)))

    def api(self, method: str, path: str) -> dict | list | None:
        request = urllib.request.Request(f"{self.pdns.api_url}/api/v1/servers/localhost{path}", method=method,
                                         headers={"X-API-Key": self.pdns.api_key})
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
        return json.loads(body) if body else None

    def statistic(self, name: str) -> int:
        return int(self.api("GET", f"/statistics?statistic={name}")[0]["value"])

    def flush(self, domain: str) -> None:
        self.api("PUT", f"/cache/flush?domain={domain}.")


def move(api: KubeAPIDouble, probe: Probe, node_name: str, address: str, qname: str, limit: float,
         sleep: float) -> tuple[float | None, float | None]:
    """Cache the old answer, move the node, poll; return seconds (API -> answer, API -> Redis),
    None for what did not happen within `limit`."""
    old = probe.addresses(qname)
    if address in old:
        raise RuntimeError(f"{qname} already answers {address}")
    probe.addresses(qname)  # a second ask: now certainly answered from the packet cache
    started = time.perf_counter()
    api.apply(node(node_name, address))
    redis_seconds = None
    while True:
        if redis_seconds is None and address in probe.node_in_redis(node_name):
            redis_seconds = time.perf_counter() - started
        try:
            answered = address in probe.addresses(qname, timeout=0.5)
        except dns.exception.Timeout:
            answered = False
        elapsed = time.perf_counter() - started
        if answered:
            return elapsed, redis_seconds
        if elapsed > limit:
            return None, redis_seconds
        time.sleep(sleep)


def run_moves(api, probe, children, count, start, limit, sleep):
    """`count` moves cycling over the nodes; returns [(API->answer, API->Redis)]."""
    nodes = sorted(children)
    results = []
    for i in range(count):
        host = nodes[(start + i) % len(nodes)]
        names = children[host]
        qname = names[((start + i) // len(nodes)) % len(names)]
        results.append(move(api, probe, host, new_address(start + i), qname, limit, sleep))
    return results


def row(table: Table, label: str, seconds: list[float], total: int, target: str = "", check=None) -> None:
    if not seconds:
        table.add(label, total, "-", "-", "-", "-", target, "FAIL (no answer)" if target else "")
        return
    ms = [s * 1000 for s in seconds]
    p99 = percentile(ms, 99)
    result = ""
    if check is not None:
        result = "pass" if check(p99) and len(seconds) == total else "FAIL"
    table.add(label, total, percentile(ms, 50), percentile(ms, 90), p99, max(ms), target, result)


def run(quick: bool) -> list[Table]:
    size = QUICK if quick else FULL
    if quick:
        containers, nodes = seed_objects()
        shape = "the seed (4 parents + 4 mounted children on 3 nodes)"
    else:
        containers, nodes = topology(size["parents"], size["nodes"])
        shape = f"{size['parents']:,} parents on {size['nodes']} nodes + {size['parents']:,} mounted children"
    children = children_by_node(containers)

    directory = workdir("mountdns-bench-latency-")
    api = KubeAPIDouble(bookmark_interval=5.0)
    redis_server = RedisServer(directory)
    backend = None
    pdns = None
    syncs: list[SyncProcess] = []
    load_before = os.getloadavg()[0]
    try:
        api.start()
        api.apply_many(nodes + containers)
        kubeconfig = api.write_kubeconfig(directory / "kubeconfig")
        redis_server.start()
        client = redis_server.client()
        client.flushall()
        # Shipped pdns.conf caches: no `settings` override. The backend purges them (its
        # --pdns-api-url). pdns_server only learns its zones at start-up (or every
        # zone-cache-refresh-interval), so the sync publishes first.
        backend, pdns = purging_pair(directory, redis_server.url)
        backend.start()
        sync = SyncProcess(directory, redis_server.url, kubeconfig=kubeconfig, coalesce_seconds=COALESCE_SECONDS,
                           resync_interval=300.0, log_level="info", name="sync")
        syncs.append(sync)
        sync.start()
        expected_keys = len(containers) + len(nodes) + 2  # every Container is published; + zone set and hash
        sync.wait_until(lambda: client.dbsize() >= expected_keys, 60,
                        "the topology published")
        wait_for_workers(backend)
        pdns.start()
        probe = Probe(pdns, client, Keys())
        some_child = next(iter(children.values()))[0]
        wait_until(lambda: probe.addresses(some_child), 20, "PowerDNS answering a child")
        if not api.wait_for_open_watches(2, timeout=10):
            raise RuntimeError("the sync did not open its watches")

        # Warm-up moves (not recorded): purges sent while pdns_server was still down were
        # queued and are retried with backoff; wait until a move goes through promptly.
        moves_done = 0
        for _ in range(10):
            (seconds, _), = run_moves(api, probe, children, 1, moves_done, 15.0, POLL_SLEEP)
            moves_done += 1
            if seconds is not None and seconds < 1.0:
                break

        hits_before = probe.statistic("packetcache-hit")
        measured = run_moves(api, probe, children, size["moves"], moves_done, POLL_LIMIT, POLL_SLEEP)
        moves_done += size["moves"]
        hits_after = probe.statistic("packetcache-hit")
        purge_errors = backend.log_path.read_text(errors="replace").count("failed (retrying in")
        reconcile_seconds = [float(ms) / 1000 for ms in _WROTE_MS.findall(sync.log_text())][-size["moves"]:]
        load_after = os.getloadavg()[0]

        # The same without purging: the backend again on its port, without --pdns-api-url.
        backend.stop()
        backend = BackendServer(directory, redis_server.url, port=backend.port, name="backend-no-purge").start()
        wait_for_workers(backend)
        time.sleep(max(REPEAT_AFTER))  # PowerDNS reconnects; nothing purges any more
        unpurged = []
        for i in range(size["no_purge_moves"]):
            # Start from freshly cached answers: flush the zone, then the move's first query
            # caches the child and its parent for the full cache TTL (the worst case).
            probe.flush(ZONE)
            unpurged += run_moves(api, probe, children, 1, moves_done, NO_PURGE_LIMIT, NO_PURGE_POLL_SLEEP)
            moves_done += 1
    finally:
        tear_down([*syncs, pdns, backend, redis_server, api], directory)

    table = Table(f"Change latency: Node address changed in the Kubernetes API -> PowerDNS answers it "
                  f"({shape}; shipped caches: packet cache 20 s, query cache 20 s)",
                  ["measurement", "moves", "p50 ms", "p90 ms", "p99 ms", "max ms", "target", "result"])
    answered = [s for s, _ in measured if s is not None]
    to_redis = [r for _, r in measured if r is not None]
    redis_to_answer = [s - r for s, r in measured if s is not None and r is not None]
    row(table, "API change -> PowerDNS answers (the backend purges the caches)", answered, size["moves"],
        f"p99 < {TARGET_P99_MS:.0f} ms", lambda p99: p99 < TARGET_P99_MS)
    row(table, "  API change -> Redis node key written", to_redis, size["moves"])
    row(table, "  Redis key written -> PowerDNS answers (announcement, purge, fresh lookup)", redis_to_answer,
        size["moves"])
    row(table, "  the sync's batch: rules + diff + write (its log)", reconcile_seconds, len(reconcile_seconds))
    if size["no_purge_moves"]:
        stale = [s for s, _ in unpurged if s is not None]
        row(table, "API change -> PowerDNS answers, backend WITHOUT --pdns-api-url", stale,
            size["no_purge_moves"], "(bounded by the caches, ~20-40 s)")
    table.notes += [
        f"mountdns-sync with --coalesce-seconds {COALESCE_SECONDS} (the default); mountdns-backend with "
        f"--pdns-api-url/--pdns-api-key of the pdns_server under test (its purge follower, default "
        f"repeats); pdns_server runs pdns/pdns.conf unchanged but for addresses, ports and the backend URL.",
        f"Each move: the child is asked twice (its old answer cached), the Node's InternalIP changes via "
        f"api.apply, then PowerDNS is polled over UDP every {POLL_SLEEP * 1000:.0f} ms (plus the query's own "
        f"round trip) until the child's answer holds the new address; limit {POLL_LIMIT:.0f} s. Timer from "
        f"just before api.apply to the first correct answer; Redis is polled in the same loop.",
        f"packet cache hits during the measured moves: {hits_after - hits_before:,} "
        f"(at least one per move shows the old answer was cached).",
        f"{size['moves'] - len(answered)} of {size['moves']} purged moves timed out; "
        f"{purge_errors} failed purges in the backend's log (purges sent while pdns_server was still "
        f"starting are logged and retried).",
        f"1-minute load average {load_before:.1f} before and {load_after:.1f} after the purged moves "
        f"({os.cpu_count()} cores; every process of the stack, and anything else running, shares them).",
    ]
    if size["no_purge_moves"]:
        table.notes.append(
            f"Without purge: before each move the zone is flushed through the API and the child asked, so "
            f"its answer is cached afresh for the full TTL (worst case); polled every "
            f"{NO_PURGE_POLL_SLEEP * 1000:.0f} ms, limit {NO_PURGE_LIMIT:.0f} s; "
            f"{size['no_purge_moves'] - len([s for s, _ in unpurged if s is not None])} timed out.")
    return [table]

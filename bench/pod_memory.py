"""Memory with both sources on: 100,000 Pods, 50,000 of them published by the pod source.

The budget of the load benchmarks is 1.5 KB of sync memory per published name. Pods are
the largest kind a cluster has, so the pod source must not hold them whole: only the
Pods labelled mountdns.io/publish=true are listed and watched (a label selector the API
double applies as the API server does), and each is slimmed to the few fields the rules
read. Measured: the resident memory of the long-running `mountdns-sync --source container
--source pod` once every name is written, minus that of the same sync over a cluster
with the Nodes alone (interpreter, imports, client), divided by the published names; and
its peak (VmHWM), which includes the list pages.

Topology: half the Pods are published (half of those parents spread over the nodes, the
other half children mounted to one parent each, the seed's shape scaled up); the other
half are ordinary workload Pods without the label, which the sync never receives.
"""

from __future__ import annotations

import time

from bench.process_memory import memory_kib, settled_rss
from bench.report import Table
from bench.teardown import tear_down
from mountdns.testing.kube_double import KubeAPIDouble
from mountdns.testing.objects import MOUNTED, node, pod, published_pod
from mountdns.testing.servers import RedisServer, workdir
from mountdns.testing.sync_process import ZONE, SyncProcess

# A resync every `resync` seconds: after every name is written and the idle memory read,
# the sync runs two (a re-list of every Pod and a full batch that re-reads Redis) and its
# peak through them is read too: the budget holds "resyncs included".
FULL = {"pods": 100_000, "nodes": 500, "resync": 20.0}
QUICK = {"pods": 2_000, "nodes": 20, "resync": 6.0}
TARGET_BYTES_PER_NAME = 1536.0  # 1.5 KB


def topology(pods: int, nodes: int) -> tuple[list[dict], list[dict], int]:
    """(nodes, pods, published names): pods // 2 published, pods // 4 parents and as many children."""
    node_objects = [node(f"node-{n:04d}", f"10.{n // 250}.{n % 250}.1") for n in range(nodes)]
    objects = []
    pairs = pods // 4
    for i in range(pairs):
        host = f"node-{i % nodes:04d}"
        objects.append(published_pod(f"p-{i:06d}", node=host, fqdn=f"p-{i:06d}.{ZONE}", type="odl"))
        objects.append(published_pod(f"c-{i:06d}", node=host, fqdn=f"c-{i:06d}.{ZONE}", type="netconf",
                                     mounted_to=f"p-{i:06d}", device_status=MOUNTED))
    for i in range(pods - 2 * pairs):
        objects.append(pod(f"w-{i:06d}", node=f"node-{i % nodes:04d}", labels={"app": "workload"}))
    return node_objects, objects, 2 * pairs


def _daemon(directory, redis_url, kubeconfig, name, resync: float = 300.0) -> SyncProcess:
    return SyncProcess(directory, redis_url, kubeconfig=kubeconfig, log_level="info", coalesce_seconds=0.05,
                       resync_interval=resync, name=name, extra_args=("--source", "container", "--source", "pod"))


def run(quick: bool) -> list[Table]:
    size = QUICK if quick else FULL
    directory = workdir("mountdns-bench-pods-")
    api = KubeAPIDouble(bookmark_interval=5.0)
    redis_server = RedisServer(directory)
    syncs: list[SyncProcess] = []
    try:
        api.start()
        redis_server.start()
        client = redis_server.client()
        kubeconfig = api.write_kubeconfig(directory / "kubeconfig")
        nodes, pods, names = topology(size["pods"], size["nodes"])
        api.apply_many(nodes)

        # --- the baseline: the same sync with nothing to publish ---------------------------
        baseline = _daemon(directory, redis_server.url, kubeconfig, "sync-baseline")
        syncs.append(baseline)
        baseline.start()
        baseline.wait_until(lambda: client.exists("mountdns:zones"), 120, "the zone written")
        base_rss, _ = settled_rss(baseline)
        baseline.stop()
        client.flushall()

        loading = time.monotonic()
        api.apply_many(pods)
        load_seconds = time.monotonic() - loading
        # + the zone set, the zone hash, its owners, the data-loss marker and the announcements stream
        expected_keys = names + size["nodes"] + 5
        daemon = _daemon(directory, redis_server.url, kubeconfig, "sync-pods", resync=size["resync"])
        syncs.append(daemon)
        started = time.monotonic()
        daemon.start()
        daemon.wait_until(lambda: client.dbsize() >= expected_keys, 600, "every published name written")
        written_seconds = time.monotonic() - started
        rss, hwm = settled_rss(daemon)
        keys = client.dbsize()
        resyncs_before = daemon.log_count("periodic resync")
        # Two more resyncs started: the first of them has finished (the loop runs one at a time).
        daemon.wait_until(lambda: daemon.log_count("periodic resync") >= resyncs_before + 2,
                          4 * size["resync"] + 120, "two periodic resyncs")
        _, hwm_resync = memory_kib(daemon.proc.pid)
        keys_after = client.dbsize()
        daemon.stop()

        per_name = (rss - base_rss) * 1024 / names
        table = Table(f"Sync memory with both sources on: {size['pods']:,} Pods, {names:,} published "
                      f"({names // 2:,} parents on {size['nodes']:,} nodes + {names // 2:,} mounted children)",
                      ["figure", "value", "target", "result"])
        table.add("sync RSS with nothing to publish (MiB)", base_rss / 1024, "", "")
        table.add("sync RSS once every name is written (MiB)", rss / 1024, "", "")
        table.add("sync peak RSS, VmHWM (MiB)", hwm / 1024, "", "")
        table.add("sync memory per published name (bytes)", per_name, f"< {TARGET_BYTES_PER_NAME:.0f} B",
                  "pass" if per_name < TARGET_BYTES_PER_NAME else "FAIL")
        peak_per_name = (hwm_resync - base_rss) * 1024 / names
        table.add(f"sync peak RSS through a resync (re-list + full batch, every {size['resync']:.0f} s), "
                  "VmHWM (MiB)", hwm_resync / 1024, "", "")
        table.add("sync peak memory per published name, resyncs included (bytes)", peak_per_name,
                  f"< {TARGET_BYTES_PER_NAME:.0f} B", "pass" if peak_per_name < TARGET_BYTES_PER_NAME else "FAIL")
        table.add("process start to every name written (s)", written_seconds, "", "")
        table.add("keys in Redis", keys, f"= {expected_keys:,}", "pass" if keys == expected_keys else "FAIL")
        table.add("keys in Redis after the resyncs", keys_after, f"= {expected_keys:,}",
                  "pass" if keys_after == expected_keys else "FAIL")
        table.notes += [
            f"The API test double runs in the benchmark process and applies label selectors as the API "
            f"server does: the sync receives the {names:,} labelled Pods, never the "
            f"{size['pods'] - names:,} others (loading the double took {load_seconds:.1f} s, not counted).",
            "Per name: (RSS of the idle sync after writing everything - RSS of the same sync over the Nodes "
            "alone) / published names; RSS is /proc VmRSS, the lowest of five samples after a 2 s pause. "
            "Resyncs included: (the sync's VmHWM once two periodic resyncs have started after that - the "
            "same baseline) / published names.",
        ]
        return [table]
    finally:
        tear_down([*syncs, redis_server, api], directory)


if __name__ == "__main__":
    import sys
    for result in run(quick="--quick" in sys.argv):
        print(result.render())

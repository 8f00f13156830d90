"""The real `mountdns-sync` process with `--metrics-bind`: its /metrics, /healthz and
/readyz scraped over HTTP while it syncs the Kubernetes API double into a real
redis-server, and a Container whose spec is a list (the schema bypassed) skipped as
InvalidSpec while the process keeps running and publishing the rest.

Values are read from the Prometheus text format with prometheus-client's own parser.
Every wait is bounded; processes are stopped by fixtures.
"""

from __future__ import annotations


import pytest
from prometheus_client.parser import text_string_to_metric_families

from mountdns.testing.http import get
from mountdns.keyspace import DEFAULT_OWNER, Keys, owned
from mountdns.testing.objects import MOUNTED, container, node, seed_objects
from mountdns.testing.seed import ZONE
from mountdns.testing.servers import free_port
from mountdns.testing.sync_process import SyncProcess

pytestmark = pytest.mark.integration
KEYS = Keys()


def held(value: str) -> bytes:
    """A name's stored value as the sync (the default owner) writes it."""
    return owned(DEFAULT_OWNER, value).encode()


def scrape(port: int) -> dict[tuple, float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    status, body = get(port, "/metrics")
    assert status == 200, body
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body) for sample in family.samples}


def sample(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def stack(tmp_path, api, redis_server, redis_client):
    """A started sync with metrics on a free port, and that port; the suite's Redis
    flushed first (`redis_client`), so names an earlier test's sync claimed under another
    owner id are not held against this one."""
    port = free_port()
    sync = SyncProcess(tmp_path, redis_server.url, kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"),
                       coalesce_seconds=0.02, metrics_bind=f"127.0.0.1:{port}")
    yield sync, port
    sync.stop()


def test_scraped_metrics_and_probes_follow_the_sync(stack, api, redis_server):
    sync, port = stack
    containers, nodes = seed_objects()
    api.apply_many(nodes + containers)
    sync.start()

    sync.wait_until(lambda: get(port, "/readyz")[0] == 200, 20, "/readyz 200")
    assert get(port, "/readyz") == (200, "ok\n")
    assert get(port, "/healthz") == (200, "ok\n")
    first = scrape(port)
    assert sample(first, "mountdns_sync_leader") == 1
    assert sample(first, "mountdns_sync_names", zone=ZONE, kind="parent") == 4
    assert sample(first, "mountdns_sync_names", zone=ZONE, kind="child") == 4
    writes = sample(first, "mountdns_sync_writes_total")
    assert writes >= 1
    assert sample(first, "mountdns_sync_last_write_timestamp_seconds") > 1_700_000_000
    assert sample(first, "mountdns_sync_write_errors_total") == 0
    assert sample(first, "mountdns_sync_skipped_objects", reason="NotMounted") == 0

    # A node moves and a new parent appears: the writes move, the names follow, and the
    # watch event -> EXEC latency is observed.
    api.apply(node("node-1", "9.8.7.6"))
    api.apply(container("extra", node="node-0"))
    redis = redis_server.client()
    sync.wait_until(lambda: redis.get(KEYS.parent("extra.default.domain.foo.bar")) == held("node-0")
                    and redis.get(KEYS.node("node-1")) == b"9.8.7.6", 10, "the changes in Redis")
    sync.wait_until(lambda: sample(scrape(port), "mountdns_sync_names", zone=ZONE, kind="parent") == 5, 10,
                    "the new parent counted")
    after = scrape(port)
    assert sample(after, "mountdns_sync_writes_total") > writes
    assert sample(after, "mountdns_sync_event_to_write_seconds_count") >= 1
    assert sample(after, "mountdns_sync_event_to_write_seconds_sum") > 0

    # Watch streams cut mid-stream by the API server: one restart of each resource's watch.
    assert [sample(after, "mountdns_sync_watch_restarts_total", resource=r) for r in ("containers", "nodes")] \
        == [0, 0]
    api.drop_watches()

    def restarts():
        samples = scrape(port)
        return [sample(samples, "mountdns_sync_watch_restarts_total", resource=r) for r in ("containers", "nodes")]
    sync.wait_until(lambda: restarts() == [1, 1], 10, "one watch restart counted per resource")


def test_readyz_says_why_until_the_cache_is_synced(stack, api):
    sync, port = stack
    api.set_available(False)  # every API request fails: nothing can be listed
    sync.start()

    sync.wait_until(lambda: get(port, "/readyz")[0] != 0, 20, "the endpoint up")
    assert get(port, "/readyz") == (503, "cache not synced\n")
    assert get(port, "/healthz") == (200, "ok\n")  # alive: waiting for the API is no reason to restart

    api.set_available(True)
    sync.wait_until(lambda: get(port, "/readyz")[0] == 200, 20, "/readyz 200 once listed and written")


def test_container_whose_spec_is_a_list_is_skipped_and_the_sync_keeps_publishing(stack, api, redis_server):
    sync, port = stack
    containers, nodes = seed_objects()
    broken = container("broken", node="node-0")
    broken["spec"] = ["nodeName", "node-0"]
    api.apply_many(nodes + containers + [broken])
    sync.start()
    redis = redis_server.client()

    sync.wait_until(lambda: redis.get(KEYS.parent("container_a_0.domain.foo.bar")) == held("node-0")
                    and redis.get(KEYS.child("container_d_0.domain.foo.bar"))
                    == held("container_b_0.domain.foo.bar"), 20, "the seed published")
    sync.wait_for_log("not published: default/broken: spec must be an object, got list", 10)
    assert sample(scrape(port), "mountdns_sync_skipped_objects", reason="InvalidSpec") == 1

    # Still running: later changes are published, including the broken object once fixed.
    api.apply(container("later", node="node-1", mounted_to="container-a-0", status=MOUNTED))
    api.apply(container("broken", node="node-2"))
    sync.wait_until(lambda: redis.get(KEYS.child("later.default.domain.foo.bar"))
                    == held("container_a_0.domain.foo.bar")
                    and redis.get(KEYS.parent("broken.default.domain.foo.bar")) == held("node-2"),
                    10, "later changes published")
    sync.wait_until(lambda: sample(scrape(port), "mountdns_sync_skipped_objects", reason="InvalidSpec") == 0, 10,
                    "the fixed object no longer skipped")
    assert not sync.exited()
    assert "Traceback" not in sync.log_text()


@pytest.mark.parametrize("bad", [
    {"status": "MOUNTED"},
    {"spec": {"nodeName": "node-0", "fqdn": 12}},
    {"spec": {"nodeName": "node-0", "fqdn": "x" * (10 * 1024 * 1024)}},
    {"spec": {"nodeName": "node-0", "fqdn": "\u212aelvin.domain.foo.bar"}},
], ids=["status a string", "fqdn an int", "fqdn of 10 MB", "fqdn with KELVIN SIGN"])
def test_other_malformed_containers_do_not_stop_the_process(stack, api, redis_server, bad):
    sync, port = stack
    containers, nodes = seed_objects()
    broken = container("broken", node="node-0")
    broken.update(bad)
    api.apply_many(nodes + containers + [broken])
    # No status writes: the writer replaces a string status with ours, which makes that
    # object valid (and published) as soon as its write lands, as sync.status.part() says
    # it should; what is tested here is the rules and the process.
    sync.start("--status-qps", "0")
    redis = redis_server.client()

    sync.wait_until(lambda: get(port, "/readyz")[0] == 200, 20, "/readyz 200")
    sync.wait_until(lambda: redis.get(KEYS.parent("container_a_0.domain.foo.bar")) == held("node-0"), 10,
                    "the seed published")
    skipped = scrape(port)
    assert (sample(skipped, "mountdns_sync_skipped_objects", reason="InvalidSpec")
            + sample(skipped, "mountdns_sync_skipped_objects", reason="InvalidName")) == 1
    assert not any(b"elvin" in key or b"broken" in key for key in redis.keys(KEYS.prefix + "*"))
    assert not sync.exited()


def test_a_metrics_port_in_use_exits_2_naming_the_flag(tmp_path, api, redis_server):
    port = free_port()
    first = SyncProcess(tmp_path, redis_server.url, kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"),
                        metrics_bind=f"127.0.0.1:{port}", name="first").start()
    try:
        first.wait_until(lambda: get(port, "/healthz")[0] == 200, 20, "the first sync's endpoint")
        second = SyncProcess(tmp_path, redis_server.url, kubeconfig=str(tmp_path / "kubeconfig"),
                             metrics_bind=f"127.0.0.1:{port}", name="second")
        result = second.run(timeout=30)
        assert result.returncode == 2
        assert f"mountdns-sync: --metrics-bind: cannot listen on 127.0.0.1:{port}" in second.log_text()
    finally:
        first.stop()


def test_redis_lost_shows_as_write_errors_and_not_ready_then_a_counted_rewrite(tmp_path, api, own_redis):
    port = free_port()
    containers, nodes = seed_objects()
    api.apply_many(nodes + containers)
    sync = SyncProcess(tmp_path, own_redis.url, kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"),
                       coalesce_seconds=0.02, resync_interval=1, metrics_bind=f"127.0.0.1:{port}").start()
    try:
        sync.wait_until(lambda: get(port, "/readyz")[0] == 200, 20, "/readyz 200")
        assert sample(scrape(port), "mountdns_sync_store_rewrites_total") == 0

        own_redis.stop()
        sync.wait_until(lambda: sample(scrape(port), "mountdns_sync_write_errors_total") >= 1, 10,
                        "a failed batch counted")
        status, reason = get(port, "/readyz")
        assert status == 503 and reason.startswith("last write failed: StoreError")
        assert get(port, "/healthz")[0] == 200  # a Redis outage is no reason to restart the sync

        own_redis.start()  # empty
        client = own_redis.client()
        sync.wait_until(lambda: client.get(KEYS.node("node-1")) == b"2.3.4.5", 10, "the seed rewritten")
        sync.wait_until(lambda: sample(scrape(port), "mountdns_sync_store_rewrites_total") == 1, 10,
                        "the rewrite counted")
        assert get(port, "/readyz") == (200, "ok\n")
        client.close()
    finally:
        sync.stop()

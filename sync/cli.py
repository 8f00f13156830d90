"""`mountdns-sync`: keep Redis in step with Kubernetes (or with YAML manifests)."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from sync import lazy_kubernetes

lazy_kubernetes.install()  # before anything imports the client: see sync.lazy_kubernetes

from prometheus_client import CollectorRegistry

from mountdns import redis_connect
from mountdns.store import StoreError
from mountdns.store.redis_store import RedisStore
from mountdns.settings import ConfigError
from sync import allocator
from sync.sources.cache import ObjectCache
from sync.config import SyncSettings, build_parser, settings_from_args
from sync.daemon import SyncDaemon
from sync.health import Health
from sync.metrics import SyncMetrics
from sync.reconciler import Reconciler
from sync.rules import RulesConfig

log = logging.getLogger("mountdns.sync")


def rules_config(settings: SyncSettings) -> RulesConfig:
    return RulesConfig(zones=settings.zones, mounted_status=settings.mounted_status,
                       mount_types=settings.mount_types, node_address_types=settings.node_address_types,
                       allow_special_addresses=settings.allow_special_addresses,
                       publish_unready_pods=settings.publish_unready_pods)


def build_source(settings: SyncSettings, cache: ObjectCache, stop: threading.Event, metrics=None):
    if settings.manifests:
        from sync.sources.manifests import ManifestSource
        return ManifestSource(settings.manifests, cache, stop, sources=settings.sources)
    from sync.sources.kube import KubernetesSource, load_client
    try:
        api_client = load_client(settings.kubeconfig)
    except Exception as exc:  # noqa: BLE001 - the client raises several kinds for bad config
        raise ConfigError(f"--kubeconfig: cannot load Kubernetes configuration: {exc}") from exc
    return KubernetesSource(api_client, cache, stop, namespace=settings.namespace, sources=settings.sources,
                            idle_timeout=settings.watch_idle_timeout, metrics=metrics)


def build_elector(settings: SyncSettings, store, cache: ObjectCache, metrics=None):
    """The Lease elector, and the store wrapped so only the leader writes, with its term.

    Becoming leader records the term in Redis first (fencing off any older leader still
    writing), then wakes the loop, whose cache the watchers kept warm meanwhile.
    """
    from sync.leader import ElectionConfig, FencedStore, KubeLeaseLock, LeaderElector
    from sync.sources.kube import load_client
    try:
        api_client = load_client(settings.kubeconfig)
    except Exception as exc:  # noqa: BLE001 - the client raises several kinds for bad config
        raise ConfigError(f"--leader-elect: cannot load Kubernetes configuration for the Lease: {exc}") from exc
    lock = KubeLeaseLock(api_client, settings.lease_namespace, settings.lease_name,
                         request_timeout=settings.renew_deadline)
    config = ElectionConfig(identity=settings.identity, lease_duration=settings.lease_duration,
                            renew_deadline=settings.renew_deadline, retry_period=settings.retry_period)
    elector = LeaderElector(lock, config)
    fenced = FencedStore(store, elector)
    elector.before_leading = fenced.take_term
    elector.on_started_leading.append(lambda term: cache.changed.set())
    if metrics is not None:
        elector.on_started_leading.append(lambda term: metrics.set_leader(True))
        elector.on_stopped_leading.append(lambda reason: metrics.set_leader(False))
    return elector, fenced


def main(argv: list[str] | None = None) -> int:
    try:
        settings = settings_from_args(build_parser().parse_args(argv))
    except ConfigError as exc:
        print(f"mountdns-sync: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    allocator.limit_arenas()  # before any thread starts
    allocator.fix_mmap_threshold()
    log.info("starting: %s", settings.describe())

    stop = threading.Event()
    cache = ObjectCache()
    metrics = SyncMetrics(CollectorRegistry(), [zone.name for zone in settings.zones])
    health = Health(cache.listed, metrics)
    try:
        source = build_source(settings, cache, stop, metrics)
    except ConfigError as exc:
        print(f"mountdns-sync: {exc}", file=sys.stderr)
        return 2
    store = RedisStore(redis_connect.connect(settings.redis_target, timeout=5), prefix=settings.key_prefix,
                       owner=settings.owner_id, chunk_keys=settings.write_chunk_keys)
    elector = None
    if settings.leader_elect:
        try:
            elector, store = build_elector(settings, store, cache, metrics)
        except ConfigError as exc:
            print(f"mountdns-sync: {exc}", file=sys.stderr)
            return 2
    metrics.set_leader(elector is None)  # without leader election every sync writes
    status = None
    if settings.status_qps and not (settings.manifests or settings.dry_run or settings.once):
        from sync.status_writer import build_status_writer  # Container status: leader only, off the DNS path
        leading = elector.may_write if elector is not None else (lambda: True)
        status = build_status_writer(settings.kubeconfig, settings.status_qps, leading=leading).start(stop)
    reconciler = Reconciler(store, rules_config(settings), dry_run=settings.dry_run,
                            metrics=metrics, status=status, incremental=not settings.once,
                            gc_round_names=settings.gc_round_names)
    daemon = SyncDaemon(cache, source, reconciler, resync_interval=settings.resync_interval,
                        coalesce_seconds=settings.coalesce_seconds, leader=elector, health=health)

    if settings.once:
        try:
            writes = daemon.run_once()
        except StoreError as exc:
            log.error("sync failed: %s", exc)
            return 1
        except Exception as exc:  # noqa: BLE001 - a failed list: report it, exit non-zero
            log.error("listing failed, nothing written: %s", exc)
            return 1
        log.info("sync done: %d key writes", writes)
        return 0

    status_server = None
    if settings.metrics_bind:
        from sync.status_server import StatusServer
        try:
            status_server = StatusServer(settings.metrics_bind, metrics.registry, health).start()
        except ConfigError as exc:
            print(f"mountdns-sync: {exc}", file=sys.stderr)
            return 2
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    election = elector.start(stop) if elector else None
    daemon.run(stop)
    if elector:
        election.join(timeout=settings.renew_deadline)
        elector.release()  # after the last write: the next replica takes over at once
    if status_server:
        status_server.stop()
    if status is not None:
        # Its thread may be mid-request or logging: a daemon thread still writing to stderr
        # while the interpreter finalizes makes Python abort (SIGABRT) instead of exiting 0.
        status.thread.join(timeout=5)
    log.info("stopped")
    logging.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

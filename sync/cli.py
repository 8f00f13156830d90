"""`mountdns-sync`: keep Redis in step with Kubernetes (or with YAML manifests)."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from mountdns import redis_connect
from mountdns.store import StoreError
from mountdns.store.redis_store import RedisStore
from mountdns.settings import ConfigError
from sync.sources.cache import ObjectCache
from sync.config import SyncSettings, build_parser, settings_from_args
from sync.daemon import SyncDaemon
from sync.reconciler import Reconciler
from sync.rules import RulesConfig

log = logging.getLogger("mountdns.sync")


def rules_config(settings: SyncSettings) -> RulesConfig:
    return RulesConfig(zones=settings.zones, mounted_status=settings.mounted_status,
                       mount_types=settings.mount_types, node_address_types=settings.node_address_types)


def build_source(settings: SyncSettings, cache: ObjectCache, stop: threading.Event):
    if settings.manifests:
        from sync.sources.manifests import ManifestSource
        return ManifestSource(settings.manifests, cache, stop)
    from sync.sources.kube import KubernetesSource, load_client
    try:
        api_client = load_client(settings.kubeconfig)
    except Exception as exc:  # noqa: BLE001 - the client raises several kinds for bad config
        raise ConfigError(f"--kubeconfig: cannot load Kubernetes configuration: {exc}") from exc
    return KubernetesSource(api_client, cache, stop, namespace=settings.namespace)


def main(argv: list[str] | None = None) -> int:
    try:
        settings = settings_from_args(build_parser().parse_args(argv))
    except ConfigError as exc:
        print(f"mountdns-sync: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("starting: %s", settings.describe())

    stop = threading.Event()
    cache = ObjectCache()
    try:
        source = build_source(settings, cache, stop)
    except ConfigError as exc:
        print(f"mountdns-sync: {exc}", file=sys.stderr)
        return 2
    store = RedisStore(redis_connect.connect(settings.redis_target, timeout=5), prefix=settings.key_prefix)
    reconciler = Reconciler(store, rules_config(settings), dry_run=settings.dry_run)
    daemon = SyncDaemon(cache, source, reconciler, resync_interval=settings.resync_interval,
                        coalesce_seconds=settings.coalesce_seconds)

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

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    daemon.run(stop)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`mountdns-sync`: keep Redis in step with Kubernetes (or with YAML manifests)."""

from __future__ import annotations

import logging
import signal
import sys
import threading

import redis

from mountdns.store import StoreError
from mountdns.store.redis_store import RedisStore
from mountdns.settings import ConfigError
from sync.sources.cache import ObjectCache
from sync.config import SyncSettings, build_parser, settings_from_args
from sync.daemon import SyncDaemon
from sync.purge import CachePurger
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
    store = RedisStore(redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5),
                       prefix=settings.key_prefix, owner=settings.owner_id)
    purger = None
    if settings.pdns_api_urls and not settings.dry_run:
        purger = CachePurger(settings.pdns_api_urls, settings.pdns_api_key).start()
    reconciler = Reconciler(store, rules_config(settings), purger=purger, dry_run=settings.dry_run)
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
        finally:
            if purger:
                _drain(purger)
        log.info("sync done: %d key writes", writes)
        return 0

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    daemon.run(stop)
    if purger:
        purger.stop()
    log.info("stopped")
    return 0


def _drain(purger: CachePurger, seconds: float = 5.0) -> None:
    """Give queued purges a moment to go out before --once exits."""
    stopper = threading.Event()
    for _ in range(int(seconds / 0.05)):
        if purger.pending() == 0:
            break
        stopper.wait(0.05)
    purger.stop()


if __name__ == "__main__":
    sys.exit(main())

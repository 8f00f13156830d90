"""The sync daemon's settings: one object, one parser, one validation function.

Every flag is also read from a MOUNTDNS_* environment variable (see mountdns.settings);
validation messages name the flag, and bad configuration exits non-zero before anything
is written.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from mountdns.keyspace import DEFAULT_PREFIX, Keys
from mountdns.names import InvalidName, normalize
from mountdns.redis_connect import RedisTarget, add_sentinel_flags, target_from_args
from mountdns.settings import ConfigError, add_flag, repeated
from mountdns.records import Zone

ADDRESS_TYPES = ("InternalIP", "ExternalIP", "Hostname", "InternalDNS", "ExternalDNS")


@dataclass(frozen=True)
class SyncSettings:
    zones: tuple[Zone, ...]
    """Zones served; the first is the default zone for Containers without spec.fqdn."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    """Redis that the backend reads."""
    redis_target: RedisTarget = RedisTarget()
    """How to reach the primary: redis_url, or through Sentinel."""
    key_prefix: str = DEFAULT_PREFIX
    """Prefix of every mountdns key; nothing outside it is ever touched."""
    kubeconfig: str | None = None
    """Kubeconfig file; None means in-cluster configuration."""
    namespace: str | None = None
    """Watch Containers in this namespace only; None means all namespaces."""
    manifests: str | None = None
    """Read Container and Node objects from YAML files in this directory instead of a cluster."""
    resync_interval: float = 300.0
    """Seconds between full resyncs (re-list, re-read Redis, garbage-collect)."""
    mounted_status: str = "MOUNTED"
    """status.deviceStatus value that makes a Container with spec.mountedTo a child."""
    mount_types: frozenset[str] = frozenset()
    """spec.type values that can be mounted; empty means all."""
    node_address_types: tuple[str, ...] = ("InternalIP",)
    """Node status.addresses types published as A/AAAA."""
    once: bool = False
    """Sync once and exit."""
    dry_run: bool = False
    """Print the changes, write nothing."""
    coalesce_seconds: float = 0.05
    """How long to gather further events after the first before writing a batch."""
    log_level: str = "info"

    def describe(self) -> str:
        """The startup log line: everything but secrets."""
        return (f"zones={[z.name for z in self.zones]} redis={self.redis_target.describe()} "
                f"prefix={self.key_prefix!r} source={'manifests:' + self.manifests if self.manifests else 'kubernetes'} "
                f"namespace={self.namespace or '*'} resync={self.resync_interval}s "
                f"mounted_status={self.mounted_status} mount_types={sorted(self.mount_types) or '*'} "
                f"address_types={list(self.node_address_types)} once={self.once} dry_run={self.dry_run}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mountdns-sync",
                                description="Sync mountdns Containers and Nodes from Kubernetes into Redis.")
    add_flag(p, "--zone", repeatable=True, help="zone to serve; the first is the default zone")
    add_flag(p, "--nameserver", repeatable=True, help="NS name of the zones (default ns1.<first zone>)")
    add_flag(p, "--hostmaster", help="SOA contact as a name (default hostmaster.<zone>)")
    add_flag(p, "--ttl", default=30, cast=int, help="TTL of every record, seconds")
    add_flag(p, "--redis-url", default="redis://127.0.0.1:6379/0", help="Redis the backend reads")
    add_sentinel_flags(p)
    add_flag(p, "--key-prefix", default=DEFAULT_PREFIX, help="prefix of every mountdns Redis key")
    add_flag(p, "--kubeconfig", help="kubeconfig file (default: in-cluster configuration)")
    add_flag(p, "--namespace", help="watch Containers in this namespace only (default: all)")
    add_flag(p, "--manifests", help="read Container and Node YAML from this directory instead of a cluster")
    add_flag(p, "--resync-interval", default=300.0, cast=float, help="seconds between full resyncs")
    add_flag(p, "--mounted-status", default="MOUNTED", help="status.deviceStatus that means mounted")
    add_flag(p, "--mount-types", repeatable=True, help="spec.type values that can be mounted (default: all)")
    add_flag(p, "--node-address-type", repeatable=True, help="Node address types to publish (default: InternalIP)")
    add_flag(p, "--coalesce-seconds", default=0.05, cast=float, help="gather events this long before writing")
    add_flag(p, "--log-level", default="info", help="debug, info, warning or error")
    add_flag(p, "--once", switch=True, help="sync once, then exit")
    add_flag(p, "--dry-run", switch=True, help="print the changes, write nothing")
    return p


def _name(value: str, flag: str) -> str:
    try:
        return normalize(value)
    except InvalidName as exc:
        raise ConfigError(f"{flag}: {exc}") from exc


def settings_from_args(args: argparse.Namespace) -> SyncSettings:
    """Validate parsed flags into SyncSettings; every ConfigError names its flag."""
    zone_names = [_name(z, "--zone") for z in repeated(args, "zone")]
    if not zone_names:
        raise ConfigError("--zone: at least one zone is required (e.g. --zone domain.foo.bar)")
    if len(set(zone_names)) != len(zone_names):
        raise ConfigError(f"--zone: a zone is given twice: {zone_names}")
    if args.ttl < 1 or args.ttl > 2**31 - 1:
        raise ConfigError(f"--ttl: must be between 1 and 2147483647 seconds, got {args.ttl}")
    nameservers = tuple(_name(n, "--nameserver") for n in repeated(args, "nameserver"))
    hostmaster = _name(args.hostmaster.replace("@", "."), "--hostmaster") if args.hostmaster else None
    zones = tuple(
        Zone(name=z, nameservers=nameservers or (f"ns1.{zone_names[0]}",),
             hostmaster=hostmaster or f"hostmaster.{z}", ttl=args.ttl, minimum=args.ttl)
        for z in zone_names)
    ids = {}
    for zone in zones:
        if zone.id in ids:
            raise ConfigError(f"--zone: {zone.name} and {ids[zone.id]} would share a zone id; rename one")
        ids[zone.id] = zone.name

    redis_target = target_from_args(args)
    try:
        Keys(args.key_prefix)
    except ValueError as exc:
        raise ConfigError(f"--key-prefix: {exc}") from exc
    if args.resync_interval <= 0:
        raise ConfigError(f"--resync-interval: must be positive, got {args.resync_interval}")
    if not 0 <= args.coalesce_seconds <= 10:
        raise ConfigError(f"--coalesce-seconds: must be between 0 and 10, got {args.coalesce_seconds}")
    if not args.mounted_status:
        raise ConfigError("--mounted-status: must not be empty")
    address_types = tuple(repeated(args, "node_address_type")) or ("InternalIP",)
    for t in address_types:
        if t not in ADDRESS_TYPES:
            raise ConfigError(f"--node-address-type: {t!r} is not one of {', '.join(ADDRESS_TYPES)}")
    if args.manifests and not os.path.isdir(args.manifests):
        raise ConfigError(f"--manifests: {args.manifests!r} is not a directory")
    if args.kubeconfig and not os.path.isfile(args.kubeconfig):
        raise ConfigError(f"--kubeconfig: {args.kubeconfig!r} does not exist")
    if args.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"--log-level: expected debug, info, warning or error, got {args.log_level!r}")

    return SyncSettings(
        zones=zones, redis_url=args.redis_url, redis_target=redis_target, key_prefix=args.key_prefix, kubeconfig=args.kubeconfig,
        namespace=args.namespace, manifests=args.manifests, resync_interval=args.resync_interval,
        mounted_status=args.mounted_status, mount_types=frozenset(repeated(args, "mount_types")),
        node_address_types=address_types, once=args.once, dry_run=args.dry_run,
        coalesce_seconds=args.coalesce_seconds,
        log_level=args.log_level.lower())


def parse(argv: list[str] | None = None) -> SyncSettings:
    return settings_from_args(build_parser().parse_args(argv))

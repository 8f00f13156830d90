"""The sync daemon's settings: one object, one parser, one validation function.

Every flag is also read from a MOUNTDNS_* environment variable (see mountdns.settings);
validation messages name the flag, and bad configuration exits non-zero before anything
is written.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from dataclasses import dataclass, field

from mountdns.keyspace import DEFAULT_OWNER, DEFAULT_PREFIX, Keys, check_owner
from mountdns.names import InvalidName, normalize
from mountdns.redis_connect import RedisTarget, add_sentinel_flags, target_from_args
from mountdns.settings import ConfigError, add_flag, parse_bind, repeated

SOURCES = ("container", "pod")  # --source: where names come from
from mountdns.records import Zone
from sync.leader import default_identity, default_namespace

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
    owner_id: str = DEFAULT_OWNER
    """Who this sync writes as: syncs sharing one Redis and prefix never touch each other's
    names; replicas of one sync share it."""
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
    write_chunk_keys: int = 1000
    """Record keys written per Redis script call at most: a bigger batch is split, so
    Redis never blocks the backends' lookups for a whole initial sync."""
    gc_round_names: int = 25_000
    """Stale records (Redis holds, the cluster does not) read and deleted per batch at
    most, or a quarter of the names published when that is more: more are collected in
    further rounds, so the garbage a Redis holds does not set the sync's peak memory."""
    watch_idle_timeout: float = 90.0
    """Seconds a watch may deliver nothing, not even a bookmark, before it is dropped and
    resumed from its last resourceVersion."""
    status_qps: float = 10.0
    """Container status writes and Events per second, at most (0: write no status)."""
    log_level: str = "info"
    leader_elect: bool = False
    """Run as one of several replicas: only the holder of a Lease writes Redis."""
    lease_name: str = "mountdns-sync"
    """Name of the coordination.k8s.io/v1 Lease the replicas elect a leader with."""
    lease_namespace: str = "default"
    """Namespace of that Lease (default: the pod's, from its service-account mount)."""
    identity: str = field(default="", compare=False)
    """This replica's holderIdentity in the Lease; unique per process (so not compared)."""
    lease_duration: float = 15.0
    """Seconds a candidate waits, on its own clock, without seeing the Lease change before taking it."""
    renew_deadline: float = 10.0
    """Seconds a leader keeps writing without renewing; must be below lease_duration."""
    retry_period: float = 2.0
    """Seconds between attempts to acquire or renew the Lease."""
    metrics_bind: tuple[str, int] | None = ("127.0.0.1", 9153)
    """Where /healthz, /readyz and /metrics are served; None (`--metrics-bind off`) serves nothing."""
    allow_special_addresses: bool = False
    """Publish loopback, link-local, multicast, broadcast and unspecified Node addresses (demos)."""
    publish_unready_pods: bool = False
    """Publish a Pod-backed Container while its Pod is scheduled and not terminating, Ready or not."""
    sources: tuple[str, ...] = ("container",)
    """What names come from: "container" (Container objects) and/or "pod" (labelled Pods)."""

    def describe(self) -> str:
        """The startup log line: everything but secrets."""
        return (f"zones={[z.name for z in self.zones]} redis={self.redis_target.describe()} "
                f"prefix={self.key_prefix!r} owner={self.owner_id} "
                f"source={'manifests:' + self.manifests if self.manifests else 'kubernetes'} "
                f"namespace={self.namespace or '*'} resync={self.resync_interval}s "
                f"watch_idle_timeout={self.watch_idle_timeout}s "
                f"mounted_status={self.mounted_status} mount_types={sorted(self.mount_types) or '*'} "
                f"address_types={list(self.node_address_types)} once={self.once} dry_run={self.dry_run} "
                f"metrics_bind={'%s:%d' % self.metrics_bind if self.metrics_bind else 'off'} "
                f"allow_special_addresses={self.allow_special_addresses} status_qps={self.status_qps} "
                f"publish_unready_pods={self.publish_unready_pods} sources={','.join(self.sources)}"
                + (f" leader_elect=Lease {self.lease_namespace}/{self.lease_name} identity={self.identity} "
                   f"lease_duration={self.lease_duration}s renew_deadline={self.renew_deadline}s "
                   f"retry_period={self.retry_period}s" if self.leader_elect else " leader_elect=off"))


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
    add_flag(p, "--owner-id", default=DEFAULT_OWNER,
             help="owner of the names this sync writes (a DNS label; shared by its replicas)")
    add_flag(p, "--kubeconfig", help="kubeconfig file (default: in-cluster configuration)")
    add_flag(p, "--namespace", help="watch Containers in this namespace only (default: all)")
    add_flag(p, "--manifests", help="read Container and Node YAML from this directory instead of a cluster")
    add_flag(p, "--resync-interval", default=300.0, cast=float, help="seconds between full resyncs")
    add_flag(p, "--mounted-status", default="MOUNTED", help="status.deviceStatus that means mounted")
    add_flag(p, "--mount-types", repeatable=True, help="spec.type values that can be mounted (default: all)")
    add_flag(p, "--node-address-type", repeatable=True, help="Node address types to publish (default: InternalIP)")
    add_flag(p, "--watch-idle-timeout", default=90.0, cast=float,
             help="seconds a silent watch (not even a bookmark) is kept before it is resumed")
    add_flag(p, "--coalesce-seconds", default=0.05, cast=float, help="gather events this long before writing")
    add_flag(p, "--write-chunk-keys", default=1000, cast=int,
             help="record keys per Redis write call at most; bigger batches are split (nodes, parents, children)")
    add_flag(p, "--gc-round-names", default=25_000, cast=int,
             help="stale records read and deleted per batch at most (or a quarter of the names published, "
                  "when more); more are collected in further rounds")
    add_flag(p, "--status-qps", default=10.0, cast=float,
             help="Container status writes and Events per second, at most (0: write no status)")
    add_flag(p, "--log-level", default="info", help="debug, info, warning or error")
    add_flag(p, "--once", switch=True, help="sync once, then exit")
    add_flag(p, "--dry-run", switch=True, help="print the changes, write nothing")
    add_flag(p, "--leader-elect", switch=True,
             help="run as one of several replicas: only the holder of a Lease writes Redis")
    add_flag(p, "--leader-elect-lease-name", default="mountdns-sync", help="name of the Lease")
    add_flag(p, "--leader-elect-namespace",
             help="namespace of the Lease (default: the pod's namespace, else default)")
    add_flag(p, "--leader-elect-identity", help="this replica's identity (default: hostname and a random suffix)")
    add_flag(p, "--leader-elect-lease-duration", default=15.0, cast=float,
             help="seconds without a renewal before a candidate takes the Lease over")
    add_flag(p, "--leader-elect-renew-deadline", default=10.0, cast=float,
             help="seconds a leader keeps writing without renewing (below the lease duration)")
    add_flag(p, "--leader-elect-retry-period", default=2.0, cast=float,
             help="seconds between attempts to acquire or renew the Lease")
    add_flag(p, "--metrics-bind", default="127.0.0.1:9153",
             help="HOST:PORT serving /healthz, /readyz and /metrics; '' or off: none")
    add_flag(p, "--allow-special-addresses", switch=True,
             help="publish loopback, link-local, multicast, broadcast and unspecified Node addresses (demos)")
    add_flag(p, "--source", repeatable=True,
             help="where names come from: container (mountdns.io Containers, the default) and/or pod "
                  "(Pods labelled mountdns.io/publish=true, described by mountdns.io/ annotations)")
    add_flag(p, "--publish-unready-pods", switch=True,
             help="publish a Container backed by a Pod (spec.podRef) while the Pod is scheduled and not "
                  "terminating, Ready or not (like a Service's publishNotReadyAddresses)")
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
    try:
        check_owner(args.owner_id)
    except ValueError as exc:
        raise ConfigError(f"--owner-id: {exc}") from exc
    if args.resync_interval <= 0:
        raise ConfigError(f"--resync-interval: must be positive, got {args.resync_interval}")
    if not 0 < args.watch_idle_timeout <= 3600:
        raise ConfigError(f"--watch-idle-timeout: must be above 0 and at most 3600 seconds, "
                          f"got {args.watch_idle_timeout}")
    if not 0 <= args.coalesce_seconds <= 10:
        raise ConfigError(f"--coalesce-seconds: must be between 0 and 10, got {args.coalesce_seconds}")
    if not 100 <= args.write_chunk_keys <= 10_000_000:
        raise ConfigError(f"--write-chunk-keys: must be between 100 and 10000000, got {args.write_chunk_keys}")
    if not 1000 <= args.gc_round_names <= 10_000_000:
        raise ConfigError(f"--gc-round-names: must be between 1000 and 10000000, got {args.gc_round_names}")
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
    metrics_bind = _metrics_bind(args.metrics_bind)
    if not 0 <= args.status_qps <= 1000:
        raise ConfigError(f"--status-qps: must be between 0 and 1000, got {args.status_qps}")
    if args.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"--log-level: expected debug, info, warning or error, got {args.log_level!r}")

    sources = tuple(dict.fromkeys(repeated(args, "source"))) or ("container",)
    for source in sources:
        if source not in SOURCES:
            raise ConfigError(f"--source: {source!r} is not one of {', '.join(SOURCES)}")

    election = _election(args)
    if args.leader_elect and args.once:
        raise ConfigError("--leader-elect: cannot be combined with --once (a one-shot sync does not elect)")

    return SyncSettings(
        **election,
        zones=zones, redis_url=args.redis_url, redis_target=redis_target, key_prefix=args.key_prefix,
        owner_id=args.owner_id,
        kubeconfig=args.kubeconfig,
        namespace=args.namespace, manifests=args.manifests, resync_interval=args.resync_interval,
        mounted_status=args.mounted_status, mount_types=frozenset(repeated(args, "mount_types")),
        node_address_types=address_types, once=args.once, dry_run=args.dry_run,
        coalesce_seconds=args.coalesce_seconds, write_chunk_keys=args.write_chunk_keys,
        gc_round_names=args.gc_round_names, watch_idle_timeout=args.watch_idle_timeout,
        log_level=args.log_level.lower(), metrics_bind=metrics_bind,
        allow_special_addresses=args.allow_special_addresses, status_qps=args.status_qps,
        publish_unready_pods=args.publish_unready_pods, sources=sources)


def _metrics_bind(value: str | None) -> tuple[str, int] | None:
    if value is None or value.strip().lower() in ("", "off"):
        return None
    try:
        return parse_bind(value.strip())
    except ConfigError:
        raise ConfigError(f"--metrics-bind: expected HOST:PORT, '' or off, got {value!r}") from None


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _election(args: argparse.Namespace) -> dict:
    """The leader-election settings, validated as client-go validates its LeaderElectionConfig."""
    name = args.leader_elect_lease_name
    if not name or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise ConfigError(f"--leader-elect-lease-name: {name!r} is not a valid object name (lower-case DNS subdomain)")
    namespace = args.leader_elect_namespace or default_namespace()
    if len(namespace) > 63 or not _DNS_LABEL.match(namespace):
        raise ConfigError(f"--leader-elect-namespace: {namespace!r} is not a valid namespace name")
    identity = args.leader_elect_identity if args.leader_elect_identity is not None else default_identity()
    if not identity.strip():
        raise ConfigError("--leader-elect-identity: must not be empty")
    duration, deadline, retry = (args.leader_elect_lease_duration, args.leader_elect_renew_deadline,
                                 args.leader_elect_retry_period)
    for flag, value in (("--leader-elect-lease-duration", duration), ("--leader-elect-renew-deadline", deadline),
                        ("--leader-elect-retry-period", retry)):
        if not (value > 0 and math.isfinite(value)):
            raise ConfigError(f"{flag}: must be a positive number of seconds, got {value}")
    if deadline >= duration:
        raise ConfigError(f"--leader-elect-renew-deadline: must be below --leader-elect-lease-duration "
                          f"({deadline} >= {duration}), or a leader could write after its Lease expired")
    if retry >= deadline:
        raise ConfigError(f"--leader-elect-retry-period: must be below --leader-elect-renew-deadline "
                          f"({retry} >= {deadline}), or a leader could not retry a failed renewal")
    return dict(leader_elect=args.leader_elect, lease_name=name, lease_namespace=namespace, identity=identity,
                lease_duration=duration, renew_deadline=deadline, retry_period=retry)


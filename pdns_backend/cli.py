"""`mountdns-backend`: serve the remote backend with gunicorn.

The worker class is pdns_backend.worker.EventLoopWorker: it keeps PowerDNS's connections
alive (a server that closes idle ones races PowerDNS into SERVFAILs, PowerDNS issue #5619),
serves them without per-request thread hand-offs, and keeps other clients from stalling
or crowding them out.

With `--pdns-api-url`, gunicorn's master process also runs the purge follower
(pdns_backend.purge_follower) on a thread: one per backend instance, however many
workers, and it lives exactly as long as the instance.

`/metrics` on the backend's own port (any worker answers it) shows every worker's lookups
and the master's follower metrics: the CLI makes a directory private to this instance for
prometheus-client's multiprocess mode (pdns_backend.metrics) before gunicorn forks, and
removes it on exit.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys

from gunicorn.app.base import BaseApplication

from mountdns.keyspace import DEFAULT_PREFIX
from mountdns.redis_connect import add_sentinel_flags, target_from_args
from mountdns.settings import ConfigError, add_flag, parse_bind, repeated
from pdns_backend.app import create_app
from pdns_backend.metrics import make_directory, use_multiprocess_directory
from pdns_backend.worker import EventLoopWorker

log = logging.getLogger("mountdns.backend")

# Under load every zone is re-read from Redis many times a second (each lookup's reply
# carries its zone), so a short bound keeps nearly every SOA probe in memory while an
# apex answer is never older than this (PowerDNS's own caches hold it 20 s as shipped).
DEFAULT_ZONE_TABLE_MAX_AGE = 0.25


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mountdns-backend", description=__doc__.splitlines()[0])
    add_flag(parser, "--bind", default="127.0.0.1:8053", help="HOST:PORT to listen on")
    add_flag(parser, "--redis-url", default="redis://127.0.0.1:6379/0", help="Redis holding the mountdns keyspace")
    add_sentinel_flags(parser)
    add_flag(parser, "--key-prefix", default=DEFAULT_PREFIX, help="prefix of every mountdns Redis key")
    add_flag(parser, "--pdns-socket",
             help="also listen on this unix socket for PowerDNS's unix connector "
                  "(remote-connection-string=unix:path=PATH): JSON lines instead of HTTP")
    add_flag(parser, "--workers", default=2, cast=int,
             help="worker processes (about one per core: each sends a round's lookups to Redis together, "
                  "so fewer, busier workers spend less CPU per lookup)")
    add_flag(parser, "--threads", default=1, cast=int,
             help="event-loop threads per worker (more than 1 only contends for the GIL)")
    add_flag(parser, "--max-connections", default=256, cast=int,
             help="open connections per worker; at the limit the longest-idle one is closed, or, when all "
                  "are mid-request, new ones wait (PowerDNS keeps one per distributor thread)")
    add_flag(parser, "--request-timeout", default=5.0, cast=float,
             help="seconds a client has to send a whole request (from its first byte, or from connecting)")
    add_flag(parser, "--idle-timeout", default=300.0, cast=float,
             help="seconds an idle keep-alive connection is kept (long: PowerDNS reuses its connections)")
    add_flag(parser, "--zone-table-max-age", default=DEFAULT_ZONE_TABLE_MAX_AGE, cast=float,
             help="seconds a zone read from Redis may answer PowerDNS's SOA probes (apex lookups) from memory; "
                  "every lookup's reply renews it; 0: every apex lookup reads Redis")
    add_flag(parser, "--log-level", default="info", help="debug, info, warning or error")
    add_flag(parser, "--metrics-bind",
             help="HOST:PORT where the master serves /metrics (every worker's lookups and the purge follower), "
                  "for a Prometheus that cannot reach --bind; /metrics on --bind serves the same (default: not served)")
    # Purge follower (pdns_backend.purge_follower): this instance's own PowerDNS.
    add_flag(parser, "--pdns-api-url", help="HTTP API of this backend's PowerDNS, whose caches it purges on change")
    add_flag(parser, "--pdns-api-key", default="", help="X-API-Key of that API")
    add_flag(parser, "--purge-repeat-after", repeatable=True, cast=float,
             help="seconds after which each purge is sent again, for lookups in flight "
                  "(default 0.1,0.5,2.5)")
    add_flag(parser, "--purge-metrics-bind",
             help="HOST:PORT serving the purge follower's Prometheus metrics (default: not served)")
    return parser


class _Gunicorn(BaseApplication):
    def __init__(self, app_factory, options: dict):
        self.app_factory = app_factory
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.app_factory()


def gunicorn_options(args: argparse.Namespace, host: str, port: int) -> dict:
    """gunicorn's settings for validated flags."""
    return {
        "bind": [f"{host}:{port}"] + ([f"unix:{args.pdns_socket}"] if args.pdns_socket else []),
        "workers": args.workers,
        "threads": args.threads,
        "worker_class": EventLoopWorker.configured(args.request_timeout, args.idle_timeout),
        "worker_connections": args.max_connections,
        "loglevel": args.log_level.lower(),
        "accesslog": None,
        "graceful_timeout": 5,
        # Nothing here reads forwarding headers (X-Forwarded-*); trusting every peer
        # spares gunicorn parsing the peer's address on every request.
        "forwarded_allow_ips": "*",
        # No runtime control socket (by default a file in $HOME): nothing uses it, and it
        # is one more way in.
        "control_socket_disable": True,
    }


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        host, port = parse_bind(args.bind)
        target = target_from_args(args)
        if args.workers < 1:
            raise ConfigError(f"--workers: must be at least 1, got {args.workers}")
        if args.threads < 1:
            raise ConfigError(f"--threads: must be at least 1, got {args.threads}")
        if args.max_connections < 1:
            raise ConfigError(f"--max-connections: must be at least 1, got {args.max_connections}")
        if not args.request_timeout > 0:
            raise ConfigError(f"--request-timeout: must be more than 0, got {args.request_timeout}")
        if not args.idle_timeout > 0:
            raise ConfigError(f"--idle-timeout: must be more than 0, got {args.idle_timeout}")
        if not 0 <= args.zone_table_max_age <= 60:
            raise ConfigError(f"--zone-table-max-age: must be between 0 and 60 seconds, got {args.zone_table_max_age}")
        if args.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"--log-level: expected debug, info, warning or error, got {args.log_level!r}")
        if args.pdns_socket is not None and not 0 < len(os.fsencode(args.pdns_socket)) < 108:
            raise ConfigError(f"--pdns-socket: a unix socket path must be 1-107 bytes, got {args.pdns_socket!r}")
        purge = purge_settings(args)
        metrics_bind = bind_flag("--metrics-bind", args.metrics_bind)
    except ConfigError as exc:
        print(f"mountdns-backend: {exc}", file=sys.stderr)
        return 2

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("starting on %s:%d, redis %s, prefix %r, %d workers x %d threads, %d connections each, %s",
             host, port, target.describe(), args.key_prefix, args.workers, args.threads,
             args.max_connections, f"purging PowerDNS at {purge[0]} (key ****)" if purge else "no purge follower")

    # Before any metric is made (the follower's in the master, the workers' after the fork).
    metrics_dir = make_directory()
    use_multiprocess_directory(metrics_dir)

    def factory():
        return create_app({"REDIS_URL": args.redis_url, "REDIS_TARGET": target, "KEY_PREFIX": args.key_prefix,
                           "METRICS": metrics_dir, "ZONE_TABLE_MAX_AGE": args.zone_table_max_age})

    hooks = [follower_hooks(target, args.key_prefix, *purge, backend=(host, port))] if purge else []
    if metrics_bind:
        hooks.append(metrics_hooks(metrics_dir, metrics_bind))
    master = os.getpid()
    try:
        _Gunicorn(factory, {**combine_hooks(hooks), **gunicorn_options(args, host, port)}).run()
    finally:
        # Workers leave through here too (gunicorn forks inside run()); only the master cleans up.
        if os.getpid() == master:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def bind_flag(flag: str, value: str | None) -> tuple[str, int] | None:
    """A HOST:PORT flag's value parsed, None when unset; a ConfigError names the flag."""
    if not value:
        return None
    try:
        return parse_bind(value)
    except ConfigError:
        raise ConfigError(f"{flag}: expected HOST:PORT, got {value!r}") from None


def purge_settings(args) -> tuple[str, str, tuple[float, ...], tuple[str, int] | None] | None:
    """(--pdns-api-url, --pdns-api-key, --purge-repeat-after, --purge-metrics-bind),
    validated; None without a URL."""
    repeats = tuple(repeated(args, "purge_repeat_after"))
    metrics_bind = bind_flag("--purge-metrics-bind", args.purge_metrics_bind)
    if metrics_bind and not args.pdns_api_url:
        raise ConfigError("--purge-metrics-bind: needs --pdns-api-url (there is no follower without it)")
    for delay in repeats:
        if not 0 < delay <= 60:
            raise ConfigError(f"--purge-repeat-after: each delay must be between 0 and 60 seconds, got {delay}")
    if not args.pdns_api_url:
        if args.pdns_api_key:
            raise ConfigError("--pdns-api-url: required with --pdns-api-key")
        return None
    url = args.pdns_api_url.rstrip("/")
    if not url.startswith("http://"):
        raise ConfigError(f"--pdns-api-url: expected http://HOST:PORT (PowerDNS's API has no TLS), got {url!r}")
    if not args.pdns_api_key:
        raise ConfigError("--pdns-api-key: required with --pdns-api-url")
    from pdns_backend.purge_follower import REPEAT_AFTER
    return url, args.pdns_api_key, repeats or REPEAT_AFTER, metrics_bind


def follower_hooks(target, prefix: str, api_url: str, api_key: str, repeat_after, metrics_bind=None, *,
                   backend: tuple[str, int]) -> dict:
    """gunicorn server hooks running the purge follower in the master process: started
    once the workers are forked (`when_ready`), stopped on exit. A thread in the master,
    not a worker: one follower per instance, and the workers (which the master forks
    again when one dies) never run it."""
    running = []

    # Imported now, not in the hook: the hook runs once the socket listens, and every
    # moment before the first purge PowerDNS may answer from caches older than the restart.
    from mountdns import redis_connect
    from pdns_backend.purge_follower import FollowerThread, PdnsApi, PurgeFollower

    def when_ready(server):
        client = redis_connect.connect(target, timeout=5.0, health_check_interval=30)
        follower = PurgeFollower(client, PdnsApi(api_url, api_key), prefix, repeat_after=repeat_after)
        server.purge_follower = follower  # for whoever exposes its metrics
        # Probe the workers only once all are forked: a probe connection open in this
        # process while it forks is inherited by the new worker, and then one later client
        # connection to that worker was never answered (seen in tests, every other start).
        def ready() -> bool:
            return len(server.WORKERS) >= server.num_workers and _answers(*backend)

        running.append(FollowerThread(follower, ready=ready).start())
        if metrics_bind:
            # The follower's counters live in this (master) process, which workers cannot see.
            from prometheus_client import start_http_server
            start_http_server(metrics_bind[1], addr=metrics_bind[0].strip("[]"),
                              registry=follower.metrics.registry)
        log.info("purge follower started: PowerDNS at %s, repeats after %s s", api_url,
                 ", ".join(f"{d:g}" for d in repeat_after))

    def on_exit(server):
        for thread in running:
            thread.stop()

    return {"when_ready": when_ready, "on_exit": on_exit}


def metrics_hooks(directory: str, bind: tuple[str, int]) -> dict:
    """gunicorn's master serving /metrics merged from every process's files in
    `directory` (pdns_backend.metrics): started once it listens, so no worker inherits the
    socket."""
    def when_ready(server):
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
        start_http_server(bind[1], addr=bind[0].strip("[]"), registry=registry)
        log.info("serving /metrics on %s:%d", *bind)

    return {"when_ready": when_ready}


def combine_hooks(hooks: list[dict]) -> dict:
    """One gunicorn setting per hook name, calling each given hook in turn. (All of ours
    are server hooks, taking the arbiter only: gunicorn checks a hook's arity.)"""
    combined: dict[str, list] = {}
    for hook in hooks:
        for name, function in hook.items():
            combined.setdefault(name, []).append(function)

    def chain(functions):
        def run(server):
            for function in functions:
                function(server)
        return run
    return {name: functions[0] if len(functions) == 1 else chain(functions) for name, functions in combined.items()}


def _answers(host: str, port: int) -> bool:
    """Whether a worker of this backend answers (GET /healthz)."""
    import http.client
    host = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host in ("::", "[::]") else host.strip("[]"))
    connection = http.client.HTTPConnection(host, port, timeout=1.0)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    finally:
        connection.close()


if __name__ == "__main__":
    sys.exit(main())

"""`mountdns-backend`: serve the remote backend with gunicorn.

The worker class is pdns_backend.worker.EventLoopWorker: it keeps PowerDNS's connections
alive (a server that closes idle ones races PowerDNS into SERVFAILs, PowerDNS issue #5619),
serves them without per-request thread hand-offs, and keeps other clients from stalling
or crowding them out.
"""

from __future__ import annotations

import argparse
import logging
import sys

from gunicorn.app.base import BaseApplication

from mountdns.keyspace import DEFAULT_PREFIX
from mountdns.settings import ConfigError, add_flag, check_redis_url, mask_url, parse_bind
from pdns_backend.app import create_app
from pdns_backend.worker import EventLoopWorker

log = logging.getLogger("mountdns.backend")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mountdns-backend", description=__doc__.splitlines()[0])
    add_flag(parser, "--bind", default="127.0.0.1:8053", help="HOST:PORT to listen on")
    add_flag(parser, "--redis-url", default="redis://127.0.0.1:6379/0", help="Redis holding the mountdns keyspace")
    add_flag(parser, "--key-prefix", default=DEFAULT_PREFIX, help="prefix of every mountdns Redis key")
    add_flag(parser, "--workers", default=3, cast=int,
             help="worker processes (more than cores: each waits on Redis for part of every lookup)")
    add_flag(parser, "--threads", default=1, cast=int,
             help="event-loop threads per worker (more than 1 only contends for the GIL)")
    add_flag(parser, "--max-connections", default=256, cast=int,
             help="open connections per worker; at the limit the longest-idle one is closed, or, when all "
                  "are mid-request, new ones wait (PowerDNS keeps one per distributor thread)")
    add_flag(parser, "--request-timeout", default=5.0, cast=float,
             help="seconds a client has to send a whole request (from its first byte, or from connecting)")
    add_flag(parser, "--idle-timeout", default=300.0, cast=float,
             help="seconds an idle keep-alive connection is kept (long: PowerDNS reuses its connections)")
    add_flag(parser, "--log-level", default="info", help="debug, info, warning or error")
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
        "bind": f"{host}:{port}",
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
        check_redis_url(args.redis_url)
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
        if args.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"--log-level: expected debug, info, warning or error, got {args.log_level!r}")
    except ConfigError as exc:
        print(f"mountdns-backend: {exc}", file=sys.stderr)
        return 2

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("starting on %s:%d, redis %s, prefix %r, %d workers x %d threads, %d connections each",
             host, port, mask_url(args.redis_url), args.key_prefix, args.workers, args.threads,
             args.max_connections)

    def factory():
        return create_app({"REDIS_URL": args.redis_url, "KEY_PREFIX": args.key_prefix})

    _Gunicorn(factory, gunicorn_options(args, host, port)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`mountdns-backend`: serve the remote backend with gunicorn.

gunicorn's `gthread` worker is used because it keeps HTTP connections alive: PowerDNS
holds one keep-alive connection per backend thread and a server that closes idle ones
races it into SERVFAILs (PowerDNS issue #5619). The keep-alive timeout is therefore long.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys

from gunicorn.app.base import BaseApplication

from mountdns.keyspace import DEFAULT_PREFIX
from mountdns.settings import ConfigError, add_flag, check_redis_url, mask_url, parse_bind

log = logging.getLogger("mountdns.backend")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mountdns-backend", description=__doc__.splitlines()[0])
    add_flag(parser, "--bind", default="127.0.0.1:8053", help="HOST:PORT to listen on")
    add_flag(parser, "--redis-url", default="redis://127.0.0.1:6379/0", help="Redis holding the mountdns keyspace")
    add_flag(parser, "--key-prefix", default=DEFAULT_PREFIX, help="prefix of every mountdns Redis key")
    add_flag(parser, "--workers", default=2, cast=int, help="gunicorn worker processes")
    add_flag(parser, "--threads", default=64, cast=int,
             help="connections per worker, each served by its own thread (PowerDNS keeps one per distributor thread)")
    add_flag(parser, "--log-level", default="info", help="debug, info, warning or error")
    return parser


def _no_delay(server) -> None:
    """TCP_NODELAY on the listening sockets, inherited by every accepted connection.

    gunicorn writes a response's headers and body in two writes; with Nagle's algorithm
    the body then waits for PowerDNS's delayed ACK (~40 ms), which turned a 3 ms answer
    into hundreds of ms under load."""
    for listener in server.LISTENERS:
        if listener.sock.family in (socket.AF_INET, socket.AF_INET6):
            listener.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


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


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        host, port = parse_bind(args.bind)
        check_redis_url(args.redis_url)
        if args.workers < 1:
            raise ConfigError(f"--workers: must be at least 1, got {args.workers}")
        if args.threads < 1:
            raise ConfigError(f"--threads: must be at least 1, got {args.threads}")
        if args.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"--log-level: expected debug, info, warning or error, got {args.log_level!r}")
    except ConfigError as exc:
        print(f"mountdns-backend: {exc}", file=sys.stderr)
        return 2

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("starting on %s:%d, redis %s, prefix %r, %d workers x %d threads",
             host, port, mask_url(args.redis_url), args.key_prefix, args.workers, args.threads)

    def factory():
        from pdns_backend.app import create_app
        return create_app({"REDIS_URL": args.redis_url, "KEY_PREFIX": args.key_prefix})

    _Gunicorn(factory, {
        "bind": f"{host}:{port}",
        "workers": args.workers,
        "threads": args.threads,
        "worker_class": "pdns_backend.worker.ConnectionThreadWorker",
        "keepalive": 3600,
        "worker_connections": args.threads,
        "loglevel": args.log_level.lower(),
        "accesslog": None,
        "graceful_timeout": 5,
        "when_ready": _no_delay,
        # Nothing here reads forwarding headers (X-Forwarded-*); trusting every peer
        # spares gunicorn parsing the peer's address on every request.
        "forwarded_allow_ips": "*",
    }).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

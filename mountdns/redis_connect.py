"""Where Redis is and how to reach it: one URL, or Redis Sentinel's view of a primary.

Both daemons take `--redis-url`, and optionally `--redis-sentinel HOST:PORT` (repeatable)
with `--redis-sentinel-master NAME`: then the sentinels are asked where the primary is,
and asked again after every connection error, so a failover needs no restart. The sync
must write the primary; a backend may read a replica, by pointing `--redis-url` at it.
With Sentinel, the URL still gives the database number and the password (or, to keep it
off the command line, MOUNTDNS_REDIS_PASSWORD); MOUNTDNS_REDIS_SENTINEL_PASSWORD is the
sentinels' own password when they require one.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.sentinel import Sentinel

from mountdns.settings import ConfigError, add_flag, check_redis_url, mask_url, parse_bind, repeated

PASSWORD_ENV = "MOUNTDNS_REDIS_PASSWORD"
SENTINEL_PASSWORD_ENV = "MOUNTDNS_REDIS_SENTINEL_PASSWORD"


@dataclass(frozen=True)
class RedisTarget:
    url: str = "redis://127.0.0.1:6379/0"
    """Redis URL; with Sentinel only its database number and password are used."""
    sentinels: tuple[tuple[str, int], ...] = ()
    """Sentinel addresses; empty means connect to `url` directly."""
    master: str | None = None
    """The primary's name as the sentinels know it (`sentinel monitor NAME ...`)."""
    password: str | None = field(default=None, repr=False)
    """Password of the Redis servers, from the URL or MOUNTDNS_REDIS_PASSWORD."""
    sentinel_password: str | None = field(default=None, repr=False)
    """Password of the sentinels, from MOUNTDNS_REDIS_SENTINEL_PASSWORD."""

    def describe(self) -> str:
        """For the startup log line: no password."""
        if self.sentinels:
            where = ",".join(f"{h}:{p}" for h, p in self.sentinels)
            return f"sentinel {where} master {self.master!r} db {_db(self.url)}"
        return mask_url(self.url)


def add_sentinel_flags(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--redis-sentinel", repeatable=True,
             help="HOST:PORT of a Redis Sentinel; the primary is found through it (with --redis-sentinel-master)")
    add_flag(parser, "--redis-sentinel-master", help="name of the primary the sentinels monitor")


def target_from_args(args: argparse.Namespace, environ=os.environ) -> RedisTarget:
    """Validate --redis-url, --redis-sentinel and --redis-sentinel-master; every
    ConfigError names its flag."""
    check_redis_url(args.redis_url)
    sentinels = tuple(parse_host_port(s, "--redis-sentinel") for s in repeated(args, "redis_sentinel"))
    master = args.redis_sentinel_master or None
    if sentinels and not master:
        raise ConfigError("--redis-sentinel-master: required with --redis-sentinel")
    if master and not sentinels:
        raise ConfigError("--redis-sentinel: at least one HOST:PORT is required with --redis-sentinel-master")
    if sentinels and urlsplit(args.redis_url).scheme == "unix":
        raise ConfigError("--redis-url: a unix:// socket cannot be combined with --redis-sentinel")
    url_password = urlsplit(args.redis_url).password
    password = unquote(url_password) if url_password else environ.get(PASSWORD_ENV) or None
    try:
        _db(args.redis_url)
    except ValueError as exc:
        raise ConfigError(f"--redis-url: {exc}") from exc
    return RedisTarget(url=args.redis_url, sentinels=sentinels, master=master, password=password,
                       sentinel_password=environ.get(SENTINEL_PASSWORD_ENV) or None)


def connect(target: RedisTarget, *, timeout: float = 5.0, **options) -> redis.Redis:
    """A client for `target`'s Redis (with Sentinel: for the current primary, found
    again after every connection error). `options` go to every Redis connection."""
    if not target.sentinels:
        kwargs = {"password": target.password} if target.password and not urlsplit(target.url).password else {}
        return redis.Redis.from_url(target.url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                    **kwargs, **options)
    sentinel_kwargs = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if target.sentinel_password:
        sentinel_kwargs["password"] = target.sentinel_password
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_kwargs)
    return sentinel.master_for(target.master, socket_timeout=timeout, socket_connect_timeout=timeout,
                               password=target.password, db=_db(target.url), **options)


def parse_host_port(value: str, flag: str) -> tuple[str, int]:
    try:
        host, port = parse_bind(value)
    except ConfigError:
        raise ConfigError(f"{flag}: expected HOST:PORT, got {value!r}") from None
    return host.strip("[]"), port


def _db(url: str) -> int:
    parts = urlsplit(url)
    path = parts.path.strip("/")
    if parts.scheme == "unix":
        return int(parse_qs(parts.query).get("db", ["0"])[0])
    if not path:
        return 0
    if not path.isdigit():
        raise ValueError(f"database must be a number, got {path!r}")
    return int(path)

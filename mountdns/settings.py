"""Command-line flags that can also come from MOUNTDNS_* environment variables.

One rule for both daemons: `--redis-url` is also MOUNTDNS_REDIS_URL, and so on; a flag
given on the command line wins over the environment.
"""

from __future__ import annotations

import argparse
import os
import re
from urllib.parse import urlsplit

ENV_PREFIX = "MOUNTDNS_"


class ConfigError(ValueError):
    """The configuration is unusable; the message names the flag."""


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def env_default(flag: str, default=None, *, cast=str, repeatable: bool = False):
    """The flag's default as read from its environment variable (comma separated when
    repeatable), or `default`."""
    raw = os.environ.get(env_name(flag))
    if raw is None or raw == "":
        return default
    try:
        if repeatable:
            return [cast(item.strip()) for item in raw.split(",") if item.strip()]
        if cast is bool:
            return raw.strip().lower() in ("1", "true", "yes", "on")
        return cast(raw)
    except ValueError as exc:
        raise ConfigError(f"{env_name(flag)} (--{flag.lstrip('-')}): cannot read {raw!r}: {exc}") from exc


def add_flag(parser: argparse.ArgumentParser, flag: str, *, help: str, default=None, cast=str,
             repeatable: bool = False, switch: bool = False):
    """Add `flag` with its environment variable named in the help text."""
    env = env_name(flag)
    if switch:
        parser.add_argument(flag, action="store_true", default=env_default(flag, False, cast=bool),
                            help=f"{help} [env {env}]")
    elif repeatable:
        parser.add_argument(flag, action="append", type=cast, default=None,
                            help=f"{help} (repeatable) [env {env}, comma separated]")
        parser.set_defaults(**{flag.lstrip("-").replace("-", "_") + "_env": env_default(
            flag, default or [], cast=cast, repeatable=True)})
    else:
        parser.add_argument(flag, type=cast, default=env_default(flag, default, cast=cast),
                            help=f"{help} (default: {default}) [env {env}]")


def repeated(args: argparse.Namespace, dest: str) -> list:
    """A repeatable flag's values: the command line's, else the environment's."""
    given = getattr(args, dest)
    return given if given is not None else getattr(args, dest + "_env")


# user:password@ in any URL, and password=... in a query string (redis-py reads both).
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^/\s]*(?=@)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:password|pass|passwd|api[-_]?key)=)[^&#\s]*", re.IGNORECASE)


def mask_secrets(text: str) -> str:
    """`text` with the password of every URL in it replaced by ****, whether it is given
    as user:password@ or as a password= query parameter."""
    text = _URL_PASSWORD.sub(lambda m: m["head"] + "****", text)
    return _QUERY_PASSWORD.sub(lambda m: m["head"] + "****", text)


def mask_url(url: str) -> str:
    """The URL with its password replaced, for log lines and error messages."""
    return mask_secrets(url)


_HOST_PORT = re.compile(r"^(?P<host>\[[0-9a-fA-F:]+\]|[^:\s]+):(?P<port>\d{1,5})$")


def parse_bind(value: str) -> tuple[str, int]:
    m = _HOST_PORT.match(value or "")
    if not m or not 0 < int(m["port"]) < 65536:
        raise ConfigError(f"--bind: expected HOST:PORT, got {value!r}")
    return m["host"], int(m["port"])


def check_redis_url(value: str, flag: str = "--redis-url") -> str:
    if urlsplit(value or "").scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"{flag}: expected redis://HOST:PORT/DB, rediss:// or unix://, got {mask_url(value)!r}")
    return value

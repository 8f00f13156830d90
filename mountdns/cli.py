"""`mountdns`: the operators' command. `mountdns explain NAME` tells why NAME resolves or
not, from what Redis holds (read-only: SMEMBERS, HGETALL and GET, nothing else).

Exit codes: 0 the name is published, 1 it is not (the output says why), 2 bad input or
configuration (the message names the flag), or Redis could not be read.
"""

from __future__ import annotations

import argparse
import json
import sys

import redis

from mountdns.explain import ExplainError, explain, render_text
from mountdns.keyspace import DEFAULT_PREFIX, Keys, check_owner
from mountdns.redis_connect import add_sentinel_flags, connect, target_from_args
from mountdns.settings import ConfigError, add_flag

EXIT_PUBLISHED, EXIT_NOT_PUBLISHED, EXIT_ERROR = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mountdns", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("explain", help="why a name resolves, or does not: the chain of keys it reads",
                            description="Follow NAME -> parent -> node -> addresses through Redis, "
                                        "listing the keys each step read and their owner.")
    p.add_argument("name", help="the DNS name (any case, trailing dot optional)")
    add_flag(p, "--redis-url", default="redis://127.0.0.1:6379/0", help="Redis holding the mountdns keyspace")
    add_sentinel_flags(p)
    add_flag(p, "--key-prefix", default=DEFAULT_PREFIX, help="prefix of every mountdns Redis key")
    add_flag(p, "--owner-id", help="note every step held by an owner other than this one")
    p.add_argument("--json", action="store_true", help="print the explanation as JSON, for scripts")
    return parser


def main(argv: list[str] | None = None, out=sys.stdout, err=sys.stderr) -> int:
    try:
        args = build_parser().parse_args(argv)
    except ConfigError as exc:  # a MOUNTDNS_* variable that cannot be read
        print(f"mountdns: {exc}", file=err)
        return EXIT_ERROR
    except SystemExit as exc:  # argparse has printed why
        return EXIT_ERROR if exc.code else 0
    try:
        target = target_from_args(args)
        try:
            keys = Keys(args.key_prefix)
        except ValueError as exc:
            raise ConfigError(f"--key-prefix: {exc}") from exc
        owner = None
        if args.owner_id:
            try:
                owner = check_owner(args.owner_id)
            except ValueError as exc:
                raise ConfigError(f"--owner-id: {exc}") from exc
    except ConfigError as exc:
        print(f"mountdns explain: {exc}", file=err)
        return EXIT_ERROR
    client = connect(target)
    try:
        explanation = explain(args.name, client, keys, owner=owner)
    except ExplainError as exc:
        print(f"mountdns explain: NAME: {exc}", file=err)
        return EXIT_ERROR
    except redis.RedisError as exc:
        print(f"mountdns explain: cannot read Redis at {target.describe()} (--redis-url): {exc}", file=err)
        return EXIT_ERROR
    finally:
        client.close()
    if args.json:
        print(json.dumps(explanation.to_dict(), indent=2), file=out)
    else:
        print(render_text(explanation), file=out)
    return EXIT_PUBLISHED if explanation.published else EXIT_NOT_PUBLISHED


if __name__ == "__main__":
    sys.exit(main())

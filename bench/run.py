"""Run every benchmark and print the result tables (Markdown).

    python -m bench.run            # the full run (default topology: 10,000 parents on
                                   # 100 nodes, 10,000 mounted children, 1,000 missing names)
    python -m bench.run --quick    # a small run that only checks the benchmarks work
    python -m bench.run --only dns --only node_move
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
from pathlib import Path

SUITES = {
    "dns": "bench.dns_bench",             # queries/s: bind reference vs mountdns, backend alone, Redis calls
    "node_move": "bench.node_move",       # keys written and commit time of a node move vs the seed's way
    "change_latency": "bench.change_latency",  # Kubernetes change -> PowerDNS answer, caches on
    "sync_scale": "bench.sync_scale",     # initial sync of 100,000 Containers
    "purge_latency": "bench.purge_latency",  # node move -> every DNS pod (primary and replica) answers
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and short runs (smoke test)")
    parser.add_argument("--only", action="append", choices=sorted(SUITES), help="run only these suites")
    parser.add_argument("--output", help="also write the tables to this Markdown file")
    args = parser.parse_args(argv)

    header = (f"mountdns benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
              f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
              f"{' (quick run)' if args.quick else ''}\n")
    print(header, flush=True)
    out = [header]
    for name in args.only or list(SUITES):
        module = importlib.import_module(SUITES[name])
        started = time.monotonic()
        for table in module.run(quick=args.quick):
            text = table.render()
            print(text, flush=True)
            out.append(text)
        print(f"({name}: {time.monotonic() - started:.0f} s)\n", file=sys.stderr, flush=True)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

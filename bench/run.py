"""Run the benchmarks, print their tables (Markdown) and keep them in docs/benchmarks.md.

    python -m bench.run            # the full run (default topology: 10,000 parents on
                                   # 100 nodes, 10,000 mounted children, 1,000 missing names)
    python -m bench.run --quick    # a small run that only checks the benchmarks work
    python -m bench.run --only dns --only node_move
    python -m bench.run --output other.md   # write the page elsewhere; --output '' writes none

A quick run never touches docs/benchmarks.md unless --output names it: its figures
are not measurements anyone should quote.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from bench.report import section_header, sections, write_section

SUITES = {
    "dns": "bench.dns_bench",             # queries/s: bind reference vs mountdns, backend alone, Redis calls
    "node_move": "bench.node_move",       # keys written and commit time of a node move vs the seed's way
    "change_latency": "bench.change_latency",  # Kubernetes change -> PowerDNS answer, caches on
    "sync_scale": "bench.sync_scale",     # initial sync of 100,000 Containers
    "scale": "bench.scale",               # 100k and 1M Containers: RSS, sync time, lookups during writes
    "churn": "bench.churn",               # 1,000 Container changes/s + 100 node moves/s, caches on
    "churn_split": "bench.churn_split",   # the same, a DNS pod's work on one core and the rest on the other
    "batch_cost": "bench.batch_cost",     # the sync's cost a batch of churn, alone in one process
    "failover": "bench.failover",         # leader replica killed -> next change in Redis
    "purge_latency": "bench.purge_latency",  # node move -> every DNS pod (primary and replica) answers
    "pod_memory": "bench.pod_memory",     # sync memory, both sources on, 100,000 Pods (50,000 published)
    "memory_model": "bench.memory_model",  # where the sync's memory goes, phase by phase (tracemalloc)
}
PAGE = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and short runs (smoke test)")
    parser.add_argument("--only", action="append", choices=sorted(SUITES), help="run only these suites")
    parser.add_argument("--output", help="the Markdown page to keep the tables in "
                                         "(default: docs/benchmarks.md for a full run, none for --quick)")
    args = parser.parse_args(argv)
    output = args.output if args.output is not None else ("" if args.quick else str(PAGE))
    argv_shown = argv if argv is not None else sys.argv[1:]

    for name in args.only or list(SUITES):
        module = importlib.import_module(SUITES[name])
        header = section_header(name, argv_shown, args.quick)
        print(header, flush=True)
        started = time.monotonic()
        tables = []
        for table in module.run(quick=args.quick):
            print(table.render(), flush=True)
            tables.append(table)
        print(f"({name}: {time.monotonic() - started:.0f} s)\n", file=sys.stderr, flush=True)
        if output:
            for section, (heading, kept) in sections(name, tables).items():
                # The header made before the run (its date, load and CPU speed are the run's
                # start), under the section's own heading.
                head = header if section == name else header.replace(f"## {name}\n", f"## {heading}\n", 1)
                write_section(Path(output), section, "\n".join([head, *(t.render() for t in kept)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""dnsperf, run and parsed: queries/s, answered share, and per-query latencies (-v runs).

dnsperf 2.10 has no latency histogram, so percentiles come from a rate-limited run with
-v, which prints every query's latency; -v costs dnsperf CPU, so throughput runs omit it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from mountdns.testing.stats import percentile

DNSPERF = shutil.which("dnsperf") or "/usr/bin/dnsperf"
CLIENTS = 4            # dnsperf -c
OK_RCODES = ("NOERROR", "NXDOMAIN")


@dataclass
class DnsperfResult:
    qps: float
    avg_ms: float
    sent: int
    completed: int
    lost: int
    rcodes: dict[str, int]
    run_seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    argv: list[str] = field(default_factory=list)

    def percentile(self, share: float) -> float:
        """Nearest-rank percentile of the per-query latencies (needs a -v run)."""
        return percentile(self.latencies_ms, share * 100) if self.latencies_ms else float("nan")

    @property
    def answered_qps(self) -> float:
        """Queries/s answered with NOERROR or NXDOMAIN: a SERVFAIL is fast but no answer."""
        if not self.completed:
            return 0.0
        return self.qps * sum(self.rcodes.get(code, 0) for code in OK_RCODES) / self.completed

    @property
    def error_share(self) -> float:
        if not self.sent:
            return 1.0
        return 1 - sum(self.rcodes.get(code, 0) for code in OK_RCODES) / self.sent

    def unexpected(self) -> str:
        """Lost queries and rcodes other than NOERROR/NXDOMAIN, for the notes ('' if none)."""
        odd = {k: v for k, v in self.rcodes.items() if k not in OK_RCODES}
        parts = [f"{v} {k}" for k, v in odd.items()]
        if self.lost:
            parts.append(f"{self.lost} lost")
        return ", ".join(parts)


_STAT = re.compile(r"^\s*(Queries sent|Queries completed|Queries lost|Queries per second|"
                   r"Average Latency \(s\)|Response codes|Run time \(s\)):\s*(.*)$", re.M)
_VERBOSE = re.compile(r"^> (\S+) \S+ \S+ ([0-9.]+)$", re.M)


def dnsperf(port: int, query_file: Path, seconds: float, *, max_qps: int | None = None,
            verbose: bool = False, passes: int | None = None, clients: int = CLIENTS) -> DnsperfResult:
    argv = [DNSPERF, "-s", "127.0.0.1", "-p", str(port), "-d", str(query_file), "-c", str(clients),
            "-l", str(seconds)]
    if max_qps:
        argv += ["-Q", str(max_qps)]
    if passes:
        argv += ["-n", str(passes)]
    if verbose:
        argv.append("-v")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    if done.returncode != 0:
        raise RuntimeError(f"dnsperf failed ({done.returncode}): {done.stderr[-2000:]}")
    stats = {k: v for k, v in _STAT.findall(done.stdout)}
    if "Queries per second" not in stats:
        raise RuntimeError(f"no statistics in dnsperf output:\n{done.stdout[-2000:]}")
    rcodes = {code: int(n) for code, n in re.findall(r"([A-Z]+) (\d+) \(", stats.get("Response codes", ""))}
    latencies = [float(s) * 1000 for _, s in _VERBOSE.findall(done.stdout)] if verbose else []
    return DnsperfResult(
        qps=float(stats["Queries per second"]),
        avg_ms=float(stats["Average Latency (s)"].split()[0]) * 1000,
        sent=int(stats["Queries sent"]),
        completed=int(stats["Queries completed"].split()[0]),
        lost=int(stats["Queries lost"].split()[0]),
        rcodes=rcodes,
        run_seconds=float(stats.get("Run time (s)", seconds)),
        latencies_ms=latencies,
        argv=[Path(argv[0]).name] + argv[1:],
    )

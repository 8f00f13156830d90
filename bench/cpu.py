"""CPU seconds per server process group, read from /proc: where the CPU goes in a run."""

from __future__ import annotations

import os
import resource
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def group_cpu(pgid: int) -> dict[int, float]:
    """CPU seconds (user+system) of every live process in process group `pgid`, by pid.
    The servers are started in their own session, so the group is the server and its workers."""
    usage = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        if int(fields[2]) == pgid:  # fields[0] is the state (stat field 3): pgrp is field 5
            usage[int(entry)] = (int(fields[11]) + int(fields[12])) / _TICK
    return usage


class CpuMeter:
    """CPU seconds spent by each server (and the load generator) between start() and stop()."""

    def __init__(self, servers: dict[str, object]):
        self.servers = servers
        self.before: dict[str, dict[int, float]] = {}
        self.used: dict[str, dict[int, float]] = {}

    def start(self):
        self.before = {name: group_cpu(s.proc.pid) for name, s in self.servers.items()}
        self.children_before = _children_cpu()

    def stop(self):
        for name, server in self.servers.items():
            now = group_cpu(server.proc.pid)
            self.used[name] = {pid: t - self.before[name].get(pid, 0.0) for pid, t in now.items()}
        self.used["dnsperf"] = {0: _children_cpu() - self.children_before}

    def total(self, name: str) -> float:
        return sum(self.used.get(name, {}).values())


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pin(pids, cpus: set[int]) -> None:
    """Keep every thread of each process in `pids` on `cpus` (threads and processes they
    start later inherit it)."""
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue  # gone meanwhile
        for task in tasks:
            try:
                os.sched_setaffinity(int(task), cpus)
            except OSError:
                pass  # a thread that ended meanwhile


def pin_group(pgid: int, cpus: set[int]) -> None:
    """pin() every live process of process group `pgid` (a server and its workers)."""
    pin(group_cpu(pgid), cpus)


def allowed_cpus(pid: int) -> str:
    """The CPUs a process may run on, as /proc shows them (e.g. "0" or "0-1")."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    return "?"

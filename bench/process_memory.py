"""A sync process's memory as /proc reports it, for the memory benchmarks."""

from __future__ import annotations

import time

from mountdns.testing.sync_process import SyncProcess


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, KiB."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    if len(fields) != 2:
        raise RuntimeError(f"no VmRSS/VmHWM for process {pid}")
    return fields["VmRSS"], fields["VmHWM"]


def settled_rss(sync: SyncProcess, seconds: float = 2.0) -> tuple[int, int]:
    """(VmRSS, VmHWM) once the sync is idle: sampled after a pause, the lowest RSS of a
    few samples (a batch in progress allocates for a moment)."""
    time.sleep(seconds)
    samples = []
    for _ in range(5):
        samples.append(memory_kib(sync.proc.pid))
        time.sleep(0.2)
    return min(s[0] for s in samples), max(s[1] for s in samples)

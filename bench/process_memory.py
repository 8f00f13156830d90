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


def run_once(sync: SyncProcess, timeout: float) -> tuple[float, int, int]:
    """Run `sync --once` to its exit; return (wall seconds, exit status, peak RSS in KiB).
    The peak is the process's VmHWM, read every 20 ms until it exits: a child's
    ru_maxrss (wait4, getrusage) also counts the pages of the parent it was forked from
    before exec, here the benchmark's API double with its copy of every object."""
    started = time.monotonic()
    sync.spawn(sync.argv("--once"))
    pid, hwm = sync.proc.pid, 0
    while sync.proc.poll() is None:
        if time.monotonic() - started > timeout:
            sync.stop()
            raise TimeoutError(f"mountdns-sync --once still running after {timeout}s:\n{sync.log_tail()}")
        try:
            hwm = max(hwm, memory_kib(pid)[1])
        except (OSError, RuntimeError):
            pass  # exiting: the last reading stands
        time.sleep(0.02)
    return time.monotonic() - started, sync.proc.returncode, hwm

"""The sync's dealings with the C allocator (glibc): few malloc arenas, big blocks
mapped on their own, and the freed heap handed back after a full batch.

glibc gives each new thread that allocates a malloc arena of its own, up to eight per
core. The sync's threads each allocate in bulk: the watchers parse list pages and
events, the loop builds and diffs batches, the status writer reads its answers. What a
thread frees stays in its arena, where the others cannot reuse it, so the process keeps
the high-water mark of every arena at once. With the GIL only one thread allocates at a
time, so arenas buy the sync no concurrency. Two arenas: at 100,000 Containers the peak
RSS of the long-running sync through a resync went from 218 to 207 MiB.

glibc maps a block of 128 KiB or more on its own, and unmaps it when freed: its memory
goes back to the system at once. But when such a block is freed, glibc raises that
threshold to the block's size (up to 32 MiB), so from then on blocks that big come from
the heap, where a freed one stays in the process. The sync's big blocks come and go: a
list page's body and its parsed items, the key-to-object map a re-list compares against
(~5 MB at 100,000 Containers), a garbage round's stale names. Kept at 128 KiB, the
peak RSS of the long-running sync through a resync at 100,000 Containers went from 170.5
to 166.3-167.2 MiB, and after the resync it settled ~5 MiB lower (158-159 against 163 MiB).

The MALLOC_ARENA_MAX and MALLOC_MMAP_THRESHOLD_ environment variables, when set, are
the operator's choice and win. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import os

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 128 * 1024  # glibc's initial threshold, kept


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap the process at `arenas` malloc arenas; True if the allocator took it. Call it
    before any thread starts: a thread keeps the arena it was given."""
    return _mallopt("MALLOC_ARENA_MAX", M_ARENA_MAX, arenas)


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Map every block of `threshold` bytes or more on its own, whatever was freed before
    (no dynamic threshold); True if the allocator took it."""
    return _mallopt("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, threshold)


def _mallopt(variable: str, parameter: int, value: int) -> bool:
    if os.environ.get(variable):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return mallopt(parameter, value) == 1


def release_freed() -> None:
    """Hand the heap freed after a full batch back to the system. A full batch reads every
    name in Redis and builds one write for every name; glibc keeps the freed memory for
    reuse, so the idle sync would stay at the batch's peak. Without glibc, nothing happens."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass

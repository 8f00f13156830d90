"""The benchmarks' reading of a sync's peak memory (bench/process_memory.py) is the
sync's own: a real `mountdns-sync --once` over the examples' manifests, run from a
process that holds far more memory than the sync ever does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.process_memory import memory_kib, run_once
from mountdns.testing.sync_process import SyncProcess

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HELD_MIB = 400


@pytest.mark.timeout(60)
def test_run_once_reports_the_syncs_own_peak_not_the_process_it_was_forked_from(redis_server, redis_client, tmp_path):
    # A child's ru_maxrss (wait4) starts from the pages of the process it was forked
    # from: it would read at least what this process holds.
    held = b"x" * (HELD_MIB << 20)  # touched, so resident
    assert memory_kib(os.getpid())[0] >= HELD_MIB << 10
    sync = SyncProcess(tmp_path, redis_server.url, manifests=str(EXAMPLES))

    seconds, code, peak_kib = run_once(sync, timeout=50)

    assert code == 0, sync.log_tail()
    assert seconds > 0
    assert 20 << 10 < peak_kib < HELD_MIB << 10, peak_kib  # an interpreter with its libraries, not ours
    assert redis_client.exists("mountdns:zones")  # it did run: the seed's zone is written (flushed after)
    del held


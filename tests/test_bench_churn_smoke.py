"""The churn benchmark (bench/churn.py) still runs: quick mode (a few hundred changes a
second for 3 s on 1,000 names). No assertion on speed; what is checked is that every
change reached Redis and every probed node move was answered through PowerDNS."""

from __future__ import annotations

import os

import pytest

from bench import churn

pytestmark = pytest.mark.integration


@pytest.mark.timeout(180)
def test_churn_quick_run_lands_every_change_and_answers_every_probed_move():
    tables = churn.run(quick=True)

    assert len(tables) == 1
    rows = {row[0]: row for row in tables[0].rows}
    assert rows["change -> Redis p99 (s)"][1] >= 0
    assert rows["probed moves not answered within 10 s"][1] == 0, tables[0].render()
    assert any(name.startswith("moved node -> PowerDNS answers it") for name in rows), tables[0].render()
    cpu = next(row for name, row in rows.items() if name.startswith("CPU during the churn"))
    names = cpu[0].split(": ", 1)[1].split(" / ")
    shares = [int(share.rstrip("%")) for share in cpu[1].split(" / ")]
    assert names[0] == "sync" and len(names) == len(shares) == 7, tables[0].render()
    assert shares[0] > 0, tables[0].render()  # the sync did work to follow the changes


@pytest.mark.timeout(180)
def test_churn_split_runs_the_dns_pods_work_on_one_core_and_the_rest_on_the_other():
    before = os.sched_getaffinity(0)
    tables = churn.run(quick=True, split_cores=True)
    assert os.sched_getaffinity(0) == before  # this process runs where it ran before

    table = tables[0]
    rows = {row[0]: row for row in table.rows}
    assert rows["probed moves not answered within 10 s"][1] == 0, table.render()
    assert "cores split" in table.title
    # Read back from /proc after the run: each process stayed where it was put.
    (split,) = [note for note in table.notes if note.startswith("Cores split")]
    for name in ("sync 0", "PowerDNS, caches on (purged) 0", "PowerDNS, caches off (dnsperf's) 1",
                 "backend 1", "Redis 1", "this process and dnsperf 0"):
        assert name in split, split

"""The churn benchmark (bench/churn.py) still runs: quick mode (a few hundred changes a
second for 3 s on 1,000 names). No assertion on speed; what is checked is that every
change reached Redis (the run waits for that and fails without it) and every probed node
move was answered through PowerDNS, however late: the probes get a deadline far longer
than the report's 10 s, which is a latency limit a loaded machine may miss."""

from __future__ import annotations

import math
import os

import pytest

from bench import churn

pytestmark = pytest.mark.integration

PROBE_DEADLINE = 60.0  # long enough that a move not answered by then is not answered at all
QUICK = churn.QUICK
TICKS = int(QUICK["seconds"] / churn.TICK)
# What the quick run's driver sends, and the moves it probes (one on every PROBE_EVERY-th
# node, the first time it moves).
SENT_CHILDREN = TICKS * max(1, int(QUICK["container_rate"] * churn.TICK))
SENT_NODES = TICKS * max(1, int(QUICK["node_rate"] * churn.TICK))
PROBED = len(range(0, min(QUICK["nodes"], SENT_NODES), churn.PROBE_EVERY))


def every_probed_move_answered(table) -> None:
    rows = {row[0]: row for row in table.rows}
    assert rows[f"probed moves not answered within {PROBE_DEADLINE:g} s"][1] == 0, table.render()
    (answered,) = [name for name in rows if name.startswith("moved node -> PowerDNS answers it")]
    assert answered.endswith(f", {PROBED} probed"), table.render()


@pytest.mark.timeout(300)
def test_churn_quick_run_lands_every_change_and_answers_every_probed_move():
    tables = churn.run(quick=True, probe_deadline=PROBE_DEADLINE)

    assert len(tables) == 1
    rows = {row[0]: row for row in tables[0].rows}
    sent = rows["changes sent (Containers + nodes)"][1]
    assert sent.startswith(f"{SENT_CHILDREN:,} + {SENT_NODES:,} in "), tables[0].render()
    p50, p99, top = (rows[f"change -> Redis {p} (s)"][1] for p in ("p50", "p99", "max"))
    assert all(math.isfinite(x) for x in (p50, p99, top)) and p50 <= p99 <= top, tables[0].render()
    assert PROBED >= 2
    every_probed_move_answered(tables[0])
    cpu = next(row for name, row in rows.items() if name.startswith("CPU during the churn"))
    names = cpu[0].split(": ", 1)[1].split(" / ")
    shares = [int(share.rstrip("%")) for share in cpu[1].split(" / ")]
    assert names[0] == "sync" and len(names) == len(shares) == 7, tables[0].render()
    assert shares[0] > 0, tables[0].render()  # the sync did work to follow the changes


@pytest.mark.timeout(300)
def test_churn_split_runs_the_dns_pods_work_on_one_core_and_the_rest_on_the_other():
    before = os.sched_getaffinity(0)
    tables = churn.run(quick=True, split_cores=True, probe_deadline=PROBE_DEADLINE)
    assert os.sched_getaffinity(0) == before  # this process runs where it ran before

    table = tables[0]
    every_probed_move_answered(table)
    assert "cores split" in table.title
    # Read back from /proc after the run: each process stayed where it was put.
    (split,) = [note for note in table.notes if note.startswith("Cores split")]
    for name in ("sync 0", "PowerDNS, caches on (purged) 0", "PowerDNS, caches off (dnsperf's) 1",
                 "backend 1", "Redis 1", "this process and dnsperf 0"):
        assert name in split, split

"""bench/purge_latency.py still runs (quick mode, no assertion on speed): its real processes
start, the moves are answered and the figures are numbers."""

from __future__ import annotations

import math

import pytest

from bench import purge_latency

pytestmark = pytest.mark.integration


@pytest.mark.timeout(120)
def test_purge_latency_quick_run_reports_numeric_latencies():
    [table] = purge_latency.run(quick=True)

    timed_out = table.columns.index("timed out")
    assert all(row[timed_out] == 0 for row in table.rows), table.render()
    for column in ("p50 ms", "p99 ms", "max ms"):
        index = table.columns.index(column)
        assert all(isinstance(row[index], float) and math.isfinite(row[index]) for row in table.rows), \
            table.render()
    assert "| move -> both pods answer the new address | 5 |" in table.render()

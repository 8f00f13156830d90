"""The failover benchmark (bench/failover.py) still runs: quick mode, no assertion on speed."""

from __future__ import annotations

import math

import pytest

from bench import failover

pytestmark = pytest.mark.integration


@pytest.mark.timeout(120)
def test_failover_quick_run_reports_a_takeover_per_signal():
    (table,) = failover.run(quick=True)
    rows = {row[table.columns.index("signal")]: row for row in table.rows}
    assert set(rows) == {"SIGKILL", "SIGTERM"}
    for row in rows.values():
        for column in ("change in Redis: median s", "max s", "Lease taken: median s"):
            value = row[table.columns.index(column)]
            assert isinstance(value, float) and math.isfinite(value) and value > 0, table.render()
        assert row[table.columns.index("rounds")] == 1

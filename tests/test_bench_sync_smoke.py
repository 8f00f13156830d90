"""The sync benchmarks (bench/change_latency.py, bench/sync_scale.py) still run.

Quick mode only, and no assertion on speed: a loaded build machine must not fail the
suite. What is checked is that each suite starts its real processes, finishes and
returns tables whose figures are numbers.
"""

from __future__ import annotations

import math

import pytest

from bench import change_latency, sync_scale
from bench.report import Table

pytestmark = pytest.mark.integration


def figures(table: Table, column: str) -> list:
    index = table.columns.index(column)
    return [row[index] for row in table.rows]


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@pytest.mark.timeout(60)
def test_change_latency_quick_run_reports_numeric_latencies():
    tables = change_latency.run(quick=True)

    assert tables and all(isinstance(t, Table) for t in tables)
    table = tables[0]
    assert len(table.rows) >= 3
    for column in ("p50 ms", "p90 ms", "p99 ms", "max ms"):
        assert all(is_number(v) for v in figures(table, column)), table.render()
    assert all(v >= 1 for v in figures(table, "moves"))
    assert "| API change -> PowerDNS answers" in table.render()


@pytest.mark.timeout(60)
def test_sync_scale_quick_run_reports_numeric_figures():
    tables = sync_scale.run(quick=True)

    assert tables and all(isinstance(t, Table) for t in tables)
    table = tables[0]
    values = figures(table, "value")
    assert len(values) >= 5
    assert all(is_number(v) for v in values), table.render()
    assert table.render().startswith("### Initial sync of 2,000 Containers")
    # Not a speed: every key the sync writes is there, no more (the count the benchmark
    # expects is the keyspace's, and drifts when a key is added without it).
    row = next(row for row in table.rows if row[0] == "keys in Redis")
    assert row[3] == "pass", table.render()

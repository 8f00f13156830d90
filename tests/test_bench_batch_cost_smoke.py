"""The batch-cost benchmark (bench/batch_cost.py) still runs: quick mode against a real
redis-server, a row per batch size with finite, positive figures, and the line through
them. No assertion on the figures themselves: they are what the benchmark is for."""

from __future__ import annotations

import math

import pytest

from bench import batch_cost

pytestmark = pytest.mark.integration


@pytest.mark.timeout(120)
def test_batch_cost_quick_run_reports_every_batch_size():
    (table,) = batch_cost.run(quick=True)

    assert [row[0] for row in table.rows] == ["1 + 1", "80 + 8", "400 + 40"], table.render()
    for _, ms, per_change, share in table.rows:
        assert math.isfinite(ms) and ms > 0 and per_change > 0, table.render()
        assert share.endswith("%") and int(share[:-1]) >= 0, table.render()
    assert table.notes[0].startswith("A line through these:"), table.render()


def test_the_line_through_the_sizes_splits_a_batch_into_fixed_and_per_change_parts():
    assert batch_cost.fit([(2, 12.0), (88, 55.0), (440, 231.0)]) == pytest.approx((11.0, 0.5))


def test_name_counts_come_from_the_environment_half_parents_fifty_a_node(monkeypatch):
    monkeypatch.setenv("BENCH_BATCH_NAMES", "100000, 1000000")
    assert [(s["parents"], s["nodes"]) for s in batch_cost.sizes(quick=False)] == [(50_000, 1_000),
                                                                                  (500_000, 10_000)]
    monkeypatch.delenv("BENCH_BATCH_NAMES")
    assert batch_cost.sizes(quick=False) == [batch_cost.FULL]
    assert batch_cost.sizes(quick=True) == [batch_cost.QUICK]
